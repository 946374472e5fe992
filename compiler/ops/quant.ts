import { fail } from "../errors.js";
import { numel } from "../ir/dtype.js";
import type { Attrs, HostTensor, Node, TensorType } from "../ir/graph.js";
import { newHost, shapeStr } from "../ir/shape.js";
import { floatLiteral } from "./elementwise.js";
import { convGeometry, forEachConvTap, poolGeometry } from "./linalg.js";
import { defineOp, type LowerContext } from "./registry.js";

/**
 * Integer (int8) ops with TFLite's arithmetic: int8 activations and weights, int32 biases and accumulators,
 * requantization by int32 (multiplier, shift) pairs computed at compile time (QuantizeMultiplier) and applied
 * as MultiplyByQuantizedMultiplier. The references below are TFLite's reference_integer_ops algorithms in JS,
 * the oracle the kernels (runtime-as/q*.ts) are tested against. One detail varies between TFLite's kernels: the
 * requantization's final rounding shift sends ties away from zero in the reference kernels (and TFLM), up in ruy
 * and TFLite's builtin convolutions and FULLY_CONNECTED; conv and fully connected take it as `rounding`.
 */
export type Rounding = "away" | "up";

const INT8_MIN = -128, INT8_MAX = 127;

/** TFLite's QuantizeMultiplier: M = q·2^(shift-31) with q a 31-bit integer in [2^30, 2^31) (or 0). */
export function quantizeMultiplier(m: number): { q: number; shift: number } {
  if (m === 0) return { q: 0, shift: 0 };
  let shift = Math.floor(Math.log2(m)) + 1;
  // frexp: m = fraction·2^shift with fraction in [0.5, 1)
  if (m / 2 ** shift >= 1) shift++;
  if (m / 2 ** shift < 0.5) shift--;
  let q = Math.round((m / 2 ** shift) * 2 ** 31);
  if (q === 2 ** 31) {
    q /= 2;
    shift++;
  }
  return shift < -31 ? { q: 0, shift: 0 } : { q, shift };
}

/** The int32 [n, 2] (multiplier, shift) table a kernel reads, one row per real multiplier. */
export function requantTable(multipliers: number[], what: string): HostTensor {
  const data = new Int32Array(2 * multipliers.length);
  multipliers.forEach((m, k) => {
    if (!(m > 0) || !Number.isFinite(m)) fail(`${what}: requantization multiplier ${m} must be positive and finite (a scale is zero, negative or not finite)`);
    const { q, shift } = quantizeMultiplier(m);
    if (shift > 30) fail(`${what}: requantization multiplier ${m} is too large for TFLite's fixed point (≥ 2^30)`);
    data[2 * k] = q;
    data[2 * k + 1] = shift;
  });
  return { shape: [multipliers.length, 2], dtype: "int32", data };
}

/**
 * TFLite's MultiplyByQuantizedMultiplier: SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT (ties away
 * from zero), or with `rounding: "up"` ruy's rounding right shift (ties up, an overflowing nudge saturating).
 */
export function multiplyByQuantizedMultiplier(x: number, multiplier: number, shift: number, rounding: Rounding = "away"): number {
  const a = Math.imul(x, 1 << Math.max(shift, 0));
  const right = Math.max(-shift, 0);
  let high: number;
  if (a === -2147483648 && multiplier === -2147483648) high = 2147483647;
  else {
    const ab = BigInt(a) * BigInt(multiplier);
    // BigInt division truncates toward zero, as C's does
    high = Number((ab + (ab >= 0n ? 1n << 30n : 1n - (1n << 30n))) / (1n << 31n));
  }
  if (rounding === "up") {
    if (right === 0) return high;
    const nudge = 1 << (right - 1);
    return high > 2147483647 - nudge ? 1 << (31 - right) : (high + nudge) >> right;
  }
  const mask = ((1 << right) - 1) | 0;
  const threshold = (mask >> 1) + (high < 0 ? 1 : 0);
  return (high >> right) + ((high & mask) > threshold ? 1 : 0);
}

/** Rounds half away from zero (C's round), as TFLite's quantization does. */
const roundHalfAway = (v: number): number => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
const clampTo = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

function requireDType(op: string, t: TensorType, dtype: string, what: string): void {
  if (t.dtype !== dtype) fail(`${op}: ${what} must be ${dtype}, got ${t.dtype} ${shapeStr(t.shape)}`);
}
function requireZeroPoint(op: string, attrs: Attrs, key: string): void {
  const zp = attrs[key] as number;
  if (!Number.isInteger(zp) || zp < INT8_MIN || zp > INT8_MAX) fail(`${op}: zero point ${key} = ${zp} is outside int8's range [-128, 127]`);
}
function requireActivationRange(op: string, attrs: Attrs): void {
  const lo = attrs.actMin as number, hi = attrs.actMax as number;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < INT8_MIN || hi > INT8_MAX || lo > hi) fail(`${op}: activation range [${lo}, ${hi}] is not inside [-128, 127]`);
}
function requireRequant(op: string, rq: TensorType, channels: number): void {
  requireDType(op, rq, "int32", "the requantization table");
  if (rq.shape.length !== 2 || rq.shape[0] !== channels || rq.shape[1] !== 2) fail(`${op}: the requantization table must be [${channels}, 2] (multiplier, shift), got ${shapeStr(rq.shape)}`);
}
function requireBias(op: string, bias: TensorType, channels: number): void {
  requireDType(op, bias, "int32", "the bias");
  if (bias.shape.length !== 1 || bias.shape[0] !== channels) fail(`${op}: the bias must be [${channels}], got ${shapeStr(bias.shape)}`);
}

/** The requantized int8 output of accumulator `acc` for channel k of table `rq`. */
function requantized(acc: number, rq: HostTensor, k: number, attrs: Attrs): number {
  const v = multiplyByQuantizedMultiplier(acc, rq.data[2 * k] as number, rq.data[2 * k + 1] as number, roundingOf(attrs)) + (attrs.outZp as number);
  return clampTo(v, attrs.actMin as number, attrs.actMax as number);
}
const roundingOf = (attrs: Attrs): Rounding => (attrs.rounding as Rounding | undefined) ?? "away";
function requireRounding(op: string, attrs: Attrs): void {
  if (attrs.rounding !== undefined && attrs.rounding !== "away" && attrs.rounding !== "up") fail(`${op}: rounding must be "away" or "up", got ${String(attrs.rounding)}`);
}
/** zero point, clamp and tie rule, as the conv and fully connected kernels take them */
const requantArgs = (attrs: Attrs) => [attrs.outZp as number, attrs.actMin as number, attrs.actMax as number, roundingOf(attrs) === "up" ? 1 : 0];
const notDifferentiable = "integer (quantized) ops have no gradient; train the float model and quantize it";

