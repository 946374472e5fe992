import { fail } from "../../errors.js";
import { numel, type DType } from "../../ir/dtype.js";
import { normalizeAxis, shapeStr } from "../../ir/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { cast, constValues, HANDLERS, need, registerHandlers, type OpContext } from "./ops.js";
import { FLOAT_FORMATS, NARROW_INTS, narrowOf, narrowOfCode, type Narrow } from "./narrow.js";
import { onnxDType } from "./proto.js";

/**
 * Linear quantization ops on float32: q = saturate(round(x / scale) + zero_point) and
 * x = (q - zero_point) · scale. The integer products of MatMulInteger, ConvInteger and the QLinear ops
 * run as float32 matmul/conv2d on integer values, exact while every partial sum stays within 2^24;
 * that bound is checked from the shapes and dtypes at import.
 */

type Input = Tensor | undefined;

/** Integer types a quantized tensor may have, with their ranges. */
const RANGES: Partial<Record<DType, [number, number]>> = { uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767] };
/** float32 holds every integer up to 2^24 exactly */
const EXACT_FLOAT_INT = 2 ** 24;

function rangeOf(dtype: DType, what: string, ctx: OpContext, narrow?: Narrow): [number, number] {
  const r = narrow ? NARROW_INTS[narrow]?.range : RANGES[dtype];
  if (!r) fail(`${ctx.label}: ${what} of type ${dtype} is not supported; uint8, int8, uint16 and int16 are`);
  return r;
}

const toFloat = (t: Tensor): Tensor => cast(t, "float32");

/** A scale or zero point broadcast against x: per tensor (one value), per axis (1-D), or blocked along axis. */
function alongAxis(p: Tensor, x: Tensor, axisAttr: number, blockSize: number, what: string, ctx: OpContext): Tensor {
  if (blockSize === 0 && p.size === 1 && p.ndim <= 1) return p.reshape([]);
  // the axis matters (and must be valid) only for per-axis and blocked parameters
  const axis = normalizeAxis(axisAttr, x.ndim);
  if (blockSize > 0) {
    const blocks = Math.ceil(x.shape[axis] / blockSize);
    const want = x.shape.map((d, i) => (i === axis ? blocks : d));
    if (p.shape.join() !== want.join()) fail(`${ctx.label}: blocked ${what} has shape ${shapeStr(p.shape)}, expected ${shapeStr(want)} for input ${shapeStr(x.shape)} and block_size ${blockSize}`);
    // repeat each block's value block_size times along axis, then drop the overhang of a partial last block
    const repeated = p.unsqueeze(axis + 1).expand(want.flatMap((d, i) => (i === axis ? [d, blockSize] : [d])));
    return repeated.reshape(x.shape.map((d, i) => (i === axis ? blocks * blockSize : d))).slice(axis, 0, x.shape[axis]);
  }
  if (p.ndim === 1 && p.shape[0] === x.shape[axis]) return p.reshape(x.shape.map((d, i) => (i === axis ? d : 1)));
  fail(`${ctx.label}: ${what} of shape ${shapeStr(p.shape)} is neither per tensor nor per axis ${axis} of input ${shapeStr(x.shape)}`);
}

function axisAttrs(ctx: OpContext): { axis: number; blockSize: number } {
  const blockSize = ctx.attrs.int("block_size", 0);
  if (blockSize < 0) fail(`${ctx.label}: block_size ${blockSize} is negative`);
  return { axis: ctx.attrs.int("axis", 1), blockSize };
}

/** round half to even, add the zero point, clamp to the type's range, cast: exact for these integer ranges */
function requantize(y: Tensor, zeroPoint: Tensor | undefined, dtype: DType, ctx: OpContext, narrow?: Narrow): Tensor {
  const [lo, hi] = rangeOf(dtype, "the quantized output", ctx, narrow);
  const shifted = zeroPoint ? y.round().add(zeroPoint) : y.round();
  return cast(shifted.clamp(lo, hi), dtype);
}

