import { fail } from "../../errors.js";
import { shapeStr } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { NodeAttrs } from "./attrs.js";
import { cast, extendHandler, HANDLERS, need, registerHandlers, spatialPads, windowInts, type Handler, type OpContext } from "./ops.js";
import type { AttributeProto } from "./proto.js";

/**
 * ConvTranspose, LpPool, and the 3-d and integer cases of Conv, MaxPool and AveragePool, all expressed with the
 * 2-d kernels: ops.ts's handlers run on reshaped problems with rewritten attributes.
 *  - ConvTranspose = zero insertion between input pixels (reshape + pad), edge padding, then a
 *    convolution with the weights flipped and their in/out channels swapped per group.
 *  - 3-d Conv folds the depth taps into channels: [N, C, D, H, W] → [N·OD, C·KD, H, W] (one strided
 *    slice per depth tap), one 2-d convolution with weights [M, C/g·KD, KH, KW].
 *  - 3-d pooling is separable: a 2-d pool over (H, W), then one over (D, OH·OW) with a KD×1 window.
 *  - MaxPool on uint8/int8 runs on float32 and casts back (exact: every 8-bit value is a float32);
 *    2-d MaxPool's Indices output comes from an argmax over the stacked window taps.
 */

type Input = Tensor | undefined;
type AttrValue = number | number[] | string;

/** ctx with the node's attributes replaced by `attrs`: runs another handler on a rewritten problem. */
export function withAttrs(ctx: OpContext, attrs: Record<string, AttrValue>): OpContext {
  const attribute: AttributeProto[] = Object.entries(attrs).map(([name, v]) =>
    typeof v === "string" ? { name, s: new TextEncoder().encode(v) } : Array.isArray(v) ? { name, ints: v.map(String) } : { name, i: String(v) });
  return { ...ctx, attrs: new NodeAttrs({ op_type: "", attribute }, ctx.label) };
}

interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin…, end…] */
  pads: number[];
}

/** The node's window attributes with auto_pad resolved to explicit pads (Conv and pooling semantics). */
function windowOf(ctx: OpContext, spatial: number[], kernel: number[]): Window {
  const n = kernel.length;
  windowInts(kernel, "kernel_shape", ctx);
  const strides = windowInts(ctx.attrs.ints("strides", kernel.map(() => 1)), "strides", ctx);
  const dilations = windowInts(ctx.attrs.ints("dilations", kernel.map(() => 1)), "dilations", ctx);
  const pads = spatialPads(ctx, spatial, kernel, strides, dilations);
  if (strides.length !== n || dilations.length !== n || pads.length !== 2 * n) fail(`${ctx.label}: strides, dilations and pads must have ${n}, ${n} and ${2 * n} values for a ${n}-d window`);
  return { kernel, strides, dilations, pads };
}

/** The window restricted to some spatial dims (indices into the window's dims). */
const pick = (w: Window, dims: number[]) => ({
  kernel_shape: dims.map((d) => w.kernel[d]),
  strides: dims.map((d) => w.strides[d]),
  dilations: dims.map((d) => w.dilations[d]),
  pads: [...dims.map((d) => w.pads[d]), ...dims.map((d) => w.pads[d + w.kernel.length])],
});

// --- convolution ---------------------------------------------------------------------------------

