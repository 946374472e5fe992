import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { checkBudget, describeRam, footprint, parseSize, type Footprint } from "../budget.js";
import type { CompileReport } from "../compile.js";
import { TeenygradError, fail } from "../errors.js";
import { inspectWasm, type WasmInfo } from "../host/wasm-info.js";
import { encodeNpy, parseNpy } from "../host/npy.js";
import type { TypedArray } from "../ir/dtype.js";
import { shapeStr } from "../ir/shape.js";
import type { ConstantInput } from "../import/onnx/index.js";
import { ENGINES, type Engine } from "../../targets/engines.js";
import { TARGETS } from "../../targets/index.js";
import { readWamrFlashWeights, registerFirmwareCommand } from "./firmware.js";
import { addTrainingCompileOptions, compileForTraining, registerTrainCommand } from "./train.js";
import { registerFederateCommand } from "./federate.js";

/**
 * The `teenygrad` command: argument parsing and printing only; every action is one library call. The compiler
 * (importers, passes, code generation) and the engines load inside the actions that need them, so `--help`,
 * `inspect` and `export-c` start without them.
 */

/** this package's version, from the package.json above this file (compiler/cli/ in a checkout, dist/ installed) */
function packageVersion(): string {
  for (let dir = dirname(new URL(import.meta.url).pathname); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
    if (pkg.name === "teenygrad" && pkg.version) return pkg.version;
  }
  return "unknown";
}

/**
 * Creates `dir` and its missing parents one by one, failing with the path at fault (fs.mkdirSync's recursive
 * mode spins forever on paths under /proc and reports an existing file as a bare EEXIST).
 */
