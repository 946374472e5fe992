import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fail } from "../../errors.js";
import type { DType, TypedArray } from "../../ir/dtype.js";
import { encodeNpy, parseNpy, type NpyArray } from "../../host/npy.js";
import { Generator } from "../../tensor/random.js";
import { dequantize, type TfliteImport } from "./index.js";

/**
 * The TFLite reference interpreter (PyPI's ai-edge-litert), run through scripts/litert_run.py in the venv that
 * scripts/install-litert.sh makes: the oracle for the TFLite importer's tests and the MLPerf report. Node only;
 * the importer itself does not use it.
 */

export const LITERT_VERSION = "2.3.0"; // keep in sync with LITERT_VERSION in scripts/install-litert.sh

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../scripts/litert_run.py");

/** The venv's python: $TEENYGRAD_LITERT_PYTHON, else ${TEENYGRAD_CACHE:-~/.cache/teenygrad}/litert-<version>/bin/python. */
export function findLitertPython(): string | null {
  const explicit = process.env.TEENYGRAD_LITERT_PYTHON;
  if (explicit) return existsSync(explicit) ? explicit : null;
  const cache = process.env.TEENYGRAD_CACHE ?? join(homedir(), ".cache", "teenygrad");
  const python = join(cache, `litert-${LITERT_VERSION}`, "bin", "python");
  return existsSync(python) ? python : null;
}

export interface LitertTensor {
  name: string;
  shape: number[];
  dtype: string;
  quantization: { scale: number; zeroPoint: number } | null;
}

export interface LitertRun {
  inputs: LitertTensor[];
  outputs: LitertTensor[];
  /** one per output, in the interpreter's order (empty when describing only) */
  values: NpyArray[];
}

export interface InterpreterInput {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

/**
 * Seeded inputs for a model, as the blob takes them (`blob`: int8 for int8 inputs, else float32 real values) and as
 * the interpreter takes them (`reference`, in its input order): float32 uniform in [-1, 1), or uniform integers over
 * a quantized input's range.
 */
export function randomTfliteInputs(imp: TfliteImport, seed: number): { blob: Record<string, Float32Array | Int8Array>; reference: InterpreterInput[] } {
  const rng = new Generator(seed);
  const blob: Record<string, Float32Array | Int8Array> = {};
  const reference = imp.inputs.map((io) => {
    const n = io.shape.reduce((a, b) => a * b, 1);
    const q = io.quantization;
    if (q) {
      const ints = Int8Array.from({ length: n }, () => q.min + Math.floor(rng.next() * (q.max - q.min + 1)));
      blob[io.name] = io.dtype === "int8" ? ints : dequantize(io, ints);
      return { dtype: "int8" as const, shape: io.shape, data: ints };
    }
    const floats = Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
    blob[io.name] = floats;
    return { dtype: "float32" as const, shape: io.shape, data: floats };
  });
  return { blob, reference };
}

/** Runs the model once on the inputs (in the interpreter's input order), or only describes it when `inputs` is omitted. */
export function runLitert(modelPath: string, inputs?: InterpreterInput[]): LitertRun {
  const { runs, ...description } = runLitertMany(modelPath, inputs ? [inputs] : []);
  return { ...description, values: runs[0] ?? [] };
}

/** Runs the model on each set of inputs in one interpreter process; `runs[r]` holds run r's outputs. */
export function runLitertMany(modelPath: string, inputSets: InterpreterInput[][]): Omit<LitertRun, "values"> & { runs: NpyArray[][] } {
  const python = findLitertPython();
  if (!python) fail(`the TFLite reference interpreter is not installed: run npm run litert (scripts/install-litert.sh)`);
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-litert-"));
  try {
    inputSets.forEach((inputs, r) => {
      mkdirSync(join(dir, String(r)));
      inputs.forEach((x, k) => writeFileSync(join(dir, String(r), `input_${k}.npy`), encodeNpy(x.dtype, x.shape, x.data)));
    });
    const res = spawnSync(python, [SCRIPT, modelPath, dir, String(inputSets.length)], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (res.status !== 0) fail(`litert_run.py ${modelPath} failed (${res.status ?? res.signal}): ${res.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    const report = JSON.parse(res.stdout.trim().split("\n").pop()!) as { ran: boolean; inputs: LitertTensor[]; outputs: LitertTensor[] };
    const runs = report.ran
      ? inputSets.map((_, r) => report.outputs.map((__, k) => parseNpy(new Uint8Array(readFileSync(join(dir, String(r), `output_${k}.npy`))))))
      : [];
    return { inputs: report.inputs, outputs: report.outputs, runs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