/** The im2col tiles' scratch budget: small beside any arena, so the tiles hardly ever raise a model's peak. */
const IM2COL_BYTES = 1024;
const convTaps = (node: Node): number => node.inputs[1].shape[1] * node.inputs[1].shape[2] * node.inputs[1].shape[3];
/**
 * Output pixels per im2col tile of an int8 convolution (a multiple of 8, the 1x1 kernel's SIMD tile), or 0 where
 * the direct kernels serve better: 1x1 stride-1 convolutions (already the 1x1 kernel), fewer than 4 output channels
 * per group (depthwise: nothing to share an input load), fewer than 8 output pixels, or a window too large for
 * an 8-pixel tile within IM2COL_BYTES.
 */
function im2colTile(node: Node): number {
  const [x, w] = node.inputs;
  const g = convGeometry(x.shape, w.shape, node.attrs);
  const pointwise = g.KH === 1 && g.KW === 1 && g.stride.every((s) => s === 1) && g.pads.every((p) => p === 0) && g.groups === 1;
  const taps = convTaps(node), P = g.OH * g.OW;
  if (pointwise || g.OC / g.groups < 4 || P < 8 || 8 * taps > IM2COL_BYTES) return 0;
  return 8 * Math.min(Math.floor(IM2COL_BYTES / (8 * taps)), 8, Math.floor(P / 8));
}

// --- qconv2d: int8 NCHW convolution (direct, depthwise, pointwise); w [OC, C/groups, KH, KW] ------------------
const qconv2d = defineOp({
  name: "qconv2d",
  infer([x, w, bias, rq], attrs) {
    if (!rq) fail("qconv2d takes (x, w, bias, requantization table)");
    requireDType("qconv2d", x, "int8", "the input");
    requireDType("qconv2d", w, "int8", "the filter");
    const g = convGeometry(x.shape, w.shape, attrs);
    requireBias("qconv2d", bias, g.OC);
    requireRequant("qconv2d", rq, g.OC);
    requireZeroPoint("qconv2d", attrs, "inZp");
    requireZeroPoint("qconv2d", attrs, "outZp");
    requireActivationRange("qconv2d", attrs);
    requireRounding("qconv2d", attrs);
    return [{ shape: [g.N, g.OC, g.OH, g.OW], dtype: "int8" }];
  },
  reference([x, w, bias, rq], attrs) {
    const g = convGeometry(x.shape, w.shape, attrs);
    const out = newHost([g.N, g.OC, g.OH, g.OW], "int8");
    const X = x.data, Wt = w.data, Y = out.data;
    const inZp = attrs.inZp as number, plane = g.OH * g.OW;
    // int32 accumulators, exact in float64
    const acc = Float64Array.from({ length: Y.length }, (_, o) => Number(bias.data[Math.floor(o / plane) % g.OC]));
    forEachConvTap(g, (xi, wi, o) => (acc[o] += (Number(X[xi]) - inZp) * Number(Wt[wi])));
    for (let o = 0; o < Y.length; o++) Y[o] = requantized(acc[o], rq, Math.floor(o / plane) % g.OC, attrs);
    return [out];
  },
  scratchBytes(node) {
    const tile = im2colTile(node);
    return tile * (tile && convTaps(node));
  },
  lower(ctx, node) {
    const [x, w, bias, rq] = node.inputs;
    const g = convGeometry(x.shape, w.shape, node.attrs);
    const tile = im2colTile(node);
    ctx.call("qconv", "qconv2d", [
      ctx.ptr(x), ctx.ptr(w), ctx.ptr(bias), ctx.ptr(rq), ctx.ptr(node.outputs[0]),
      g.N, g.C, g.H, g.W, g.OC, g.OH, g.OW, g.KH, g.KW, g.stride[0], g.stride[1], g.pads[0], g.pads[1],
      g.dilation[0], g.dilation[1], g.groups, node.attrs.inZp as number, ...requantArgs(node.attrs), tile ? ctx.scratch(node) : 0, tile,
    ]);
  },
  decompose(g, node, opts) {
    // the decompose pass replaces the node: one the packed kernel does not take (or the target does not want) is put back as it was
    if (opts.simd && !opts.compactInt8 && depthwiseChannelsFit(node)) {
      const [x, w, bias, rq] = node.inputs;
      const packed = packDepthwiseChannels(w.host(), bias.host(), rq.host(), node.attrs.inZp as number);
      const bandRows = depthwiseBandRows(convGeometry(x.shape, w.shape, node.attrs));
      const attrs = { ...node.attrs, kernel: [w.shape[2], w.shape[3]], laneShift: packed.laneShift, bandRows };
      const constants = [packed.w, packed.bias, packed.lanes].map((t, k) => g.addConstant(t, `${node.name}/${["packed", "bias", "lanes"][k]}`));
      return g.insertBefore(node, "qdepthwiseChannels", [x, constants[0], constants[1], rq, constants[2]], attrs, node.name).outputs;
    }
    if (opts.simd && !opts.compactInt8 && pointwiseChannelsFit(node)) {
      const [x, w, bias, rq] = node.inputs;
      const packed = packPointwiseChannels(w.host(), bias.host(), node.attrs.inZp as number);
      return g.insertBefore(node, "qpointwiseChannels", [x, g.addConstant(packed.w, `${node.name}/packed`), g.addConstant(packed.bias, `${node.name}/bias`), rq], node.attrs, node.name).outputs;
    }
    const rows = !opts.compactInt8 && packable(node), columns = !opts.compactInt8 && !rows && packableColumns(node);
    if (!rows && !columns) return g.insertBefore(node, "qconv2d", node.inputs, node.attrs, node.name).outputs;
    const [x, w, bias, rq] = node.inputs;
    const inZp = node.attrs.inZp as number;
    // through im2col tiles the taps are the input channels of a 1x1 convolution (OIHW flattens them in tap order)
    const [OC, C, KH, KW] = w.shape;
    const filter = columns ? { ...w.host(), shape: [OC, C * KH * KW, 1, 1] } : w.host();
    const packed = packConvWeights(filter, bias.host(), inZp);
    const attrs = columns ? { ...node.attrs, kernel: [KH, KW] } : node.attrs;
    return g.insertBefore(node, "qconv2dPacked", [x, g.addConstant(packed.w, `${node.name}/packed`), g.addConstant(packed.bias, `${node.name}/bias`), rq], attrs, node.name).outputs;
  },
  compiledDTypes: () => true,
  notDifferentiable,
});


/**
 * Scratch budget of qdepthwiseChannels' padded 8-channel plane. Small planes gain the most (KWS's 25x5: 1,512 B,
 * VWW's 12x12 and smaller, its 24x24: 5,408 B); at stride 1 the output is written over a dying input, so the
 * scratch stays far below the peak of the pointwise layers around it. A plane that does not fit goes in bands of
 * output rows, where the output cannot be written in place (another shape: VWW's 48x48 at stride 2, 42 -> 20 µs).
 */
const DEPTHWISE_CHANNELS_BYTES = 6 * 1024;
/** The largest right shift a lane table takes: h·2^(E − e) with |h| ≤ 2^(e + 8) stays inside i32. */
const MAX_LANE_SHIFT = 22;

