import { fail } from "../../errors.js";
import type { Graph } from "../../ir/graph.js";
import { Converter, unsupportedType } from "./convert.js";
import { CONVERTERS } from "./ops.js";
import { readTflite, type TfliteModel } from "./reader.js";
import { QUANTIZED_TYPES, perTensor, typeName } from "./tensors.js";

/**
 * TFLite import: a .tflite flatbuffer (float32, or int8/int16 quantized) → our graph IR, NCHW inside, with the
 * model's own NHWC inputs and outputs.
 *
 * Quantized models have no integer kernels to run on yet, so they run in float32 arithmetic, and say so in
 * `notes`: every quantized activation is held as its integers minus the zero point (exact in float32), weights
 * likewise, so convolutions and sums accumulate exactly, and TFLite's fixed-point requantization, integer average
 * pooling and integer ADD are reproduced (float64 where 32-bit products need it): outputs match the int8
 * interpreter. Inputs and outputs are float32 real values, real = scale·(q − zero point), see `quantize` /
 * `dequantize`. Pass `{ quantized: "refuse" }` to get an error instead.
 */

export interface TfliteImportOptions {
  /** names the model in error messages (a file path) */
  source?: string;
  /** what to do with a quantized model: run it dequantized in float32 (default), or refuse it */
  quantized?: "dequantize" | "refuse";
  /**
   * hybrid ops (int8 weights on float activations): "emulate" (default) quantizes their inputs at run time as
   * TFLite's hybrid kernels do, matching the interpreter; "float" computes them in float32 with dequantized weights
   */
  hybrid?: "emulate" | "float";
}

/** One model input or output, as the blob sees it (float32, TFLite's NHWC shape) and as the .tflite file declares it. */
export interface TfliteTensorInfo {
  name: string;
  shape: number[];
  /** the element type in the .tflite file: FLOAT32, INT8, … */
  tfliteType: string;
  /** set for quantized tensors: the blob's float value v stands for the integer round(v / scale) + zeroPoint */
  quantization: { scale: number; zeroPoint: number; min: number; max: number } | null;
}

export interface TfliteImport {
  graph: Graph;
  inputs: TfliteTensorInfo[];
  outputs: TfliteTensorInfo[];
  /** whether the model is quantized (and runs dequantized) */
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
    fail(`${src}: the model is quantized (${quantizedTensors.length} ${typeName(quantizedTensors[0].type)} activations, e.g. '${quantizedTensors[0].name}'); integer kernels do not exist yet, and dequantized float32 execution was refused`);
  }
  const c = new Converter(model, { simulateQuantization: quantized, emulateHybrid: opts.hybrid !== "float" });
  checkSupported(c, model);

  for (const i of model.inputs) {
    const t = model.tensors[i];
    c.input(i, c.g.addInput(t.name, { shape: [...t.shape], dtype: "float32" }));
  }
  const written = new Set(model.inputs);
  for (const op of model.operators) {
    for (const i of op.inputs) {
      if (i >= 0 && !written.has(i) && !model.tensors[i].data) c.fail(op, `reads tensor '${model.tensors[i].name}' before any operator writes it (operators must be in execution order)`);
    }
    c.current = op;
    CONVERTERS[op.builtin]!.convert(c, op);
    for (const o of op.outputs) written.add(o);
  }
  c.current = null;
  for (const i of model.outputs) if (!written.has(i) && !model.tensors[i].data) fail(`${src}: output '${model.tensors[i].name}' is never written`);
  c.finishOutputs();

  const info = (i: number): TfliteTensorInfo => {
    const t = model.tensors[i];
    const range = QUANTIZED_TYPES[t.type];
    const q = range && t.quantization ? perTensor(t.quantization, t, src) : null;
    return { name: t.name, shape: [...t.shape], tfliteType: typeName(t.type), quantization: q && range ? { ...q, min: range.min, max: range.max } : null };
  };
  const operators: Record<string, number> = {};
  for (const op of model.operators) operators[op.type] = (operators[op.type] ?? 0) + 1;
  const notes = quantized
    ? [
        `quantized model (${typeName(quantizedTensors[0].type)}): no integer kernels yet, so it runs in float32 arithmetic holding every quantized ` +
          `activation as its integers (q − zero point): integer accumulators are exact and TFLite's fixed-point requantization is reproduced in ` +
          `float64; inputs and outputs are float32 real values, real = scale·(q − zero point), 4 bytes per element`,
      ]
    : [];
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
