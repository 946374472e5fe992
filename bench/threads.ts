// One model on 1, 2 (and 3) threads of the wasm-simd-threads build, beside the single-threaded wasm-simd blob on
// the caller's thread, and a pool of workers running independent inferences of the wasm-simd blob for throughput.
// Runs interleave every configuration one by one; medians of single runs (the pool: of rounds' throughput). `-- --rounds N --runs N --models ic,vww`.
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { join } from "node:path";
import { compile, Generator, loadBlob, loadBlobPool, loadThreadedBlob, manualSeed, Tensor } from "../compiler/index.js";
import type { Graph } from "../compiler/ir/graph.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { findMlperfDir, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";
import CNN, { inputs as cnnInputs } from "../examples/cnn.js";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const ROUNDS = Number(arg("rounds", "5"));
const RUNS = Number(arg("runs", "20"));
const wanted = arg("models", "ic,vww,kws").split(",");
const dir = findMlperfDir();

type Source = { name: string; graph: () => Graph | { model: CNN; inputs: typeof cnnInputs } };
const models: Source[] = [];
const tflite = (name: string, file: string): Source => ({ name, graph: () => importTfliteModel(new Uint8Array(readFileSync(join(dir!, file))), { source: file }).graph });
if (dir) {
  if (wanted.includes("ic")) models.push(tflite("ResNet-8 (ic)", "pretrainedResnet.tflite"));
  if (wanted.includes("vww")) models.push(tflite("MobileNetV1 VWW", "vww_96_float.tflite"));
  if (wanted.includes("kws")) models.push(tflite("KWS DS-CNN", "kws_ref_model_float32.tflite"));
} else console.log(`MLPerf Tiny models not found (${MLPERF_WHERE}): the small CNN example only`);
if (!dir || wanted.includes("cnn")) models.push({ name: "small CNN", graph: () => ({ model: new CNN(), inputs: cnnInputs }) });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => ms.toFixed(2);

/** How many cores two busy workers get together right now (2 on an idle 2-core machine): the ceiling of every speed-up below. */
async function parallelCapacity(): Promise<number> {
  const spin = `const { parentPort } = require("node:worker_threads"); let x = 0; for (let i = 0; i < 1e8; i++) x = (x + i * 7) % 1000003; parentPort.postMessage(x);`;
  const busy = (n: number) => Promise.all(Array.from({ length: n }, () => new Promise<void>((done) => {
    const w = new Worker(spin, { eval: true });
    w.on("message", () => void w.terminate().then(() => done()));
  })));
  let t = performance.now();
  await busy(1);
  const one = performance.now() - t;
  t = performance.now();
  await busy(2);
  return (2 * one) / (performance.now() - t);
}

console.log(`parallel capacity now: ${(await parallelCapacity()).toFixed(2)} cores (two busy workers against one)`);
console.log(`wasm-simd-threads vs wasm-simd, float32, batch 1; ${ROUNDS} rounds of ${RUNS} interleaved runs, medians in ms (Node: the caller's thread is worker 0)`);
console.log("On a shared machine the speed-ups are bounded by that capacity and vary between runs.\n");
console.log("| model | wasm-simd, caller's thread | threads: 1 | 2 | 3 | 1 → 2 threads | pool 1 worker: inf/s | pool 2 workers: inf/s | pool gain |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const m of models) {
  manualSeed(7);
  const build = async (target: string) => {
    const g = m.graph();
    return "model" in g ? compile(g.model, g.inputs, { target }) : compile(g, {}, { target });
  };
  const single = await build("wasm-simd");
  const threaded = await build("wasm-simd-threads");
  const inputs = Object.fromEntries(single.manifest.inputs.map((s) => [s.name, Tensor.randn([s.bytes / 4], { generator: new Generator(11) }).data as Float32Array]));
  const local = await loadBlob(single.wasm);
  const byThreads = [1, 2, 3].map(() => [] as number[]);
  const threadedModels = await Promise.all([1, 2, 3].map((threads) => loadThreadedBlob(threaded.wasm, { threads })));
  const pools = await Promise.all([1, 2].map((workers) => loadBlobPool(single.wasm, { workers })));
  const localTimes: number[] = [], poolRates = [[], []] as number[][];
  for (let round = 0; round < ROUNDS; round++) {
    for (let r = 0; r < 3; r++) local.run(inputs);
    for (const tm of threadedModels) for (let r = 0; r < 3; r++) await tm.run(inputs);
    // per-run times, every configuration taking turns run by run, so a burst of load hits all of them alike
    for (let r = 0; r < RUNS; r++) {
      let t = performance.now();
      local.run(inputs);
      localTimes.push(performance.now() - t);
      for (const [k, tm] of threadedModels.entries()) {
        t = performance.now();
        await tm.run(inputs);
        byThreads[k].push(performance.now() - t);
      }
    }
    for (const [k, pool] of pools.entries()) {
      await Promise.all(Array.from({ length: pool.size * 2 }, () => pool.run(inputs)));
      const t = performance.now();
      await Promise.all(Array.from({ length: RUNS * 2 }, () => pool.run(inputs)));
      poolRates[k].push((RUNS * 2) / ((performance.now() - t) / 1000));
    }
  }
  const [t1, t2, t3] = byThreads.map(median);
  const [p1, p2] = poolRates.map(median);
  console.log(`| ${m.name} | ${fmt(median(localTimes))} | ${fmt(t1)} | ${fmt(t2)} | ${fmt(t3)} | ${(t1 / t2).toFixed(2)}x | ${p1.toFixed(0)} | ${p2.toFixed(0)} | ${(p2 / p1).toFixed(2)}x |`);
  await Promise.all([...threadedModels.map((tm) => tm.terminate()), ...pools.map((p) => p.terminate())]);
}
console.log(`\nparallel capacity after: ${(await parallelCapacity()).toFixed(2)} cores`);
