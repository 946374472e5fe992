/**
 * Compile time per model on both code generation paths: the entry linked with the cached kernel library
 * (the default) and asc over the entry plus the kernel sources (`codegen: "asc"`), with the blob sizes and
 * whether both blobs give bit-identical outputs on one random input. The kernel-library path is timed in a
 * fresh process (one compile, as the CLI runs it: loading the compiler's lazy parts included; its peak
 * resident memory) and warm (median of 5 compiles in this process). The kernel library is built (or read
 * from the cache) before timing.
 *   npm run bench:compile [-- --target wasm-scalar] [-- --no-asc]
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compile, getTarget, loadBlob, type Manifest } from "../compiler/index.js";
import type { Graph } from "../compiler/ir/graph.js";
import type { Module } from "../compiler/tensor/nn.js";
import { kernelLibrary } from "../compiler/codegen/library.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { findMlperfDir, MLPERF_MODELS, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";
import { randomInputs } from "../targets/wamr/device-ram.js";
import MLP, { inputs as mlpInputs } from "../examples/mlp.js";
import SmallCNN, { inputs as cnnInputs } from "../examples/cnn.js";

const option = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const target = option("--target") ?? "wasm-simd";
/** one module instance (its random weights) for every compile; compiling does not change it */
const once = (make: () => Module) => {
  let m: Module | undefined;
  return () => (m ??= make());
};
// a graph is rewritten by compiling it: `model()` imports it afresh each time
const models: { name: string; model: () => Module | Graph; inputs: Record<string, number[]> }[] = [
  { name: "mlp (examples/mlp.ts)", model: once(() => new MLP()), inputs: mlpInputs },
  { name: "lenet (examples/cnn.ts)", model: once(() => new SmallCNN()), inputs: cnnInputs },
];
const dir = findMlperfDir();
if (dir) for (const m of MLPERF_MODELS) models.push({ name: m.file, model: () => importTfliteModel(new Uint8Array(readFileSync(join(dir, m.file))), { source: m.file }).graph, inputs: {} });
else console.error(`MLPerf Tiny models not found (${MLPERF_WHERE}): timing the examples only`);

const child = option("--child");
if (child !== undefined) {
  // one compile in a fresh process: its time and the process's peak resident memory
  const { name, model, inputs } = models[Number(child)];
  const graph = model();
  const start = performance.now();
  await compile(graph, inputs, { target, name });
  // the peak of this process's own memory: getrusage's maxRSS can carry the parent's over fork and exec
  const hwm = existsSync("/proc/self/status") ? /VmHWM:\s*(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8")) : null;
  console.log(JSON.stringify({ ms: performance.now() - start, maxRssMiB: Number(hwm ? hwm[1] : process.resourceUsage().maxRSS) / 1024 }));
  process.exit(0);
}

const library = await kernelLibrary(getTarget(target));
console.log(`kernel library for ${target}: ${library.binary.byteLength} bytes${library.ascMillis ? `, built in ${library.ascMillis.toFixed(0)} ms` : ", from the cache"}\n`);
const outputsOf = async (wasm: Uint8Array, manifest: Manifest) => {
  const run = (await loadBlob(wasm)).run(randomInputs(manifest, 1).values);
  return manifest.outputs.map((s) => new Uint8Array((run[s.name] as ArrayBufferView).buffer.slice(0)));
};
const sameBytes = (a: Uint8Array[], b: Uint8Array[]) => a.length === b.length && a.every((x, i) => x.length === b[i].length && x.every((v, j) => v === b[i][j]));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const withAsc = !process.argv.includes("--no-asc");
const self = fileURLToPath(import.meta.url);

console.log("| model | nodes | kernel-library ms (fresh process) | peak RSS MiB (fresh process) | kernel-library ms (warm) | asc path ms | blob bytes (kernel library) | blob bytes (asc) | path taken | same outputs |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
for (const [i, { name, model, inputs }] of models.entries()) {
  const cold = JSON.parse(execFileSync(process.execPath, ["--import", "tsx", self, "--child", String(i), "--target", target], { encoding: "utf8" }).trim().split("\n").pop()!);
  const graph = model();
  const warm: number[] = [];
  let linked = await compile(graph, inputs, { target, name });
  for (let k = 0; k < 5; k++) {
    const fresh = model(); // compiling rewrites the graph
    const start = performance.now();
    linked = await compile(fresh, inputs, { target, name });
    warm.push(performance.now() - start);
  }
  const asc = withAsc ? await compile(model(), inputs, { target, name, codegen: "asc" }) : null;
  const same = asc ? (sameBytes(await outputsOf(asc.wasm, asc.manifest), await outputsOf(linked.wasm, linked.manifest)) ? "yes" : "NO") : "-";
  const path = linked.report.codegen.path + (linked.report.codegen.reason ? ` (${linked.report.codegen.reason})` : "");
  console.log(`| ${name} | ${linked.report.nodes} | ${cold.ms.toFixed(0)} | ${cold.maxRssMiB.toFixed(0)} | ${median(warm).toFixed(1)} | ${asc ? asc.report.millis.total.toFixed(0) : "-"} | ${linked.wasm.byteLength} | ${asc ? asc.wasm.byteLength : "-"} | ${path} | ${same} |`);
}
