import type * as flatbuffers from "flatbuffers";
import { numel } from "../../ir/dtype.js";
import type { Attrs, HostTensor, Value } from "../../ir/graph.js";
import { addParameters, lookupTable, meanParameters, quantizeMultiplier, requantTable, sigmoidF32, softmaxTable, tanhF32 } from "../../ops/quant.js";
import { permuteHost } from "../../ops/shape.js";
import { Converter, nchwAxis, sameCount, samePads, TO_NCHW } from "./convert.js";
import type { TfliteOperator } from "./reader.js";
import { integerValues, perTensor } from "./tensors.js";
import {
  ActivationFunctionType, AddOptions, BuiltinOperator, BuiltinOptions, ConcatenationOptions, Conv2DOptions, DepthwiseConv2DOptions,
  DivOptions, FullyConnectedOptions, FullyConnectedOptionsWeightsFormat, LeakyReluOptions, MulOptions, Padding, Pool2DOptions,
  ReducerOptions, SoftmaxOptions, StridedSliceOptions, SubOptions, TensorType,
} from "./schema/tflite_generated.js";

/**
 * One converter per TFLite builtin: `check` says, before anything is built, why this particular operator cannot
 * be imported (so one error lists every problem); `convert` adds its nodes.
 */
export interface OpConverter {
  check?(c: Converter, op: TfliteOperator): string | null;
  convert(c: Converter, op: TfliteOperator): void;
}

const ACTIVATIONS = new Set([ActivationFunctionType.NONE, ActivationFunctionType.RELU, ActivationFunctionType.RELU6, ActivationFunctionType.RELU_N1_TO_1, ActivationFunctionType.TANH]);
const checkActivation = (act: ActivationFunctionType): string | null =>
  ACTIVATIONS.has(act) ? null : `fused activation ${ActivationFunctionType[act] ?? act}`;
const out = (c: Converter, op: TfliteOperator): string => c.tensor(op.outputs[0]).name;

function positive(c: Converter, op: TfliteOperator, what: string, values: number[]): number[] {
  if (values.some((v) => !Number.isInteger(v) || v < 1)) c.fail(op, `${what} must be positive integers, got [${values}]`);
  return values;
}

/** [top, left, bottom, right] for a 2-d window over an NCHW input. */
function windowPads(x: Value, padding: Padding, k: number[], stride: number[], dilation: number[]): number[] {
  if (padding !== Padding.SAME) return [0, 0, 0, 0];
  const [top, bottom] = samePads(x.shape[2], k[0], stride[0], dilation[0]);
  const [left, right] = samePads(x.shape[3], k[1], stride[1], dilation[1]);
  return [top, left, bottom, right];
}

function bias(c: Converter, op: TfliteOperator, i: number | undefined, integer = false): Value[] {
  if (i === undefined || i < 0) return [];
  const b = integer ? c.centeredData(op, i, "the bias") : c.floatData(op, i, "the bias");
  return [c.constant({ ...b, shape: [numel(b.shape)] }, c.tensor(i).name)];
}

/**
 * Whether a conv / fully connected runs TFLite's integer kernel: quantized input, weights and output. It then
 * accumulates integers (exact in float32) and requantizes with the multiplier input scale · weight scale / output scale.
 */
function isInteger(c: Converter, op: TfliteOperator): boolean {
  const w = op.inputs[1] >= 0 ? c.tensor(op.inputs[1]) : null;
  return c.grid(op.inputs[0]) !== null && c.grid(op.outputs[0]) !== null && w !== null && w.quantization !== null && w.data !== null;
}
/** The real requantization multipliers input scale · weight scale / output scale: one per output channel, or one. */
function multipliers(c: Converter, op: TfliteOperator): number[] {
  const sIn = c.grid(op.inputs[0])!.scale, sOut = c.grid(op.outputs[0])!.scale;
  return c.tensor(op.inputs[1]).quantization!.scale.map((s) => (sIn * s) / sOut);
}
/** The fused activation on integers of the output grid: a clamp to TFLite's quantized activation range. */
function activateInteger(c: Converter, op: TfliteOperator, v: Value, act: ActivationFunctionType): Value {
  if (act === ActivationFunctionType.NONE) return v;
  const grid = c.grid(op.outputs[0])!;
  const [lo, hi] = c.activationRange(op, grid, act);
  return c.node("clamp", [v], { min: lo - grid.zeroPoint, max: hi - grid.zeroPoint }, `${out(c, op)}/act`);
}

// --- int8 integer kernels ------------------------------------------------------------------------------
const CLAMPS = new Set([ActivationFunctionType.NONE, ActivationFunctionType.RELU, ActivationFunctionType.RELU6, ActivationFunctionType.RELU_N1_TO_1]);

/**
 * Whether a conv / fully connected runs on the int8 kernels: int8 input and output, constant int8 weights with zero
 * points 0 (TFLite's int8 spec) per tensor or per output channel, a constant int32 bias, a clamping activation.
 */
function onIntegerKernel(c: Converter, op: TfliteOperator, channels: number, act: ActivationFunctionType): boolean {
  const [xi, wi, bi] = op.inputs;
  if (!c.isQ8(xi) || !c.isQ8(op.outputs[0]) || !CLAMPS.has(act)) return false;
  const w = c.tensor(wi), q = w.quantization;
  if (w.type !== TensorType.INT8 || !w.data || !q || q.zeroPoint.some((z) => z !== 0) || (q.scale.length !== 1 && q.scale.length !== channels)) return false;
  return bi === undefined || bi < 0 || (c.tensor(bi).type === TensorType.INT32 && c.tensor(bi).data !== null);
}

/** A constant's stored int8 values, in TFLite's layout. */
function int8Data(c: Converter, i: number): HostTensor {
  const t = c.tensor(i);
  return { shape: [...t.shape], dtype: "int8", data: Int8Array.from(integerValues(t, c.source)) };
}

