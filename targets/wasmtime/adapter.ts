/**
 * The wasmtime host adapter, in WebAssembly text. Kept as a TS string (not a .wat file read at run time)
 * so it travels inside the bundled dist/ unchanged. The protocol is described in the text itself.
 */
export const ADAPTER_WAT = `;; Generic WASI adapter that runs an UNMODIFIED teenygrad reactor blob in the wasmtime CLI:
;;   wasmtime run --preload model=<blob.wasm> adapter.wasm  < request  > response
;; The blob is linked as module "model"; this command imports its memory and run().
;;
;; request (stdin, u32 little-endian):
;;   count, then count x (offset, length, <length bytes>)   bytes to write into model memory (inputs, weights)
;;   count, then count x (offset, length)                   model memory ranges to send back (outputs)
;; response (stdout): u32 status from run(); when it is 0, the requested ranges' bytes in order.
;; Exit codes: 70 stdin ended early, 71 stdin read error, 72 stdout write error, 73 range outside model memory.
;;
;; Needs multi-memory (model memory + our own memory for WASI buffers) and bulk-memory (memory.copy), both on by
;; default in wasmtime.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "model" "memory" (memory $model 0))
  (import "model" "run" (func $run (result i32)))

  ;; WASI reads and writes through the exported "memory": this one. Layout: [0, 8) iovec, [8, 12) byte count
  ;; returned by fd_read/fd_write, [12, 16) a u32 word, [65536, 131072) the copy buffer.
  (memory $io 2)
  (export "memory" (memory $io))

  (global $buffer i32 (i32.const 65536))
  (global $buffer_size i32 (i32.const 65536))

  ;; fills [ptr, ptr + len) of $io from stdin, looping over short reads
  (func $read_exact (param $ptr i32) (param $len i32)
    (local $got i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store $io (i32.const 0) (local.get $ptr))
        (i32.store $io (i32.const 4) (local.get $len))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 71))))
        (local.set $got (i32.load $io (i32.const 8)))
        (if (i32.eqz (local.get $got))
          (then (call $proc_exit (i32.const 70))))
        (local.set $ptr (i32.add (local.get $ptr) (local.get $got)))
        (local.set $len (i32.sub (local.get $len) (local.get $got)))
        (br $more))))

  ;; writes [ptr, ptr + len) of $io to stdout, looping over short writes
  (func $write_all (param $ptr i32) (param $len i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store $io (i32.const 0) (local.get $ptr))
        (i32.store $io (i32.const 4) (local.get $len))
        (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 72))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load $io (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load $io (i32.const 8))))
        (br $more))))

  (func $read_u32 (result i32)
    (call $read_exact (i32.const 12) (i32.const 4))
    (i32.load $io (i32.const 12)))

  ;; exits unless [offset, offset + len) lies inside model memory (64-bit sum: no wrap-around)
  (func $check_range (param $offset i32) (param $len i32)
    (if (i64.gt_u
          (i64.add (i64.extend_i32_u (local.get $offset)) (i64.extend_i32_u (local.get $len)))
          (i64.mul (i64.extend_i32_u (memory.size $model)) (i64.const 65536)))
      (then (call $proc_exit (i32.const 73)))))

  ;; streams len bytes of stdin into model memory at offset, one buffer at a time
  (func $read_into_model (param $offset i32) (param $len i32)
    (local $n i32)
    (call $check_range (local.get $offset) (local.get $len))
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $n (select (local.get $len) (global.get $buffer_size)
          (i32.lt_u (local.get $len) (global.get $buffer_size))))
        (call $read_exact (global.get $buffer) (local.get $n))
        (memory.copy $model $io (local.get $offset) (global.get $buffer) (local.get $n))
        (local.set $offset (i32.add (local.get $offset) (local.get $n)))
        (local.set $len (i32.sub (local.get $len) (local.get $n)))
        (br $more))))

  ;; streams len bytes of model memory at offset to stdout
  (func $write_from_model (param $offset i32) (param $len i32)
    (local $n i32)
    (call $check_range (local.get $offset) (local.get $len))
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $n (select (local.get $len) (global.get $buffer_size)
          (i32.lt_u (local.get $len) (global.get $buffer_size))))
        (memory.copy $io $model (global.get $buffer) (local.get $offset) (local.get $n))
        (call $write_all (global.get $buffer) (local.get $n))
        (local.set $offset (i32.add (local.get $offset) (local.get $n)))
        (local.set $len (i32.sub (local.get $len) (local.get $n)))
        (br $more))))

  (func (export "_start")
    (local $count i32)
    (local $offset i32)
    (local $status i32)
    (local.set $count (call $read_u32))
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $offset (call $read_u32))
        (call $read_into_model (local.get $offset) (call $read_u32))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $more)))
    (local.set $status (call $run))
    (i32.store $io (i32.const 12) (local.get $status))
    (call $write_all (i32.const 12) (i32.const 4))
    (if (local.get $status) (then (return)))
    (local.set $count (call $read_u32))
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $offset (call $read_u32))
        (call $write_from_model (local.get $offset) (call $read_u32))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $more))))
)
`;
