import { fail } from "../../errors.js";
import { normalizeAxis, shapeStr } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { constValues, identityCopy, isFloat, need, registerHandlers, type OpContext } from "./ops.js";

/**
 * Resize (opsets 10–19) and Upsample. Shapes are static, so every axis's sampling is known at compile
 * time: for each output position a few source positions ("taps") and their weights. Interpolation is
 * separable, so the model resizes one axis after another, each a gather per tap plus a weighted sum,
 * which works for any rank. The tables follow onnx.reference's op_resize, tap for tap.
 */

type CoordinateMode = "half_pixel" | "half_pixel_symmetric" | "pytorch_half_pixel" | "align_corners" | "asymmetric" | "tf_half_pixel_for_nn" | "tf_crop_and_resize";
const COORDINATE_MODES: CoordinateMode[] = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"];

/** Weights of the taps around a source coordinate; `ratio` in (0, 1] is its distance past the tap left of it. */
type Coefficients = (ratio: number, scale: number) => number[];

function nearestCoefficients(mode: string, ctx: OpContext): Coefficients {
  const pick: Record<string, (ratio: number) => boolean> = {
    round_prefer_floor: (r) => r > 0.5,
    round_prefer_ceil: (r) => r >= 0.5,
    floor: () => false,
    ceil: () => true,
  };
  const right = pick[mode] ?? fail(`${ctx.label}: unknown nearest_mode '${mode}' (round_prefer_floor, round_prefer_ceil, floor or ceil)`);
  // an integer coordinate (ratio 1) is its own nearest neighbour whatever the mode
  return (ratio) => (ratio === 1 || right(ratio) ? [0, 1] : [1, 0]);
}

const linearCoefficients: Coefficients = (r) => [1 - r, r];