/**
 * The int32 bias (zeros when absent), the requantization table, the zero points and clamp of an integer conv / FC,
 * and the tie rule of its final rounding shift: TFLite's builtin CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED send
 * ties up (ruy's shift; measured against ai-edge-litert, e.g. str_ww's depthwise layers), TFLM's reference kernels
 * away from zero.
 */
function integerOperands(c: Converter, op: TfliteOperator, channels: number, act: ActivationFunctionType): { operands: Value[]; attrs: Attrs } {
  const bi = op.inputs[2];
  const bias = bi !== undefined && bi >= 0 ? Int32Array.from(integerValues(c.tensor(bi), c.source)) : new Int32Array(channels);
  if (bias.length !== channels) c.fail(op, `bias has ${bias.length} values for ${channels} output channels`);
  const m = multipliers(c, op);
  const rq = requantTable(m.length === 1 ? Array(channels).fill(m[0]) : m, `${c.source}: ${c.label(op)}`);
  const grid = c.grid(op.outputs[0])!;
  const [actMin, actMax] = c.activationRange(op, grid, act);
  return {
    operands: [c.constant({ shape: [channels], dtype: "int32", data: bias }, bi >= 0 ? c.tensor(bi).name : `${out(c, op)}/bias`), c.constant(rq, `${out(c, op)}/requantization`)],
    attrs: { inZp: c.grid(op.inputs[0])!.zeroPoint, outZp: grid.zeroPoint, actMin, actMax, rounding: c.opts.rounding === "tflite" ? "up" : "away" },
  };
}

/** The clamp of a pooling / add output on its own grid. */
function integerClamp(c: Converter, op: TfliteOperator, act: ActivationFunctionType): { actMin: number; actMax: number } {
  const [actMin, actMax] = c.activationRange(op, c.grid(op.outputs[0])!, act);
  return { actMin, actMax };
}

// --- convolutions (NCHW) -----------------------------------------------------------------------------
const conv2d: OpConverter = {
  check(c, op) {
    const o = c.model.options(op, BuiltinOptions.Conv2DOptions, () => new Conv2DOptions());
    if (!o) return "no Conv2DOptions";
    if (op.inputs[1] === undefined || op.inputs[1] < 0 || !c.isConstant(op.inputs[1])) return "weights that are not constant";
    return checkActivation(o.fusedActivationFunction());
  },
  convert(c, op) {
    const o = c.model.options(op, BuiltinOptions.Conv2DOptions, () => new Conv2DOptions())!;
    const act = o.fusedActivationFunction();
    const OCs = c.tensor(op.inputs[1]).shape[0];
    if (onIntegerKernel(c, op, OCs, act)) {
      const x = c.get(op.inputs[0], "nchw", "q8", op);
      const wt = int8Data(c, op.inputs[1]);
      if (wt.shape.length !== 4) c.fail(op, `filter must be [OC, KH, KW, IC], got [${wt.shape}]`);
      const [, KH, KW, IC] = wt.shape;
      const stride = positive(c, op, "strides", [o.strideH(), o.strideW()]);
      const dilation = positive(c, op, "dilations", [o.dilationHFactor(), o.dilationWFactor()]);
      if (x.shape[1] % IC) c.fail(op, `input has ${x.shape[1]} channels, not a multiple of the filter's ${IC}`);
      const { operands, attrs } = integerOperands(c, op, OCs, act);
      const geometry = { stride, pads: windowPads(x, o.padding(), [KH, KW], stride, dilation), dilation, groups: x.shape[1] / IC };
      const w = c.constant(permuteHost(wt, [0, 3, 1, 2]), c.tensor(op.inputs[1]).name);
      c.set(op, op.outputs[0], c.node("qconv2d", [x, w, ...operands], { ...geometry, ...attrs }, out(c, op)), "nchw", "q8");
      return;
    }
    const integer = isInteger(c, op);
    let x = c.get(op.inputs[0], "nchw", integer ? "int" : "real", op);
    // hybrid per-channel kernels quantize the input asymmetrically, per-tensor ones symmetrically
    const perChannel = (c.tensor(op.inputs[1]).quantization?.scale.length ?? 1) > 1;
    if (c.isHybrid(op.inputs[0], op.inputs[1])) x = c.dynamicQuantize(x, !perChannel, 1, `${out(c, op)}/input`);
    const wt = integer ? c.centeredData(op, op.inputs[1], "the filter") : c.floatData(op, op.inputs[1], "the filter");
    if (wt.shape.length !== 4) c.fail(op, `filter must be [OC, KH, KW, IC], got [${wt.shape}]`);
    const [, KH, KW, IC] = wt.shape;
    // TFLite [OC, KH, KW, IC] → [OC, IC, KH, KW]
    const w = c.constant(permuteHost(wt, [0, 3, 1, 2]), c.tensor(op.inputs[1]).name);
    const stride = positive(c, op, "strides", [o.strideH(), o.strideW()]);
    const dilation = positive(c, op, "dilations", [o.dilationHFactor(), o.dilationWFactor()]);
    if (x.shape[1] % IC) c.fail(op, `input has ${x.shape[1]} channels, not a multiple of the filter's ${IC}`);
    const attrs = { stride, pads: windowPads(x, o.padding(), [KH, KW], stride, dilation), dilation, groups: x.shape[1] / IC };
    const y = c.node("conv2d", [x, w, ...bias(c, op, op.inputs[2], integer)], attrs, out(c, op));
    if (integer) c.set(op, op.outputs[0], c.requantize(op, y, multipliers(c, op), (n) => [n, 1, 1], o.fusedActivationFunction()), "nchw", "int");
    else c.set(op, op.outputs[0], c.activate(op, y, o.fusedActivationFunction()), "nchw");
  },
};