function makeOutputDir(dir: string, flag: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  while (!existsSync(at)) {
    missing.unshift(at);
    if (at === dirname(at)) break;
    at = dirname(at);
  }
  if (existsSync(at) && !statSync(at).isDirectory()) fail(`${flag} ${dir}: ${at} exists and is not a directory`);
  for (const path of missing) {
    try {
      mkdirSync(path);
    } catch (e) {
      fail(`${flag} ${dir}: cannot create ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
}

const kb = (n: number): string => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`);
const pct = (a: number, b: number): string => (b ? `${((a / b - 1) * 100).toFixed(1)}%` : "-");

function collect(value: string, prev: string[]): string[] {
  return [...prev, value];
}

function parseShape(text: string): number[] {
  const dims = text.split(/[x,]/).map(Number);
  if (!text || dims.some((d) => !Number.isInteger(d) || d <= 0)) throw new InvalidArgumentError(`bad shape '${text}': use e.g. 1x3x32x32`);
  return dims;
}

/** "[2x3,4x3]": a sequence's element shapes ("scalar" for a rank-0 one); "[]" is an empty sequence. */
function parseShapeList(text: string): number[][] {
  if (!text.endsWith("]")) throw new InvalidArgumentError(`bad sequence '${text}': use e.g. [2x3,2x3] ([scalar,scalar] for rank-0 elements), or [] for an empty sequence`);
  const inner = text.slice(1, -1);
  return inner ? inner.split(",").map((e) => (e === "scalar" ? [] : parseShape(e))) : [];
}

function splitAssignment(text: string, what: string, flag = "--input"): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0) fail(`${flag} expects NAME=${what}, got '${text}'`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

function parseOptimizeLevel(text: string): 0 | 1 | 2 | 3 {
  if (!/^[0-3]$/.test(text)) throw new InvalidArgumentError(`bad level '${text}': use 0, 1, 2 or 3`);
  return Number(text) as 0 | 1 | 2 | 3;
}

function parseThreadCount(text: string): number {
  if (!/^[0-9]+$/.test(text)) throw new InvalidArgumentError(`bad thread count '${text}': use a whole number, 1 to 64`);
  return Number(text);
}

/** A --const value: a .npy file, or comma-separated numbers (true/false for booleans). */
function parseConstant(text: string): ConstantInput {
  if (/\.npy$/i.test(text)) return parseNpy(readFileSync(text), text);
  const values = text.split(",").map((s) => (s === "true" ? 1 : s === "false" ? 0 : Number(s.trim())));
  if (!text || values.some((v) => Number.isNaN(v) && !/nan/i.test(text))) fail(`--const: '${text}' is neither a .npy file nor comma-separated numbers`);
  return values.length === 1 ? values[0] : values;
}

export function formatReport(r: CompileReport): string {
  const rows = [
    ...r.inputs.map((s) => `  input   ${s.name.padEnd(16)} ${s.dtype} ${shapeStr(s.shape)}  @${s.offset}`),
    ...r.outputs.map((s) => `  output  ${s.name.padEnd(16)} ${s.dtype} ${shapeStr(s.shape)}  @${s.offset}`),
    ...r.state.map((s) => `  state   ${s.name.padEnd(16)} ${s.dtype} ${shapeStr(s.shape)}  @${s.offset}, kept between runs, the next value from output ${s.output}`),
    "",
    `  arena          ${kb(r.arena.bytes).padStart(10)}   lower bound ${kb(r.arena.lowerBound)} (+${pct(r.arena.bytes, r.arena.lowerBound)}), greedy-by-size baseline ${kb(r.arena.greedyBaseline)}`,
    `  weights        ${kb(r.weightsBytes).padStart(10)}`,
    `  code           ${kb(r.codeBytes).padStart(10)}`,
    `  wasm           ${kb(r.wasmBytes).padStart(10)}   ${r.memory.pages} page(s) of memory (${kb(r.memory.bytes)}), initial = maximum; ${kb(r.memory.heapBase ?? r.memory.bytes)} used`,
    `  graph          ${String(r.nodes).padStart(10)} nodes, ${r.kernelCalls} kernel calls; ${r.passes.epiloguesFused} epilogues and ${r.passes.elementwiseFused} element-wise ops fused, ${r.passes.batchNormsFolded} batch norms folded, ${r.passes.winogradConvs} convolutions on Winograd`,
    `  compile time   ${`${r.millis.total.toFixed(0)} ms`.padStart(10)}   (${r.codegen.path === "asc" ? `asc ${r.millis.asc.toFixed(0)} ms${r.codegen.reason ? `: ${r.codegen.reason}` : ""}` : `linked with the kernel library${r.millis.asc ? `, built now in ${r.millis.asc.toFixed(0)} ms (cached for later compiles)` : ""}`})`,
  ];
  return `${r.model} → ${r.target}\n${formatFootprint(r.footprint)}\n${rows.join("\n")}`;
}

/**
 * Compile stages on stderr with the seconds elapsed: asc alone takes 10–30 s for a large model on a loaded
 * machine, and a silent terminal looks hung.
 */
function compileProgress(): (stage: string) => void {
  // a person at a terminal waits on it; logs and in-process callers (the conformance runner) do not need it
  if (!process.stderr.isTTY) return () => {};
  const start = performance.now();
  return (stage) => process.stderr.write(`[${((performance.now() - start) / 1000).toFixed(1)} s] ${stage}\n`);
}

function formatFootprint(f: Footprint): string {
  return [
    `  device RAM     ${kb(f.ram.bytes).padStart(10)}   ${describeRam(f)}`,
    `  flash          ${kb(f.flash.bytes).padStart(10)}   code ${kb(f.flash.code)}, weights ${kb(f.flash.weights)}, other ${kb(f.flash.other)}`,
  ].join("\n");
}

export function formatInspect(info: WasmInfo, source: string): string {
  const m = info.manifest;
  const lines = [
    `${source}: ${info.sections.reduce((a, s) => a + s.bytes, 0)} bytes in sections`,
    `  imports: ${info.imports.length ? info.imports.map((i) => `${i.module}.${i.name}`).join(", ") : "none"}`,
    `  exports: ${info.exports.map((e) => `${e.name} (${e.kind})`).join(", ")}`,
    `  memory: ${info.memory ? `${info.memory.initial} pages initial, ${info.memory.maximum ?? "no"} maximum${info.memory.initial === info.memory.maximum ? " (fixed)" : ""}` : "none"}; memory.grow: ${info.usesMemoryGrow ? "USED" : "never"}`,
    `  features used: ${info.features.join(", ") || "MVP only"} (${info.instructionCounts.simd128} v128 instructions of ${info.instructionCounts.total})`,
    `  sections: ${info.sections.map((s) => `${s.name} ${s.bytes}`).join(", ")}`,
  ];
  if (m) {
    const slot = (kind: string) => (s: { name: string; dtype: string; shape: number[]; offset: number; bytes: number }) =>
      `    ${kind.padEnd(7)} ${s.name.padEnd(28)} ${s.dtype.padEnd(8)} ${shapeStr(s.shape).padEnd(16)} @${s.offset} (${s.bytes} B)`;
    lines.push(
      `  manifest: target ${m.target}, flavour ${m.flavour}, arena ${m.arena.bytes} B @${m.arena.offset} (lower bound ${m.arena.lowerBound}, greedy ${m.arena.greedyBaseline}), weights ${m.weights.bytes} B @${m.weights.offset}${m.weights.sharedHeap ? " (WAMR shared heap, read in place from flash)" : m.weights.embedded ? "" : " (separate file)"}`,
      ...m.inputs.map(slot("input")),
      ...m.outputs.map(slot("output")),
      ...(m.state ?? []).map(slot("state")),
      ...m.weights.tensors.map(slot("weight")),
    );
  } else lines.push("  manifest: none (not a teenygrad blob)");
  return lines.join("\n");
}

function summarize(name: string, t: TypedArray): string {
  const xs = Array.from(t as Float32Array, Number);
  const head = xs.slice(0, 6).map((x) => (Number.isInteger(x) ? String(x) : x.toPrecision(5))).join(", ");
  const max = xs.reduce((a, b) => Math.max(a, b), -Infinity), min = xs.reduce((a, b) => Math.min(a, b), Infinity);
  return `  ${name}: ${xs.length} values, min ${min.toPrecision(5)}, max ${max.toPrecision(5)}: [${head}${xs.length > 6 ? ", …" : ""}]`;
}

export function buildProgram(): Command {
  const program = new Command("teenygrad")
    .description("Compile ML models into one self-contained WebAssembly blob with fixed, pre-planned memory")
    .version(packageVersion(), "-V, --version", "print the version")
    .showHelpAfterError();

  program
    .command("compile")
    .description("compile a model (.onnx, .tflite, or a module whose default export is an nn.Module and which exports inputs: name → shape) to a .wasm blob")
    .argument("<model>", "model: .onnx, .tflite, or a .ts/.js module")
    .requiredOption("-o, --output <file>", "output .wasm file")
    .option("-t, --target <target>", `target: ${Object.keys(TARGETS).join(", ")}`, "wasm-simd")
    .option("-i, --input <name=shape>", "fix an input's shape, e.g. x=1x3x32x32 (repeatable; needed for dynamic ONNX dims); a sequence input's element shapes, e.g. s=[2x3,4x3] or s=[scalar] (its elements become inputs s_0, s_1, …); opt=none for an empty optional input", collect, [])
    .option("-c, --const <name=value>", "pin an input to a value at compile time: a .npy file or numbers, e.g. sr=16000 or axes=0,2 (repeatable; for inputs that decide shapes or If branches)", collect, [])
    .option("--state <file>", "load weights from a .safetensors state dict before compiling")
    .option("--stream-state <input=output>", "keep a streaming model's state in the blob: the input takes the output's value from the previous run, e.g. h_in=h_out (repeatable; zero at first)", collect, [])
    .option("--wasi", "emit a WASI command: inputs' raw bytes on stdin, outputs' raw bytes on stdout")
    .option("--weights-file", "write the weights to OUT.weights.bin instead of embedding them (always for wamr-flash)")
    .option("--report <file>", "write the compile report as JSON")
    .option("--emit-source <file>", "also write the generated AssemblyScript entry module")
    .option("--plan <file>", "write a picture of the arena plan (SVG)")
    .option("--ram <size>", "fail unless the device RAM the target needs fits, e.g. 256K")
    .option("--flash <size>", "fail unless the module (plus weights kept apart) fits, e.g. 1M")
    .option("-O, --optimize <level>", "binaryen optimisation level 0-3 (lower compiles faster)", (v) => parseOptimizeLevel(v))
    .option("--threads <n>", "--target wasm-simd-threads: the most workers the blob may run on (default 4; the host picks 1..n)", (v) => parseThreadCount(v))
    .action(async (modelPath: string, o) => {
      const assigned = (o.input as string[]).map((a) => splitAssignment(a, "SHAPE"));
      // a sequence input's element shapes are listed in brackets; "none" leaves an optional input empty
      const isElements = (v: string) => v === "none" || v.startsWith("[");
      const shapes = Object.fromEntries(assigned.filter(([, v]) => !isElements(v)).map(([k, v]) => [k, parseShape(v)]));
      const elements = Object.fromEntries(assigned.filter(([, v]) => isElements(v)).map(([k, v]) => [k, v === "none" ? "none" as const : parseShapeList(v)]));
      const constants = Object.fromEntries((o.const as string[]).map((a) => {
        const [k, v] = splitAssignment(a, "FILE.npy|VALUE", "--const");
        return [k, parseConstant(v)];
      }));
      const progress = compileProgress();
      progress(`loading ${modelPath}`);
      const [{ loadModelFile }, { compile }, { isModule, loadSafetensors }] = await Promise.all([import("../load-model.js"), import("../compile.js"), import("../tensor/nn.js")]);
      const streamState = Object.fromEntries((o.streamState as string[]).map((a) => splitAssignment(a, "OUTPUT", "--stream-state")));
      const { model, inputs, name, notes } = await loadModelFile(modelPath, shapes, constants, elements);
      for (const note of notes ?? []) console.log(`note: ${note}`);
      if (!(o.streamState as string[]).length && !isModule(model)) {
        const { suggestStatePairs } = await import("../passes/stream-state.js");
        const pairs = Object.entries(suggestStatePairs(model));
        if (pairs.length) console.log(`note: ${pairs.map(([i, out]) => `input '${i}' looks like state carried from output '${out}'`).join("; ")}: to keep the state in the blob between runs, compile with ${pairs.map(([i, out]) => `--stream-state ${i}=${out}`).join(" ")}`);
      }
      if (o.train) {
        if (Object.keys(streamState).length) fail("--stream-state applies to inference blobs; a --train blob's run() keeps no state");
        return compileForTraining(model, name, inputs, o, progress);
      }
      if (o.state) {
        if (!isModule(model)) fail(`--state: ${modelPath} carries its own weights; --state applies to model modules`);
        model.loadStateDict(loadSafetensors(readFileSync(o.state), o.state));
      }
      const budget = { ram: o.ram === undefined ? undefined : parseSize(o.ram), flash: o.flash === undefined ? undefined : parseSize(o.flash) };
      const result = await compile(model, inputs, { target: o.target, wasi: o.wasi, separateWeights: o.weightsFile, name, budget, optimizeLevel: o.optimize, streamState, threads: o.threads, onProgress: progress });
      writeFileSync(o.output, result.wasm);
      if (result.weights) writeFileSync(`${o.output.replace(/\.wasm$/, "")}.weights.bin`, result.weights);
      if (o.report) writeFileSync(o.report, JSON.stringify(result.report, null, 2) + "\n");
      if (o.emitSource) writeFileSync(o.emitSource, result.source);
      if (o.plan) writeFileSync(o.plan, (await import("../planner/index.js")).renderPlanSvg(result.plan.buffers, result.plan.arena, result.plan.names));
      console.log(formatReport(result.report));
      console.log(`wrote ${o.output}`);
    });

  addTrainingCompileOptions(program.commands.find((c) => c.name() === "compile")!);
  registerTrainCommand(program);
  registerFederateCommand(program);
  registerFirmwareCommand(program);

  program
    .command("run")
    .description("run a compiled blob (or, with --engine qemu, a firmware image) on .npy inputs and write .npy outputs")
    .argument("<blob>", "compiled .wasm, or an .elf from `teenygrad firmware` with --engine qemu")
    .option("-i, --input <name=file.npy>", "an input tensor (repeatable)", collect, [])
    .option("--out <dir>", "directory for the outputs (NAME.npy)", "out")
    .option("-e, --engine <engine>", `engine: ${ENGINES.join(", ")}`, "node")
    .option("--weights <file>", "separate weights file (blobs compiled with --weights-file)")
    .action(async (blob: string, o) => {
      if (!ENGINES.includes(o.engine)) fail(`unknown engine '${o.engine}' (engines: ${ENGINES.join(", ")})`);
      const manifest = o.engine === "qemu" ? (await import("../../targets/mcu/runner.js")).readFirmwareInfo(readFileSync(blob), blob).manifest
        : inspectWasm(readFileSync(blob), blob).manifest ?? fail(`${blob}: not a teenygrad blob (no manifest)`);
      const inputs: Record<string, TypedArray> = {};
      for (const a of o.input as string[]) {
        const [k, file] = splitAssignment(a, "FILE.npy");
        if (k in inputs) fail(`input '${k}' given twice`);
        const slot = manifest.inputs.find((s) => s.name === k);
        if (!slot) fail(`the model has no input '${k}' (inputs: ${manifest.inputs.map((s) => s.name).join(", ")})`);
        const npy = parseNpy(readFileSync(file), file);
        if (npy.shape.join() !== slot.shape.join() || npy.dtype !== slot.dtype) {
          fail(`input '${k}' from ${file} is ${npy.dtype} ${shapeStr(npy.shape)}, but the model expects ${slot.dtype} ${shapeStr(slot.shape)}`);
        }
        inputs[k] = npy.data;
      }
      const weights = o.weights ? readFileSync(o.weights) : undefined;
      makeOutputDir(o.out, "--out");
      const { runOnEngine } = await import("../../targets/engines.js");
      const outputs = await runOnEngine(o.engine as Engine, blob, inputs, { weights, source: blob });
      console.log(`${basename(blob)} on ${o.engine}:`);
      for (const s of manifest.outputs) {
        const path = join(o.out, `${s.name}.npy`);
        writeFileSync(path, encodeNpy(s.dtype, s.shape, outputs[s.name]));
        console.log(`${summarize(s.name, outputs[s.name])} → ${path}`);
      }
    });

  program
    .command("inspect")
    .description("show a blob's manifest, memory, imports, features and sections")
    .argument("<blob>", "compiled .wasm")
    .option("--json", "print JSON")
    .option("--ram <size>", "fail unless the device RAM the target needs fits, e.g. 256K")
    .option("--flash <size>", "fail unless the module (plus weights kept apart) fits, e.g. 1M")
    .action((blob: string, o) => {
      const bytes = readFileSync(blob);
      const info = inspectWasm(bytes, blob);
      const fp = info.manifest ? footprint(bytes.byteLength, info, info.manifest) : null;
      console.log(o.json ? JSON.stringify({ ...info, footprint: fp }, null, 2) : `${formatInspect(info, blob)}${fp ? `\n${formatFootprint(fp)}` : ""}`);
      if (o.ram !== undefined || o.flash !== undefined) {
        if (!fp) fail(`${blob}: not a teenygrad blob, so it has no footprint to check`);
        checkBudget(fp, { ram: o.ram === undefined ? undefined : parseSize(o.ram), flash: o.flash === undefined ? undefined : parseSize(o.flash) });
      }
    });

  program
    .command("export-c")
    .description("write a blob as a C header: its bytes as an array, its inputs' and outputs' offsets, sizes and shapes, its memory pages")
    .argument("<blob>", "compiled .wasm (reactor; weights embedded, or target wamr-flash)")
    .requiredOption("-o, --output <file>", "output .h file")
    .option("--prefix <name>", "C identifier that starts every name", "model")
    .option("--weights <file>", "a wamr-flash blob's weights (default: BLOB.weights.bin beside it)")
    .action(async (blob: string, o) => {
      const wasm = readFileSync(blob);
      const { exportC } = await import("../codegen/export-c.js");
      writeFileSync(o.output, exportC(wasm, { prefix: o.prefix, source: basename(blob), weights: readWamrFlashWeights(blob, wasm, o.weights) }));
      console.log(`wrote ${o.output}`);
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().exitOverride().parseAsync(argv);
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith("commander.")) return err.exitCode ?? 1; // commander already printed it
    // a system call's failure (a missing file, a read-only directory…) is the user's to fix, and its message names the path
    if (err instanceof TeenygradError || err.name === "TeenygradError" || (err as NodeJS.ErrnoException).syscall) console.error(`error: ${err.message}`);
    else console.error(`internal error: ${err.message}${process.env.TEENYGRAD_DEBUG ? `\n${err.stack}` : " (set TEENYGRAD_DEBUG=1 for a stack trace)"}`);
    return 1;
  }
}
