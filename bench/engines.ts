// Latency of one run() of each example in every engine: Node (V8) and wasmtime with the SIMD and the scalar
// build, WAMR and wasm3 (teenygrad-native-run) with the scalar build. With the MLPerf Tiny models present, the
// KWS DS-CNN, anomaly detection, ResNet-8 and VWW too: float32, int8 on the integer kernels, and int8 emulated in
// float32 (`quantized: "dequantize"`, the pre-integer import), then the ratios the int8 kernels are judged by. Each
// engine times run() alone, inside its own process (no process start-up, module compilation or input copying
// counted): the median of RUNS runs after WARMUP untimed ones (fewer for the large models in the interpreters, where
// one run takes seconds), with the inputs written again before every run.
// Run: npm run bench:engines [-- --models kws,ad,ic,vww] (MLPerf models by short name; `none` for the examples only)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import binaryen from "binaryen";
import { compile, loadBlob, manualSeed, Tensor, type nn } from "../compiler/index.js";
import type { Graph } from "../compiler/ir/graph.js";
import type { TypedArray } from "../compiler/ir/dtype.js";
import { importTfliteModel, type TfliteImportOptions } from "../compiler/import/tflite/index.js";
import { randomTfliteInputs } from "../compiler/import/tflite/litert.js";
import { findMlperfDir } from "../compiler/import/tflite/mlperf.js";
import type { Manifest } from "../compiler/codegen/manifest.js";
import { findNativeRunner, runInNativeRunner, type NativeEngine } from "../targets/native-runner/runner.js";
import { bytesOf, checkedInputs, runProcess } from "../targets/protocol.js";
import { findWasmtime } from "../targets/wasmtime/runner.js";
import CNN, { inputs as cnnInputs } from "../examples/cnn.js";
import KWS, { inputs as kwsInputs } from "../examples/kws-dscnn.js";
import MLP, { inputs as mlpInputs } from "../examples/mlp.js";

const WARMUP = 5;
const RUNS = 25;
/** Node also warms up for at least this long (see nodeNanos) */
const NODE_WARMUP_MS = 500;

/**
 * A WASI command that times an unmodified blob's run() inside wasmtime, like the adapter
 * (targets/wasmtime/adapter.ts) but with a clock:
 *   wasmtime run --preload model=<blob.wasm> timer.wasm  < request  > response
 * request: u32 runs, then the adapter's writes (count, count x (offset, length, <bytes>)), all little-endian;
 * response: u32 status of the last run, then each run's u64 nanoseconds (monotonic clock). The writes are
 * replayed before every run, outside the timed call.
 */
const TIMER_WAT = `(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "model" "memory" (memory $model 0))
  (import "model" "run" (func $run (result i32)))
  ;; [0, 8) iovec, [8, 12) byte count, [16, 24) clock, [32, 36) status, [64, end) the request, then the timings
  (memory $io 1)
  (export "memory" (memory $io))

  (func $now (result i64)
    (if (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 16)) (then (call $proc_exit (i32.const 74))))
    (i64.load $io (i32.const 16)))

  ;; the whole of stdin into $io from offset 64, growing $io as it fills; returns where it ends
  (func $read_all (result i32)
    (local $end i32)
    (local.set $end (i32.const 64))
    (loop $more
      (if (i32.lt_u (i32.sub (i32.mul (memory.size $io) (i32.const 65536)) (local.get $end)) (i32.const 65536))
        (then (if (i32.eq (memory.grow $io (i32.const 16)) (i32.const -1)) (then (call $proc_exit (i32.const 75))))))
      (i32.store $io (i32.const 0) (local.get $end))
      (i32.store $io (i32.const 4) (i32.const 65536))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)) (then (call $proc_exit (i32.const 71))))
      (local.set $end (i32.add (local.get $end) (i32.load $io (i32.const 8))))
      (br_if $more (i32.load $io (i32.const 8))))
    (local.get $end))

  (func $write_all (param $ptr i32) (param $len i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store $io (i32.const 0) (local.get $ptr))
        (i32.store $io (i32.const 4) (local.get $len))
        (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)) (then (call $proc_exit (i32.const 72))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load $io (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load $io (i32.const 8))))
        (br $more))))

  (func (export "_start")
    (local $times i32) (local $runs i32) (local $run i32) (local $at i32) (local $left i32) (local $start i64)
    ;; timings go after the request, 8-byte aligned: $read_all leaves 64 KiB free, room for 8191 of them
    (local.set $times (i32.and (i32.add (call $read_all) (i32.const 7)) (i32.const -8)))
    (local.set $runs (i32.load $io (i32.const 64)))
    (block $done
      (loop $each_run
        (br_if $done (i32.ge_u (local.get $run) (local.get $runs)))
        (local.set $left (i32.load $io (i32.const 68)))
        (local.set $at (i32.const 72))
        (block $written
          (loop $each_write
            (br_if $written (i32.eqz (local.get $left)))
            (memory.copy $model $io (i32.load $io (local.get $at)) (i32.add (local.get $at) (i32.const 8)) (i32.load $io offset=4 (local.get $at)))
            (local.set $at (i32.add (local.get $at) (i32.add (i32.const 8) (i32.load $io offset=4 (local.get $at)))))
            (local.set $left (i32.sub (local.get $left) (i32.const 1)))
            (br $each_write)))
        (local.set $start (call $now))
        (i32.store $io (i32.const 32) (call $run))
        (i64.store $io (i32.add (local.get $times) (i32.shl (local.get $run) (i32.const 3))) (i64.sub (call $now) (local.get $start)))
        (local.set $run (i32.add (local.get $run) (i32.const 1)))
        (br_if $done (i32.load $io (i32.const 32)))
        (br $each_run)))
    (call $write_all (i32.const 32) (i32.const 4))
    (call $write_all (local.get $times) (i32.shl (local.get $run) (i32.const 3)))))`;