const depthwiseConv2d: OpConverter = {
  check(c, op) {
    const o = c.model.options(op, BuiltinOptions.DepthwiseConv2DOptions, () => new DepthwiseConv2DOptions());
    if (!o) return "no DepthwiseConv2DOptions";
    if (op.inputs[1] === undefined || op.inputs[1] < 0 || !c.isConstant(op.inputs[1])) return "weights that are not constant";
    return checkActivation(o.fusedActivationFunction());
  },
  convert(c, op) {
    const o = c.model.options(op, BuiltinOptions.DepthwiseConv2DOptions, () => new DepthwiseConv2DOptions())!;
    const act = o.fusedActivationFunction();
    const OCs = c.tensor(op.inputs[1]).shape[3];
    if (onIntegerKernel(c, op, OCs, act)) {
      const x = c.get(op.inputs[0], "nchw", "q8", op);
      const wt = int8Data(c, op.inputs[1]);
      if (wt.shape.length !== 4 || wt.shape[0] !== 1) c.fail(op, `filter must be [1, KH, KW, C·multiplier], got [${wt.shape}]`);
      const [, KH, KW] = wt.shape;
      const C = x.shape[1];
      if (OCs % C) c.fail(op, `filter has ${OCs} channels, not a multiple of the input's ${C}`);
      const stride = positive(c, op, "strides", [o.strideH(), o.strideW()]);
      const dilation = positive(c, op, "dilations", [o.dilationHFactor(), o.dilationWFactor()]);
      const { operands, attrs } = integerOperands(c, op, OCs, act);
      const geometry = { stride, pads: windowPads(x, o.padding(), [KH, KW], stride, dilation), dilation, groups: C };
      const w = c.constant(permuteHost(wt, [3, 0, 1, 2]), c.tensor(op.inputs[1]).name);
      c.set(op, op.outputs[0], c.node("qconv2d", [x, w, ...operands], { ...geometry, ...attrs }, out(c, op)), "nchw", "q8");
      return;
    }
    const integer = isInteger(c, op);
    let x = c.get(op.inputs[0], "nchw", integer ? "int" : "real", op);
    if (c.isHybrid(op.inputs[0], op.inputs[1])) x = c.dynamicQuantize(x, false, 1, `${out(c, op)}/input`);
    const wt = integer ? c.centeredData(op, op.inputs[1], "the filter") : c.floatData(op, op.inputs[1], "the filter");
    if (wt.shape.length !== 4 || wt.shape[0] !== 1) c.fail(op, `filter must be [1, KH, KW, C·multiplier], got [${wt.shape}]`);
    const [, KH, KW, OC] = wt.shape;
    const C = x.shape[1];
    if (OC % C) c.fail(op, `filter has ${OC} channels, not a multiple of the input's ${C}`);
    // output channel c·multiplier + m reads input channel c: a grouped convolution with one group per input channel
    const w = c.constant(permuteHost(wt, [3, 0, 1, 2]), c.tensor(op.inputs[1]).name);
    const stride = positive(c, op, "strides", [o.strideH(), o.strideW()]);
    const dilation = positive(c, op, "dilations", [o.dilationHFactor(), o.dilationWFactor()]);
    const attrs = { stride, pads: windowPads(x, o.padding(), [KH, KW], stride, dilation), dilation, groups: C };
    const y = c.node("conv2d", [x, w, ...bias(c, op, op.inputs[2], integer)], attrs, out(c, op));
    if (integer) c.set(op, op.outputs[0], c.requantize(op, y, multipliers(c, op), (n) => [n, 1, 1], o.fusedActivationFunction()), "nchw", "int");
    else c.set(op, op.outputs[0], c.activate(op, y, o.fusedActivationFunction()), "nchw");
  },
};

// --- fully connected: y = x·Wᵀ + b over the last axis ---------------------------------------------------
const fullyConnected: OpConverter = {
  check(c, op) {
    const o = c.model.options(op, BuiltinOptions.FullyConnectedOptions, () => new FullyConnectedOptions());
    if (o && o.weightsFormat() !== FullyConnectedOptionsWeightsFormat.DEFAULT) return `weights format ${FullyConnectedOptionsWeightsFormat[o.weightsFormat()]}`;
    return o ? checkActivation(o.fusedActivationFunction()) : null;
  },
  convert(c, op) {
    const o = c.model.options(op, BuiltinOptions.FullyConnectedOptions, () => new FullyConnectedOptions());
    const wi = op.inputs[1];
    if (wi === undefined || wi < 0) c.fail(op, "the weights are missing");
    const wShape = c.tensor(wi).shape;
    if (wShape.length !== 2) c.fail(op, `weights must be [units, inputs], got [${wShape}]`);
    const [units, depth] = wShape;
    const act = o ? o.fusedActivationFunction() : ActivationFunctionType.NONE;
    const declared = c.tensor(op.outputs[0]).shape;
    if (onIntegerKernel(c, op, units, act)) {
      const x = c.get(op.inputs[0], "nhwc", "q8", op);
      if (numel(x.shape) % depth) c.fail(op, `input [${x.shape}] does not split into rows of ${depth}`);
      const rows = numel(x.shape) / depth;
      const x2 = x.shape.length === 2 && x.shape[1] === depth ? x : c.node("reshape", [x], { shape: [rows, depth] }, `${out(c, op)}/rows`);
      const { operands, attrs } = integerOperands(c, op, units, act);
      // the kernel reads TFLite's [units, inputs] rows as they are
      let y = c.node("qfullyConnected", [x2, c.constant(int8Data(c, wi), c.tensor(wi).name), ...operands], attrs, out(c, op));
      if (declared.join() !== [rows, units].join()) {
        sameCount(c, op, [rows, units], declared);
        y = c.node("reshape", [y], { shape: declared }, `${out(c, op)}/shape`);
      }
      c.set(op, op.outputs[0], y, "nhwc", "q8");
      return;
    }
    const integer = isInteger(c, op);
    const x = c.get(op.inputs[0], "nhwc", integer ? "int" : "real", op);
    // [units, inputs] → [inputs, units], the matmul's right operand
    const w = c.isConstant(wi)
      ? c.constant(permuteHost(integer ? c.centeredData(op, wi, "the weights") : c.floatData(op, wi, "the weights"), [1, 0]), c.tensor(wi).name)
      : c.node("permute", [c.nhwc(wi, op)], { perm: [1, 0] }, `${c.tensor(wi).name}:T`);
    if (numel(x.shape) % depth) c.fail(op, `input [${x.shape}] does not split into rows of ${depth}`);
    const rows = numel(x.shape) / depth;
    let x2 = x.shape.length === 2 && x.shape[1] === depth ? x : c.node("reshape", [x], { shape: [rows, depth] }, `${out(c, op)}/rows`);
    // hybrid: each row is quantized on its own
    if (c.isHybrid(op.inputs[0], wi)) x2 = c.dynamicQuantize(x2, !(o?.asymmetricQuantizeInputs() ?? false), 1, `${out(c, op)}/input`);
    let y = c.node("matmul", [x2, w, ...bias(c, op, op.inputs[2], integer)], {}, out(c, op));
    y = integer ? c.requantize(op, y, multipliers(c, op), (n) => [n], act) : c.activate(op, y, act);
    if (declared.join() !== [rows, units].join()) {
      sameCount(c, op, [rows, units], declared);
      y = c.node("reshape", [y], { shape: declared }, `${out(c, op)}/shape`);
    }
    c.set(op, op.outputs[0], y, "nhwc", integer ? "int" : "real");
  },
};

