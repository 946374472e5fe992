// The MLPerf Tiny int8 models (on the integer kernels), compiled for wamr-flash (weights
// read in place from flash as WAMR's shared heap), in firmware on an emulated Cortex-M4 (QEMU mps2-an386): instructions per inference counted under -icount, their equivalent at 120 MHz
// if every instruction took one cycle (instructions, not measured cycles: a real M4 stalls on flash wait states,
// loads and branches), beside MLPerf Tiny v1.x's Cortex-M4 results (120 MHz, int8: TFLM's reference kernels and
// the best closed entry, Plumerai); and each image's flash and RAM split by owner. Every image is built with the
// board's whole memory (4 MB + 4 MB) so that every model runs (the pool and the sizes do not depend on the budget);
// "fits" says whether it would fit the default budget (256 KB RAM, 1 MB flash) and issue 10's 64 KB / 256 KB; beside
// them, what WAMR's pool, the C stack and newlib's heap were sized to and what the run used. With LLVM's development files (llvm-15-dev or newer; npm run mcu installs them and builds wamrc), also WAMR's AOT code from
// wamrc for the Cortex-M4 in the same firmware, and on this machine the fast interpreter and x86-64 AOT code timed
// through the same C embedding (best of 3 runs), for the AOT/interpreter ratio here.
// Run: npm run bench:mcu [-- --models kws,ad,ic,vww] (default kws,ad: IC and VWW take minutes each in the interpreter)
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../compiler/index.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { randomTfliteInputs } from "../compiler/import/tflite/litert.js";
import { findMlperfDir, MLPERF_MODELS, MLPERF_WHERE, type MlperfModel } from "../compiler/import/tflite/mlperf.js";
import type { TypedArray } from "../compiler/ir/dtype.js";
import { runOnEngine } from "../targets/engines.js";
import { bytesOf } from "../targets/protocol.js";
import { compileAot, findLlvmConfig, runOnHost } from "../targets/mcu/aot.js";
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
const tasks = modelsArg >= 0 ? process.argv[modelsArg + 1].split(",") : ["kws", "ad"];
const models = tasks.map((task) => MLPERF_MODELS.find((m) => m.task === task && m.quantized) ?? (() => { throw new Error(`no int8 MLPerf model for '${task}'`); })());
const board = findBoard("mps2-an386");
const work = mkdtempSync(join(tmpdir(), "teenygrad-bench-mcu-"));

interface Image {
  instructions: number;
  sizes: ImageSizes;
  poolHighmark: number;
  stackUsed: number;
  heapUsed: number;
}

interface Row {
  model: MlperfModel;
  interpreter: Image;
  aot?: Image;
  /** best of HOST_RUNS on this machine, ms */
  host?: { interpreter: number; aot: number };
  /** every engine's outputs are Node's, bit for bit */
  identical: boolean;
}

const HOST_RUNS = 3;
const withAot = findLlvmConfig() !== null;
const same = (a: Record<string, TypedArray>, b: Record<string, TypedArray>) => Object.keys(b).every((k) => Buffer.from(bytesOf(a[k])).equals(Buffer.from(bytesOf(b[k]))));

const kib = (n: number) => (n / 1024).toFixed(1);
const split = (s: SizeSplit) => `${kib(s.total).padStart(7)} = ${kib(s.wamr)} + ${kib(s.libc)} + ${kib(s.embedding)} + ${kib(s.model)}`;

