// One case of `npm run fuzz`: a seeded mutation of a real model file, taken through import, graph passes, memory
// planning and entry generation (everything but asc). Shared by the script's workers and the test slice.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { emitEntry } from "../compiler/codegen/emit.js";
import { layoutMemory } from "../compiler/codegen/memory.js";
import { Generator, importOnnx, TeenygradError } from "../compiler/index.js";
import { findOnnxBackendSuite } from "../compiler/import/onnx/backend-test.js";
import { findMlperfDir, MLPERF_MODELS } from "../compiler/import/tflite/mlperf.js";
import { importTflite } from "../compiler/import/tflite/index.js";
import { optimize } from "../compiler/passes/index.js";
import { MUTATORS } from "../test/helpers/mutate.js";

export interface FuzzCorpus {
  onnx: string[];
  tflite: string[];
}

/** the real model files in the shared data (never copied into the repository); empty lists when absent */
export function findCorpus(): FuzzCorpus {
  const suite = findOnnxBackendSuite();
  const node = suite ? join(suite, "node") : null;
  const onnx = node && existsSync(node) ? readdirSync(node).sort().map((t) => join(node, t, "model.onnx")).filter(existsSync) : [];
  const dir = findMlperfDir();
  const tflite = dir ? MLPERF_MODELS.map((m) => join(dir, m.file)).filter(existsSync) : [];
  return { onnx, tflite };
}

/** what a case came to; only the first two are acceptable */
export type Outcome = "planned" | "TeenygradError" | "internal error" | "other exception" | "hang" | "crash";
export const OUTCOMES: Outcome[] = ["planned", "TeenygradError", "internal error", "other exception", "hang", "crash"];

export interface CaseResult {
  index: number;
  format: "onnx" | "tflite";
  file: string;
  mutation: string;
  outcome: Outcome;
  /** the stage that refused it, or the unexpected error's message and stack */
  detail: string;
}

/** the file and mutation of case `index` of a seeded run: a fifth of the cases mutate a TFLite model, when there are any */
export function describeCase(corpus: FuzzCorpus, seed: number, index: number): { format: "onnx" | "tflite"; file: string; mutation: number; rng: Generator } {
  const rng = new Generator(seed * 1_000_003 + index);
  const int = (n: number) => Math.floor(rng.next() * n);
  const tflite = corpus.tflite.length > 0 && (corpus.onnx.length === 0 || int(5) === 0);
  const files = tflite ? corpus.tflite : corpus.onnx;
  return { format: tflite ? "tflite" : "onnx", file: files[int(files.length)], mutation: int(MUTATORS.length), rng };
}

/** the format, file and mutation name of a case, without running it */
export function caseHeader(corpus: FuzzCorpus, seed: number, index: number): Pick<CaseResult, "format" | "file" | "mutation"> {
  const { format, file, mutation } = describeCase(corpus, seed, index);
  return { format, file, mutation: MUTATORS[mutation][0] };
}

const fileCache = new Map<string, Uint8Array>();

/** Runs case `index`: throws nothing; every exception becomes an outcome. */
export function runCase(corpus: FuzzCorpus, seed: number, index: number): CaseResult {
  const { format, file, mutation, rng } = describeCase(corpus, seed, index);
  let original = fileCache.get(file);
  if (!original) fileCache.set(file, (original = new Uint8Array(readFileSync(file))));
  const [name, mutate] = MUTATORS[mutation];
  const bytes = mutate(original, (n) => Math.floor(rng.next() * n));
  const result = (outcome: Outcome, detail: string): CaseResult => ({ index, format, file, mutation: name, outcome, detail });
  let stage = "import";
  try {
    const source = `fuzzed.${format}`;
    const graph = format === "onnx" ? importOnnx(bytes, { source }).graph : importTflite(bytes, { source });
    stage = "optimize";
    optimize(graph);
    stage = "plan";
    const layout = layoutMemory(graph);
    stage = "emit";
    emitEntry(graph, layout, { wasi: false, modelName: source });
    return result("planned", "");
  } catch (e) {
    const err = e as Error;
    if (!(e instanceof TeenygradError)) return result("other exception", `${stage}: ${err?.stack ?? String(e)}`);
    // "internal: …" is an invariant the compiler itself broke, not a message about the input
    if (/\binternal(:| error)/.test(err.message)) return result("internal error", `${stage}: ${err.message}`);
    return result("TeenygradError", stage);
  }
}
