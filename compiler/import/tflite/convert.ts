import { fail, TeenygradError } from "../../errors.js";
import { numel } from "../../ir/dtype.js";
import { Graph, type Attrs, type HostTensor, type Value } from "../../ir/graph.js";
import { shapeStr } from "../../ir/shape.js";
import { inferTypes } from "../../ops/index.js";
import { quantizeMultiplier } from "../../ops/quant.js";
import { permuteHost } from "../../ops/shape.js";
import type { TfliteModel, TfliteOperator, TfliteTensor } from "./reader.js";
import { ActivationFunctionType, TensorType } from "./schema/tflite_generated.js";
import { floatConstant, integerValues, perTensor, QUANTIZED_TYPES, typeName } from "./tensors.js";

/**
 * Builds our graph from a TFLite subgraph. TFLite is NHWC, the IR is NCHW: every rank-4 tensor is tracked in
 * the layout(s) it already exists in, ops that care (convolutions, pooling) take NCHW, ops that see the tensor's
 * own axes (reshape, fully connected, transpose) take NHWC, and layout-free ops (element-wise, softmax over a
 * mapped axis, concat, pad, reductions) stay in whatever layout their input has. A layout change is a permute
 * node, or a reshape when it only moves size-1 dims. Constants are permuted here, on the host.
 */

export const TO_NCHW = [0, 3, 1, 2];
export const TO_NHWC = [0, 2, 3, 1];

export type Layout = "nhwc" | "nchw";
/**
 * How a tensor's values are held: "real" numbers; for the int8 activations of a quantized model, "q8", the stored
 * int8 integers themselves, which the integer kernels (compiler/ops/quant.ts) read and write; or, for ops with no
 * integer kernel (float emulation), the "int"egers q - zero point as float32. Integer-valued convolutions and sums
 * are exact in float32 (below 2^24), so the emulation reproduces the int8 interpreter's accumulators, and TFLite's
 * fixed-point requantization is reproduced in float64.
 */
export type Domain = "real" | "int" | "q8";

/** An activation's quantization grid, with its integer range. */
export interface Grid {
  scale: number;
  zeroPoint: number;
  min: number;
  max: number;
}

export interface ConvertOptions {
  /** hold quantized activations as integers (true for quantized models) */
  simulateQuantization: boolean;
  /** quantize the float inputs of hybrid ops (int8 weights) at run time, as TFLite's hybrid kernels do */
  emulateHybrid: boolean;
  /** int8 activations are held as int8 ("q8") and run on integer kernels where one exists */
  integerKernels: boolean;
  /** whose requantization rounding the integer kernels reproduce: TFLite's builtin kernels, or TFLM's (reference) */
  rounding: "tflite" | "tflm";
}

export class Converter {
  readonly g = new Graph(inferTypes);
  /** every form a tensor exists in, by `index|layout|domain` */
  private readonly values = new Map<string, Value>();
  /** the form each computed tensor was produced in */
  private readonly home = new Map<number, { layout: Layout; domain: Domain }>();
  /** operator types of a quantized model by how they ran: on integer kernels, or emulated in float32 */
  readonly integerOps = new Map<string, number>();
  readonly emulatedOps = new Map<string, number>();

  constructor(readonly model: TfliteModel, readonly opts: ConvertOptions) {}

  get source(): string {
    return this.model.source;
  }
  /** the operator being checked or converted, named when it reads an absent input */
  current: TfliteOperator | null = null;
  tensor(i: number): TfliteTensor {
    const t = this.model.tensors[i];
    if (t) return t;
    const where = this.current ? `${this.label(this.current)}: ` : "";
    fail(`${this.source}: ${where}${i < 0 ? "an input the operator requires is absent (tensor index -1)" : `tensor index ${i} is out of range (${this.model.tensors.length} tensors)`}`);
  }
  /** `#12 CONV_2D ('model/conv2d/Relu')`: an operator as error messages name it (its first output's name) */
  label(op: TfliteOperator): string {
    const out = this.model.tensors[op.outputs[0]]?.name ?? "no output";
    return `operator #${op.index} ${op.type} ('${out}')`;
  }
  fail(op: TfliteOperator, message: string): never {
    fail(`${this.source}: ${this.label(op)}: ${message}`);
  }

