/**
 * Compile time per model on both code generation paths: the entry linked with the cached kernel library
 * (the default) and asc over the entry plus the kernel sources (`codegen: "asc"`), with the blob sizes and
 * whether both blobs give bit-identical outputs on one random input. The kernel library is built (or read
 * from the cache) before timing.
 *   npm run bench:compile [-- --target wasm-scalar]
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compile, getTarget, loadBlob, type Manifest } from "../compiler/index.js";
import type { Graph } from "../compiler/ir/graph.js";
import type { Module } from "../compiler/tensor/nn.js";
import { kernelLibrary } from "../compiler/codegen/library.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { findMlperfDir, MLPERF_MODELS, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";
import { randomInputs } from "../targets/wamr/device-ram.js";
import MLP, { inputs as mlpInputs } from "../examples/mlp.js";
import SmallCNN, { inputs as cnnInputs } from "../examples/cnn.js";

const targetArg = process.argv.indexOf("--target");
const target = targetArg > 0 ? process.argv[targetArg + 1] : "wasm-simd";
const models: { name: string; model: Module | Graph; inputs: Record<string, number[]> }[] = [
  { name: "mlp (examples/mlp.ts)", model: new MLP(), inputs: mlpInputs },
  { name: "lenet (examples/cnn.ts)", model: new SmallCNN(), inputs: cnnInputs },
];
const dir = findMlperfDir();
if (dir) for (const m of MLPERF_MODELS) models.push({ name: m.file, model: importTfliteModel(new Uint8Array(readFileSync(join(dir, m.file))), { source: m.file }).graph, inputs: {} });
else console.error(`MLPerf Tiny models not found (${MLPERF_WHERE}): timing the examples only`);

const library = await kernelLibrary(getTarget(target));
console.log(`kernel library for ${target}: ${library.binary.byteLength} bytes${library.ascMillis ? `, built in ${library.ascMillis.toFixed(0)} ms` : ", from the cache"}\n`);
const outputsOf = async (wasm: Uint8Array, manifest: Manifest) => {
  const run = (await loadBlob(wasm)).run(randomInputs(manifest, 1).values);
  return manifest.outputs.map((s) => new Uint8Array((run[s.name] as ArrayBufferView).buffer.slice(0)));
};
const sameBytes = (a: Uint8Array[], b: Uint8Array[]) => a.length === b.length && a.every((x, i) => x.length === b[i].length && x.every((v, j) => v === b[i][j]));

console.log("| model | nodes | asc path ms | kernel-library path ms | blob bytes (asc) | blob bytes (kernel library) | path taken | same outputs |");
console.log("|---|---:|---:|---:|---:|---:|---|---|");
for (const { name, model, inputs } of models) {
  const asc = await compile(model, inputs, { target, name, codegen: "asc" });
  const linked = await compile(model, inputs, { target, name });
  const same = sameBytes(await outputsOf(asc.wasm, asc.manifest), await outputsOf(linked.wasm, linked.manifest));
  const path = linked.report.codegen.path + (linked.report.codegen.reason ? ` (${linked.report.codegen.reason})` : "");
  console.log(`| ${name} | ${linked.report.nodes} | ${asc.report.millis.total.toFixed(0)} | ${linked.report.millis.total.toFixed(0)} | ${asc.wasm.byteLength} | ${linked.wasm.byteLength} | ${path} | ${same ? "yes" : "NO"} |`);
}