/** qdepthwiseChannels' padded plane (rows, columns) for a convolution's geometry. */
function paddedPlane(g: ReturnType<typeof convGeometry>): [number, number] {
  return [(g.OH - 1) * g.stride[0] + (g.KH - 1) * g.dilation[0] + 1, (g.OW - 1) * g.stride[1] + (g.KW - 1) * g.dilation[1] + 1];
}
/** qdepthwiseChannels' scratch: the tap offsets (16-byte aligned), then the padded 8-channel plane of a band of output rows. */
function depthwiseChannelsScratch(g: ReturnType<typeof convGeometry>, bandRows: number): number {
  const Wp = paddedPlane(g)[1], Hp = (bandRows - 1) * g.stride[0] + (g.KH - 1) * g.dilation[0] + 1;
  return ((Math.ceil((g.KH * g.KW) / 2) * 8 + 15) & ~15) + Hp * Wp * 8;
}
/**
 * Output rows per band within DEPTHWISE_CHANNELS_BYTES: the whole plane when it fits (and always when the output has
 * the input's shape, which the planner may write in place), else the most that fit; 0 when none does.
 */
function depthwiseBandRows(g: ReturnType<typeof convGeometry>): number {
  if (depthwiseChannelsScratch(g, g.OH) <= DEPTHWISE_CHANNELS_BYTES) return g.OH;
  if (g.OH === g.H && g.OW === g.W) return 0;
  let rows = 0;
  while (rows < g.OH && depthwiseChannelsScratch(g, rows + 1) <= DEPTHWISE_CHANNELS_BYTES) rows++;
  return rows;
}

/**
 * Whether a depthwise convolution (one filter per channel) runs vectorised across channels (runtime-as/qdepthwise.ts):
 * constant weights, bias and requantization table, every multiplier below 1 with a right shift of at most
 * MAX_LANE_SHIFT, and a padded plane within DEPTHWISE_CHANNELS_BYTES.
 */
function depthwiseChannelsFit(node: Node): boolean {
  const [x, w, bias, rq] = node.inputs;
  const g = convGeometry(x.shape, w.shape, node.attrs);
  if (g.groups !== g.C || g.OC !== g.C || ![w, bias, rq].every((v) => v.isConstant && v.data !== null)) return false;
  return laneShiftsFit(node) && depthwiseBandRows(g) > 0;
}

/**
 * Depthwise weights [C, 1, KH, KW] in qdepthwiseChannels' order, [C/8, taps/2, 8, 2] (per group of 8 channels, per
 * pair of taps, each channel's two weights; zero-padded), the bias with the input zero point folded in (bias −
 * inZp·Σw, padded to whole groups), and the lane table: per 4 channels, 4 multipliers, 4 scales 2^(E − e), 4 lower and
 * 4 upper clamps ∓2^(e + 8) of the high product, e each channel's right shift and E (`laneShift`) the largest (≥ 1).
 */
export function packDepthwiseChannels(w: HostTensor, bias: HostTensor, rq: HostTensor, inZp: number): { w: HostTensor; bias: HostTensor; lanes: HostTensor; laneShift: number } {
  const [C, , KH, KW] = w.shape;
  const taps = KH * KW, pairs = Math.ceil(taps / 2), groups = Math.ceil(C / 8);
  const packed = new Int8Array(groups * pairs * 16), folded = new Int32Array(groups * 8);
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let t = 0; t < taps; t++) {
      const v = Number(w.data[c * taps + t]);
      sum += v;
      packed[((c >> 3) * pairs + (t >> 1)) * 16 + (c & 7) * 2 + (t & 1)] = v;
    }
    folded[c] = Number(bias.data[c]) - inZp * sum;
  }
  const requant = laneRequant(rq, w, folded) ?? fail("qdepthwiseChannels: a requantization multiplier does not fit the lane table (1 or more)");
  return { w: { shape: [groups, pairs, 8, 2], dtype: "int8", data: packed }, bias: { shape: [groups * 8], dtype: "int32", data: folded }, ...laneTable(requant, groups * 8) };
}

/**
 * Each channel's (multiplier, right shift) for the lane table, or null when one does not fit it (a multiplier of 1
 * or more). A right shift beyond MAX_LANE_SHIFT fits when the channel's output is provably the zero point whatever
 * the input (dead channels, which TFLite's converter leaves with shifts of −31): |acc| ≤ |folded bias| + 128·Σ|w|
 * keeps the high multiply below half the shift's divisor, so the lane takes multiplier 0 and no shift, exactly.
 */
function laneRequant(rq: HostTensor, w: HostTensor, folded: ArrayLike<number>): [number, number][] | null {
  const C = rq.shape[0], perChannel = numel(w.shape) / w.shape[0];
  const lanes: [number, number][] = [];
  for (let c = 0; c < C; c++) {
    const m = Number(rq.data[2 * c]), e = -Number(rq.data[2 * c + 1]);
    if (e < 0) return null;
    if (e <= MAX_LANE_SHIFT) {
      lanes.push([m, e]);
      continue;
    }
    let bound = Math.abs(Number(folded[c]));
    for (let k = 0; k < perChannel; k++) bound += 128 * Math.abs(Number(w.data[c * perChannel + k]));
    if ((bound * m) / 2 ** 31 + 0.5 >= 2 ** (e - 1)) return null;
    lanes.push([0, 0]);
  }
  return lanes;
}

/** The lane table of `channels` (a multiple of 8) from laneRequant's pairs (see packDepthwiseChannels). */
function laneTable(requant: [number, number][], channels: number): { lanes: HostTensor; laneShift: number } {
  const data = new Int32Array(channels * 4);
  const laneShift = Math.max(1, ...requant.map(([, e]) => e));
  requant.forEach(([m, e], c) => {
    const at = (c >> 2) * 16 + (c & 3);
    data[at] = m;
    data[at + 4] = 2 ** (laneShift - e);
    data[at + 8] = -(2 ** (e + 8));
    data[at + 12] = 2 ** (e + 8);
  });
  return { lanes: { shape: [channels, 4], dtype: "int32", data }, laneShift };
}

/** The folded bias bias − inZp·Σw of each output channel of weights [OC, ...]. */
function foldedBias(w: HostTensor, bias: HostTensor, inZp: number): number[] {
  const OC = w.shape[0], perChannel = numel(w.shape) / OC;
  return Array.from({ length: OC }, (_, c) => {
    let sum = 0;
    for (let k = 0; k < perChannel; k++) sum += Number(w.data[c * perChannel + k]);
    return Number(bias.data[c]) - inZp * sum;
  });
}

/** Whether a convolution's requantization fits the lane table (laneRequant). */
function laneShiftsFit(node: Node): boolean {
  const [, w, bias, rq] = node.inputs;
  return laneRequant(rq.host(), w.host(), foldedBias(w.host(), bias.host(), node.attrs.inZp as number)) !== null;
}

/**
 * Planes up to this many pixels run their 1x1 convolutions on qpointwiseChannels: under 8 pixels the packed kernel's
 * tiles do not fit at all, up to 12 they waste a third of their lanes or more (256->256 @3x3: 44 -> 23 µs). Beyond,
 * the gain (13% at 6x6) is not worth a scratch of twice the input, which raises small arenas (the streaming wake
 * word's 6,656 B to 12,288).
 */