  node(op: string, inputs: Value[], attrs: Attrs, name: string): Value {
    try {
      return this.g.addNode(op, inputs, attrs, name).outputs[0];
    } catch (e) {
      // a shape rule's error names the node; the file is named here
      if (e instanceof TeenygradError && !e.message.startsWith(`${this.source}: `)) e.message = `${this.source}: ${e.message}`;
      throw e;
    }
  }
  scalar(x: number, name: string): Value {
    return this.g.addConstant({ shape: [], dtype: "float32", data: new Float32Array([x]) }, name);
  }
  constant(host: HostTensor, name: string): Value {
    return this.g.addConstant(host, name, "weight");
  }

  isConstant(i: number): boolean {
    return this.tensor(i).data !== null;
  }
  /** A constant's values as float32 in TFLite's layout (dequantized when it is integer). */
  floatData(op: TfliteOperator, i: number, what: string): HostTensor {
    if (i < 0) this.fail(op, `${what} is missing`);
    if (!this.isConstant(i)) this.fail(op, `${what} ('${this.tensor(i).name}') must be a constant`);
    return floatConstant(this.tensor(i), this.source);
  }
  /** A quantized constant's integers minus their zero points (per channel), as float32 in TFLite's layout. */
  centeredData(op: TfliteOperator, i: number, what: string): HostTensor {
    const t = this.tensor(i);
    if (!t.data || !t.quantization) this.fail(op, `${what} ('${t.name}') must be a quantized constant`);
    const { zeroPoint, axis } = t.quantization;
    const inner = zeroPoint.length > 1 ? numel(t.shape.slice(axis + 1)) : 1;
    const q = integerValues(t, this.source);
    return { shape: [...t.shape], dtype: "float32", data: Float32Array.from(q, (v, k) => v - zeroPoint[Math.floor(k / inner) % zeroPoint.length]) };
  }
  /** A constant integer operand (shapes, axes, paddings) as numbers. */
  ints(op: TfliteOperator, i: number, what: string): number[] {
    if (i === undefined || i < 0) this.fail(op, `${what} is missing`);
    const t = this.tensor(i);
    if (!t.data) this.fail(op, `${what} ('${t.name}') must be a constant; computed ${what}s are not supported`);
    return integerValues(t, this.source);
  }

  /** The grid of a quantized activation held in the integer domain, or null (float tensors, float models). */
  grid(i: number): Grid | null {
    const t = this.tensor(i);
    const range = QUANTIZED_TYPES[t.type];
    if (!this.opts.simulateQuantization || !range || !t.quantization || t.data) return null;
    return { ...perTensor(t.quantization, t, this.source), min: range.min, max: range.max };
  }
  /** Whether the tensor is an int8 activation held as int8 ("q8"), the integer kernels' operand. */
  isQ8(i: number): boolean {
    return this.opts.integerKernels && this.tensor(i).type === TensorType.INT8 && this.grid(i) !== null;
  }
  /**
   * "q8" (or "int" when emulating) when every given tensor is a quantized activation on one grid: data movement then
   * stays integer.
   */
  sharedDomain(tensors: number[]): Domain {
    const grids = tensors.map((i) => this.grid(i));
    if (!grids.every((g) => g && g.scale === grids[0]!.scale && g.zeroPoint === grids[0]!.zeroPoint)) return "real";
    return tensors.every((i) => this.isQ8(i)) ? "q8" : "int";
  }
  /**
   * After an operator is converted: counts it as run on integer kernels when every quantized activation it wrote is
   * held as int8, or as emulated in float32 otherwise (operators touching no quantized activation are not counted).
   */
  countKernels(op: TfliteOperator): void {
    const quantized = [...op.inputs, ...op.outputs].some((i) => i >= 0 && this.grid(i) !== null);
    if (!quantized) return;
    const integer = op.outputs.every((i) => !this.grid(i) || this.home.get(i)?.domain === "q8");
    const map = integer ? this.integerOps : this.emulatedOps;
    map.set(op.type, (map.get(op.type) ?? 0) + 1);
  }

