import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compile, type CompileOptions } from "../../compile.js";
import type { TypedArray } from "../../ir/dtype.js";
import type { Graph, HostTensor } from "../../ir/graph.js";
import { shapeStr } from "../../ir/shape.js";
import { loadBlob } from "../../host/loader.js";
import { importOnnx, onnxInputNames } from "./index.js";
import { decodeTensor, tensorFromProto } from "./proto.js";

/**
 * One ONNX backend test (DIR/model.onnx with test_data_set_N/{input,output}_K.pb): import, compile,
 * run in Node, compare with ONNX's tolerances. Used by the conformance runner and by tests.
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

const isFloat = (d: string | undefined) => d === "float32" || d === "float64";
const sameTensor = (a: HostTensor | undefined, b: HostTensor | undefined) =>
  !!a && !!b && a.dtype === b.dtype && a.shape.join() === b.shape.join() && a.data.every((x, i) => x === b.data[i]);

const readTensor = (file: string): HostTensor => tensorFromProto(decodeTensor(readFileSync(file), file), file);

function dataSets(dir: string): { inputs: HostTensor[]; outputs: HostTensor[] }[] {
  return readdirSync(dir).filter((d) => d.startsWith("test_data_set_")).sort().map((d) => {
    const files = readdirSync(join(dir, d));
    const numbered = (prefix: string) => files.filter((f) => f.startsWith(prefix) && f.endsWith(".pb"))
      .sort((a, b) => parseInt(a.slice(prefix.length)) - parseInt(b.slice(prefix.length)))
      .map((f) => readTensor(join(dir, d, f)));
    return { inputs: numbered("input_"), outputs: numbered("output_") };
  });
}

/** The worst violation of |actual - expected| <= atol + rtol·|expected|, or null when all hold. */
export function compareOutputs(name: string, actual: TypedArray, expected: HostTensor, actualShape: number[]): { ok: boolean; detail: string; worst: number } {
  if (actualShape.join() !== expected.shape.join()) return { ok: false, detail: `${name}: shape ${shapeStr(actualShape)}, expected ${shapeStr(expected.shape)}`, worst: Infinity };
  let worst = 0, worstAt = -1;
  for (let i = 0; i < expected.data.length; i++) {
    const a = Number(actual[i]), e = Number(expected.data[i]);
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    const excess = Math.abs(a - e) / (ATOL + RTOL * Math.abs(e));
    if (!(excess <= 1) && (!(excess <= worst) || worstAt < 0)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      worstAt = i;
    }
  }
  if (worstAt < 0) return { ok: true, detail: "", worst: 0 };
  return { ok: false, detail: `${name}[${worstAt}] = ${Number(actual[worstAt])}, expected ${Number(expected.data[worstAt])} (${worst.toFixed(1)}x the tolerance)`, worst };
}

export async function runBackendTest(dir: string, name: string, opts: CompileOptions = {}): Promise<TestResult> {
  const start = performance.now();
  const done = (status: Status, detail: string): TestResult => ({ name, status, detail, millis: performance.now() - start });
  try {
    const modelFile = join(dir, "model.onnx");
    if (!existsSync(modelFile)) return done("error", "no model.onnx");
    const bytes = readFileSync(modelFile);
    const names = onnxInputNames(bytes, name);
    let frozen: string[] = [];
    let graph: Graph | null = null;
    let shapeError: Error | null = null;
    try {
      graph = importOnnx(bytes, { baseDir: dir, source: name }).graph;
    } catch (e) {
      if (!(e instanceof Error) || !/must be known at compile time/.test(e.message)) throw e;
      shapeError = e;
    }
    // read after importing: sequence- and optional-typed data, which the import refuses, is not a TensorProto
    const sets = dataSets(dir);
    if (!sets.length) return done("error", "no test_data_set_*");
    if (shapeError) {
      // a static-shape compiler specialises on inputs that decide shapes (axes, pads, repeats…): freeze
      // such inputs (integer, or float scalars and vectors like scales, equal in every data set) to the
      // test's values — as few as needed
      const shapeLike = (t: HostTensor | undefined) => !!t && (!isFloat(t.dtype) || t.shape.length <= 1);
      const candidates = names.filter((_, i) => shapeLike(sets[0].inputs[i]) && sets.every((s) => sameTensor(s.inputs[i], sets[0].inputs[i])));
      const attempt = (fixed: string[]) => {
        try {
          return importOnnx(bytes, { baseDir: dir, source: name, constantInputs: Object.fromEntries(fixed.map((n) => [n, sets[0].inputs[names.indexOf(n)]])) }).graph;
        } catch {
          return null;
        }
      };
      frozen = candidates;
      graph = attempt(frozen);
      if (!graph) throw shapeError;
      for (const n of candidates) {
        const fewer = frozen.filter((f) => f !== n);
        const g = attempt(fewer);
        if (g) [frozen, graph] = [fewer, g];
      }
    }
    const compiled = await compile(graph!, {}, { name, ...opts });
    const model = await loadBlob(compiled.wasm, { source: name });
    for (const [k, set] of sets.entries()) {
      const slots = model.manifest.inputs;
      const given = set.inputs.filter((_, i) => !frozen.includes(names[i]));
      if (given.length !== slots.length) return done("fail", `data set ${k} has ${given.length} inputs, the model ${slots.length}`);
      const feed: Record<string, TypedArray> = {};
      for (const [i, slot] of slots.entries()) {
        const t = given[i];
        if (t.dtype !== slot.dtype || t.shape.join() !== slot.shape.join()) return done("fail", `input ${slot.name}: data is ${t.dtype}${shapeStr(t.shape)}, model wants ${slot.dtype}${shapeStr(slot.shape)}`);
        feed[slot.name] = t.data;
      }
      const outs = model.run(feed);
      for (const [i, slot] of model.manifest.outputs.entries()) {
        const want = set.outputs[i];
        if (!want) return done("fail", `output ${slot.name} has no expected data`);
        if (want.dtype !== slot.dtype) return done("fail", `output ${slot.name}: ${slot.dtype}, expected ${want.dtype}`);
        const cmp = compareOutputs(slot.name, outs[slot.name], want, slot.shape);
        if (!cmp.ok) return done("fail", `data set ${k}: ${cmp.detail}`);
      }
    }
    return { ...done("pass", frozen.length ? `compile-time inputs: ${frozen.join(", ")}` : ""), frozen, runtimeInputs: model.manifest.inputs.length };
  } catch (e) {
    const err = e as Error;
    const message = err.message.split("\n").slice(0, 3).join(" ").replace(`${name}: `, "");
    if (err.name !== "TeenygradError") return done("error", `${err.name}: ${message}`);
    return done(UNSUPPORTED.test(message) ? "unsupported" : "error", message);
  }
}