const rows: Row[] = [];
try {
  for (const model of models) {
    const bytes = new Uint8Array(readFileSync(join(dir, model.file)));
    const imp = importTfliteModel(bytes, { source: model.file });
    const { wasm, weights: flashWeights } = await compile(imp.graph, {}, { target: "wamr-flash", name: model.file });
    const weights = flashWeights ?? undefined;
    const { wasm: scalar } = await compile(imp.graph, {}, { target: "wasm-scalar", name: model.file });
    const inputs = randomTfliteInputs(imp, SEED).blob;
    // Node cannot attach a shared heap: its reference is the self-contained build
    const node = await runOnEngine("node", scalar, inputs);
    let identical = true;
    const inQemu = async (engine: "interpreter" | "aot"): Promise<Image> => {
      const elf = join(work, `${model.task}-${engine}.elf`);
      const aotModule = engine === "aot" ? await compileAot(wasm, board.aot, model.file) : undefined;
      const image = await buildFirmware(wasm, elf, { board, engine, aotModule, weights, ram: board.ram.maxBytes, flash: board.flash.maxBytes, source: model.file });
      const run = await runInQemu(elf, inputs);
      identical &&= same(run.outputs, node);
      console.error(`${model.file}: ${engine}: ${run.instructions} instructions`);
      return { instructions: run.instructions, sizes: image.sizes, poolHighmark: run.pool.highmark, stackUsed: run.stackUsed, heapUsed: run.heapUsed };
    };
    const onHost = async (engine: "interpreter" | "aot"): Promise<number> => {
      let best = Infinity;
      for (let i = 0; i < HOST_RUNS; i++) {
        const run = await runOnHost(wasm, inputs, engine, model.file, weights);
        identical &&= same(run.outputs, node);
        best = Math.min(best, run.nanos / 1e6);
      }
      return best;
    };
    const interpreter = await inQemu("interpreter");
    const aot = withAot ? await inQemu("aot") : undefined;
    const host = withAot ? { interpreter: await onHost("interpreter"), aot: await onHost("aot") } : undefined;
    rows.push({ model, interpreter, aot, host, identical });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const ms = (instructions: number) => ((instructions / CLOCK_HZ) * 1e3).toFixed(1);
console.log(`\nWAMR on ${board.name} (${board.cpu}), QEMU -icount: instructions per inference, and ms at ${CLOCK_HZ / 1e6} MHz if one instruction took one cycle (not measured cycles)`);
console.log(`${"model".padEnd(28)} ${"interpreter".padStart(14)} ${"ms@120MHz".padStart(10)} ${"AOT".padStart(13)} ${"ms@120MHz".padStart(10)}  ${"MLPerf TFLM".padStart(11)} ${"Plumerai".padStart(9)}  ${"AOT÷TFLM".padStart(8)}  ${"x86 interp".padStart(10)} ${"x86 AOT".padStart(8)} ${"ratio".padStart(6)}  same bits as Node`);
for (const r of rows) {
  const ref = MLPERF_MS[r.model.task];
  const best = r.aot ?? r.interpreter;
  const host = r.host ? `${`${r.host.interpreter.toFixed(1)} ms`.padStart(10)} ${`${r.host.aot.toFixed(1)} ms`.padStart(8)} ${`${(r.host.interpreter / r.host.aot).toFixed(1)}×`.padStart(6)}` : `${"-".padStart(10)} ${"-".padStart(8)} ${"-".padStart(6)}`;
  console.log(`${r.model.file.padEnd(28)} ${r.interpreter.instructions.toLocaleString("en-US").padStart(14)} ${ms(r.interpreter.instructions).padStart(10)} ${(r.aot ? r.aot.instructions.toLocaleString("en-US") : "-").padStart(13)} ${(r.aot ? ms(r.aot.instructions) : "-").padStart(10)}  ${ref.tflm.toFixed(2).padStart(11)} ${ref.plumerai.toFixed(2).padStart(9)}  ${`${(Number(ms(best.instructions)) / ref.tflm).toFixed(1)}×`.padStart(8)}  ${host}  ${r.identical ? "yes" : "NO"}`);
}
if (!withAot) console.log("(no AOT: npm run mcu installs Debian's llvm-15-dev and builds wamrc)");
const KWS_GOAL = { ram: 64 * 1024, flash: 256 * 1024 };
console.log(`\nimage sizes in KiB, total = WAMR + C library + embedding + model (flash: the blob or its AOT module, and the weights; RAM: its linear memory); fits = within ${kib(board.ram.bytes)} KiB RAM and ${kib(board.flash.bytes)} KiB flash, and within issue 10's ${kib(KWS_GOAL.ram)} / ${kib(KWS_GOAL.flash)} KiB`);
console.log(`WAMR's pool: the most WAMR had allocated / the pool targets/mcu/pool.ts computed (linear memory + module + stack + allocator and margin); C stack and newlib heap: used / reserved`);
console.log(`${"model".padEnd(18)} ${"flash".padEnd(34)} ${"RAM".padEnd(34)} ${"pool used / computed".padEnd(42)} ${"stack".padStart(10)} ${"heap".padStart(9)} fits`);
for (const r of rows) {
  for (const [engine, image] of [["interpreter", r.interpreter], ["AOT", r.aot]] as const) {
    if (!image) continue;
    const within = (b: { ram: number; flash: number }) => image.sizes.ram.total <= b.ram && image.sizes.flash.total <= b.flash;
    const p = image.sizes.pool;
    const pool = `${kib(image.poolHighmark)} / ${kib(p.bytes)} = ${kib(p.linearMemory)} + ${kib(p.module)} + ${kib(p.execEnv)} + ${kib(p.overhead)}`;
    const fits = `${within({ ram: board.ram.bytes, flash: board.flash.bytes }) ? "yes" : "no"} / ${within(KWS_GOAL) ? "yes" : "no"}`;
    console.log(`${`${r.model.task} ${engine}`.padEnd(18)} ${split(image.sizes.flash).padEnd(34)} ${split(image.sizes.ram).padEnd(34)} ${pool.padEnd(42)} ${`${image.stackUsed}/${board.stackBytes}`.padStart(10)} ${`${image.heapUsed}/${board.heapBytes}`.padStart(9)} ${fits}`);
  }
}