const POINTWISE_CHANNELS_PIXELS = 12;

/**
 * Whether a 1x1 stride-1 convolution runs vectorised across output channels (qpointwiseChannels): a plane of at most
 * POINTWISE_CHANNELS_PIXELS, constant weights and bias.
 */
function pointwiseChannelsFit(node: Node): boolean {
  const [x, w, bias] = node.inputs;
  const g = convGeometry(x.shape, w.shape, node.attrs);
  return isPointwise(g) && g.groups === 1 && g.H * g.W <= POINTWISE_CHANNELS_PIXELS && [w, bias].every((v) => v.isConstant && v.data !== null);
}

/** qpointwiseChannels' weights (packConvWeights' layout over output channels padded to 8) and folded bias (padded too). */
export function packPointwiseChannels(w: HostTensor, bias: HostTensor, inZp: number): { w: HostTensor; bias: HostTensor } {
  const [OC, C] = w.shape, padded = Math.ceil(OC / 8) * 8;
  const filter = newHost([padded, C, 1, 1], "int8"), b = newHost([padded], "int32");
  (filter.data as Int8Array).set(w.data as Int8Array);
  (b.data as Int32Array).set(bias.data as Int32Array);
  return packConvWeights(filter, b, inZp);
}

/** packDepthwiseChannels undone: the [C, 1, KH, KW] weights and the bias as qconv2d takes them. */
function unpackDepthwiseChannels(wp: HostTensor, folded: HostTensor, C: number, KH: number, KW: number, inZp: number): { w: HostTensor; bias: HostTensor } {
  const taps = KH * KW, pairs = wp.shape[1];
  const w = newHost([C, 1, KH, KW], "int8"), bias = newHost([C], "int32");
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let t = 0; t < taps; t++) {
      const v = Number(wp.data[((c >> 3) * pairs + (t >> 1)) * 16 + (c & 7) * 2 + (t & 1)]);
      w.data[c * taps + t] = v;
      sum += v;
    }
    bias.data[c] = Number(folded.data[c]) + inZp * sum;
  }
  return { w, bias };
}

// --- qdepthwiseChannels: a depthwise qconv2d on packDepthwiseChannels' weights, bias and lane table ------------
defineOp({
  name: "qdepthwiseChannels",
  infer([x, wp, bias, rq, lanes], attrs) {
    if (!lanes) fail("qdepthwiseChannels takes (x, packed weights, folded bias, requantization table, lane table)");
    requireDType("qdepthwiseChannels", x, "int8", "the input");
    requireDType("qdepthwiseChannels", wp, "int8", "the packed filter");
    const C = x.shape[1], [KH, KW] = (attrs.kernel as number[] | undefined) ?? [];
    const groups = Math.ceil(C / 8), pairs = Math.ceil((KH * KW) / 2);
    if (wp.shape.join() !== [groups, pairs, 8, 2].join() || bias.shape.join() !== String(groups * 8) || lanes.shape.join() !== [groups * 8, 4].join()) {
      fail(`qdepthwiseChannels: packed filter ${shapeStr(wp.shape)}, bias ${shapeStr(bias.shape)} or lane table ${shapeStr(lanes.shape)} do not fit input ${shapeStr(x.shape)} and a ${KH}x${KW} window`);
    }
    const E = attrs.laneShift as number;
    if (!Number.isInteger(E) || E < 1 || E > MAX_LANE_SHIFT) fail(`qdepthwiseChannels: laneShift ${E} must be an integer in [1, ${MAX_LANE_SHIFT}]`);
    if (attrs.groups !== C) fail(`qdepthwiseChannels: groups must be the ${C} input channels, got ${String(attrs.groups)}`);
    const out = qconv2d.infer([x, { shape: [C, 1, KH, KW], dtype: "int8" }, { shape: [C], dtype: "int32" }, rq], attrs);
    const bandRows = attrs.bandRows as number, OH = out[0].shape[2];
    if (!Number.isInteger(bandRows) || bandRows < 1 || bandRows > OH) fail(`qdepthwiseChannels: bandRows ${bandRows} must be an integer in [1, ${OH}]`);
    // written in place, a band's outputs would overwrite the rows the next band reads
    if (bandRows < OH && out[0].shape.join() === x.shape.join()) fail("qdepthwiseChannels: an output of the input's shape needs the whole plane in one band");
    return out;
  },
  reference([x, wp, bias, rq], attrs) {
    const [KH, KW] = attrs.kernel as number[];
    const { w, bias: b } = unpackDepthwiseChannels(wp, bias, x.shape[1], KH, KW, attrs.inZp as number);
    return qconv2d.reference([x, w, b, rq], attrs);
  },
  scratchBytes(node) {
    const [KH, KW] = node.attrs.kernel as number[];
    return depthwiseChannelsScratch(convGeometry(node.inputs[0].shape, [node.inputs[0].shape[1], 1, KH, KW], node.attrs), node.attrs.bandRows as number);
  },
  lower(ctx, node) {
    const [x, wp, bias, , lanes] = node.inputs;
    const [KH, KW] = node.attrs.kernel as number[];
    const g = convGeometry(x.shape, [x.shape[1], 1, KH, KW], node.attrs);
    ctx.call("qdepthwise", "qdepthwiseChannels", [
      ctx.ptr(x), ctx.ptr(wp), ctx.ptr(bias), ctx.ptr(lanes), ctx.ptr(node.outputs[0]), ctx.scratch(node),
      g.N, g.C, g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.stride[0], g.stride[1], g.pads[0], g.pads[1],
      g.dilation[0], g.dilation[1], node.attrs.inZp as number, ...requantArgs(node.attrs), node.attrs.laneShift as number, node.attrs.bandRows as number,
    ]);
  },
  // each group of 8 channels is copied into the scratch before its outputs are stored
  inPlace: true,
  compiledDTypes: () => true,
  notDifferentiable,
});