// --- pooling (NCHW) ----------------------------------------------------------------------------------
function pool(kind: "avgpool2d" | "maxpool2d"): OpConverter {
  return {
    check(c, op) {
      const o = c.model.options(op, BuiltinOptions.Pool2DOptions, () => new Pool2DOptions());
      return o ? checkActivation(o.fusedActivationFunction()) : "no Pool2DOptions";
    },
    convert(c, op) {
      const o = c.model.options(op, BuiltinOptions.Pool2DOptions, () => new Pool2DOptions())!;
      const act = o.fusedActivationFunction();
      let domain = c.sharedDomain([op.inputs[0], op.outputs[0]]);
      if (domain === "q8" && !CLAMPS.has(act)) domain = "int";
      const x = c.get(op.inputs[0], "nchw", domain, op);
      const kernel = positive(c, op, "filter sizes", [o.filterHeight(), o.filterWidth()]);
      const stride = positive(c, op, "strides", [o.strideH(), o.strideW()]);
      // TFLite averages over the window's cells inside the input only
      const attrs = { kernel, stride, pads: windowPads(x, o.padding(), kernel, stride, [1, 1]), countIncludePad: false };
      if (domain === "q8") {
        const integerKind = kind === "avgpool2d" ? "qavgpool2d" : "qmaxpool2d";
        c.set(op, op.outputs[0], c.node(integerKind, [x], { ...attrs, ...integerClamp(c, op, act) }, out(c, op)), "nchw", "q8");
        return;
      }
      let y = c.node(kind, [x], attrs, out(c, op));
      if (domain === "real") y = c.activate(op, y, o.fusedActivationFunction());
      else {
        // TFLite's integer average rounds the mean of the stored integers half away from zero
        if (kind === "avgpool2d") {
          const zp = c.scalar(c.grid(op.inputs[0])!.zeroPoint, `${out(c, op)}/zero_point`);
          const stored = c.node("add", [y, zp], {}, `${out(c, op)}/stored`);
          const magnitude = c.node("floor", [c.node("add", [c.node("abs", [stored], {}, `${out(c, op)}/abs`), c.scalar(0.5, `${out(c, op)}/half`)], {}, `${out(c, op)}/plus_half`)], {}, `${out(c, op)}/magnitude`);
          const rounded = c.node("mul", [c.node("sign", [stored], {}, `${out(c, op)}/sign`), magnitude], {}, `${out(c, op)}/rounded`);
          y = c.node("sub", [rounded, zp], {}, `${out(c, op)}/centered`);
        }
        y = activateInteger(c, op, y, o.fusedActivationFunction());
      }
      c.set(op, op.outputs[0], y, "nchw", domain);
    },
  };
}

// --- reshape-like: the output tensor's declared shape says it all --------------------------------------
const reshapeTo: OpConverter = {
  convert(c, op) {
    const domain = c.sharedDomain([op.inputs[0], op.outputs[0]]);
    const x = c.get(op.inputs[0], "nhwc", domain, op);
    const shape = c.tensor(op.outputs[0]).shape;
    sameCount(c, op, x.shape, shape);
    c.set(op, op.outputs[0], c.node("reshape", [x], { shape: [...shape] }, out(c, op)), "nhwc", domain);
  },
};

// --- softmax over the last (TFLite) axis ----------------------------------------------------------------
function softmax(log: boolean): OpConverter {
  return {
    convert(c, op) {
      const o = log ? null : c.model.options(op, BuiltinOptions.SoftmaxOptions, () => new SoftmaxOptions());
      const beta = o ? o.beta() : 1;
      if (!log && c.isQ8(op.inputs[0]) && c.isQ8(op.outputs[0])) {
        // over TFLite's last axis, in TFLite's layout
        const table = c.constant(softmaxTable(c.grid(op.inputs[0])!.scale, beta), `${out(c, op)}/exp_table`);
        const grid = c.grid(op.outputs[0])!;
        const y = c.node("qsoftmax", [c.get(op.inputs[0], "nhwc", "q8", op), table], { outScale: grid.scale, outZp: grid.zeroPoint }, out(c, op));
        c.set(op, op.outputs[0], y, "nhwc", "q8");
        return;
      }
      const inNchw = c.isNchw(op.inputs[0]);
      let x = inNchw ? c.nchw(op.inputs[0], op) : c.nhwc(op.inputs[0], op);
      if (beta !== 1) x = c.node("mul", [x, c.scalar(beta, `${out(c, op)}/beta`)], {}, `${out(c, op)}/beta`);
      // the channel axis, which is axis 1 in NCHW
      c.set(op, op.outputs[0], c.node("softmax", [x], { axis: inNchw ? 1 : -1, log }, out(c, op)), inNchw ? "nchw" : "nhwc");
    },
  };
}

