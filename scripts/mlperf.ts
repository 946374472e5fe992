/**
 * MLPerf Tiny report: each reference model imported from .tflite, compiled (wasm-simd), with its arena, weights and
 * code bytes, and, when the TFLite interpreter is installed (npm run litert), its difference from the interpreter on
 * seeded random inputs. Then the device table: each int8 model compiled for wamr-flash and run in the C embedding
 * (targets/wamr/main.c), its RAM measured (linear memory + WAMR's pool high-water mark, with the smallest stack
 * that works) beside the compiler's figure and TensorFlow Lite Micro's smallest working arena (tflite-micro in the
 * `npm run litert` venv, by bisection). usage: npm run mlperf [-- --seed N] [--device-only]
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compile, loadBlob } from "../compiler/index.js";
import { importTfliteModel, quantize } from "../compiler/import/tflite/index.js";
import { findLitertPython, randomTfliteInputs, runLitert } from "../compiler/import/tflite/litert.js";
import { findMlperfDir, MLPERF_MODELS, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";
import { findWamrSources } from "../targets/wamr/build.js";
import { buildMeasuringEmbedding, randomInputs, smallestStack } from "../targets/wamr/device-ram.js";

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
const deviceOnly = process.argv.includes("--device-only");
for (const m of deviceOnly ? [] : MLPERF_MODELS) {
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
const table = (header: string[], body: string[][]) => {
  console.log(`| ${header.join(" | ")} |\n| ${header.map(() => "---").join(" | ")} |`);
  for (const r of body) console.log(`| ${r.join(" | ")} |`);
};
if (!deviceOnly) table(["model", "type", "arena", "lower bound", "weights", "code", "wasm", `vs TFLite interpreter (seed ${seed})`], rows);

// --- device RAM: wamr-flash in the C embedding, beside TFLM ---------------------------------------------------------
const wamr = findWamrSources();
if (!wamr) {
  console.log("\ndevice RAM: WAMR's C sources are not in the cargo registry (npm run engines)");
} else {
  const quantized = MLPERF_MODELS.filter((m) => m.quantized);
  const tflm = new Map<string, number>();
  if (litert) {
    const script = fileURLToPath(new URL("tflm_arena.py", import.meta.url));
    const lines = execFileSync(litert, [script, ...quantized.map((m) => join(dir, m.file))], { encoding: "utf8" }).trim().split("\n");
    for (const line of lines) {
      const { model, arena } = JSON.parse(line) as { model: string; arena: number };
      tflm.set(model, arena);
    }
  }
  const device: string[][] = [];
  for (const m of quantized) {
    const imp = importTfliteModel(new Uint8Array(readFileSync(join(dir, m.file))), { source: m.file });
    const { wasm, weights, manifest, report } = await compile(imp.graph, {}, { target: "wamr-flash", name: m.file });
    const embedding = await buildMeasuringEmbedding(wamr, wasm, weights);
    try {
      const { stdin } = randomInputs(manifest, seed);
      const stack = smallestStack(embedding, stdin);
      const { ram } = embedding.run(stdin, stack);
      if (!ram) throw new Error(`${m.file}: the C embedding reported no RAM`);
      const fp = report.footprint;
      const arena = tflm.get(join(dir, m.file));
      device.push([
        m.file, kib(ram.total), kib(ram.linearMemory), kib(ram.pool - ram.stack), `${ram.stack} B`, kib(fp.ram.bytes),
        kib(fp.flash.bytes), kib(report.arena.bytes), arena === undefined ? "tflite-micro not installed (npm run litert)" : kib(arena),
      ]);
    } finally {
      embedding.dispose();
    }
  }
  console.log(`\nDevice RAM on WAMR ${wamr.version}, weights in flash (wamr-flash; measured with the smallest stack that runs; seed ${seed}):\n`);
  table(["model", "measured RAM", "linear memory", "WAMR pool w/o stack", "stack", "compiler's figure", "flash", "arena", "TFLM arena"], device);
}