// --- qpointwiseChannels: a 1x1 stride-1 qconv2d on packPointwiseChannels' weights, bias and lane table ----------
defineOp({
  name: "qpointwiseChannels",
  infer([x, wp, bias, rq], attrs) {
    if (!rq) fail("qpointwiseChannels takes (x, packed weights, folded bias, requantization table)");
    requireDType("qpointwiseChannels", x, "int8", "the input");
    requireDType("qpointwiseChannels", wp, "int8", "the packed filter");
    const OC = rq.shape[0], padded = Math.ceil(OC / 8) * 8;
    if (wp.shape.join() !== [padded / 4, 1, 1, Math.ceil(x.shape[1] / 2), 4, 2].join() || bias.shape.join() !== String(padded)) {
      fail(`qpointwiseChannels: packed filter ${shapeStr(wp.shape)} or bias ${shapeStr(bias.shape)} do not fit input ${shapeStr(x.shape)} and ${OC} output channels`);
    }
    const out = qconv2d.infer([x, { shape: [OC, x.shape[1], 1, 1], dtype: "int8" }, { shape: [OC], dtype: "int32" }, rq], attrs);
    if (!isPointwise(convGeometry(x.shape, [OC, x.shape[1], 1, 1], attrs)) || attrs.groups !== 1) fail("qpointwiseChannels: the convolution must be 1x1, stride 1, unpadded, groups 1");
    return out;
  },
  reference([x, wp, bias, rq], attrs) {
    const OC = rq.shape[0];
    const { w, bias: b } = unpackConvWeights(wp, bias, x.shape[1], attrs.inZp as number);
    return qconv2d.reference([x, { ...w, shape: [OC, x.shape[1], 1, 1], data: w.data.slice(0, OC * x.shape[1]) }, { ...b, shape: [OC], data: b.data.slice(0, OC) }, rq], attrs);
  },
  scratchBytes(node) {
    const [N, C, H, W] = node.inputs[0].shape;
    return N > 0 ? H * W * Math.ceil(C / 2) * 4 : 0;
  },
  lower(ctx, node) {
    const [x, wp, bias, rq] = node.inputs;
    const [N, C, H, W] = x.shape;
    ctx.call("qdepthwise", "qpointwiseChannels", [
      ctx.ptr(x), ctx.ptr(wp), ctx.ptr(bias), ctx.ptr(rq), ctx.ptr(node.outputs[0]), ctx.scratch(node), N, C, H * W, rq.shape[0], ...requantArgs(node.attrs),
    ]);
  },
  compiledDTypes: () => true,
  notDifferentiable,
});

/**
 * Whether a convolution runs on the packed-weight kernel (runtime-as/qpacked.ts): groups 1, stride 1 or 2 across,
 * rows of at least 8 outputs (its SIMD tile; a 1x1 stride-1 convolution counts its whole plane as one row),
 * an input of at least 16 bytes (its clamped loads), constant weights and bias.
 */
function packable(node: Node): boolean {
  const [x, w, bias] = node.inputs;
  const g = convGeometry(x.shape, w.shape, node.attrs);
  const outputsPerRow = isPointwise(g) ? g.OH * g.OW : g.OW;
  return g.groups === 1 && (g.stride[1] === 1 || g.stride[1] === 2) && outputsPerRow >= 8 && g.C * g.H * g.W >= 16 && w.data !== null && bias.data !== null && w.isConstant && bias.isConstant;
}
/** Whether a convolution the row tiles do not take runs through im2col tiles on packed weights instead (im2colTile). */
function packableColumns(node: Node): boolean {
  const [x, w, bias] = node.inputs;
  return convGeometry(x.shape, w.shape, node.attrs).groups === 1 && im2colTile(node) > 0 && w.data !== null && bias.data !== null && w.isConstant && bias.isConstant;
}
const isPointwise = (g: ReturnType<typeof convGeometry>): boolean =>
  g.KH === 1 && g.KW === 1 && g.stride.every((s) => s === 1) && g.pads.every((p) => p === 0);

/**
 * Weights [OC, C, KH, KW] in qconv2dPacked's order, [OC/4, KH, KW, C/2, 4, 2] (output channels padded to 4 and
 * input channels to 2 with zeros), and the bias with the input zero point folded in: bias − inZp·Σw.
 */
export function packConvWeights(w: HostTensor, bias: HostTensor, inZp: number): { w: HostTensor; bias: HostTensor } {
  const [OC, C, KH, KW] = w.shape;
  const tiles = Math.ceil(OC / 4), pairs = Math.ceil(C / 2);
  const shape = [tiles, KH, KW, pairs, 4, 2];
  const packed = new Int8Array(numel(shape));
  const folded = new Int32Array(OC);
  for (let oc = 0; oc < OC; oc++) {
    let sum = 0;
    for (let c = 0; c < C; c++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      const v = Number(w.data[((oc * C + c) * KH + kh) * KW + kw]);
      sum += v;
      packed[((((oc >> 2) * KH + kh) * KW + kw) * pairs + (c >> 1)) * 8 + (oc & 3) * 2 + (c & 1)] = v;
    }
    folded[oc] = Number(bias.data[oc]) - inZp * sum;
  }
  return { w: { shape, dtype: "int8", data: packed }, bias: { shape: [OC], dtype: "int32", data: folded } };
}

/** packConvWeights undone: the [OC, C, KH, KW] weights and the bias as qconv2d takes them. */
function unpackConvWeights(wp: HostTensor, folded: HostTensor, C: number, inZp: number): { w: HostTensor; bias: HostTensor } {
  const [, KH, KW, pairs] = wp.shape, OC = folded.shape[0];
  const w = newHost([OC, C, KH, KW], "int8"), bias = newHost([OC], "int32");
  for (let oc = 0; oc < OC; oc++) {
    let sum = 0;
    for (let c = 0; c < C; c++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      const v = Number(wp.data[((((oc >> 2) * KH + kh) * KW + kw) * pairs + (c >> 1)) * 8 + (oc & 3) * 2 + (c & 1)]);
      w.data[((oc * C + c) * KH + kh) * KW + kw] = v;
      sum += v;
    }
    bias.data[oc] = Number(folded.data[oc]) + inZp * sum;
  }
  return { w, bias };
}

/**
 * The [OC, C, KH, KW] filter shape behind packed weights: KH, KW from the packed shape, or from `kernel` when the
 * weights were packed as a 1x1 convolution over the taps (im2col).
 */
function packedFilterShape(x: number[], wp: number[], OC: number, attrs: Attrs): number[] {
  const kernel = attrs.kernel as number[] | undefined;
  return kernel ? [OC, x[1], kernel[0], kernel[1]] : [OC, x[1], wp[1], wp[2]];
}
/** The input channels the weights were packed for: the input's, or every tap of the window (im2col). */
function packedInputChannels(x: number[], attrs: Attrs): number {
  const kernel = attrs.kernel as number[] | undefined;
  return kernel ? x[1] * kernel[0] * kernel[1] : x[1];
}
/** A stand-in qconv2d node with the unpacked filter's shape, for im2colTile and convTaps. */
function unpackedNode(node: Node): Node {
  const [x, wp, bias] = node.inputs;
  const filter = { shape: packedFilterShape(x.shape, wp.shape, bias.shape[0], node.attrs), dtype: "int8" };
  return { ...node, inputs: [x, filter, ...node.inputs.slice(2)] } as unknown as Node;
}