// --- element-wise ---------------------------------------------------------------------------------------
/** Unary ops keep their input's layout. */
function unary(build: (c: Converter, op: TfliteOperator, x: Value) => Value): OpConverter {
  return {
    convert(c, op) {
      const inNchw = c.isNchw(op.inputs[0]);
      const x = inNchw ? c.nchw(op.inputs[0], op) : c.nhwc(op.inputs[0], op);
      c.set(op, op.outputs[0], build(c, op, x), inNchw ? "nchw" : "nhwc");
    },
  };
}
const simple = (name: string, attrs = {}) => unary((c, op, x) => c.node(name, [x], attrs, out(c, op)));

/** A float unary op, or on int8 input and output TFLite's 256-entry table of the float32 function (qlookup). */
function tabulated(name: string, fn: (x: number) => number): OpConverter {
  const real = simple(name);
  return {
    convert(c, op) {
      if (!c.isQ8(op.inputs[0]) || !c.isQ8(op.outputs[0])) return real.convert(c, op);
      const [gi, go] = [c.grid(op.inputs[0])!, c.grid(op.outputs[0])!];
      const layout = c.isNchw(op.inputs[0]) ? "nchw" : "nhwc";
      const table = c.constant(lookupTable(gi.scale, gi.zeroPoint, go.scale, go.zeroPoint, fn), `${out(c, op)}/table`);
      c.set(op, op.outputs[0], c.node("qlookup", [c.get(op.inputs[0], layout, "q8", op), table], {}, out(c, op)), layout, "q8");
    },
  };
}

/**
 * A binary op's int8 kernel: `build` makes it for operands a, b (TFLite tensors `inputs`), or returns null when the
 * kernel does not apply (the op is then emulated); `broadcast`: b may be a's trailing dims; `constants`: an operand
 * may be a constant int8 tensor.
 */
interface Int8Binary {
  build(c: Converter, op: TfliteOperator, a: Value, b: Value, act: ActivationFunctionType, inputs: number[]): Value | null;
  broadcast?: boolean;
  constants?: boolean;
}
const isInt8Constant = (c: Converter, i: number): boolean => {
  const t = c.tensor(i);
  return t.data !== null && t.type === TensorType.INT8 && t.quantization !== null && t.quantization.scale.length === 1;
};
/** The (scale, zero point) of an int8 activation or per-tensor int8 constant. */
const int8Grid = (c: Converter, i: number): { scale: number; zeroPoint: number } => c.grid(i) ?? perTensor(c.tensor(i).quantization!, c.tensor(i), c.source);

/**
 * Binary ops with numpy broadcasting over TFLite's axes. A rank-4 result is computed in NCHW when an operand
 * already is NCHW: the other operands get leading 1s (TFLite broadcasting aligns trailing axes) and the permute.
 */
function binary(
  build: (c: Converter, op: TfliteOperator, a: Value, b: Value) => Value,
  activation?: (c: Converter, op: TfliteOperator) => ActivationFunctionType,
  integer?: (c: Converter, op: TfliteOperator, a: Value, b: Value, act: ActivationFunctionType) => Value,
  q8?: Int8Binary,
): OpConverter {
  return {
    check(c, op) {
      return activation ? checkActivation(activation(c, op)) : null;
    },
    convert(c, op) {
      const rank = c.tensor(op.outputs[0]).shape.length;
      const useNchw = rank === 4 && op.inputs.slice(0, 2).some((i) => i >= 0 && c.isNchw(i));
      const quantized = (i: number) => c.grid(i) !== null || (c.isConstant(i) && c.tensor(i).quantization !== null);
      const domain = integer && [op.inputs[0], op.inputs[1], op.outputs[0]].every(quantized) ? "int" : "real";
      const operand = (i: number): Value => {
        if (!useNchw) return c.get(i, "nhwc", domain, op);
        const v = c.get(i, "nhwc", domain, op);
        if (v.shape.length === 4) return c.get(i, "nchw", domain, op);
        const padded = [...Array(4 - v.shape.length).fill(1), ...v.shape];
        const r = v.isConstant ? c.constant({ ...v.host(), shape: padded }, v.name) : c.node("reshape", [v], { shape: padded }, `${v.name}:4d`);
        return c.relayout(r, TO_NCHW, `${v.name}:nchw`);
      };
      const act = activation ? activation(c, op) : ActivationFunctionType.NONE;
      const int8Operand = (i: number) => c.isQ8(i) || (q8?.constants === true && isInt8Constant(c, i));
      if (q8 && CLAMPS.has(act) && c.isQ8(op.outputs[0]) && [op.inputs[0], op.inputs[1]].every(int8Operand)) {
        const outShape = c.tensor(op.outputs[0]).shape.join();
        const same = [op.inputs[0], op.inputs[1]].every((i) => c.tensor(i).shape.join() === outShape && c.isQ8(i));
        if (same) {
          const layout = useNchw ? "nchw" : "nhwc";
          const [a, b] = [c.get(op.inputs[0], layout, "q8", op), c.get(op.inputs[1], layout, "q8", op)];
          const y = q8.build(c, op, a, b, act, [op.inputs[0], op.inputs[1]]);
          if (y) {
            c.set(op, op.outputs[0], y, layout, "q8");
            return;
          }
        }
        // the operand of the output's shape first, the other one its trailing dims (in TFLite's layout)
        const order = c.tensor(op.inputs[0]).shape.join() === outShape ? [op.inputs[0], op.inputs[1]] : [op.inputs[1], op.inputs[0]];
        const small = c.tensor(order[1]).shape;
        const trailing = small.slice(small.findIndex((d) => d !== 1));
        const full = c.tensor(order[0]).shape;
        if (!same && q8.broadcast && c.isQ8(order[0]) && full.join() === outShape && full.slice(full.length - trailing.length).join() === trailing.join()) {
          const b = int8Operand(order[1]) && isInt8Constant(c, order[1])
            ? c.constant({ ...int8Data(c, order[1]), shape: trailing }, c.tensor(order[1]).name)
            : c.node("reshape", [c.get(order[1], "nhwc", "q8", op)], { shape: trailing }, `${c.tensor(order[1]).name}:trailing`);
          const y = q8.build(c, op, c.get(order[0], "nhwc", "q8", op), b, act, order);
          if (y) {
            c.set(op, op.outputs[0], y, "nhwc", "q8");
            return;
          }
        }
      }
      const [a, b] = [operand(op.inputs[0]), operand(op.inputs[1])];
      const y = domain === "int" ? integer!(c, op, a, b, act) : c.activate(op, build(c, op, a, b), act);
      c.set(op, op.outputs[0], y, useNchw ? "nchw" : "nhwc", domain);
    },
  };
}
const arithmetic = (name: string) => (c: Converter, op: TfliteOperator, a: Value, b: Value) => c.node(name, [a, b], {}, out(c, op));