/** A 1-, 2- or 3-d convolution with explicit attributes; 1-d and 2-d go to ops.ts's Conv. */
function convolve(base: Handler, x: Tensor, w: Tensor, bias: Input, win: Window, group: number, ctx: OpContext): Tensor {
  const rank = x.ndim - 2;
  if (rank <= 2) return base(bias ? [x, w, bias] : [x, w], withAttrs(ctx, { ...pick(win, [...win.kernel.keys()]), group })) as Tensor;
  if (rank !== 3) fail(`${ctx.label}: ${rank}-d convolution (input ${shapeStr(x.shape)}) is not supported; 1-d, 2-d and 3-d are`);
  const [N, C, D, H, W] = x.shape;
  const [M, CG, KD, KH, KW] = w.shape;
  if (CG * group !== C) fail(`${ctx.label}: input ${shapeStr(x.shape)} has ${C} channels but weight ${shapeStr(w.shape)} with group=${group} expects ${CG * group}`);
  const [sd] = win.strides, [dd] = win.dilations, [db, , , de] = win.pads;
  const padded = db || de ? apply("pad", [x], { pads: [0, 0, db, 0, 0, 0, 0, de, 0, 0], value: 0 }) : x;
  const depth = D + db + de, span = (KD - 1) * dd + 1;
  const OD = Math.floor((depth - span) / sd) + 1;
  if (OD <= 0) fail(`${ctx.label}: kernel depth ${KD} (dilation ${dd}) does not fit input depth ${D} with pads ${db}+${de}`);
  // one strided depth slice per tap, folded into channels as c·KD + tap (matching w's [C/g, KD] order)
  const taps = Array.from({ length: KD }, (_, k) => padded.slice(2, k * dd, k * dd + (OD - 1) * sd + 1, sd).unsqueeze(3));
  const folded = (KD === 1 ? taps[0] : Tensor.cat(taps, 3)).permute([0, 2, 1, 3, 4, 5]).reshape([N * OD, C * KD, H, W]);
  const planes = convolve(base, folded, w.reshape([M, CG * KD, KH, KW]), bias, { kernel: [KH, KW], strides: win.strides.slice(1), dilations: win.dilations.slice(1), pads: [win.pads[1], win.pads[2], win.pads[4], win.pads[5]] }, group, ctx);
  const [, , OH, OW] = planes.shape;
  return planes.reshape([N, OD, M, OH, OW]).permute([0, 2, 1, 3, 4]);
}

function conv3d(base: Handler): Handler {
  return (x, ctx) => {
    const input = need(x, 0, ctx), w = need(x, 1, ctx);
    if (input.ndim !== 5) return base(x, ctx);
    const kernel = ctx.attrs.ints("kernel_shape", w.shape.slice(2));
    return convolve(base, input, w, x[2], windowOf(ctx, input.shape.slice(2), kernel), ctx.attrs.int("group", 1), ctx);
  };
}

/** Inserts stride-1 zeros between neighbours along each spatial dim: [S] → [(S-1)·s + 1]. */
function insertZeros(x: Tensor, strides: number[]): Tensor {
  let y = x;
  strides.forEach((s, i) => {
    if (s === 1) return;
    const d = i + 2, size = y.shape[d];
    const split = y.reshape([...y.shape.slice(0, d + 1), 1, ...y.shape.slice(d + 1)]);
    const after = split.shape.map((_, j) => (j === d + 1 ? s - 1 : 0));
    const spread = apply("pad", [split], { pads: [...split.shape.map(() => 0), ...after], value: 0 });
    y = spread.reshape([...y.shape.slice(0, d), size * s, ...y.shape.slice(d + 1)]).slice(d, 0, (size - 1) * s + 1);
  });
  return y;
}