  /** The tensor in the given layout and domain, converted (once) from the form it was produced in. */
  get(i: number, layout: Layout, domain: Domain, op?: TfliteOperator): Value {
    const key = `${i}|${layout}|${domain}`;
    const known = this.values.get(key);
    if (known) return known;
    const t = this.tensor(i);
    let v: Value;
    if (t.data) {
      if (domain === "q8") this.fail(op!, `constant '${t.name}' cannot be an int8 operand here`);
      const host = domain === "int" ? this.centeredData(op!, i, "a constant operand") : floatConstant(t, this.source);
      v = this.constant(layout === "nchw" ? this.permuteConstant(host, op) : host, t.name);
    } else {
      const home = this.home.get(i);
      if (!home) fail(`${this.source}: ${op ? this.label(op) : "the subgraph"} reads tensor '${t.name}' before any operator writes it`);
      if (domain !== "real" && !this.grid(i)) this.fail(op!, `tensor '${t.name}' is not a quantized activation, but the op reads it as integers`);
      // change the domain where the tensor lives (once), then the layout
      let from = this.values.get(`${i}|${home.layout}|${domain}`);
      if (!from) {
        from = this.convertDomain(this.values.get(`${i}|${home.layout}|${home.domain}`)!, i, home.domain, domain);
        this.values.set(`${i}|${home.layout}|${domain}`, from);
      }
      if (home.layout === layout) return from;
      if (layout === "nchw" && from.shape.length !== 4) this.fail(op!, `expects a 4-d NHWC tensor, got '${t.name}' ${shapeStr(from.shape)}`);
      v = this.relayout(from, layout === "nchw" ? TO_NCHW : TO_NHWC, `${t.name}:${layout}`);
    }
    this.values.set(key, v);
    return v;
  }
  private permuteConstant(host: HostTensor, op?: TfliteOperator): HostTensor {
    if (host.shape.length !== 4) this.fail(op!, `expects a 4-d NHWC tensor, got a constant ${shapeStr(host.shape)}`);
    return permuteHost(host, TO_NCHW);
  }
  /**
   * Between the domains: int8 (q8) ↔ float32 real values by the (de)quantize kernels, int8 ↔ emulated integers
   * (q − zp) by the same kernels on scale 1, emulated integers → real values (q − zp)·scale, and real values →
   * emulated integers rounded to the grid.
   */
  private convertDomain(v: Value, i: number, from: Domain, to: Domain): Value {
    const grid = this.grid(i)!;
    const name = this.tensor(i).name;
    const onGrid = { scale: to === "int" || from === "int" ? 1 : grid.scale, zeroPoint: grid.zeroPoint };
    if (from === "q8") return this.node("dequantize", [v], onGrid, `${name}/${to === "int" ? "centered" : "dequantize"}`);
    if (to === "q8") return this.node("quantize", [v], onGrid, `${name}/int8`);
    if (from === "int") return this.node("mul", [v, this.scalar(grid.scale, `${name}/scale`)], {}, `${name}/dequantize`);
    return this.toGrid(this.node("div", [v, this.scalar(grid.scale, `${name}/scale`)], {}, `${name}/steps`), grid, name);
  }
  /** steps (real value / scale) → round, then clamp to [lo, hi] on the grid: the integers minus the zero point */
  toGrid(steps: Value, grid: Grid, name: string, lo = grid.min, hi = grid.max): Value {
    const rounded = this.node("round", [steps], {}, `${name}/round`);
    return this.node("clamp", [rounded], { min: lo - grid.zeroPoint, max: hi - grid.zeroPoint }, `${name}/quantize`);
  }

