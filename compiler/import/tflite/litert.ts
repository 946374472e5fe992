import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

/**
 * Seeded inputs for a model, as the blob takes them (`blob`: float32 real values) and as the interpreter takes
 * them (`reference`, in its input order): float32 uniform in [-1, 1), or uniform integers over a quantized input's range.
 */
export function randomTfliteInputs(imp: TfliteImport, seed: number): { blob: Record<string, Float32Array>; reference: { dtype: DType; shape: number[]; data: TypedArray }[] } {
  const rng = new Generator(seed);
  const blob: Record<string, Float32Array> = {};
  const reference = imp.inputs.map((io) => {
    const n = io.shape.reduce((a, b) => a * b, 1);
    const q = io.quantization;
    if (q) {
      const ints = Int8Array.from({ length: n }, () => q.min + Math.floor(rng.next() * (q.max - q.min + 1)));
      blob[io.name] = dequantize(io, ints);
      return { dtype: "int8" as const, shape: io.shape, data: ints };
    }
    blob[io.name] = Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
    return { dtype: "float32" as const, shape: io.shape, data: blob[io.name] };
  });
  return { blob, reference };
}

/** Runs the model once on the inputs (in the interpreter's input order), or only describes it when `inputs` is omitted. */
export function runLitert(modelPath: string, inputs?: { dtype: DType; shape: number[]; data: TypedArray }[]): LitertRun {
  const python = findLitertPython();
  if (!python) fail(`the TFLite reference interpreter is not installed: run npm run litert (scripts/install-litert.sh)`);
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-litert-"));
  try {
    inputs?.forEach((x, k) => writeFileSync(join(dir, `input_${k}.npy`), encodeNpy(x.dtype, x.shape, x.data)));
    const res = spawnSync(python, [SCRIPT, modelPath, dir], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (res.status !== 0) fail(`litert_run.py ${modelPath} failed (${res.status ?? res.signal}): ${res.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    const report = JSON.parse(res.stdout.trim().split("\n").pop()!) as { ran: boolean; inputs: LitertTensor[]; outputs: LitertTensor[] };
    const values = report.ran ? report.outputs.map((_, k) => parseNpy(new Uint8Array(readFileSync(join(dir, `output_${k}.npy`))))) : [];
    return { inputs: report.inputs, outputs: report.outputs, values };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