/** Keys' cubic convolution kernel with parameter A, at distance x. */
function cubicKernel(x: number, A: number): number {
  x = Math.abs(x);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

const cubicCoefficients = (A: number): Coefficients => (r) => [r + 1, r, 1 - r, 2 - r].map((d) => cubicKernel(d, A));

/**
 * Antialiased filters stretch the kernel by 1/scale when downsampling: more taps, each weighted by the
 * kernel at its scaled distance, normalised to sum to one. `reach` is the kernel's half-width.
 */
function antialiased(kernel: (x: number) => number, reach: number): Coefficients {
  return (ratio, scale) => {
    const s = Math.min(scale, 1);
    const first = Math.floor(-reach / s) + 1;
    const taps = Array.from({ length: 2 - 2 * first }, (_, i) => kernel((first + i - ratio) * s));
    const total = taps.reduce((a, b) => a + b, 0);
    return taps.map((w) => w / total);
  };
}

interface AxisSampling {
  inLen: number;
  outLen: number;
  /** float scale (output / input) used by the coordinate transform */
  scale: number;
  roiStart: number;
  roiEnd: number;
}

/** Per output position: source indices (clamped into the axis), weights, and whether it extrapolates. */
interface AxisTable {
  indices: number[][];
  weights: number[][];
  outside: boolean[];
}

/**
 * The source coordinate of output position o, or null outside the crop (tf_crop_and_resize). Computed in
 * float32, as onnxruntime does: it decides nearest-mode ties (asymmetric o / 0.4 is exactly 2.5 in float32,
 * 2.4999999627 in float64).
 */
function sourceCoordinate(mode: CoordinateMode, o: number, a: AxisSampling): number | null {
  const f = Math.fround;
  const { inLen, outLen } = a;
  const scale = f(a.scale);
  const outWidth = f(scale * inLen);
  switch (mode) {
    case "align_corners": return outWidth === 1 ? 0 : f(f(o * (inLen - 1)) / f(outWidth - 1));
    case "asymmetric": return f(o / scale);
    case "pytorch_half_pixel": return outWidth === 1 ? -0.5 : f(f(f(o + 0.5) / scale) - 0.5);
    case "half_pixel": return f(f(f(o + 0.5) / scale) - 0.5);
    case "tf_half_pixel_for_nn": return f(f(o + 0.5) / scale);
    case "half_pixel_symmetric": {
      // centres the output on the input when outLen was rounded down from outWidth
      const offset = f(f(inLen / 2) * f(1 - f(outLen / outWidth)));
      return f(offset + f(f(f(o + 0.5) / scale) - 0.5));
    }
    case "tf_crop_and_resize": {
      const span = a.roiEnd - a.roiStart;
      const x = (outWidth === 1 ? (span * (inLen - 1)) / 2 : (o * span * (inLen - 1)) / (outWidth - 1)) + a.roiStart * (inLen - 1);
      return x < 0 || x > inLen - 1 ? null : x;
    }
  }
}

function axisTable(a: AxisSampling, mode: CoordinateMode, coefficients: Coefficients, excludeOutside: boolean): AxisTable {
  const table: AxisTable = { indices: [], weights: [], outside: [] };
  for (let o = 0; o < a.outLen; o++) {
    const x = sourceCoordinate(mode, o, a);
    if (x === null) {
      table.indices.push([0]);
      table.weights.push([0]);
      table.outside.push(true);
      continue;
    }
    // taps sit at left - half + 1 … left + half around the tap left of x (x itself when x is an integer)
    const ratio = Number.isInteger(x) ? 1 : x - Math.floor(x);
    const left = Math.round(x - ratio);
    let weights = coefficients(ratio, a.scale);
    const half = weights.length / 2;
    const positions = weights.map((_, t) => left - half + 1 + t);
    if (excludeOutside) {
      weights = weights.map((w, t) => (positions[t] < 0 || positions[t] >= a.inLen ? 0 : w));
      const total = weights.reduce((s, w) => s + w, 0);
      weights = weights.map((w) => w / total);
    }
    // taps past an edge read the edge (the reference pads in edge mode)
    table.indices.push(positions.map((p) => Math.min(Math.max(p, 0), a.inLen - 1)));
    table.weights.push(weights);
    table.outside.push(false);
  }
  return table;
}

const isIdentity = (t: AxisTable, inLen: number): boolean =>
  t.indices.length === inLen && t.weights.every((ws, o) => !t.outside[o] && ws.every((w, k) => w === 0 || (w === 1 && t.indices[o][k] === o)));

/** One axis resampled: out[…, o, …] = Σ_tap weight[o, tap] · x[…, index[o, tap], …] (+ the extrapolation value outside the crop). */
function resampleAxis(x: Tensor, axis: number, table: AxisTable, extrapolation: number, ctx: OpContext): Tensor {
  const outLen = table.indices.length;
  const taps = Math.max(...table.weights.map((w) => w.length));
  const column = (values: number[]) => Tensor.from(new Float32Array(values), { shape: [outLen, ...x.shape.slice(axis + 1).map(() => 1)], dtype: x.dtype });
  const gather = (indices: number[]) => apply("gather", [x, Tensor.from(new Int32Array(indices), { shape: [outLen], dtype: "int32" })], { axis });
  const oneTapEach = table.weights.every((ws) => ws.filter((w) => w !== 0).length <= 1 && ws.every((w) => w === 0 || w === 1));
  if (oneTapEach && !table.outside.some(Boolean)) {
    // nearest: each output copies one source position
    return gather(table.weights.map((ws, o) => table.indices[o][Math.max(ws.indexOf(1), 0)]));
  }
  if (!isFloat(x.dtype)) fail(`${ctx.label}: interpolating ${x.dtype} data is not supported (only nearest mode is, for non-float types)`);
  let sum: Tensor | undefined;
  for (let t = 0; t < taps; t++) {
    const weights = table.weights.map((ws) => ws[t] ?? 0);
    if (weights.every((w) => w === 0)) continue;
    const term = gather(table.indices.map((ix) => ix[t] ?? 0)).mul(column(weights));
    sum = sum ? sum.add(term) : term;
  }
  const fill = table.outside.map((out) => (out ? extrapolation : 0));
  if (fill.some((v) => v !== 0)) sum = sum ? sum.add(column(fill)) : column(fill).expand(x.shape.map((n, d) => (d === axis ? outLen : n)));
  return sum ?? Tensor.zeros(x.shape.map((n, d) => (d === axis ? outLen : n)), x.dtype);
}

interface ResizeSpec {
  mode: string;
  coordinateMode: CoordinateMode;
  nearestMode: string;
  cubicA: number;
  excludeOutside: boolean;
  antialias: boolean;
  extrapolation: number;
  /** per axis of the input */
  sampling: AxisSampling[];
}

function resize(x: Tensor, spec: ResizeSpec, ctx: OpContext): Tensor {
  let coefficients: Coefficients;
  if (spec.mode === "nearest") {
    if (spec.antialias) fail(`${ctx.label}: antialias is not defined for nearest mode`);
    coefficients = nearestCoefficients(spec.nearestMode, ctx);
  } else if (spec.mode === "linear") {
    coefficients = spec.antialias ? antialiased((d) => Math.max(0, 1 - Math.abs(d)), 1) : linearCoefficients;
  } else if (spec.mode === "cubic") {
    coefficients = spec.antialias ? antialiased((d) => cubicKernel(d, spec.cubicA), 2) : cubicCoefficients(spec.cubicA);
  } else fail(`${ctx.label}: unknown mode '${spec.mode}' (nearest, linear or cubic)`);

  let y = x;
  spec.sampling.forEach((a, axis) => {
    if (a.outLen < 1) fail(`${ctx.label}: axis ${axis} of ${shapeStr(x.shape)} would resize to ${a.outLen} elements`);
    const table = axisTable(a, spec.coordinateMode, coefficients, spec.excludeOutside);
    if (!isIdentity(table, a.inLen)) y = resampleAxis(y, axis, table, spec.extrapolation, ctx);
  });
  return y === x ? identityCopy(x) : y;
}

/** A scales/sizes/roi input, or undefined when omitted or empty (opset 11 passed empty tensors). */
function optionalValues(t: Tensor | undefined, what: string, ctx: OpContext): number[] | undefined {
  if (!t || t.size === 0) return undefined;
  return constValues(t, what, ctx);
}

/** Output sizes and scales per input axis from the scales or sizes input (opset 18: axes, keep_aspect_ratio_policy). */
function samplingOf(x: Tensor, scales: number[] | undefined, sizes: number[] | undefined, roi: number[] | undefined, ctx: OpContext): AxisSampling[] {
  const rank = x.ndim;
  const axes = ctx.attrs.has("axes") ? ctx.attrs.ints("axes").map((a) => normalizeAxis(a, rank)) : x.shape.map((_, d) => d);
  if (new Set(axes).size !== axes.length) fail(`${ctx.label}: repeated axes [${axes}]`);
  const perAxis = (values: number[], what: string, fill: number): number[] => {
    if (values.length !== axes.length) fail(`${ctx.label}: ${what} has ${values.length} values for ${axes.length} axes`);
    const full = new Array(rank).fill(fill);
    axes.forEach((a, i) => (full[a] = values[i]));
    return full;
  };
  let roiStart = new Array(rank).fill(0), roiEnd = new Array(rank).fill(1);
  if (roi) {
    if (roi.length !== 2 * axes.length) fail(`${ctx.label}: roi has ${roi.length} values, expected ${2 * axes.length}`);
    roiStart = perAxis(roi.slice(0, axes.length), "roi", 0);
    roiEnd = perAxis(roi.slice(axes.length), "roi", 1);
  }
  const sampling = (d: number, outLen: number, scale: number): AxisSampling => ({ inLen: x.shape[d], outLen, scale, roiStart: roiStart[d], roiEnd: roiEnd[d] });
  if (scales && sizes) fail(`${ctx.label}: give scales or sizes, not both`);
  if (scales) {
    const full = perAxis(scales, "scales", 1);
    if (full.some((s) => !(s > 0))) fail(`${ctx.label}: scales [${scales}] must be positive`);
    return x.shape.map((n, d) => sampling(d, Math.floor(n * full[d]), full[d]));
  }
  if (!sizes) fail(`${ctx.label}: needs scales or sizes`);
  const full = perAxis(sizes, "sizes", 0).map((n, d) => (axes.includes(d) ? n : x.shape[d]));
  const policy = ctx.attrs.string("keep_aspect_ratio_policy", "stretch");
  if (policy === "stretch") return x.shape.map((n, d) => sampling(d, full[d], full[d] / n));
  if (policy !== "not_larger" && policy !== "not_smaller") fail(`${ctx.label}: unknown keep_aspect_ratio_policy '${policy}' (stretch, not_larger or not_smaller)`);
  // one scale for every resized axis: the largest that fits inside sizes, or the smallest that covers them
  const ratios = axes.map((d) => full[d] / x.shape[d]);
  const scale = policy === "not_larger" ? Math.min(...ratios) : Math.max(...ratios);
  return x.shape.map((n, d) => (axes.includes(d) ? sampling(d, Math.floor(scale * n + 0.5), scale) : sampling(d, n, 1)));
}

function resizeHandler(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  const input = need(x, 0, ctx);
  const a = ctx.attrs;
  if (ctx.opset < 11) {
    // Resize-10 is Upsample with scales as an input: asymmetric coordinates, nearest rounds down
    const scales = constValues(need(x, 1, ctx), "scales", ctx);
    return upsampleLike(input, scales, a.string("mode", "nearest"), ctx);
  }
  const coordinateMode = a.string("coordinate_transformation_mode", "half_pixel") as CoordinateMode;
  if (!COORDINATE_MODES.includes(coordinateMode)) fail(`${ctx.label}: unknown coordinate_transformation_mode '${coordinateMode}'`);
  const roi = coordinateMode === "tf_crop_and_resize" ? optionalValues(x[1], "roi", ctx) : undefined;
  if (coordinateMode === "tf_crop_and_resize" && !roi) fail(`${ctx.label}: tf_crop_and_resize needs the roi input`);
  const sampling = samplingOf(input, optionalValues(x[2], "scales", ctx), optionalValues(x[3], "sizes", ctx), roi, ctx);
  return resize(input, {
    mode: a.string("mode", "nearest"),
    coordinateMode,
    nearestMode: a.string("nearest_mode", "round_prefer_floor"),
    cubicA: a.float("cubic_coeff_a", -0.75),
    excludeOutside: a.int("exclude_outside", 0) === 1,
    antialias: a.int("antialias", 0) === 1,
    extrapolation: a.float("extrapolation_value", 0),
    sampling,
  }, ctx);
}

/** Upsample (opsets 7–9) and Resize-10: scales per axis, asymmetric coordinates, nearest = floor. */
function upsampleLike(input: Tensor, scales: number[], mode: string, ctx: OpContext): Tensor {
  if (scales.length !== input.ndim) fail(`${ctx.label}: ${scales.length} scales for a rank-${input.ndim} input`);
  if (scales.some((s) => !(s > 0))) fail(`${ctx.label}: scales [${scales}] must be positive`);
  if (mode !== "nearest" && mode !== "linear") fail(`${ctx.label}: unknown mode '${mode}' (nearest or linear)`);
  const sampling = input.shape.map((n, d) => ({ inLen: n, outLen: Math.floor(n * scales[d]), scale: scales[d], roiStart: 0, roiEnd: 1 }));
  return resize(input, { mode, coordinateMode: "asymmetric", nearestMode: "floor", cubicA: -0.75, excludeOutside: false, antialias: false, extrapolation: 0, sampling }, ctx);
}

function upsampleHandler(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  const input = need(x, 0, ctx);
  const scales = ctx.opset >= 9 ? constValues(need(x, 1, ctx), "scales", ctx) : ctx.attrs.floats("scales");
  return upsampleLike(input, scales, ctx.attrs.string("mode", "nearest"), ctx);
}

registerHandlers({
  Resize: resizeHandler,
  Upsample: upsampleHandler,
});