/**
 * TFLite's integer ADD/SUB: both inputs shifted left by 20 bits and brought to a common scale (twice the larger
 * input scale) by fixed-point multipliers, summed, and requantized to the output grid.
 */
const integerSum = (sign: 1 | -1) => (c: Converter, op: TfliteOperator, a: Value, b: Value, act: ActivationFunctionType): Value => {
  const scaleOf = (i: number) => c.grid(i)?.scale ?? c.tensor(i).quantization!.scale[0];
  const [sa, sb, so] = [scaleOf(op.inputs[0]), scaleOf(op.inputs[1]), c.grid(op.outputs[0])!.scale];
  const twiceMax = 2 * Math.max(sa, sb);
  const name = out(c, op);
  const scalar = () => [];
  const side = (v: Value, s: number, k: string) => {
    const wide = c.node("mul", [c.node("cast", [v], { to: "float64" }, `${name}/wide${k}`), c.g.addConstant({ shape: [1], dtype: "float64", data: new Float64Array([2 ** 20]) }, `${name}/shift${k}`)], {}, `${name}/shifted${k}`);
    return c.fixedPointMultiply(wide, [s / twiceMax], scalar, `${name}/input${k}`);
  };
  const sum = c.node(sign > 0 ? "add" : "sub", [side(a, sa, "1"), side(b, sb, "2")], {}, `${name}/sum`);
  const scaled = c.fixedPointMultiply(sum, [twiceMax / (2 ** 20 * so)], scalar, `${name}/output`);
  const grid = c.grid(op.outputs[0])!;
  const [lo, hi] = c.activationRange(op, grid, act);
  return c.node("clamp", [c.node("cast", [scaled], { to: "float32" }, `${name}/narrow`)], { min: lo - grid.zeroPoint, max: hi - grid.zeroPoint }, `${name}/quantize`);
};

/** TFLite's integer ADD on int8 operands of one shape: the qadd kernel. */
const int8Add: Int8Binary = {
  build(c, op, a, b, act) {
    const [ga, gb, go] = [c.grid(op.inputs[0])!, c.grid(op.inputs[1])!, c.grid(op.outputs[0])!];
    const attrs = { aZp: ga.zeroPoint, bZp: gb.zeroPoint, outZp: go.zeroPoint, ...addParameters(ga.scale, gb.scale, go.scale), ...integerClamp(c, op, act) };
    return c.node("qadd", [a, b], attrs, out(c, op));
  },
};

/**
 * TFLite's integer MUL: the qmul kernel, for a multiplier aScale·bScale / outScale below 1. Above 1 TFLite's
 * builtin kernel departs from its reference arithmetic on large products (measured: M = 4), so those stay emulated.
 */
const int8Mul: Int8Binary = {
  build(c, op, a, b, act, [ia, ib]) {
    const [ga, gb, go] = [int8Grid(c, ia), int8Grid(c, ib), c.grid(op.outputs[0])!];
    const m = quantizeMultiplier((ga.scale * gb.scale) / go.scale);
    if (m.shift > 0 || !(m.q > 0)) return null;
    const attrs = { aZp: ga.zeroPoint, bZp: gb.zeroPoint, outZp: go.zeroPoint, multiplier: m.q, shift: m.shift, ...integerClamp(c, op, act) };
    return c.node("qmul", [a, b], attrs, out(c, op));
  },
  broadcast: true,
  constants: true,
};

// --- concatenation along a (mapped) axis ----------------------------------------------------------------
const concatenation: OpConverter = {
  check(c, op) {
    const o = c.model.options(op, BuiltinOptions.ConcatenationOptions, () => new ConcatenationOptions());
    return o ? checkActivation(o.fusedActivationFunction()) : "no ConcatenationOptions";
  },
  convert(c, op) {
    const o = c.model.options(op, BuiltinOptions.ConcatenationOptions, () => new ConcatenationOptions())!;
    const rank = c.tensor(op.outputs[0]).shape.length;
    let axis = o.axis();
    if (axis < -rank || axis >= rank) c.fail(op, `axis ${axis} is out of range for rank ${rank}`);
    if (axis < 0) axis += rank;
    const useNchw = rank === 4 && op.inputs.some((i) => c.isNchw(i));
    const domain = o.fusedActivationFunction() === ActivationFunctionType.NONE ? c.sharedDomain([...op.inputs, ...op.outputs]) : "real";
    const xs = op.inputs.map((i) => c.get(i, useNchw ? "nchw" : "nhwc", domain, op));
    const y = c.node("concat", xs, { axis: useNchw ? nchwAxis(axis) : axis }, out(c, op));
    c.set(op, op.outputs[0], domain !== "real" ? y : c.activate(op, y, o.fusedActivationFunction()), useNchw ? "nchw" : "nhwc", domain);
  },
};