function convTranspose(x: Input[], ctx: OpContext): Tensor {
  const input = need(x, 0, ctx), w = need(x, 1, ctx), bias = x[2];
  const rank = input.ndim - 2, spatial = input.shape.slice(2);
  if (rank < 1 || rank > 3) fail(`${ctx.label}: ${rank}-d ConvTranspose (input ${shapeStr(input.shape)}) is not supported; 1-d, 2-d and 3-d are`);
  const group = ctx.attrs.int("group", 1);
  const [C, MG] = w.shape;
  if (C !== input.shape[1]) fail(`${ctx.label}: input ${shapeStr(input.shape)} has ${input.shape[1]} channels, weight ${shapeStr(w.shape)} expects ${C}`);
  if (C % group) fail(`${ctx.label}: ${C} input channels do not split into ${group} groups`);
  const kernel = windowInts(ctx.attrs.ints("kernel_shape", w.shape.slice(2)), "kernel_shape", ctx);
  const ones = kernel.map(() => 1);
  const strides = windowInts(ctx.attrs.ints("strides", ones), "strides", ctx), dilations = windowInts(ctx.attrs.ints("dilations", ones), "dilations", ctx);
  const outputPadding = ctx.attrs.ints("output_padding", kernel.map(() => 0));
  const autoPad = ctx.attrs.string("auto_pad", "NOTSET");
  // the full (unpadded) output extent along each dim
  const full = spatial.map((s, i) => strides[i] * (s - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1);
  let pads: number[];
  const wanted = ctx.attrs.has("output_shape") ? ctx.attrs.ints("output_shape").slice(-rank) : autoPad.startsWith("SAME") ? spatial.map((s, i) => s * strides[i]) : undefined;
  if (wanted) {
    // the padding that yields the wanted size; an odd total puts the extra at the end for SAME_UPPER, at the beginning otherwise
    const total = full.map((f, i) => f - wanted[i]);
    const upper = autoPad === "SAME_UPPER";
    pads = [...total.map((t) => (upper ? Math.floor(t / 2) : t - Math.floor(t / 2))), ...total.map((t) => (upper ? t - Math.floor(t / 2) : Math.floor(t / 2)))];
  } else if (autoPad === "NOTSET" || autoPad === "VALID") pads = autoPad === "VALID" ? new Array(2 * rank).fill(0) : ctx.attrs.ints("pads", new Array(2 * rank).fill(0));
  else fail(`${ctx.label}: unknown auto_pad '${autoPad}'`);
  if (pads.length !== 2 * rank) fail(`${ctx.label}: pads has ${pads.length} values, expected ${2 * rank}`);

  // the transposed convolution is a convolution of the zero-spread input, padded by the kernel extent
  // less the pads (negative: cropped), with every kernel flipped and in/out channels swapped per group
  const spread = insertZeros(input, strides);
  const begin = kernel.map((k, i) => (k - 1) * dilations[i] - pads[i]);
  const end = kernel.map((k, i) => (k - 1) * dilations[i] - pads[i + rank] + outputPadding[i]);
  let cropped = spread;
  for (let i = 0; i < rank; i++) {
    const d = i + 2, cutBegin = Math.max(0, -begin[i]), cutEnd = Math.max(0, -end[i]);
    if (cutBegin || cutEnd) cropped = cropped.slice(d, cutBegin, cropped.shape[d] - cutEnd);
  }
  const flipped = w
    .reshape([group, C / group, MG, ...w.shape.slice(2)])
    .permute([0, 2, 1, ...kernel.map((_, i) => i + 3)])
    .reshape([group * MG, C / group, ...w.shape.slice(2)])
    .flip(kernel.map((_, i) => i + 2));
  const win: Window = { kernel, strides: ones, dilations, pads: [...begin, ...end].map((p) => Math.max(0, p)) };
  return convolve(HANDLERS.Conv, cropped, flipped, bias, win, group, ctx);
}

// --- pooling -------------------------------------------------------------------------------------

/** 3-d pooling as a 2-d pool over (H, W) then one over (D, OH·OW); max and average windows are both separable boxes. */
function pool3d(base: Handler): Handler {
  return (x, ctx) => {
    const input = need(x, 0, ctx);
    if (input.ndim !== 5) return base(x, ctx);
    if (ctx.outputs > 1) fail(`${ctx.label}: the Indices output is not supported`);
    const win = windowOf(ctx, input.shape.slice(2), ctx.attrs.ints("kernel_shape"));
    const shared = { ceil_mode: ctx.attrs.int("ceil_mode", 0), count_include_pad: ctx.attrs.int("count_include_pad", 0) };
    const [N, C, D, H, W] = input.shape;
    const planes = base([input.reshape([N, C * D, H, W])], withAttrs(ctx, { ...pick(win, [1, 2]), ...shared })) as Tensor;
    const [, , OH, OW] = planes.shape;
    const depthWin = { kernel: [win.kernel[0], 1], strides: [win.strides[0], 1], dilations: [win.dilations[0], 1], pads: [win.pads[0], 0, win.pads[3], 0] };
    const pooled = base([planes.reshape([N, C, D, OH * OW])], withAttrs(ctx, { ...pick(depthWin, [0, 1]), ...shared })) as Tensor;
    return pooled.reshape([N, C, pooled.shape[2], OH, OW]);
  };
}

/**
 * 2-d MaxPool's Indices output: each window's candidates stacked on a new axis (strided slices of the
 * input padded with -inf), argmax over them, and the winning tap turned back into a flat input index
 * (row-major, or column-major within each plane for storage_order 1).
 */
function maxPoolWithIndices(base: Handler): Handler {
  return (x, ctx) => {
    const input = need(x, 0, ctx);
    if (ctx.outputs < 2 || input.ndim !== 4) return base(x, ctx);
    const [N, C, H, W] = input.shape;
    const win = windowOf(ctx, [H, W], ctx.attrs.ints("kernel_shape"));
    const columnMajor = ctx.attrs.int("storage_order", 0) === 1;
    const values = base([input], { ...withAttrs(ctx, { ...pick(win, [0, 1]), ceil_mode: ctx.attrs.int("ceil_mode", 0) }), outputs: 1 }) as Tensor;
    const [, , OH, OW] = values.shape;
    const [kh, kw] = win.kernel, [sh, sw] = win.strides, [dh, dw] = win.dilations, [ph, pw] = win.pads;
    // pad far enough for every window, ceil mode's last one included; padding never wins a max
    const endH = Math.max(0, (OH - 1) * sh + (kh - 1) * dh + 1 - H - ph), endW = Math.max(0, (OW - 1) * sw + (kw - 1) * dw + 1 - W - pw);
    const padded = apply("pad", [input], { pads: [0, 0, ph, pw, 0, 0, endH, endW], value: -Infinity });
    const taps: Tensor[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
      taps.push(padded.slice(2, i * dh, i * dh + (OH - 1) * sh + 1, sh).slice(3, j * dw, j * dw + (OW - 1) * sw + 1, sw).unsqueeze(4));
    }
    // the tap k = i·kw + j, in float32 (small integers, exact)
    const k = cast(taps.length === 1 ? Tensor.zeros([N, C, OH, OW], "int32") : Tensor.cat(taps, 4).argmax(4), "float32");
    const i = k.div(kw).floor(), j = k.sub(i.mul(kw));
    const rowStart = Tensor.from(Float32Array.from({ length: OH }, (_, o) => o * sh - ph), { shape: [OH, 1] });
    const colStart = Tensor.from(Float32Array.from({ length: OW }, (_, o) => o * sw - pw), { shape: [OW] });
    const ih = i.mul(dh).add(rowStart), iw = j.mul(dw).add(colStart);
    const inPlane = columnMajor ? iw.mul(H).add(ih) : ih.mul(W).add(iw);
    const planeStart = Tensor.from(BigInt64Array.from({ length: N * C }, (_, p) => BigInt(p * H * W)), { shape: [N, C, 1, 1], dtype: "int64" });
    return [values, cast(inPlane, "int64").add(planeStart)];
  };
}

/** MaxPool on 8-bit integers: on float32 and back, exact. */
function integerMaxPool(base: Handler): Handler {
  return (x, ctx) => {
    const input = need(x, 0, ctx);
    if (input.dtype !== "uint8" && input.dtype !== "int8") return base(x, ctx);
    const y = base([cast(input, "float32"), ...x.slice(1)], ctx);
    return Array.isArray(y) ? [cast(need(y, 0, ctx), input.dtype), ...y.slice(1)] : cast(y, input.dtype);
  };
}

/**
 * LpPool: (Σ |x|^p over each window)^(1/p). The sum is AveragePool's mean over the whole window (padding
 * counted, as zeros) times the window's size.
 */
function lpPool(x: Input[], ctx: OpContext): Tensor {
  const input = need(x, 0, ctx);
  const p = ctx.attrs.int("p", 2);
  if (!(p > 0)) fail(`${ctx.label}: p = ${p} must be positive`);
  const win = windowOf(ctx, input.shape.slice(2), ctx.attrs.ints("kernel_shape"));
  const attrs = { ...pick(win, [...win.kernel.keys()]), ceil_mode: ctx.attrs.int("ceil_mode", 0), count_include_pad: 1 };
  const mean = HANDLERS.AveragePool([input.abs().pow(p)], withAttrs(ctx, attrs)) as Tensor;
  return mean.mul(win.kernel.reduce((a, b) => a * b, 1)).pow(1 / p);
}

extendHandler("Conv", conv3d);
extendHandler("MaxPool", (base) => integerMaxPool(maxPoolWithIndices(pool3d(base))));
extendHandler("AveragePool", pool3d);

const CAUSAL_ACTIVATIONS = ["none", "silu", "swish"];

/**
 * CausalConvWithState (opset 27): a depthwise 1-d convolution of input [B, C, L] left-padded by the past state
 * [B, C, k − 1] (zeros without one), as the sum of its k shifted slices times each channel's tap (k is a few taps:
 * element-wise work), plus the bias, then the optional SiLU (swish is its alias); the present state is the padded
 * input's last k − 1 positions.
 */
function causalConvWithState(x: (Tensor | undefined)[], ctx: OpContext): Tensor[] {
  const input = need(x, 0, ctx), weight = need(x, 1, ctx), bias = x[2], past = x[3];
  const activation = ctx.attrs.string("activation", "none");
  if (!CAUSAL_ACTIVATIONS.includes(activation)) fail(`${ctx.label}: activation '${activation}' is not one of ${CAUSAL_ACTIVATIONS.join(", ")}`);
  if (input.ndim !== 3) fail(`${ctx.label}: the input must be 3-d (batch, channels, length), got ${shapeStr(input.shape)}`);
  if (input.dtype !== "float32") fail(`${ctx.label}: ${input.dtype} CausalConvWithState is not supported (float32 and float16 are)`);
  const [B, C, L] = input.shape;
  if (weight.ndim !== 3 || weight.shape[0] !== C || weight.shape[1] !== 1 || weight.shape[2] < 1) {
    fail(`${ctx.label}: the weight must be [${C}, 1, k] for ${C} channels, got ${shapeStr(weight.shape)}`);
  }
  const k = weight.shape[2];
  const stateShape = [B, C, k - 1];
  if (past && past.shape.join() !== stateShape.join()) fail(`${ctx.label}: past_state has shape ${shapeStr(past.shape)}, expected ${shapeStr(stateShape)}`);
  if (bias && bias.shape.join() !== String(C)) fail(`${ctx.label}: the bias must be [${C}], got ${shapeStr(bias.shape)}`);
  const padded = k === 1 ? input : Tensor.cat([past ?? Tensor.full(stateShape, 0), input], 2);
  let y = padded.slice(2, 0, L).mul(weight.slice(2, 0, 1).reshape([1, C, 1]));
  for (let j = 1; j < k; j++) y = y.add(padded.slice(2, j, j + L).mul(weight.slice(2, j, j + 1).reshape([1, C, 1])));
  if (bias) y = y.add(bias.reshape([1, C, 1]));
  if (activation !== "none") y = y.silu();
  return [y, padded.slice(2, L, L + k - 1)];
}

registerHandlers({ ConvTranspose: convTranspose, LpPool: lpPool, CausalConvWithState: causalConvWithState });