  /** The tensor in TFLite's own layout, real values. */
  nhwc(i: number, op?: TfliteOperator): Value {
    return this.get(i, "nhwc", "real", op);
  }
  /** A rank-4 tensor in NCHW, real values. */
  nchw(i: number, op: TfliteOperator): Value {
    return this.get(i, "nchw", "real", op);
  }
  /** Whether the tensor was produced in NCHW: layout-free ops then stay in NCHW instead of converting back. */
  isNchw(i: number): boolean {
    return this.home.get(i)?.layout === "nchw";
  }

  /** A layout change; a permutation that keeps the order of the non-unit dims moves no bytes and is a reshape (a view). */
  relayout(v: Value, perm: number[], name: string): Value {
    if (v.isConstant) return this.g.addConstant(permuteHost(v.host(), perm), v.name, v.kind as "weight");
    const shape = perm.map((d) => v.shape[d]);
    const moved = perm.filter((d) => v.shape[d] !== 1);
    const keepsOrder = moved.every((d, k) => k === 0 || d > moved[k - 1]);
    return keepsOrder ? this.node("reshape", [v], { shape }, name) : this.node("permute", [v], { perm }, name);
  }

  /**
   * Records an operator's output `i`; the value's shape must be the one the model declares for that tensor (in NCHW
   * the declared NHWC shape permuted). Real values of a quantized activation are rounded to its grid here.
   */
  set(op: TfliteOperator, i: number, v: Value, layout: Layout, domain: Domain = "real"): void {
    const t = this.tensor(i);
    const got = layout === "nchw" ? TO_NHWC.map((d) => v.shape[d]) : v.shape;
    if (got.join() !== t.shape.join()) {
      this.fail(op, `computes ${shapeStr(got)} for '${t.name}' but the model declares ${shapeStr(t.shape)}`);
    }
    this.store(i, v, layout, domain);
  }
  private store(i: number, v: Value, layout: Layout, domain: Domain): void {
    const grid = this.grid(i);
    if (domain !== "real" && !grid) throw new Error(`tensor ${this.tensor(i).name} has no grid for integer values`);
    const held = grid && domain === "real" ? this.convertDomain(v, i, "real", "int") : v;
    const as: Domain = domain === "q8" ? "q8" : grid ? "int" : "real";
    this.values.set(`${i}|${layout}|${as}`, held);
    this.home.set(i, { layout, domain: as });
  }

  /** A graph input (TFLite layout): int8 for int8 activations run on integer kernels, else float32 real values. */
  input(i: number): void {
    const t = this.tensor(i);
    const q8 = this.isQ8(i);
    const v = this.g.addInput(t.name, { shape: [...t.shape], dtype: q8 ? "int8" : "float32" });
    if (q8) v.quantization = this.quantization(i);
    this.store(i, v, "nhwc", q8 ? "q8" : "real");
  }
  private quantization(i: number): { scale: number; zeroPoint: number } {
    const { scale, zeroPoint } = this.grid(i)!;
    return { scale, zeroPoint };
  }

  /**
   * The integers of the op's output from an integer accumulator: TFLite's fixed-point requantization by the
   * real multipliers (one, or one per channel shaped by `channelShape`), clamped to the fused activation's range.
   */
  requantize(op: TfliteOperator, acc: Value, multipliers: number[], channelShape: (n: number) => number[], act: ActivationFunctionType): Value {
    const i = op.outputs[0];
    const grid = this.grid(i)!;
    const name = this.tensor(i).name;
    const [lo, hi] = this.activationRange(op, grid, act);
    const wide = this.node("cast", [acc], { to: "float64" }, `${name}/wide`);
    const scaled = this.fixedPointMultiply(wide, multipliers, channelShape, `${name}/requantize`);
    const narrow = this.node("cast", [scaled], { to: "float32" }, `${name}/narrow`);
    return this.node("clamp", [narrow], { min: lo - grid.zeroPoint, max: hi - grid.zeroPoint }, `${name}/quantize`);
  }

