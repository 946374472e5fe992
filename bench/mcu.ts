// The MLPerf Tiny int8 models (computed in float32 until integer kernels land) in firmware on an emulated
// Cortex-M4 (QEMU mps2-an386): instructions per inference counted under -icount, their equivalent at 120 MHz
// if every instruction took one cycle (instructions, not measured cycles: a real M4 stalls on flash wait states,
// loads and branches), beside MLPerf Tiny v1.x's Cortex-M4 results (120 MHz, int8: TFLM's reference kernels and
// the best closed entry, Plumerai); and each image's flash and RAM split by owner. Every image is built with the
// board's whole memory (4 MB + 4 MB) so that every model runs; "fits" says whether it would fit the default
// budget (256 KB RAM, 1 MB flash).
// Run: npm run bench:mcu [-- --models kws,ad]
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../compiler/index.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { randomTfliteInputs } from "../compiler/import/tflite/litert.js";
import { findMlperfDir, MLPERF_MODELS, MLPERF_WHERE, type MlperfModel } from "../compiler/import/tflite/mlperf.js";
import { findBoard } from "../targets/mcu/boards.js";
import { buildFirmware, type ImageSizes, type SizeSplit } from "../targets/mcu/build.js";
import { missingMcuTools, runInQemu } from "../targets/mcu/runner.js";

/** MLPerf Tiny v1.x, Cortex-M4 at 120 MHz, int8, milliseconds per inference */
const MLPERF_MS: Record<string, { tflm: number; plumerai: number }> = {
  kws: { tflm: 181.9, plumerai: 47.8 },
  vww: { tflm: 600.6, plumerai: 98.8 },
  ic: { tflm: 704.2, plumerai: 167.8 },
  ad: { tflm: 10.05, plumerai: 4.05 },
};
const CLOCK_HZ = 120e6;
const SEED = 1;

const missing = missingMcuTools();
const dir = findMlperfDir();
if (missing || !dir) {
  console.error(`bench:mcu: ${missing ?? `MLPerf Tiny models not found (${MLPERF_WHERE})`}`);
  process.exit(1);
}
const modelsArg = process.argv.indexOf("--models");
const tasks = modelsArg >= 0 ? process.argv[modelsArg + 1].split(",") : ["kws", "ad", "ic", "vww"];
const models = tasks.map((task) => MLPERF_MODELS.find((m) => m.task === task && m.quantized) ?? (() => { throw new Error(`no int8 MLPerf model for '${task}'`); })());
const board = findBoard("mps2-an386");
const work = mkdtempSync(join(tmpdir(), "teenygrad-bench-mcu-"));

interface Row {
  model: MlperfModel;
  instructions: number;
  sizes: ImageSizes;
  poolHighmark: number;
}

const kib = (n: number) => (n / 1024).toFixed(1);
const split = (s: SizeSplit) => `${kib(s.total).padStart(7)} = ${kib(s.wamr)} + ${kib(s.libc)} + ${kib(s.embedding)} + ${kib(s.model)}`;

const rows: Row[] = [];
try {
  for (const model of models) {
    const bytes = new Uint8Array(readFileSync(join(dir, model.file)));
    const imp = importTfliteModel(bytes, { source: model.file });
    const { wasm } = await compile(imp.graph, {}, { target: "wasm-scalar", name: model.file });
    const elf = join(work, `${model.task}.elf`);
    const image = await buildFirmware(wasm, elf, { board, ram: board.ram.maxBytes, flash: board.flash.maxBytes, source: model.file });
    const run = await runInQemu(elf, randomTfliteInputs(imp, SEED).blob);
    rows.push({ model, instructions: run.instructions, sizes: image.sizes, poolHighmark: run.pool.highmark });
    console.error(`${model.file}: ${run.instructions} instructions`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(`\nWAMR fast interpreter on ${board.name} (${board.cpu}), QEMU -icount: instructions per inference, and ms at ${CLOCK_HZ / 1e6} MHz if one instruction took one cycle`);
console.log(`${"model".padEnd(28)} ${"instructions".padStart(14)} ${"ms@120MHz".padStart(10)}  ${"MLPerf TFLM".padStart(11)} ${"Plumerai".padStart(9)}  ${"÷ TFLM".padStart(7)}`);
for (const r of rows) {
  const ms = (r.instructions / CLOCK_HZ) * 1e3;
  const ref = MLPERF_MS[r.model.task];
  console.log(`${r.model.file.padEnd(28)} ${r.instructions.toLocaleString("en-US").padStart(14)} ${ms.toFixed(1).padStart(10)}  ${ref.tflm.toFixed(2).padStart(11)} ${ref.plumerai.toFixed(2).padStart(9)}  ${(ms / ref.tflm).toFixed(1).padStart(6)}×`);
}
console.log(`\nimage sizes in KiB, total = WAMR + C library + embedding + model (flash: the blob; RAM: its linear memory); fits = within ${kib(board.ram.bytes)} KiB RAM and ${kib(board.flash.bytes)} KiB flash`);
console.log(`${"model".padEnd(28)} ${"flash".padEnd(36)} ${"RAM".padEnd(36)} ${"pool used".padStart(10)} fits`);
for (const r of rows) {
  const fits = r.sizes.ram.total <= board.ram.bytes && r.sizes.flash.total <= board.flash.bytes;
  console.log(`${r.model.file.padEnd(28)} ${split(r.sizes.flash).padEnd(36)} ${split(r.sizes.ram).padEnd(36)} ${`${kib(r.poolHighmark)}/${kib(r.sizes.poolBytes)}`.padStart(10)} ${fits ? "yes" : "no"}`);
}