// --- pad with constant paddings [rank, 2] ---------------------------------------------------------------
const pad: OpConverter = {
  convert(c, op) {
    const inNchw = c.isNchw(op.inputs[0]);
    const domain = c.sharedDomain([op.inputs[0], op.outputs[0]]);
    const x = c.get(op.inputs[0], inNchw ? "nchw" : "nhwc", domain, op);
    const rank = x.shape.length;
    const p = c.ints(op, op.inputs[1], "paddings");
    if (p.length !== 2 * rank || p.some((v) => v < 0)) c.fail(op, `paddings must be ${rank}x2 non-negative integers, got [${p}]`);
    const axes = inNchw ? TO_NCHW : [...Array(rank).keys()];
    // a quantized PAD fills with the zero point, whose real value is 0
    const real = op.inputs[2] !== undefined && op.inputs[2] >= 0 ? c.floatData(op, op.inputs[2], "the pad value").data[0] : 0;
    const steps = domain === "real" ? 0 : Math.round(Number(real) / c.grid(op.inputs[0])!.scale);
    const value = domain === "int" ? steps : domain === "q8" ? steps + c.grid(op.inputs[0])!.zeroPoint : Number(real);
    const pads = [...axes.map((d) => p[2 * d]), ...axes.map((d) => p[2 * d + 1])];
    c.set(op, op.outputs[0], c.node("pad", [x], { pads, value }, out(c, op)), inNchw ? "nchw" : "nhwc", domain);
  },
};

// --- reductions over constant axes ----------------------------------------------------------------------
type Int8Reduce = (c: Converter, op: TfliteOperator, axes: number[], keepdim: boolean) => boolean;
function reduce(kind: string, q8?: Int8Reduce): OpConverter {
  return {
    convert(c, op) {
      const o = c.model.options(op, BuiltinOptions.ReducerOptions, () => new ReducerOptions());
      const keepdim = o ? o.keepDims() : false;
      const rank = c.tensor(op.inputs[0]).shape.length;
      const axes = [...new Set(c.ints(op, op.inputs[1], "axes").map((a) => {
        if (a < -rank || a >= rank) c.fail(op, `axis ${a} is out of range for rank ${rank}`);
        return a < 0 ? a + rank : a;
      }))];
      if (q8 && q8(c, op, axes, keepdim)) return;
      // in NCHW the kept dims must come out in TFLite's order, or the result is computed from the NHWC tensor
      const kept = TO_NCHW.filter((d) => !axes.includes(d));
      const stayNchw = c.isNchw(op.inputs[0]) && (keepdim || kept.every((d, k) => k === 0 || d > kept[k - 1]));
      const x = stayNchw ? c.nchw(op.inputs[0], op) : c.nhwc(op.inputs[0], op);
      const y = c.node("reduce", [x], { kind, axes: stayNchw ? axes.map(nchwAxis) : axes, keepdim }, out(c, op));
      c.set(op, op.outputs[0], y, stayNchw && keepdim ? "nchw" : "nhwc");
    },
  };
}

/**
 * TFLite's int8 MEAN (qmean) over contiguous axes: in NCHW when the input is NCHW and the axes are H and W (then
 * contiguous), else in TFLite's layout. TFLite's 4-d kernel over H and W with keep_dims rounds its own way (not yet
 * reproduced): that case stays emulated.
 */
const int8Mean: Int8Reduce = (c, op, axes, keepdim) => {
  const [xi, yi] = [op.inputs[0], op.outputs[0]];
  if (!c.isQ8(xi) || !c.isQ8(yi)) return false;
  const shape = c.tensor(xi).shape;
  const sorted = [...axes].sort((p, q) => p - q);
  const spatial = shape.length === 4 && sorted.join() === "1,2";
  if ((spatial && keepdim) || sorted.some((a, k) => k > 0 && a !== sorted[k - 1] + 1)) return false;
  // an NCHW input reduced over H and W in place: [N, C] is the result in either layout
  const nchw = spatial && c.isNchw(xi);
  const [gi, go] = [c.grid(xi)!, c.grid(yi)!];
  const count = sorted.reduce((p, a) => p * shape[a], 1);
  const attrs = { axes: nchw ? [2, 3] : sorted, keepdim, ...meanParameters(gi.scale, gi.zeroPoint, go.scale, go.zeroPoint, count) };
  c.set(op, yi, c.node("qmean", [c.get(xi, nchw ? "nchw" : "nhwc", "q8", op)], attrs, out(c, op)), "nhwc", "q8");
  return true;
};

// --- transpose and strided slice: in TFLite's own axes --------------------------------------------------
const transpose: OpConverter = {
  convert(c, op) {
    const domain = c.sharedDomain([op.inputs[0], op.outputs[0]]);
    const x = c.get(op.inputs[0], "nhwc", domain, op);
    const perm = c.ints(op, op.inputs[1], "the permutation");
    c.set(op, op.outputs[0], c.node("permute", [x], { perm }, out(c, op)), "nhwc", domain);
  },
};

const stridedSlice: OpConverter = {
  check(c, op) {
    const o = c.model.options(op, BuiltinOptions.StridedSliceOptions, () => new StridedSliceOptions());
    if (!o) return null;
    if (o.ellipsisMask() || o.newAxisMask()) return "an ellipsis or new-axis mask";
    return o.offset() ? "offset = true" : null;
  },
  convert(c, op) {
    const o = c.model.options(op, BuiltinOptions.StridedSliceOptions, () => new StridedSliceOptions());
    const domain = c.sharedDomain([op.inputs[0], op.outputs[0]]);
    const x = c.get(op.inputs[0], "nhwc", domain, op);
    const rank = x.shape.length;
    const [begin, end, strides] = [1, 2, 3].map((k) => c.ints(op, op.inputs[k], ["begin", "end", "strides"][k - 1]));
    if (begin.length !== rank || end.length !== rank || strides.length !== rank) c.fail(op, `begin, end and strides need ${rank} entries each`);
    const bit = (mask: number, d: number) => ((mask >> d) & 1) === 1;
    const starts: number[] = [], ends: number[] = [], steps: number[] = [];
    x.shape.forEach((n, d) => {
      const s = strides[d];
      if (s === 0) c.fail(op, "a stride is 0");
      // TF's clamping: forward slices stay in [0, n], backward ones in [-1, n - 1] (-1: before the first element)
      const clamp = (v: number) => (s > 0 ? Math.min(Math.max(v, 0), n) : Math.min(Math.max(v, -1), n - 1));
      const at = (v: number) => clamp(v < 0 ? v + n : v);
      let start = o && bit(o.beginMask(), d) ? (s > 0 ? 0 : n - 1) : at(begin[d]);
      let stop = o && bit(o.endMask(), d) ? (s > 0 ? n : -1) : at(end[d]);
      if (o && bit(o.shrinkAxisMask(), d)) {
        start = at(begin[d]);
        stop = start + (s > 0 ? 1 : -1);
      }
      starts.push(start);
      ends.push(stop);
      steps.push(s);
    });
    let y = c.node("slice", [x], { starts, ends, steps }, out(c, op));
    const declared = c.tensor(op.outputs[0]).shape;
    if (declared.join() !== y.shape.join()) {
      sameCount(c, op, y.shape, declared);
      y = c.node("reshape", [y], { shape: [...declared] }, `${out(c, op)}/shape`);
    }
    c.set(op, op.outputs[0], y, "nhwc", domain);
  },
};