function assembleTimer(): Uint8Array {
  const module = binaryen.parseText(TIMER_WAT);
  try {
    module.setFeatures(binaryen.Features.MultiMemory | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
    if (!module.validate()) throw new Error("the wasmtime timer (bench/engines.ts) does not validate");
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

type Inputs = Record<string, TypedArray>;

function median(nanos: number[]): number {
  const sorted = [...nanos].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function nodeNanos(wasm: Uint8Array, inputs: Inputs): Promise<number[]> {
  const model = await loadBlob(wasm);
  const once = (): number => {
    for (const [name, values] of Object.entries(inputs)) (model.inputs[name] as TypedArray).set(values as never);
    const start = process.hrtime.bigint();
    model.run();
    return Number(process.hrtime.bigint() - start);
  };
  // V8 starts wasm in its baseline compiler and optimises hot functions in the background: warm up for a while
  const warmUntil = performance.now() + NODE_WARMUP_MS;
  for (let run = 0; run < WARMUP || performance.now() < warmUntil; run++) once();
  return Array.from({ length: RUNS }, once);
}

async function wasmtimeNanos(wasmtime: string, timer: string, blob: string, manifest: Manifest, inputs: Inputs): Promise<number[]> {
  const writes = checkedInputs(manifest, inputs, blob).map((array, i) => ({ offset: manifest.inputs[i].offset, bytes: bytesOf(array) }));
  const request = Buffer.alloc(8 + writes.reduce((n, w) => n + 8 + w.bytes.length, 0));
  request.writeUInt32LE(WARMUP + RUNS, 0);
  request.writeUInt32LE(writes.length, 4);
  let at = 8;
  for (const w of writes) {
    request.writeUInt32LE(w.offset, at);
    request.writeUInt32LE(w.bytes.length, at + 4);
    request.set(w.bytes, at + 8);
    at += 8 + w.bytes.length;
  }
  const result = await runProcess(wasmtime, ["run", "--preload", `model=${blob}`, timer], request);
  const runs = (result.stdout.length - 4) / 8;
  if (result.code !== 0 || runs !== WARMUP + RUNS || result.stdout.readUInt32LE(0) !== 0) {
    throw new Error(`wasmtime timing of ${blob} failed (exit ${result.code}, ${result.stdout.length} bytes): ${result.stderr}`);
  }
  return Array.from({ length: RUNS }, (_, i) => Number(result.stdout.readBigUInt64LE(4 + 8 * (WARMUP + i))));
}

async function nativeNanos(engine: NativeEngine, blob: string, manifest: Manifest, inputs: Inputs, runs: number): Promise<number[]> {
  const warmup = Math.min(WARMUP, runs);
  return (await runInNativeRunner(engine, blob, manifest, inputs, { repeat: warmup + runs })).runNanos.slice(warmup);
}

interface Example {
  name: string;
  /** the model and its input shapes, as compile() takes them */
  model(): [nn.Module | Graph, Record<string, number[]>];
  inputs(): Inputs;
  /** runs per timing in the interpreters (WAMR, wasm3), where the large models take seconds each */
  interpreterRuns: number;
}
const moduleExample = (name: string, make: () => nn.Module, shapes: Record<string, number[]>): Example => ({
  name,
  model: () => {
    manualSeed(0);
    return [make(), shapes];
  },
  inputs: () => Object.fromEntries(Object.entries(shapes).map(([input, shape]) => [input, Tensor.randn(shape).data as Float32Array])),
  interpreterRuns: RUNS,
});
const tfliteExample = (name: string, file: string, opts: TfliteImportOptions, interpreterRuns: number): Example => {
  const imported = () => importTfliteModel(new Uint8Array(readFileSync(join(mlperf!, file))), { source: file, ...opts });
  return { name, model: () => [imported().graph, {}], inputs: () => randomTfliteInputs(imported(), 1).blob, interpreterRuns };
};
/** The MLPerf Tiny models: short name, float32 and int8 files, interpreter runs */
const MLPERF = [
  { key: "kws", name: "kws", float32: "kws_ref_model_float32.tflite", int8: "kws_ref_model.tflite", interpreterRuns: RUNS },
  { key: "ad", name: "ad", float32: "ad01_fp32.tflite", int8: "ad01_int8.tflite", interpreterRuns: RUNS },
  { key: "ic", name: "resnet-8", float32: "pretrainedResnet.tflite", int8: "pretrainedResnet_quant.tflite", interpreterRuns: 3 },
  { key: "vww", name: "vww", float32: "vww_96_float.tflite", int8: "vww_96_int8.tflite", interpreterRuns: 3 },
];
const args = process.argv.slice(2);
const modelsArg = args.includes("--models") ? args[args.indexOf("--models") + 1] : MLPERF.map((m) => m.key).join(",");
const chosen = MLPERF.filter((m) => modelsArg.split(",").includes(m.key));
const mlperf = findMlperfDir();
const examples: Example[] = [
  moduleExample("mlp", () => new MLP(), mlpInputs),
  moduleExample("cnn", () => new CNN(), cnnInputs),
  moduleExample("kws-dscnn", () => new KWS(), kwsInputs),
  ...(mlperf
    ? chosen.flatMap((m) => [
        // float32 convolutions in plain float32, not as TFLite's hybrid int8-weight ops
        tfliteExample(`mlperf ${m.name} float32`, m.float32, { hybrid: "float" }, m.interpreterRuns),
        tfliteExample(`mlperf ${m.name} int8`, m.int8, {}, m.interpreterRuns),
        tfliteExample(`mlperf ${m.name} int8 emulated`, m.int8, { quantized: "dequantize" }, m.interpreterRuns),
      ])
    : []),
];
const columns = ["node simd", "node scalar", "wasmtime simd", "wasmtime scalar", "wamr scalar", "wasm3 scalar"];

const wasmtime = findWasmtime();
const runner = findNativeRunner();
const dir = mkdtempSync(join(tmpdir(), "teenygrad-bench-engines-"));
const timer = join(dir, "timer.wasm");
writeFileSync(timer, assembleTimer());

/** The median of an engine's timings, or NaN (printed as "failed", the reason listed below the table) when the engine cannot run the blob. */
const failures: string[] = [];
async function timed(column: string, model: string, run: () => Promise<number[]>): Promise<number> {
  try {
    return median(await run());
  } catch (e) {
    failures.push(`- ${model}, ${column}: ${(e as Error).message.split("\n")[0]}`);
    return NaN;
  }
}

const rows: string[][] = [];
const times = new Map<string, Record<string, number | null>>();
try {
  for (const example of examples) {
    const name = example.name;
    const inputs = example.inputs();
    const cells: Record<string, number | null> = {};
    for (const target of ["wasm-simd", "wasm-scalar"]) {
      const build = target === "wasm-simd" ? "simd" : "scalar";
      const [model, shapes] = example.model();
      const { wasm, manifest } = await compile(model, shapes, { target, name });
      const blob = join(dir, `${name.replace(/ /g, "-")}-${build}.wasm`);
      writeFileSync(blob, wasm);
      cells[`node ${build}`] = median(await nodeNanos(wasm, inputs));
      cells[`wasmtime ${build}`] = wasmtime ? await timed(`wasmtime ${build}`, name, () => wasmtimeNanos(wasmtime, timer, blob, manifest, inputs)) : null;
      if (build === "scalar") {
        for (const engine of ["wamr", "wasm3"] as const) {
          cells[`${engine} scalar`] = runner ? await timed(`${engine} scalar`, name, () => nativeNanos(engine, blob, manifest, inputs, example.interpreterRuns)) : null;
        }
      }
    }
    times.set(name, cells);
    rows.push([name, ...columns.map((c) => (cells[c] === null ? "-" : Number.isNaN(cells[c]) ? "failed" : (cells[c]! / 1e6).toFixed(3)))]);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function printTable(header: string[], body: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(header));
  for (const row of body) console.log(line(row));
}
console.log(`median of ${RUNS} runs after ${WARMUP} warm-up runs (Node: at least ${NODE_WARMUP_MS} ms; the interpreters: fewer for ResNet-8 and VWW), run() alone, timed inside each engine's process`);
printTable(["model (ms per run)", ...columns], rows);

// how much faster the int8 kernels are than float32 and than int8 emulated in float32, engine by engine
const ratio = (slow: number | null | undefined, fast: number | null | undefined): string => (slow && fast ? `${(slow / fast).toFixed(2)}x` : "-");
for (const f of failures) console.log(f);
const ratios = chosen.filter(() => mlperf).flatMap((m) => {
  const [f32, int8, emulated] = ["float32", "int8", "int8 emulated"].map((kind) => times.get(`mlperf ${m.name} ${kind}`));
  return [
    [`${m.name}: int8 vs float32`, ...columns.map((c) => ratio(f32?.[c], int8?.[c]))],
    [`${m.name}: int8 vs int8 emulated`, ...columns.map((c) => ratio(emulated?.[c], int8?.[c]))],
  ];
});
if (ratios.length) {
  console.log("\nspeed-up of the int8 kernels (time of the other blob / time of the int8 blob)");
  printTable(["model", ...columns], ratios);
}
if (!wasmtime) console.log("- wasmtime not installed (npm run engines)");
if (!runner) console.log("- teenygrad-native-run not installed (npm run engines)");
if (!mlperf) console.log("- MLPerf Tiny models not found: no KWS float32 / int8 rows");