// --- qconv2dPacked: qconv2d (groups 1) on packConvWeights' weights and folded bias -----------------------------
defineOp({
  name: "qconv2dPacked",
  infer([x, wp, bias, rq], attrs) {
    if (!rq) fail("qconv2dPacked takes (x, packed weights, folded bias, requantization table)");
    requireDType("qconv2dPacked", x, "int8", "the input");
    requireDType("qconv2dPacked", wp, "int8", "the packed filter");
    const OC = bias.shape[0];
    if (wp.shape.length !== 6 || wp.shape[0] !== Math.ceil(OC / 4) || wp.shape[3] !== Math.ceil(packedInputChannels(x.shape, attrs) / 2) || wp.shape[4] !== 4 || wp.shape[5] !== 2) {
      fail(`qconv2dPacked: packed filter ${shapeStr(wp.shape)} does not fit input ${shapeStr(x.shape)} and ${OC} output channels`);
    }
    if (attrs.groups !== 1) fail(`qconv2dPacked: groups must be 1, got ${String(attrs.groups)}`);
    return qconv2d.infer([x, { shape: packedFilterShape(x.shape, wp.shape, OC, attrs), dtype: "int8" }, bias, rq], attrs);
  },
  reference([x, wp, bias, rq], attrs) {
    const filter = packedFilterShape(x.shape, wp.shape, bias.shape[0], attrs);
    const { w, bias: b } = unpackConvWeights(wp, bias, packedInputChannels(x.shape, attrs), attrs.inZp as number);
    return qconv2d.reference([x, { ...w, shape: filter }, b, rq], attrs);
  },
  scratchBytes(node) {
    return node.attrs.kernel ? im2colTile(unpackedNode(node)) * convTaps(unpackedNode(node)) : 0;
  },
  lower(ctx, node) {
    const [x, wp, bias, rq] = node.inputs;
    const g = convGeometry(x.shape, packedFilterShape(x.shape, wp.shape, bias.shape[0], node.attrs), node.attrs);
    if (node.attrs.kernel) {
      const tile = im2colTile(unpackedNode(node));
      ctx.call("qpacked", "qconv2dPackedColumns", [
        ctx.ptr(x), ctx.ptr(wp), ctx.ptr(bias), ctx.ptr(rq), ctx.ptr(node.outputs[0]),
        g.N, g.C, g.H, g.W, g.OC, g.OH, g.OW, g.KH, g.KW, g.stride[0], g.stride[1], g.pads[0], g.pads[1],
        g.dilation[0], g.dilation[1], node.attrs.inZp as number, ...requantArgs(node.attrs), ctx.scratch(node), tile,
      ]);
      return;
    }
    // a 1x1 stride-1 convolution is one row of H·W pixels: 8-pixel tiles however narrow its rows
    const [H, W, OH, OW] = isPointwise(g) ? [1, g.H * g.W, 1, g.OH * g.OW] : [g.H, g.W, g.OH, g.OW];
    ctx.call("qpacked", "qconv2dPacked", [
      ctx.ptr(x), ctx.ptr(wp), ctx.ptr(bias), ctx.ptr(rq), ctx.ptr(node.outputs[0]),
      g.N, g.C, H, W, g.OC, OH, OW, g.KH, g.KW, g.stride[0], g.stride[1], g.pads[0], g.pads[1],
      g.dilation[0], g.dilation[1], node.attrs.inZp as number, ...requantArgs(node.attrs),
    ]);
  },
  compiledDTypes: () => true,
  notDifferentiable,
});

// --- qfullyConnected: y[M, N] = requantize(bias + (x[M, K] − inZp)·w[N, K]ᵀ) -------------------------------
defineOp({
  name: "qfullyConnected",
  infer([x, w, bias, rq], attrs) {
    if (!rq) fail("qfullyConnected takes (x, w, bias, requantization table)");
    requireDType("qfullyConnected", x, "int8", "the input");
    requireDType("qfullyConnected", w, "int8", "the weights");
    if (x.shape.length !== 2 || w.shape.length !== 2 || x.shape[1] !== w.shape[1]) fail(`qfullyConnected: input ${shapeStr(x.shape)} and weights ${shapeStr(w.shape)} must be [M, K] and [N, K]`);
    requireBias("qfullyConnected", bias, w.shape[0]);
    requireRequant("qfullyConnected", rq, w.shape[0]);
    requireZeroPoint("qfullyConnected", attrs, "inZp");
    requireZeroPoint("qfullyConnected", attrs, "outZp");
    requireActivationRange("qfullyConnected", attrs);
    requireRounding("qfullyConnected", attrs);
    return [{ shape: [x.shape[0], w.shape[0]], dtype: "int8" }];
  },
  reference([x, w, bias, rq], attrs) {
    const [M, K] = x.shape, N = w.shape[0];
    const out = newHost([M, N], "int8");
    const inZp = attrs.inZp as number;
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
      let acc = Number(bias.data[n]);
      for (let k = 0; k < K; k++) acc += (Number(x.data[m * K + k]) - inZp) * Number(w.data[n * K + k]);
      out.data[m * N + n] = requantized(acc, rq, n, attrs);
    }
    return [out];
  },
  lower(ctx, node) {
    const [x, w, bias, rq] = node.inputs;
    ctx.call("qgemm", "qfullyConnected", [
      ctx.ptr(x), ctx.ptr(w), ctx.ptr(bias), ctx.ptr(rq), ctx.ptr(node.outputs[0]),
      x.shape[0], w.shape[0], x.shape[1], node.attrs.inZp as number, ...requantArgs(node.attrs),
    ]);
  },
  compiledDTypes: () => true,
  notDifferentiable,
});

// --- qavgpool2d / qmaxpool2d: input and output on one grid (TFLite requires it) ------------------------------
function qpool(name: "qavgpool2d" | "qmaxpool2d"): void {
  const isMax = name === "qmaxpool2d";
  defineOp({
    name,
    infer([x], attrs) {
      requireDType(name, x, "int8", "the input");
      requireActivationRange(name, attrs);
      const g = poolGeometry(x.shape, attrs);
      if (g.dilation.some((d) => d !== 1)) fail(`${name}: dilated pooling is not supported`);
      return [{ shape: [g.N, g.C, g.OH, g.OW], dtype: "int8" }];
    },
    reference([x], attrs) {
      const g = poolGeometry(x.shape, attrs);
      const out = newHost([g.N, g.C, g.OH, g.OW], "int8");
      const [kh, kw] = g.kernel, [sh, sw] = g.stride;
      let o = 0;
      for (let nc = 0; nc < g.N * g.C; nc++) for (let oh = 0; oh < g.OH; oh++) for (let ow = 0; ow < g.OW; ow++) {
        let acc = isMax ? INT8_MIN : 0, count = 0;
        for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
          const ih = oh * sh - g.pads[0] + i, iw = ow * sw - g.pads[1] + j;
          if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
          const v = Number(x.data[(nc * g.H + ih) * g.W + iw]);
          acc = isMax ? Math.max(acc, v) : acc + v;
          count++;
        }
        // TFLite: (sum ± count/2) / count in C integer division, i.e. the mean rounded half away from zero
        if (!isMax) acc = count === 0 ? 0 : Math.trunc((acc > 0 ? acc + Math.floor(count / 2) : acc - Math.floor(count / 2)) / count);
        out.data[o++] = clampTo(acc, attrs.actMin as number, attrs.actMax as number);
      }
      return [out];
    },
    lower(ctx, node) {
      const g = poolGeometry(node.inputs[0].shape, node.attrs);
      ctx.call("qpool", name, [
        ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]), g.N * g.C, g.H, g.W, g.OH, g.OW, g.kernel[0], g.kernel[1],
        g.stride[0], g.stride[1], g.pads[0], g.pads[1], node.attrs.actMin as number, node.attrs.actMax as number,
      ]);
    },
    compiledDTypes: () => true,
    notDifferentiable,
  });
}
qpool("qavgpool2d");
qpool("qmaxpool2d");