type WithActivation = { fusedActivationFunction(): ActivationFunctionType };
const fusedActivation = (options: BuiltinOptions, make: () => { __init(i: number, bb: flatbuffers.ByteBuffer): WithActivation }) =>
  (c: Converter, op: TfliteOperator): ActivationFunctionType => c.model.options(op, options, make)?.fusedActivationFunction() ?? ActivationFunctionType.NONE;

export const CONVERTERS: Partial<Record<BuiltinOperator, OpConverter>> = {
  [BuiltinOperator.CONV_2D]: conv2d,
  [BuiltinOperator.DEPTHWISE_CONV_2D]: depthwiseConv2d,
  [BuiltinOperator.FULLY_CONNECTED]: fullyConnected,
  [BuiltinOperator.AVERAGE_POOL_2D]: pool("avgpool2d"),
  [BuiltinOperator.MAX_POOL_2D]: pool("maxpool2d"),
  [BuiltinOperator.RESHAPE]: reshapeTo,
  [BuiltinOperator.SQUEEZE]: reshapeTo,
  [BuiltinOperator.EXPAND_DIMS]: reshapeTo,
  [BuiltinOperator.SOFTMAX]: softmax(false),
  [BuiltinOperator.LOG_SOFTMAX]: softmax(true),
  [BuiltinOperator.ADD]: binary(arithmetic("add"), fusedActivation(BuiltinOptions.AddOptions, () => new AddOptions()), integerSum(1), int8Add),
  [BuiltinOperator.SUB]: binary(arithmetic("sub"), fusedActivation(BuiltinOptions.SubOptions, () => new SubOptions()), integerSum(-1)),
  [BuiltinOperator.MUL]: binary(arithmetic("mul"), fusedActivation(BuiltinOptions.MulOptions, () => new MulOptions()), undefined, int8Mul),
  [BuiltinOperator.DIV]: binary(arithmetic("div"), fusedActivation(BuiltinOptions.DivOptions, () => new DivOptions())),
  [BuiltinOperator.MAXIMUM]: binary(arithmetic("maximum")),
  [BuiltinOperator.MINIMUM]: binary(arithmetic("minimum")),
  [BuiltinOperator.SQUARED_DIFFERENCE]: binary((c, op, a, b) => {
    const d = c.node("sub", [a, b], {}, `${out(c, op)}/diff`);
    return c.node("mul", [d, d], {}, out(c, op));
  }),
  [BuiltinOperator.RELU]: simple("relu"),
  [BuiltinOperator.RELU6]: simple("clamp", { min: 0, max: 6 }),
  [BuiltinOperator.RELU_N1_TO_1]: simple("clamp", { min: -1, max: 1 }),
  [BuiltinOperator.LOGISTIC]: tabulated("sigmoid", sigmoidF32),
  [BuiltinOperator.TANH]: tabulated("tanh", tanhF32),
  [BuiltinOperator.HARD_SWISH]: simple("hardswish"),
  [BuiltinOperator.LEAKY_RELU]: unary((c, op, x) => {
    const o = c.model.options(op, BuiltinOptions.LeakyReluOptions, () => new LeakyReluOptions());
    return c.node("leakyRelu", [x], { alpha: o ? o.alpha() : 0.2 }, out(c, op));
  }),
  [BuiltinOperator.EXP]: simple("exp"),
  [BuiltinOperator.LOG]: simple("log"),
  [BuiltinOperator.SQRT]: simple("sqrt"),
  [BuiltinOperator.RSQRT]: unary((c, op, x) => c.node("reciprocal", [c.node("sqrt", [x], {}, `${out(c, op)}/sqrt`)], {}, out(c, op))),
  [BuiltinOperator.ABS]: simple("abs"),
  [BuiltinOperator.NEG]: simple("neg"),
  [BuiltinOperator.FLOOR]: simple("floor"),
  [BuiltinOperator.CEIL]: simple("ceil"),
  [BuiltinOperator.SQUARE]: unary((c, op, x) => c.node("mul", [x, x], {}, out(c, op))),
  // values are real numbers throughout: (de)quantizing is the rounding `set` applies to quantized outputs
  [BuiltinOperator.QUANTIZE]: unary((_c, _op, x) => x),
  [BuiltinOperator.DEQUANTIZE]: unary((_c, _op, x) => x),
  [BuiltinOperator.CONCATENATION]: concatenation,
  [BuiltinOperator.PAD]: pad,
  [BuiltinOperator.PADV2]: pad,
  [BuiltinOperator.MEAN]: reduce("mean", int8Mean),
  [BuiltinOperator.SUM]: reduce("sum"),
  [BuiltinOperator.REDUCE_MAX]: reduce("max"),
  [BuiltinOperator.REDUCE_MIN]: reduce("min"),
  [BuiltinOperator.REDUCE_PROD]: reduce("prod"),
  [BuiltinOperator.TRANSPOSE]: transpose,
  [BuiltinOperator.STRIDED_SLICE]: stridedSlice,
};
