import { fail } from "../../errors.js";
import type { Graph } from "../../ir/graph.js";
import { Converter, unsupportedType } from "./convert.js";
import { CONVERTERS } from "./ops.js";
import { readTflite, type TfliteModel } from "./reader.js";
import { badQuantization, QUANTIZED_TYPES, perTensor, typeName } from "./tensors.js";

/**
 * TFLite import: a .tflite flatbuffer (float32, or int8/int16 quantized) → our graph IR, NCHW inside, with the
 * model's own NHWC inputs and outputs.
 *
 * Quantized (int8) models run on integer kernels (compiler/ops/quant.ts, runtime-as/q*.ts) with TFLite's integer
 * arithmetic: int8 activations and weights, int32 biases and accumulators, fixed-point requantization; their int8
 * inputs and outputs are int8 in the blob too, as in TFLM (`quantization` gives each one's scale and zero point; see
 * `quantize` / `dequantize`). Operators with no integer kernel yet run in float32 emulation (every quantized
 * activation held as its integers minus the zero point, TFLite's requantization reproduced in float64) and `notes`
 * names them. `{ quantized: "dequantize" }` emulates the whole model that way, with float32 real-valued inputs and
 * outputs (real = scale·(q − zero point)); `{ quantized: "refuse" }` gives an error instead.
 */

export interface TfliteImportOptions {
  /** names the model in error messages (a file path) */
  source?: string;
  /**
   * what to do with a quantized model: run it on integer kernels (default), emulate it in float32 arithmetic with
   * float32 inputs and outputs ("dequantize"), or refuse it
   */
  quantized?: "integer" | "dequantize" | "refuse";
  /**
   * hybrid ops (int8 weights on float activations): "emulate" (default) quantizes their inputs at run time as
   * TFLite's hybrid kernels do, matching the interpreter; "float" computes them in float32 with dequantized weights
   */
  hybrid?: "emulate" | "float";
  /**
   * the integer kernels' requantization rounding: "tflite" (default) is bit-exact with TFLite's builtin kernels,
   * "tflm" with TensorFlow Lite Micro's reference kernels; they differ on requantization ties in convolutions and FC
   */
  rounding?: "tflite" | "tflm";
}

/** One model input or output, as the blob sees it (TFLite's NHWC shape) and as the .tflite file declares it. */
export interface TfliteTensorInfo {
  name: string;
  shape: number[];
  /** the blob's element type: int8 for int8 tensors run on integer kernels, else float32 */
  dtype: "int8" | "float32";
  /** the element type in the .tflite file: FLOAT32, INT8, … */
  tfliteType: string;
  /** set for quantized tensors: real = scale·(q − zeroPoint); a float32 blob value v stands for q = round(v / scale) + zeroPoint */
  quantization: { scale: number; zeroPoint: number; min: number; max: number } | null;
}

export interface TfliteImport {
  graph: Graph;
  inputs: TfliteTensorInfo[];
  outputs: TfliteTensorInfo[];
  /** whether the model is quantized */
  quantized: boolean;
  /** what the import changed about how the model computes: tell the user */
  notes: string[];
  /** operator counts by TFLite type */
  operators: Record<string, number>;
}

/** Imports a .tflite model into a graph (see importTfliteModel for its inputs, outputs and notes). */
export function importTflite(bytes: Uint8Array, opts: TfliteImportOptions = {}): Graph {
  return importTfliteModel(bytes, opts).graph;
}

