// An MLPerf Tiny model in Node (KWS DS-CNN unless --model ad|ic|vww): the float32 and the int8 blob of this
// checkout, and any blobs named on the command line (e.g. an int8 blob saved from an earlier commit with --save),
// timed alternately in one process so that a loaded machine slows them all alike: per round, the median of RUNS
// runs of each blob; the table gives each blob's best round.
// Run: npm run bench:kws-int8 -- [--model kws|ad|ic|vww] [--save FILE] [--target wasm-scalar] [blob.wasm ...]
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { compile, loadBlob } from "../compiler/index.js";
import type { TypedArray } from "../compiler/ir/dtype.js";
import { importTfliteModel, type TfliteImportOptions } from "../compiler/import/tflite/index.js";
import { randomTfliteInputs } from "../compiler/import/tflite/litert.js";
import { findMlperfDir, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";

const ROUNDS = 30;
const RUNS = 41;
const WARMUP_MS = 1000;

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args.splice(at, 2)[1];
};
const save = option("--save");
const target = option("--target") ?? "wasm-simd";
const MODELS: Record<string, { about: string; float32: string; int8: string }> = {
  kws: { about: "KWS DS-CNN", float32: "kws_ref_model_float32.tflite", int8: "kws_ref_model.tflite" },
  ad: { about: "AD autoencoder", float32: "ad01_fp32.tflite", int8: "ad01_int8.tflite" },
  ic: { about: "IC ResNet-8", float32: "pretrainedResnet.tflite", int8: "pretrainedResnet_quant.tflite" },
  vww: { about: "VWW MobileNetV1", float32: "vww_96_float.tflite", int8: "vww_96_int8.tflite" },
};
const chosen = MODELS[option("--model") ?? "kws"];
if (!chosen) throw new Error(`--model must be one of ${Object.keys(MODELS).join(", ")}`);
const mlperf = findMlperfDir();
if (!mlperf) throw new Error(`the MLPerf Tiny models are not in ${MLPERF_WHERE}`);

async function modelBlob(file: string, opts: TfliteImportOptions): Promise<{ wasm: Uint8Array; inputs: Record<string, TypedArray> }> {
  const imported = importTfliteModel(new Uint8Array(readFileSync(join(mlperf!, file))), { source: file, ...opts });
  const { wasm } = await compile(imported.graph, {}, { target, name: chosen.int8.replace(/\.tflite$/, "") });
  return { wasm, inputs: randomTfliteInputs(imported, 1).blob };
}

const float32 = await modelBlob(chosen.float32, { hybrid: "float" });
const int8 = await modelBlob(chosen.int8, {});
if (save) writeFileSync(save, int8.wasm);
const blobs = [
  { name: "float32", ...float32 },
  { name: "int8", ...int8 },
  ...args.map((file) => ({ name: basename(file), wasm: new Uint8Array(readFileSync(file)), inputs: int8.inputs })),
];

const timers = await Promise.all(
  blobs.map(async ({ wasm, inputs }) => {
    const model = await loadBlob(wasm);
    return (): number => {
      for (const [name, values] of Object.entries(inputs)) (model.inputs[name] as TypedArray).set(values as never);
      const start = process.hrtime.bigint();
      model.run();
      return Number(process.hrtime.bigint() - start);
    };
  }),
);
// V8 optimises hot wasm functions in the background: warm every blob up first
const warmUntil = performance.now() + WARMUP_MS;
while (performance.now() < warmUntil) for (const once of timers) once();

const best = blobs.map(() => Infinity);
for (let round = 0; round < ROUNDS; round++) {
  timers.forEach((once, i) => {
    const nanos = Array.from({ length: RUNS }, once).sort((a, b) => a - b);
    best[i] = Math.min(best[i], nanos[RUNS >> 1]);
  });
}
console.log(`${chosen.about}, ${target}, ms per run (best median of ${ROUNDS} rounds of ${RUNS} runs, blobs alternated)`);
blobs.forEach(({ name }, i) => console.log(`${name.padEnd(24)} ${(best[i] / 1e6).toFixed(3)}`));
