import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildProgram } from "../../cli/main.js";
import { encodeNpy, parseNpy } from "../../host/npy.js";
import { inspectWasm } from "../../host/wasm-info.js";
import { halfToFloat, type TypedArray } from "../../ir/dtype.js";
import type { HostTensor } from "../../ir/graph.js";
import { shapeStr } from "../../ir/shape.js";
import { decodeModel, decodeOptional, decodeSequence, decodeTensor, storedTensor, type SequenceProto, type TypeProto } from "./proto.js";

/**
 * The ONNX backend tests (DIR/model.onnx with test_data_set_N/{input,output}_K.pb), run through the CLI
 * and compared with ONNX's tolerances. Used by the conformance runner and by tests.
 */

export const ONNX_SUITE_WHERE = "an argument, $TEENYGRAD_ONNX_TESTS, $TEENYGRAD_DATA/onnx-backend, ../shared/data/onnx-backend beside the repository, or a pip-installed onnx==1.22.0";

/** The backend test data directory (the one holding node/), from the first of ONNX_SUITE_WHERE that exists. */
export function findOnnxBackendSuite(given?: string): string | null {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  const candidates = [given, process.env.TEENYGRAD_ONNX_TESTS, process.env.TEENYGRAD_DATA && join(process.env.TEENYGRAD_DATA, "onnx-backend"), join(repo, "..", "shared", "data", "onnx-backend")];
  for (const c of [...candidates, pipOnnxData()]) {
    if (!c) continue;
    const dir = resolve(c);
    if (existsSync(join(dir, "node"))) return dir;
    if (existsSync(dir) && readdirSync(dir).some((d) => d.startsWith("test_"))) return resolve(dir, "..");
  }
  return null;
}