  /**
   * TFLite's MultiplyByQuantizedMultiplier on integer-valued float64s: M becomes q·2^(shift-31) with a 31-bit
   * integer q; x·2^max(shift,0)·q/2^31 is rounded half up (SaturatingRoundingDoublingHighMul), then divided by
   * 2^max(-shift,0) and rounded half up again. float64 holds x·q to within 2^-53, so both roundings land where the
   * interpreter's 64-bit integer ones do (checked tensor by tensor against the interpreter on the MLPerf models).
   */
  fixedPointMultiply(x: Value, multipliers: number[], channelShape: (n: number) => number[], name: string): Value {
    const parts = multipliers.map(quantizeMultiplier);
    const constant = (values: number[], what: string) =>
      this.g.addConstant({ shape: values.length === 1 ? [1] : channelShape(values.length), dtype: "float64", data: Float64Array.from(values) }, `${name}/${what}`);
    const n = (op: string, inputs: Value[], what: string) => this.node(op, inputs, {}, `${name}/${what}`);
    const roundHalfUp = (v: Value, what: string) => n("floor", [n("add", [v, constant([0.5], `${what}/half`)], `${what}/nudged`)], what);
    const high = roundHalfUp(n("mul", [x, constant(parts.map((p) => p.q * 2 ** (Math.max(p.shift, 0) - 31)), "multiplier")], "product"), "high");
    return roundHalfUp(n("mul", [high, constant(parts.map((p) => 2 ** -Math.max(-p.shift, 0)), "divisor")], "divided"), "rounded");
  }

  /** TFLite's quantized activation range: the grid's range cut to the activation's real range, rounded to the grid. */
  activationRange(op: TfliteOperator, grid: Grid, act: ActivationFunctionType): [number, number] {
    const q = (x: number) => grid.zeroPoint + Math.sign(x) * Math.round(Math.abs(x / grid.scale));
    switch (act) {
      case ActivationFunctionType.NONE: return [grid.min, grid.max];
      case ActivationFunctionType.RELU: return [Math.max(grid.min, q(0)), grid.max];
      case ActivationFunctionType.RELU6: return [Math.max(grid.min, q(0)), Math.min(grid.max, q(6))];
      case ActivationFunctionType.RELU_N1_TO_1: return [Math.max(grid.min, q(-1)), Math.min(grid.max, q(1))];
    }
    this.fail(op, `fused activation ${ActivationFunctionType[act] ?? act} is not supported on quantized tensors`);
  }

  /**
   * TFLite's hybrid ("dynamic range") kernels, int8 weights on float activations, quantize their input at run
   * time, per batch element (the leading `batchDims` axes), and compute in integers. We compute in float32 on the
   * input rounded the same way, which gives the interpreter's results:
   * - asymmetric (convolutions, and fully connected with asymmetric_quantize_inputs): scale = (max(x, 0) - min(x, 0)) / 255,
   *   zero point zp = round(-128 - min(x, 0) / scale), q = clamp(round(x / scale + zp), -128, 127), x ≈ (q - zp)·scale;
   * - symmetric: r = max |x|, q = clamp(round(x·127 / r), -127, 127), x ≈ q·r / 127.
   */
  dynamicQuantize(x: Value, symmetric: boolean, batchDims: number, name: string): Value {
    const axes = x.shape.map((_, d) => d).slice(batchDims);
    const c = (v: number, what: string) => this.scalar(v, `${name}/${what}`);
    const n = (op: string, inputs: Value[], what: string, attrs: Attrs = {}) => this.node(op, inputs, attrs, `${name}/${what}`);
    // an all-zero input gets scale FLT_MIN (instead of TFLite's 1): it still rounds to zeros
    const tiny = c(1.1754943508222875e-38, "min_scale");
    if (symmetric) {
      const range = n("maximum", [n("reduce", [n("abs", [x], "abs")], "range", { kind: "max", axes, keepdim: true }), tiny], "range_nonzero");
      const q = n("clamp", [n("round", [n("mul", [x, n("div", [c(127, "qmax"), range], "inv_scale")], "scaled")], "round")], "q", { min: -127, max: 127 });
      return n("mul", [q, n("div", [range, c(127, "qmax")], "scale")], "dequantized");
    }
    const lo = n("minimum", [n("reduce", [x], "min", { kind: "min", axes, keepdim: true }), c(0, "zero")], "rmin");
    const hi = n("maximum", [n("reduce", [x], "max", { kind: "max", axes, keepdim: true }), c(0, "zero")], "rmax");
    const scale = n("maximum", [n("div", [n("sub", [hi, lo], "span"), c(255, "levels")], "scale_raw"), tiny], "scale");
    const zp = n("round", [n("sub", [c(-128, "qmin"), n("div", [lo, scale], "min_steps")], "zp_raw")], "zp");
    const q = n("clamp", [n("round", [n("add", [n("mul", [x, n("reciprocal", [scale], "inv_scale")], "scaled"), zp], "shifted")], "round")], "q", { min: -128, max: 127 });
    return n("mul", [n("sub", [q, zp], "centered"), scale], "dequantized");
  }

