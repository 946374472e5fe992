/** Hand-written WAT "models" with teenygrad manifests, for the host/loader and wasmtime tests. */
import binaryen from "binaryen";
import type { Manifest, TensorSlot } from "../../compiler/codegen/manifest.js";
import { MANIFEST_SECTION } from "../../compiler/codegen/manifest.js";
import { DTYPES } from "../../compiler/ir/dtype.js";

/** WAT → binary with exactly the given binaryen features enabled (validated, so a typo fails loudly) */
export function assemble(wat: string, features: number = binaryen.Features.MVP, custom: Record<string, Uint8Array> = {}): Uint8Array {
  const module = binaryen.parseText(wat);
  try {
    module.setFeatures(features);
    if (!module.validate()) throw new Error("test WAT does not validate");
    for (const [name, bytes] of Object.entries(custom)) module.addCustomSection(name, bytes);
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

export const F = binaryen.Features;

export function slot(name: string, offset: number, count: number, dtype: TensorSlot["dtype"] = "float32"): TensorSlot {
  return { name, dtype, shape: [count], offset, bytes: count * DTYPES[dtype].bytes };
}

export function manifestFor(parts: {
  inputs: TensorSlot[];
  outputs: TensorSlot[];
  pages: number;
  weights?: TensorSlot[];
  embedded?: boolean;
  flavour?: Manifest["flavour"];
}): Manifest {
  const weights = parts.weights ?? [];
  const weightsOffset = weights.length ? Math.min(...weights.map((w) => w.offset)) : 0;
  return {
    format: "teenygrad",
    version: 1,
    target: "wasm-simd",
    features: [],
    flavour: parts.flavour ?? "reactor",
    memory: { pages: parts.pages, bytes: parts.pages * 65536 },
    arena: { offset: 0, bytes: 0, lowerBound: 0, greedyBaseline: 0 },
    weights: {
      offset: weightsOffset,
      bytes: weights.reduce((n, w) => n + w.bytes, 0),
      embedded: parts.embedded ?? true,
      tensors: weights,
    },
    inputs: parts.inputs,
    outputs: parts.outputs,
  };
}

export const manifestSection = (manifest: unknown): Record<string, Uint8Array> => ({
  [MANIFEST_SECTION]: new TextEncoder().encode(JSON.stringify(manifest)),
});

/**
 * y = x + 1 over n float32s: x at 0, y at the next 64-byte boundary. run() returns 2 (the generated code's
 * "index out of range" status) when x[0] < 0, to exercise status reporting.
 */
export function addOneModel(n = 5): { bytes: Uint8Array; manifest: Manifest } {
  const yOffset = Math.ceil((n * 4) / 64) * 64;
  const pages = Math.max(1, Math.ceil((yOffset + n * 4) / 65536));
  const manifest = manifestFor({ inputs: [slot("x", 0, n)], outputs: [slot("y", yOffset, n)], pages });
  const wat = `(module
    (memory (export "memory") ${pages} ${pages})
    (func (export "run") (result i32)
      (local $i i32)
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (i32.const ${n * 4})))
          (f32.store (i32.add (local.get $i) (i32.const ${yOffset}))
            (f32.add (f32.load (local.get $i)) (f32.const 1)))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $next)))
      (select (i32.const 2) (i32.const 0) (f32.lt (f32.load (i32.const 0)) (f32.const 0)))))`;
  return { bytes: assemble(wat, F.MVP, manifestSection(manifest)), manifest };
}

/** y = x + w over 5 float32s, with w in a separate (not embedded) weights file placed at offset 64 */
export function separateWeightsModel(): { bytes: Uint8Array; manifest: Manifest } {
  const manifest = manifestFor({
    inputs: [slot("x", 0, 5)],
    outputs: [slot("y", 32, 5)],
    weights: [slot("w", 64, 5)],
    embedded: false,
    pages: 1,
  });
  const wat = `(module
    (memory (export "memory") 1 1)
    (func (export "run") (result i32)
      (local $i i32)
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (i32.const 20)))
          (f32.store offset=32 (local.get $i)
            (f32.add (f32.load (local.get $i)) (f32.load offset=64 (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $next)))
      (i32.const 0)))`;
  return { bytes: assemble(wat, F.MVP, manifestSection(manifest)), manifest };
}

/** two int64 inputs a[3], b[3] → sum[3] = a + b, and an int8 output sign[3] = sign(a) */
export function int64Model(): { bytes: Uint8Array; manifest: Manifest } {
  const manifest = manifestFor({
    inputs: [slot("a", 0, 3, "int64"), slot("b", 24, 3, "int64")],
    outputs: [slot("sum", 48, 3, "int64"), slot("sign", 72, 3, "int8")],
    pages: 1,
  });
  const wat = `(module
    (memory (export "memory") 1 1)
    (func (export "run") (result i32)
      (local $i i32)
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (i32.const 3)))
          (i64.store offset=48 (i32.shl (local.get $i) (i32.const 3))
            (i64.add (i64.load (i32.shl (local.get $i) (i32.const 3))) (i64.load offset=24 (i32.shl (local.get $i) (i32.const 3)))))
          (i32.store8 offset=72 (local.get $i)
            (i32.sub (i64.gt_s (i64.load (i32.shl (local.get $i) (i32.const 3))) (i64.const 0))
                     (i64.lt_s (i64.load (i32.shl (local.get $i) (i32.const 3))) (i64.const 0))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (i32.const 0)))`;
  return { bytes: assemble(wat, F.MVP, manifestSection(manifest)), manifest };
}

/** a reactor whose run() traps */
export function trappingModel(): { bytes: Uint8Array; manifest: Manifest } {
  const manifest = manifestFor({ inputs: [slot("x", 0, 5)], outputs: [slot("y", 32, 5)], pages: 1 });
  const wat = `(module (memory (export "memory") 1 1) (func (export "run") (result i32) unreachable))`;
  return { bytes: assemble(wat, F.MVP, manifestSection(manifest)), manifest };
}

/**
 * The "wasi" flavour of y = x + 1 over 5 float32s: _start reads x's 20 bytes from stdin (looping over short
 * reads), computes, writes y's 20 bytes to stdout.
 */
export function wasiAddOneCommand(): { bytes: Uint8Array; manifest: Manifest } {
  const manifest = manifestFor({ inputs: [slot("x", 0, 5)], outputs: [slot("y", 32, 5)], pages: 1, flavour: "wasi" });
  const wat = `(module
    (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
    (memory (export "memory") 1 1)
    (func (export "_start")
      (local $at i32) (local $i i32)
      ;; iovec at 1024, count at 1032
      (block $read
        (loop $more
          (br_if $read (i32.ge_u (local.get $at) (i32.const 20)))
          (i32.store (i32.const 1024) (local.get $at))
          (i32.store (i32.const 1028) (i32.sub (i32.const 20) (local.get $at)))
          (if (call $fd_read (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 1032)) (then (call $proc_exit (i32.const 1))))
          (if (i32.eqz (i32.load (i32.const 1032))) (then (call $proc_exit (i32.const 1))))
          (local.set $at (i32.add (local.get $at) (i32.load (i32.const 1032))))
          (br $more)))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (i32.const 20)))
          (f32.store offset=32 (local.get $i) (f32.add (f32.load (local.get $i)) (f32.const 1)))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $next)))
      (i32.store (i32.const 1024) (i32.const 32))
      (i32.store (i32.const 1028) (i32.const 20))
      (drop (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 1032)))))`;
  return { bytes: assemble(wat, F.MVP, manifestSection(manifest)), manifest };
}

/** deterministic PRNG so the corruption tests are reproducible (the planner's mulberry32) */
export { seededRandom as rng } from "../../compiler/planner/arena.js";