function pipOnnxData(): string | undefined {
  try {
    const onnxDir = execFileSync("python3", ["-c", "import onnx, os; print(os.path.dirname(onnx.__file__))"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return join(onnxDir, "backend", "test", "data");
  } catch {
    return undefined; // no python onnx
  }
}

export type Status = "pass" | "fail" | "unsupported" | "error";

export interface TestResult {
  name: string;
  status: Status;
  /** why it did not pass; for passes, the worst relative error seen */
  detail: string;
  millis: number;
  /** inputs fixed to the test's values at compile time; the rest were fed at run time */
  frozen?: string[];
  runtimeInputs?: number;
}

/** onnx.backend.test: np.testing.assert_allclose(expected, actual, rtol=1e-3, atol=1e-7) */
export const RTOL = 1e-3;
export const ATOL = 1e-7;

/** Errors that mean "not implemented yet" rather than "wrong": they sort into the unsupported column. */
const UNSUPPORTED = /unsupported operator|is not a tensor|not supported|not compiled for dtypes|does not support|element type|dynamic dims|must be known at compile time|are not supported/;


/** A test's value: a tensor, a sequence of tensors (SequenceProto), or an empty optional (OptionalProto). */
type Datum = { tensor: HostTensor } | { sequence: HostTensor[] } | { none: true };

/** Test data as stored: float16 as its bit patterns, as the CLI reads and writes them in .npy; sequences and optionals by the graph's declared type. */
function readDatum(file: string, type: TypeProto | undefined): Datum {
  const bytes = readFileSync(file);
  const elements = (s: SequenceProto): HostTensor[] => {
    if (s.sequence_values?.length || s.optional_values?.length) throw new Error(`${file}: sequences of sequences or optionals are not supported`);
    return (s.tensor_values ?? []).map((t) => storedTensor(t, file));
  };
  if (type?.sequence_type) return { sequence: elements(decodeSequence(bytes, file)) };
  if (type?.optional_type) {
    const o = decodeOptional(bytes, file);
    return o.tensor_value ? { tensor: storedTensor(o.tensor_value, file) } : o.sequence_value ? { sequence: elements(o.sequence_value) } : { none: true };
  }
  return { tensor: storedTensor(decodeTensor(bytes, file), file) };
}

const tensorOf = (d: Datum, name: string): HostTensor => {
  if (!("tensor" in d)) throw new Error(`input '${name}' is ${"none" in d ? "an empty optional" : "a sequence"}, not a tensor`);
  return d.tensor;
};

/** The tensors a value is in the compiled model: a sequence's elements, nothing for an empty optional. */
const flatten = (d: Datum): HostTensor[] => ("tensor" in d ? [d.tensor] : "sequence" in d ? d.sequence : []);

function dataSets(dir: string, inputTypes: (TypeProto | undefined)[], outputTypes: (TypeProto | undefined)[]): { inputs: Datum[]; outputs: HostTensor[] }[] {
  return readdirSync(dir).filter((d) => d.startsWith("test_data_set_")).sort().map((d) => {
    const files = readdirSync(join(dir, d));
    const numbered = (prefix: string, types: (TypeProto | undefined)[]) => files.filter((f) => f.startsWith(prefix) && f.endsWith(".pb"))
      .sort((a, b) => parseInt(a.slice(prefix.length)) - parseInt(b.slice(prefix.length)))
      .map((f, i) => readDatum(join(dir, d, f), types[i]));
    return { inputs: numbered("input_", inputTypes), outputs: numbered("output_", outputTypes).flatMap(flatten) };
  });
}

/** The worst violation of |actual - expected| <= atol + rtol·|expected|, or null when all hold. */
export function compareOutputs(name: string, actual: TypedArray, expected: HostTensor, actualShape: number[]): { ok: boolean; detail: string; worst: number } {
  if (actualShape.join() !== expected.shape.join()) return { ok: false, detail: `${name}: shape ${shapeStr(actualShape)}, expected ${shapeStr(expected.shape)}`, worst: Infinity };
  let worst = 0, worstAt = -1;
  // float16 compares by value, not by bit pattern
  const value = (data: ArrayLike<number | bigint>, i: number) => (expected.dtype === "float16" ? halfToFloat(Number(data[i])) : Number(data[i]));
  for (let i = 0; i < expected.data.length; i++) {
    const a = value(actual, i), e = value(expected.data, i);
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    const excess = Math.abs(a - e) / (ATOL + RTOL * Math.abs(e));
    if (!(excess <= 1) && (!(excess <= worst) || worstAt < 0)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      worstAt = i;
    }
  }
  if (worstAt < 0) return { ok: true, detail: "", worst: 0 };
  return { ok: false, detail: `${name}[${worstAt}] = ${value(actual, worstAt)}, expected ${value(expected.data, worstAt)} (${worst.toFixed(1)}x the tolerance)`, worst };
}

/** A TeenygradError's "pin it with --const NAME=…" advice: the inputs the compiler asks the user to pin. */
const pinsAskedFor = (message: string): string[] => [...message.matchAll(/--const (\S+?)=FILE\.npy\|VALUE/g)].map((m) => m[1]);
/** "fix them with --input NAME=SHAPE": the inputs with dynamic dims, whose shapes the user gives from their data. */
const shapesAskedFor = (message: string): string[] => [...message.matchAll(/fix them with --input (\S+?)=SHAPE/g)].map((m) => m[1]);

/**
 * Runs `teenygrad` in-process, as a user would from the shell (its printing silenced): the conformance
 * figure is what the CLI gives, not what the library gives when driven by hand.
 */
async function teenygrad(argv: string[]): Promise<void> {
  const log = console.log;
  console.log = () => {};
  try {
    await buildProgram().exitOverride().parseAsync(argv, { from: "user" });
  } finally {
    console.log = log;
  }
}

/**
 * One backend test through the CLI: `teenygrad compile model.onnx` — when the compiler answers that an
 * input decides a shape (or a branch, or a trip count) and must be pinned, pin exactly the inputs it names
 * with `--const NAME=data.npy` (the test's values) and compile again — then `teenygrad run` on the
 * other inputs as .npy files, and compare the .npy outputs with ONNX's tolerances.
 */
export async function runBackendTest(dir: string, name: string, opts: { optimizeLevel?: 0 | 1 | 2 | 3 } = {}): Promise<TestResult> {
  const start = performance.now();
  const done = (status: Status, detail: string): TestResult => ({ name, status, detail, millis: performance.now() - start });
  const work = mkdtempSync(join(tmpdir(), "teenygrad-conformance-"));
  try {
    const modelFile = join(dir, "model.onnx");
    if (!existsSync(modelFile)) return done("error", "no model.onnx");
    const graph = decodeModel(readFileSync(modelFile), name).graph;
    const initializers = new Set((graph?.initializer ?? []).map((t) => t.name));
    const declared = (graph?.input ?? []).filter((i) => !initializers.has(i.name));
    const names = declared.map((i) => i.name);
    const optimize = opts.optimizeLevel === undefined ? [] : ["-O", String(opts.optimizeLevel)];
    let sets: ReturnType<typeof dataSets> | null = null;
    const data = () => (sets ??= dataSets(dir, declared.map((i) => i.type), (graph?.output ?? []).map((o) => o.type)));
    const npy = (set: number, input: number, element = -1): string => {
      const file = join(work, `set${set}-input${input}${element >= 0 ? `-${element}` : ""}.npy`);
      if (!existsSync(file)) {
        const d = data()[set].inputs[input];
        const t = element >= 0 ? flatten(d)[element] : tensorOf(d, names[input]);
        writeFileSync(file, encodeNpy(t.dtype, t.shape, t.data));
      }
      return file;
    };
    // a sequence input's element shapes (or an optional's absence) are fixed at compile time, as its pinned inputs are
    // (the data is read only when needed: a test whose model does not import may hold data no TensorProto reader takes)
    const hasContainers = declared.some((i) => !i.type?.tensor_type);
    const containerShapes = (set: number): string[] => !hasContainers || !data().length ? [] : data()[set].inputs.flatMap((d, i) => ("sequence" in d ? ["--input", `${names[i]}=[${d.sequence.map((t) => t.shape.join("x") || "scalar").join(",")}]`] : "none" in d ? ["--input", `${names[i]}=none`] : []));
    // each data set is compiled with its own pinned values (one compile when they agree, the usual case)
    let pinned: string[] = [];
    const blobs = new Map<string, string>();
    // inputs with dynamic dims get their data's shapes, as a user fixes them with --input
    let shaped: string[] = [];
    const shapes = (set: number): string[] => shaped.flatMap((n) => ["--input", `${n}=${tensorOf(data()[set].inputs[names.indexOf(n)], n).shape.join("x")}`]);
    const keyOf = (set: number) => [...pinned.map((n) => npyKey(tensorOf(data()[set].inputs[names.indexOf(n)], n))), ...containerShapes(set), ...shapes(set)].join("|");
    const blobFor = async (set: number): Promise<string> => {
      const known = blobs.get(keyOf(set));
      if (known) return known;
      for (;;) {
        const wasm = join(work, `model${blobs.size}.wasm`);
        const consts = pinned.flatMap((n) => ["--const", `${n}=${npy(set, names.indexOf(n))}`]);
        try {
          await teenygrad(["compile", modelFile, "-o", wasm, ...optimize, ...consts, ...containerShapes(set), ...shapes(set)]);
          blobs.set(keyOf(set), wasm);
          return wasm;
        } catch (e) {
          const message = e instanceof Error && e.name === "TeenygradError" ? e.message : "";
          const asked = pinsAskedFor(message).filter((n) => !pinned.includes(n) && names.includes(n));
          // (an empty tensor's shape is not one --input takes: such a test stays unsupported)
          const unshaped = shapesAskedFor(message).filter((n) => !shaped.includes(n) && names.includes(n) && data().length > 0 && tensorOf(data()[set].inputs[names.indexOf(n)], n).shape.every((d) => d > 0));
          if (!asked.length && !unshaped.length) throw e;
          pinned = [...pinned, ...asked];
          shaped = [...shaped, ...unshaped];
        }
      }
    };
    const first = await blobFor(0);
    if (!data().length) return done("error", "no test_data_set_*");
    let runtimeInputs = 0;
    for (const [k, set] of data().entries()) {
      const wasm = k === 0 ? first : await blobFor(k);
      const manifest = inspectWasm(readFileSync(wasm), wasm).manifest!;
      runtimeInputs = manifest.inputs.length;
      // a sequence's elements are the blob's inputs NAME_0, NAME_1, …
      const given = names.flatMap((n, i) => {
        if (pinned.includes(n)) return [];
        const d = set.inputs[i];
        return "sequence" in d ? d.sequence.map((_, e) => [`${n}_${e}`, npy(k, i, e)] as const) : "none" in d ? [] : [[n, npy(k, i)] as const];
      });
      if (given.length !== manifest.inputs.length) return done("fail", `data set ${k} has ${given.length} inputs, the model ${manifest.inputs.length}`);
      const out = join(work, `out${k}`);
      await teenygrad(["run", wasm, "--out", out, ...given.flatMap(([n, file]) => ["--input", `${n}=${file}`])]);
      for (const [i, slot] of manifest.outputs.entries()) {
        const want = set.outputs[i];
        if (!want) return done("fail", `output ${slot.name} has no expected data`);
        const got = parseNpy(readFileSync(join(out, `${slot.name}.npy`)), slot.name);
        if (want.dtype !== got.dtype) return done("fail", `output ${slot.name}: ${got.dtype}, expected ${want.dtype}`);
        const cmp = compareOutputs(slot.name, got.data, want, got.shape);
        if (!cmp.ok) return done("fail", `data set ${k}: ${cmp.detail}`);
      }
    }
    return { ...done("pass", pinned.length ? `--const ${pinned.join(", ")}` : ""), frozen: pinned, runtimeInputs };
  } catch (e) {
    const err = e as Error;
    const message = err.message.split("\n").slice(0, 3).join(" ").replace(`${name}: `, "").replace(`${basename(dir)}.onnx: `, "").replace("model.onnx: ", "");
    if (err.name !== "TeenygradError") return done("error", `${err.name}: ${message}`);
    return done(UNSUPPORTED.test(message) ? "unsupported" : "error", message);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const npyKey = (t: HostTensor): string => `${t.dtype}${shapeStr(t.shape)}:${Array.from(t.data as ArrayLike<number | bigint>, String).join(",")}`;
