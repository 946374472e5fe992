/**
 * MLPerf Tiny report: each reference model imported from .tflite, compiled (wasm-simd), with its arena, weights and
 * code bytes, and, when the TFLite interpreter is installed (npm run litert), its difference from the interpreter on
 * seeded random inputs. usage: npm run mlperf [-- --seed N]
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compile, loadBlob } from "../compiler/index.js";
import { importTfliteModel, quantize } from "../compiler/import/tflite/index.js";
import { findLitertPython, randomTfliteInputs, runLitert } from "../compiler/import/tflite/litert.js";
import { findMlperfDir, MLPERF_MODELS, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";

const seedArg = process.argv.indexOf("--seed");
const seed = seedArg > 0 ? Number(process.argv[seedArg + 1]) : 1;
const dir = findMlperfDir();
if (!dir) {
  console.error(`MLPerf Tiny models not found (${MLPERF_WHERE})`);
  process.exit(1);
}
const litert = findLitertPython();
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const rows: string[][] = [];
for (const m of MLPERF_MODELS) {
  const path = join(dir, m.file);
  const imp = importTfliteModel(new Uint8Array(readFileSync(path)), { source: m.file });
  const { wasm, report } = await compile(imp.graph, {}, { name: m.file });
  let vsInterpreter = "interpreter not installed (npm run litert)";
  if (litert) {
    const { blob, reference: ref } = randomTfliteInputs(imp, seed);
    const ours = (await loadBlob(wasm)).run(blob);
    const theirs = runLitert(path, ref);
    const io = imp.outputs[0], got = ours[io.name] as Float32Array | Int8Array, want = theirs.values[0].data;
    if (io.quantization) {
      const q = io.dtype === "int8" ? Array.from(got) : quantize(io, got);
      vsInterpreter = `max ${Math.max(...q.map((v, i) => Math.abs(v - Number(want[i]))))} int8 steps`;
    } else {
      let d = 0, s = 0;
      got.forEach((v, i) => { d = Math.max(d, Math.abs(v - Number(want[i]))); s = Math.max(s, Math.abs(Number(want[i]))); });
      vsInterpreter = `${(d / s).toExponential(1)} relative`;
    }
  }
  rows.push([m.file, m.quantized ? "int8" : "float32", kib(report.arena.bytes), kib(report.arena.lowerBound), kib(report.weightsBytes), kib(report.codeBytes), kib(report.wasmBytes), vsInterpreter]);
}
const header = ["model", "type", "arena", "lower bound", "weights", "code", "wasm", `vs TFLite interpreter (seed ${seed})`];
console.log(`| ${header.join(" | ")} |\n| ${header.map(() => "---").join(" | ")} |`);
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