function quantizeLinear(x: Input[], ctx: OpContext): Tensor {
  const input = toFloat(need(x, 0, ctx)), scale = need(x, 1, ctx), zeroPoint = x[2];
  const { axis, blockSize } = axisAttrs(ctx);
  const precision = ctx.attrs.int("precision", 0);
  if (precision !== 0 && precision !== 1) fail(`${ctx.label}: precision ${precision} is not supported; float32 is`);
  const outputType = ctx.attrs.int("output_dtype", 0);
  const dtype = zeroPoint?.dtype ?? (outputType ? onnxDType(outputType, `${ctx.label} output_dtype`) : "uint8");
  const narrow = zeroPoint ? narrowOf(zeroPoint) : narrowOfCode(outputType);
  if (zeroPoint && outputType && (onnxDType(outputType, `${ctx.label} output_dtype`) !== dtype || narrowOfCode(outputType) !== narrow)) fail(`${ctx.label}: output_dtype differs from the zero point's type ${narrow ?? dtype}`);
  const s = alongAxis(toFloat(scale), input, axis, blockSize, "y_scale", ctx);
  const zp = zeroPoint && alongAxis(toFloat(zeroPoint), input, axis, blockSize, "y_zero_point", ctx);
  // to a float8 (or float4) type: x / scale + zero point, rounded to the type (and saturated) as the node's result (index.ts)
  if (narrow && FLOAT_FORMATS[narrow]) return zp ? input.div(s).add(zp) : input.div(s);
  rangeOf(dtype, "the quantized output", ctx, narrow);
  return requantize(input.div(s), zp, dtype, ctx, narrow);
}

function dequantizeLinear(x: Input[], ctx: OpContext): Tensor {
  const q = need(x, 0, ctx), scale = need(x, 1, ctx), zeroPoint = x[2];
  const narrow = narrowOf(q);
  if (q.dtype !== "int32" && !(narrow && FLOAT_FORMATS[narrow])) rangeOf(q.dtype, "the quantized input", ctx, narrow);
  if (scale.dtype !== "float32") fail(`${ctx.label}: x_scale of type ${scale.dtype} is not supported; float32 is`);
  const { axis, blockSize } = axisAttrs(ctx);
  const s = alongAxis(scale, q, axis, blockSize, "x_scale", ctx);
  const centered = zeroPoint ? toFloat(q).sub(alongAxis(toFloat(zeroPoint), q, axis, blockSize, "x_zero_point", ctx)) : toFloat(q);
  return centered.mul(s);
}

/** The largest |q - zero_point| an 8-bit operand can reach. */
function magnitude(dtype: DType, hasZeroPoint: boolean, what: string, ctx: OpContext): number {
  if (dtype !== "uint8" && dtype !== "int8") fail(`${ctx.label}: ${what} of type ${dtype} is not supported; uint8 and int8 are`);
  const [lo, hi] = rangeOf(dtype, what, ctx);
  return hasZeroPoint ? hi - lo : Math.max(-lo, hi);
}

/** Refuses when a sum of `terms` products (plus `extra`) could exceed the integers float32 holds exactly. */
function checkExact(terms: number, a: number, b: number, extra: number, what: string, ctx: OpContext): void {
  const bound = terms * a * b + extra;
  if (bound > EXACT_FLOAT_INT) fail(`${ctx.label}: ${what} sums ${terms} products of up to ${a}·${b}${extra ? ` plus a bias up to ${extra}` : ""}; it could reach ${bound}, beyond 2^24 where float32 accumulation stops being exact, so it is not supported`);
}

/** q - zero_point in float32; a per-row zero point of a matrix ([M] for [.., M, K]) becomes a column. */
function centeredRows(q: Tensor, zeroPoint: Input, ctx: OpContext, what: string): Tensor {
  if (!zeroPoint) return toFloat(q);
  if (zeroPoint.dtype !== q.dtype) fail(`${ctx.label}: ${what} zero point is ${zeroPoint.dtype} but the input is ${q.dtype}`);
  return toFloat(q).sub(rowWise(toFloat(zeroPoint), q));
}

/** A per-row parameter of [.., M, K] given as [M] is reshaped to [M, 1]; scalars and full-rank ones broadcast as given. */
const rowWise = (p: Tensor, q: Tensor): Tensor => (p.ndim === 1 && p.size > 1 && q.ndim >= 2 && p.shape[0] === q.shape[q.ndim - 2] ? p.reshape([p.size, 1]) : p);