  /** Whether an operator with these input and weight tensors runs TFLite's hybrid kernel (int8 weights, float input). */
  isHybrid(input: number, weights: number): boolean {
    const x = this.tensor(input), w = this.tensor(weights);
    return this.opts.emulateHybrid && !QUANTIZED_TYPES[x.type] && (w.type === TensorType.INT8 || w.type === TensorType.UINT8) && w.data !== null;
  }

  /** A fused activation function applied to v. */
  activate(op: TfliteOperator, v: Value, act: ActivationFunctionType): Value {
    const name = `${this.tensor(op.outputs[0]).name}/act`;
    switch (act) {
      case ActivationFunctionType.NONE: return v;
      case ActivationFunctionType.RELU: return this.node("relu", [v], {}, name);
      case ActivationFunctionType.RELU6: return this.node("clamp", [v], { min: 0, max: 6 }, name);
      case ActivationFunctionType.RELU_N1_TO_1: return this.node("clamp", [v], { min: -1, max: 1 }, name);
      case ActivationFunctionType.TANH: return this.node("tanh", [v], {}, name);
    }
    this.fail(op, `fused activation ${ActivationFunctionType[act] ?? act} is not supported`);
  }

  /** Names the graph outputs after the model's output tensors, in TFLite layout. */
  finishOutputs(): void {
    const used = new Set<Value>();
    this.g.outputs = this.model.outputs.map((i) => {
      let v = this.get(i, "nhwc", this.isQ8(i) ? "q8" : "real");
      // an output that is an input, a constant or another output gets a copy of its own (a view)
      if (v.kind !== "node" || used.has(v)) v = this.node("reshape", [v], { shape: [...v.shape] }, this.tensor(i).name);
      used.add(v);
      v.name = this.tensor(i).name;
      if (this.isQ8(i)) v.quantization = this.quantization(i);
      return v;
    });
  }
}

/** Why a tensor's element type cannot be imported, or null. */
export function unsupportedType(t: TfliteTensor): string | null {
  if (t.type === TensorType.FLOAT32 || t.type === TensorType.FLOAT16) return null;
  if (QUANTIZED_TYPES[t.type] && (t.quantization || t.data)) return null;
  if (t.type === TensorType.INT32 || t.type === TensorType.INT64) return t.data ? null : `tensor '${t.name}' is a computed ${typeName(t.type)} (integer activations are not supported yet)`;
  return `tensor '${t.name}' has element type ${typeName(t.type)}`;
}

/** TF's SAME padding: output ceil(in / stride), the extra row/column at the end. */
export function samePads(size: number, k: number, stride: number, dilation: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

export const nchwAxis = (axis: number): number => TO_NCHW.indexOf(axis);

/** numel check shared by reshape-like ops */
export function sameCount(c: Converter, op: TfliteOperator, from: number[], to: number[]): void {
  if (numel(from) !== numel(to)) c.fail(op, `cannot reshape ${shapeStr(from)} (${numel(from)} elements) to ${shapeStr(to)}`);
}