// --- qadd: TFLite's integer ADD (same shapes) --------------------------------------------------------------
/** TFLite's ADD parameters for input scales sa, sb and output scale so: both inputs shifted left 20 bits onto twice the larger scale. */
export function addParameters(sa: number, sb: number, so: number): Attrs {
  const leftShift = 20, twiceMax = 2 * Math.max(sa, sb);
  const [a, b, o] = [sa / twiceMax, sb / twiceMax, twiceMax / (2 ** leftShift * so)].map(quantizeMultiplier);
  return { aMult: a.q, aShift: a.shift, bMult: b.q, bShift: b.shift, outMult: o.q, outShift: o.shift, leftShift };
}
defineOp({
  name: "qadd",
  infer([a, b], attrs) {
    requireDType("qadd", a, "int8", "input a");
    requireDType("qadd", b, "int8", "input b");
    if (a.shape.join() !== b.shape.join()) fail(`qadd: inputs must have one shape, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
    for (const k of ["aZp", "bZp", "outZp"]) requireZeroPoint("qadd", attrs, k);
    requireActivationRange("qadd", attrs);
    return [{ shape: [...a.shape], dtype: "int8" }];
  },
  reference([a, b], attrs) {
    const n = attrs as Record<string, number>;
    const out = newHost([...a.shape], "int8");
    for (let i = 0; i < a.data.length; i++) {
      const sa = multiplyByQuantizedMultiplier((Number(a.data[i]) - n.aZp) << n.leftShift, n.aMult, n.aShift);
      const sb = multiplyByQuantizedMultiplier((Number(b.data[i]) - n.bZp) << n.leftShift, n.bMult, n.bShift);
      out.data[i] = clampTo(multiplyByQuantizedMultiplier((sa + sb) | 0, n.outMult, n.outShift) + n.outZp, n.actMin, n.actMax);
    }
    return [out];
  },
  lower(ctx, node) {
    const n = node.attrs as Record<string, number>;
    const [a, b] = node.inputs;
    ctx.call("qmath", "qadd", [
      ctx.ptr(a), ctx.ptr(b), ctx.ptr(node.outputs[0]), numel(a.shape),
      n.aZp, n.aMult, n.aShift, n.bZp, n.bMult, n.bShift, n.outZp, n.outMult, n.outShift, n.leftShift, n.actMin, n.actMax,
    ]);
  },
  inPlace: true,
  compiledDTypes: () => true,
  notDifferentiable,
});

// --- qsoftmax over the last axis: TFLite's builtin int8 kernel (a float32 exp table, float32 normalization) ---
/** table[d] = expf(−inputScale·β·d) in float32, d = max − x in [0, 255], as TFLite's PopulateSoftmaxLookupTable. */
export function softmaxTable(inputScale: number, beta: number): HostTensor {
  const s = Math.fround(-Math.fround(inputScale) * Math.fround(beta));
  return { shape: [256], dtype: "float32", data: Float32Array.from({ length: 256 }, (_, d) => Math.exp(Math.fround(s * d))) };
}
defineOp({
  name: "qsoftmax",
  infer([x, table], attrs) {
    requireDType("qsoftmax", x, "int8", "the input");
    if (!table || table.dtype !== "float32" || table.shape.join() !== "256") fail("qsoftmax: the exp table must be float32 [256]");
    if (!(Number(attrs.outScale) > 0)) fail(`qsoftmax: output scale ${attrs.outScale} must be positive`);
    requireZeroPoint("qsoftmax", attrs, "outZp");
    return [{ shape: [...x.shape], dtype: "int8" }];
  },
  reference([x, table], attrs) {
    const n = x.shape[x.shape.length - 1], rows = numel(x.shape) / n;
    const out = newHost([...x.shape], "int8");
    const T = table.data as Float32Array, f = Math.fround, outScale = f(attrs.outScale as number);
    for (let r = 0; r < rows; r++) {
      let m = INT8_MIN, sum = 0;
      for (let j = 0; j < n; j++) m = Math.max(m, Number(x.data[r * n + j]));
      for (let j = 0; j < n; j++) sum = f(sum + T[m - Number(x.data[r * n + j])]);
      const inv = f(1 / f(sum * outScale));
      for (let j = 0; j < n; j++) out.data[r * n + j] = clampTo(roundHalfAway(f(T[m - Number(x.data[r * n + j])] * inv)) + (attrs.outZp as number), INT8_MIN, INT8_MAX);
    }
    return [out];
  },
  lower(ctx, node) {
    const [x, table] = node.inputs;
    const n = x.shape[x.shape.length - 1];
    ctx.call("qmath", "qsoftmax", [ctx.ptr(x), ctx.ptr(table), ctx.ptr(node.outputs[0]), numel(x.shape) / n, n, floatLiteral(node.attrs.outScale as number), node.attrs.outZp as number]);
  },
  compiledDTypes: () => true,
  notDifferentiable,
});

// --- quantize (float32 → int8) and dequantize (int8 → float32) ---------------------------------------------
function requireScale(op: string, attrs: Attrs): void {
  const s = attrs.scale as number;
  if (!(s > 0) || !Number.isFinite(s)) fail(`${op}: scale ${s} must be positive and finite`);
  requireZeroPoint(op, attrs, "zeroPoint");
}
defineOp({
  name: "quantize",
  infer([x], attrs) {
    requireDType("quantize", x, "float32", "the input");
    requireScale("quantize", attrs);
    return [{ shape: [...x.shape], dtype: "int8" }];
  },
  reference([x], attrs) {
    const out = newHost([...x.shape], "int8");
    const scale = Math.fround(attrs.scale as number);
    for (let i = 0; i < x.data.length; i++) {
      const r = roundHalfAway(Math.fround(Number(x.data[i]) / scale));
      out.data[i] = clampTo(Number.isNaN(r) ? 0 : r + (attrs.zeroPoint as number), INT8_MIN, INT8_MAX);
    }
    return [out];
  },
  lower: (ctx, node) => elementwiseCall(ctx, node, "quantize"),
  compiledDTypes: () => true,
  notDifferentiable,
});
defineOp({
  name: "dequantize",
  infer([x], attrs) {
    requireDType("dequantize", x, "int8", "the input");
    requireScale("dequantize", attrs);
    return [{ shape: [...x.shape], dtype: "float32" }];
  },
  reference([x], attrs) {
    const out = newHost([...x.shape], "float32");
    const scale = Math.fround(attrs.scale as number);
    for (let i = 0; i < x.data.length; i++) out.data[i] = Math.fround((Number(x.data[i]) - (attrs.zeroPoint as number)) * scale);
    return [out];
  },
  lower: (ctx, node) => elementwiseCall(ctx, node, "dequantize"),
  compiledDTypes: () => true,
  notDifferentiable,
});
function elementwiseCall(ctx: LowerContext, node: Node, fn: string): void {
  const x = node.inputs[0];
  ctx.call("qmath", fn, [ctx.ptr(x), ctx.ptr(node.outputs[0]), numel(x.shape), floatLiteral(node.attrs.scale as number), node.attrs.zeroPoint as number]);
}

// --- qlookup: a unary int8 op as a 256-entry table (TFLite's int8 LOGISTIC and TANH) ------------------------
/**
 * TFLite's LUTPopulate for an int8 input grid, an int8 output grid and a float32 function: entry v + 128 is
 * round(f(inScale·(v − inZp)) / outScale) + outZp, saturated, all in float32 as TFLite computes it.
 */
export function lookupTable(inScale: number, inZp: number, outScale: number, outZp: number, fn: (x: number) => number): HostTensor {
  const f = Math.fround, inverse = f(1 / f(outScale));
  const data = Int8Array.from({ length: 256 }, (_, k) => {
    const real = fn(f(f(inScale) * (k - 128 - inZp)));
    return clampTo(roundHalfAway(f(real * inverse)) + outZp, INT8_MIN, INT8_MAX);
  });
  return { shape: [256], dtype: "int8", data };
}
/** The float32 functions TFLite tabulates for LOGISTIC and TANH. */
export const sigmoidF32 = (x: number): number => Math.fround(1 / Math.fround(1 + Math.fround(Math.exp(-x))));
export const tanhF32 = (x: number): number => Math.fround(Math.tanh(x));
defineOp({
  name: "qlookup",
  infer([x, table]) {
    requireDType("qlookup", x, "int8", "the input");
    if (!table || table.dtype !== "int8" || table.shape.join() !== "256") fail("qlookup: the table must be int8 [256]");
    return [{ shape: [...x.shape], dtype: "int8" }];
  },
  reference([x, table]) {
    const out = newHost([...x.shape], "int8");
    for (let i = 0; i < x.data.length; i++) out.data[i] = table.data[Number(x.data[i]) + 128];
    return [out];
  },
  lower(ctx, node) {
    const [x, table] = node.inputs;
    ctx.call("qmath", "qlookup", [ctx.ptr(x), ctx.ptr(table), ctx.ptr(node.outputs[0]), numel(x.shape)]);
  },
  inPlace: true,
  compiledDTypes: () => true,
  notDifferentiable,
});

// --- qmul: TFLite's integer MUL; b the same shape as a, or a's trailing dims (repeated) ----------------------
defineOp({
  name: "qmul",
  infer([a, b], attrs) {
    requireDType("qmul", a, "int8", "input a");
    requireDType("qmul", b, "int8", "input b");
    const trailing = a.shape.slice(a.shape.length - b.shape.length);
    if (b.shape.length > a.shape.length || trailing.join() !== b.shape.join()) fail(`qmul: input b ${shapeStr(b.shape)} must be input a's ${shapeStr(a.shape)} trailing dims`);
    for (const k of ["aZp", "bZp", "outZp"]) requireZeroPoint("qmul", attrs, k);
    requireActivationRange("qmul", attrs);
    return [{ shape: [...a.shape], dtype: "int8" }];
  },
  reference([a, b], attrs) {
    const n = attrs as Record<string, number>;
    const out = newHost([...a.shape], "int8"), bn = b.data.length;
    for (let i = 0; i < a.data.length; i++) {
      const product = (Number(a.data[i]) - n.aZp) * (Number(b.data[i % bn]) - n.bZp);
      out.data[i] = clampTo(multiplyByQuantizedMultiplier(product, n.multiplier, n.shift) + n.outZp, n.actMin, n.actMax);
    }
    return [out];
  },
  lower(ctx, node) {
    const n = node.attrs as Record<string, number>;
    const [a, b] = node.inputs;
    ctx.call("qmath", "qmul", [
      ctx.ptr(a), ctx.ptr(b), ctx.ptr(node.outputs[0]), numel(a.shape), numel(b.shape), n.aZp, n.bZp, n.outZp, n.multiplier, n.shift, n.actMin, n.actMax,
    ]);
  },
  inPlace: true,
  compiledDTypes: () => true,
  notDifferentiable,
});

// --- qmean: a requantized sum over contiguous axes (TFLite's int8 MEAN) --------------------------------------
/** y = clamp(MultiplyByQuantizedMultiplier(Σ x − inZp·count, multiplier, shift) + outZp) over contiguous reduced axes. */
function meanGeometry(shape: number[], attrs: Attrs): { outer: number; count: number; inner: number; out: number[] } {
  const axes = [...(attrs.axes as number[])].sort((p, q) => p - q);
  if (!axes.length || axes.some((a, k) => !Number.isInteger(a) || a < 0 || a >= shape.length || (k > 0 && a !== axes[k - 1] + 1))) {
    fail(`qmean: axes [${attrs.axes}] must be distinct contiguous axes of ${shapeStr(shape)}`);
  }
  const [first, last] = [axes[0], axes[axes.length - 1]];
  const out = shape.flatMap((d, k) => (k < first || k > last ? [d] : attrs.keepdim ? [1] : []));
  return { outer: numel(shape.slice(0, first)), count: numel(shape.slice(first, last + 1)), inner: numel(shape.slice(last + 1)), out };
}
/**
 * TFLite's int8 MEAN parameters (its general kernel, QuantizedMeanOrSum): the multiplier inScale / outScale with
 * 1/count folded in. (Its 4-d kernel over H and W with keep_dims rounds differently and is not reproduced.)
 */
export function meanParameters(inScale: number, inZp: number, outScale: number, outZp: number, count: number): Attrs {
  const m = quantizeMultiplier(Math.fround(inScale) / Math.fround(outScale));
  const shift = Math.min(31 - Math.clz32(count), 32, 31 + m.shift);
  return { inZp, outZp, multiplier: Number((BigInt(m.q) << BigInt(shift)) / BigInt(count)), shift: m.shift - shift };
}
defineOp({
  name: "qmean",
  infer([x], attrs) {
    requireDType("qmean", x, "int8", "the input");
    for (const k of ["inZp", "outZp"]) requireZeroPoint("qmean", attrs, k);
    for (const k of ["multiplier", "shift"]) if (!Number.isInteger(attrs[k])) fail(`qmean: ${k} must be an integer, got ${String(attrs[k])}`);
    return [{ shape: meanGeometry(x.shape, attrs).out, dtype: "int8" }];
  },
  reference([x], attrs) {
    const { outer, count, inner, out } = meanGeometry(x.shape, attrs);
    const y = newHost(out, "int8");
    const n = attrs as Record<string, number>;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
      let sum = 0;
      for (let r = 0; r < count; r++) sum += Number(x.data[(o * count + r) * inner + i]);
      y.data[o * inner + i] = clampTo(multiplyByQuantizedMultiplier(sum - n.inZp * count, n.multiplier, n.shift) + n.outZp, INT8_MIN, INT8_MAX);
    }
    return [y];
  },
  lower(ctx, node) {
    const { outer, count, inner } = meanGeometry(node.inputs[0].shape, node.attrs);
    const n = node.attrs as Record<string, number>;
    ctx.call("qmath", "qmean", [ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]), outer, count, inner, n.inZp, n.outZp, n.multiplier, n.shift]);
  },
  compiledDTypes: () => true,
  notDifferentiable,
});