function integerMatmul(a: Tensor, aZero: Input, b: Tensor, bZero: Input, ctx: OpContext): Tensor {
  const K = a.shape[a.ndim - 1];
  checkExact(K, magnitude(a.dtype, !!aZero, "A", ctx), magnitude(b.dtype, !!bZero, "B", ctx), 0, "the matrix product", ctx);
  if (bZero && bZero.dtype !== b.dtype) fail(`${ctx.label}: B zero point is ${bZero.dtype} but B is ${b.dtype}`);
  const bCentered = bZero ? toFloat(b).sub(toFloat(bZero)) : toFloat(b);
  return HANDLERS.MatMul([centeredRows(a, aZero, ctx, "A"), bCentered], ctx) as Tensor;
}

function matmulInteger(x: Input[], ctx: OpContext): Tensor {
  return cast(integerMatmul(need(x, 0, ctx), x[2], need(x, 1, ctx), x[3], ctx), "int32");
}

function qlinearMatmul(x: Input[], ctx: OpContext): Tensor {
  const [a, aScale, aZero, b, bScale, bZero, yScale] = [0, 1, 2, 3, 4, 5, 6].map((i) => need(x, i, ctx));
  const yZero = x[7];
  const product = integerMatmul(a, aZero, b, bZero, ctx);
  // the reference's order: a_scale · b_scale / y_scale, then the product times that
  const multiplier = rowWise(aScale, a).mul(bScale).div(yScale);
  return requantize(product.mul(multiplier), yZero && toFloat(yZero), yZero?.dtype ?? "uint8", ctx);
}

/** conv(x - x_zero_point, w - w_zero_point) in float32 through the Conv handler, exactness checked. */
function integerConv(x: Tensor, xZero: Input, w: Tensor, wZero: Input, bias: Input, ctx: OpContext): Tensor {
  const terms = numel(w.shape.slice(1)); // C/group · kernel elements per output
  let biasBound = 0;
  if (bias) {
    if (bias.dtype !== "int32") fail(`${ctx.label}: bias of type ${bias.dtype} is not supported; int32 is`);
    biasBound = Math.max(0, ...constValues(bias, "the int32 bias (its magnitude decides whether float32 sums are exact)", ctx).map(Math.abs));
  }
  checkExact(terms, magnitude(x.dtype, !!xZero, "x", ctx), magnitude(w.dtype, !!wZero, "w", ctx), biasBound, "the convolution", ctx);
  if (xZero && xZero.size !== 1) fail(`${ctx.label}: x_zero_point of shape ${shapeStr(xZero.shape)} is not supported; one value per tensor is`);
  // subtracting first makes the zero padding of the convolution stand for the zero point, as in the reference
  const xCentered = xZero ? toFloat(x).sub(toFloat(xZero).reshape([])) : toFloat(x);
  const wCentered = wZero ? toFloat(w).sub(perOutputChannel(toFloat(wZero), w.ndim)) : toFloat(w);
  return HANDLERS.Conv(bias ? [xCentered, wCentered, toFloat(bias)] : [xCentered, wCentered], ctx) as Tensor;
}

/** A per-output-channel parameter [M] reshaped to broadcast against a rank-`rank` tensor whose axis 0 (weights) or 1 (outputs) is M. */
function perOutputChannel(p: Tensor, rank: number, channelAxis = 0): Tensor {
  if (p.size === 1) return p.reshape([]);
  return p.reshape([p.size, ...new Array(rank - channelAxis - 1).fill(1)]);
}

function convInteger(x: Input[], ctx: OpContext): Tensor {
  return cast(integerConv(need(x, 0, ctx), x[2], need(x, 1, ctx), x[3], undefined, ctx), "int32");
}

function qlinearConv(x: Input[], ctx: OpContext): Tensor {
  const [input, xScale, xZero, w, wScale, wZero, yScale] = [0, 1, 2, 3, 4, 5, 6].map((i) => need(x, i, ctx));
  const yZero = x[7], bias = x[8];
  const acc = integerConv(input, xZero, w, wZero, bias, ctx);
  const multiplier = xScale.reshape([]).mul(perOutputChannel(wScale, acc.ndim, 1)).div(yScale.reshape([]));
  return requantize(acc.mul(multiplier), yZero && toFloat(yZero).reshape([]), yZero?.dtype ?? "uint8", ctx);
}

registerHandlers({
  QuantizeLinear: quantizeLinear,
  DequantizeLinear: dequantizeLinear,
  MatMulInteger: matmulInteger,
  QLinearMatMul: qlinearMatmul,
  ConvInteger: convInteger,
  QLinearConv: qlinearConv,
});