export function importTfliteModel(bytes: Uint8Array, opts: TfliteImportOptions = {}): TfliteImport {
  const model = readTflite(bytes, opts.source ?? "<tflite>");
  const src = model.source;
  if (model.inputs.length === 0) fail(`${src}: the model has no inputs`);
  if (model.outputs.length === 0) fail(`${src}: the model has no outputs`);
  const quantizedTensors = model.tensors.filter((t) => !t.data && QUANTIZED_TYPES[t.type] && t.quantization);
  const quantized = quantizedTensors.length > 0;
  if (quantized && opts.quantized === "refuse") {
    fail(`${src}: the model is quantized (${quantizedTensors.length} ${typeName(quantizedTensors[0].type)} activations, e.g. '${quantizedTensors[0].name}'), and quantized models were refused`);
  }
  const c = new Converter(model, { simulateQuantization: quantized, emulateHybrid: opts.hybrid !== "float", integerKernels: opts.quantized !== "dequantize", rounding: opts.rounding ?? "tflite" });
  checkSupported(c, model);

  for (const i of model.inputs) c.input(i);
  const written = new Set(model.inputs);
  for (const op of model.operators) {
    for (const i of op.inputs) {
      if (i >= 0 && !written.has(i) && !model.tensors[i].data) c.fail(op, `reads tensor '${model.tensors[i].name}' before any operator writes it (operators must be in execution order)`);
    }
    c.current = op;
    CONVERTERS[op.builtin]!.convert(c, op);
    c.countKernels(op);
    for (const o of op.outputs) written.add(o);
  }
  c.current = null;
  for (const i of model.outputs) if (!written.has(i) && !model.tensors[i].data) fail(`${src}: output '${model.tensors[i].name}' is never written`);
  c.finishOutputs();

  const info = (i: number): TfliteTensorInfo => {
    const t = model.tensors[i];
    const range = QUANTIZED_TYPES[t.type];
    const q = range && t.quantization ? perTensor(t.quantization, t, src) : null;
    return { name: t.name, shape: [...t.shape], dtype: c.isQ8(i) ? "int8" : "float32", tfliteType: typeName(t.type), quantization: q && range ? { ...q, min: range.min, max: range.max } : null };
  };
  const operators: Record<string, number> = {};
  for (const op of model.operators) operators[op.type] = (operators[op.type] ?? 0) + 1;
  const counts = (m: Map<string, number>) => [...m].map(([type, n]) => `${type} ×${n}`).join(", ");
  const notes: string[] = [];
  if (quantized && opts.quantized === "dequantize") {
    notes.push(`quantized model (${typeName(quantizedTensors[0].type)}) emulated in float32 as requested: every quantized activation is held as its ` +
      `integers (q − zero point), integer accumulators are exact and TFLite's fixed-point requantization is reproduced in float64; inputs and ` +
      `outputs are float32 real values, real = scale·(q − zero point), 4 bytes per element`);
  } else if (quantized) {
    if (c.integerOps.size) notes.push(`quantized model (${typeName(quantizedTensors[0].type)}): on int8 integer kernels: ${counts(c.integerOps)}; int8 inputs and outputs carry their scale and zero point`);
    if (c.emulatedOps.size) {
      notes.push(`no integer kernel yet, emulated in float32 (quantized values held as q − zero point, TFLite's requantization in float64): ${counts(c.emulatedOps)}`);
    }
  }
  const hybrid = model.operators.filter((op) => op.inputs.length >= 2 && op.inputs[0] >= 0 && op.inputs[1] >= 0 && c.isHybrid(op.inputs[0], op.inputs[1])).length;
  if (hybrid) {
    notes.push(`${hybrid} hybrid operator${hybrid > 1 ? "s" : ""} (int8 weights on float inputs) quantize their input at run time as TFLite's kernels do: ` +
      `a last-bit difference in that input can move it one int8 step ({ hybrid: "float" } computes them in plain float32)`);
  }
  return { graph: c.g, inputs: model.inputs.map(info), outputs: model.outputs.map(info), quantized, notes, operators };
}

/** The integer a quantized tensor stores for each real value (round half away from zero, saturating). */
export function quantize(info: TfliteTensorInfo, values: ArrayLike<number>): number[] {
  const q = info.quantization;
  if (!q) fail(`tensor '${info.name}' is not quantized`);
  return Array.from(values, (v) => {
    const r = v / q.scale;
    const rounded = Math.sign(r) * Math.round(Math.abs(r));
    return Math.min(q.max, Math.max(q.min, rounded + q.zeroPoint));
  });
}

/** The real values of a quantized tensor's integers. */
export function dequantize(info: TfliteTensorInfo, values: ArrayLike<number>): Float32Array {
  const q = info.quantization;
  if (!q) fail(`tensor '${info.name}' is not quantized`);
  return Float32Array.from(values, (v) => q.scale * (v - q.zeroPoint));
}

/**
 * Every reason the model cannot be imported, found before anything is built and reported in one error:
 * unsupported operator types and variants (with counts and the operators' output names), tensor element types,
 * variable (stateful) and sparse tensors, subgraphs.
 */
function checkSupported(c: Converter, model: TfliteModel): void {
  const problems = new Map<string, string[]>();
  const add = (key: string, where: string) => problems.set(key, [...(problems.get(key) ?? []), where]);
  for (const op of model.operators) {
    const converter = CONVERTERS[op.builtin];
    const label = `#${op.index} ('${op.outputs[0] !== undefined ? model.tensors[op.outputs[0]].name : "no output"}')`;
    if (!converter) {
      add(op.type, label);
      continue;
    }
    c.current = op;
    const reason = converter.check?.(c, op);
    c.current = null;
    if (reason) add(`${op.type} with ${reason}`, label);
    for (const i of [...op.inputs, ...op.outputs]) {
      if (i < 0) continue;
      const t = model.tensors[i];
      const bad = unsupportedType(t) ?? (t.isVariable ? `variable tensor '${t.name}' (stateful models)` : t.isSparse ? `sparse tensor '${t.name}'` : null);
      if (bad) add(`${op.type} on a ${bad.replace(/^tensor /, "tensor ")}`, label);
      const badParameters = badQuantization(t);
      if (badParameters) add(`${op.type}: ${badParameters}`, label);
    }
  }
  for (const i of model.inputs) {
    const bad = unsupportedType(model.tensors[i]);
    if (bad) add(`model input: ${bad}`, `'${model.tensors[i].name}'`);
  }
  if (problems.size === 0) return;
  const count = [...problems.values()].reduce((a, l) => a + l.length, 0);
  const lines = [...problems].map(([what, where]) => {
    const shown = where.slice(0, 5).join(", ") + (where.length > 5 ? `, … ${where.length - 5} more` : "");
    return `  ${what} ×${where.length}: ${where.length === 1 ? "operator" : "operators"} ${shown}`;
  });
  fail(`${model.source}: cannot import ${count} operator${count === 1 ? "" : "s"} (${problems.size} kind${problems.size === 1 ? "" : "s"}); nothing was compiled:\n${lines.join("\n")}`);
}

export { readTflite } from "./reader.js";
export type { TfliteModel, TfliteOperator, TfliteTensor, Quantization } from "./reader.js";
