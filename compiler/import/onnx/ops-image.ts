import { fail } from "../../errors.js";
import { numel } from "../../ir/dtype.js";
import { normalizeAxis, shapeStr } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { cast, constValues, isFloat, modelInputsBehind, need, registerHandlers, type OpContext } from "./ops.js";

/**
 * AffineGrid, GridSample, DFT and STFT on registry ops. AffineGrid is element-wise: each output coordinate is
 * theta's row times the constant base point. The grid is run-time data, so GridSample computes each tap's
 * source position and weight with element-wise ops and gathers channel rows at those positions (one gather
 * per tap, the channels contiguous); DFT has a static length, so it is a matmul against constant cos / sin
 * tables; STFT gathers its frames with constant indices and takes their DFT. NonMaxSuppression's output
 * shape depends on the box values, so it runs at compile time on pinned boxes and scores.
 */

// --- GridSample (opsets 16, 20): N-d, nearest / linear / cubic, zeros / border / reflection padding -------

/** One tap along one spatial axis: the source index (float, integral) and its weight. */
interface Tap {
  index: Tensor;
  weight: Tensor;
}

/** x mirrored into [lo, hi] as often as needed (onnx.reference's _gs_reflect, as a closed form). */
function reflect(x: Tensor, lo: number, hi: number): Tensor {
  const span = hi - lo;
  if (span <= 0) return x.mul(0).add(lo);
  const period = 2 * span, t = x.sub(lo);
  const folded = t.sub(t.div(period).floor().mul(period));
  return Tensor.where(folded.gt(span), folded.neg().add(period), folded).add(lo);
}

/** Keys' cubic weights of the taps at -1, 0, 1, 2 around a fraction t in [0, 1) (A = -0.75, as PyTorch). */
function cubicWeights(t: Tensor): Tensor[] {
  const A = -0.75;
  const near = (d: Tensor) => d.mul(A + 2).sub(A + 3).mul(d).mul(d).add(1);
  const far = (d: Tensor) => d.mul(A).sub(5 * A).mul(d).add(8 * A).mul(d).sub(4 * A);
  const one = t.neg().add(1);
  return [far(t.add(1)), near(t), near(one), far(one.add(1))];
}

function gridSample(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  const input = need(x, 0, ctx), grid = need(x, 1, ctx);
  const rank = input.ndim - 2;
  if (rank < 1 || grid.ndim !== input.ndim || grid.shape[grid.ndim - 1] !== rank || grid.shape[0] !== input.shape[0]) {
    fail(`${ctx.label}: grid ${shapeStr(grid.shape)} does not fit input ${shapeStr(input.shape)} (expected [${input.shape[0]}, …out, ${rank}])`);
  }
  if (!isFloat(input.dtype) || !isFloat(grid.dtype)) fail(`${ctx.label}: GridSample needs float input and grid, got ${input.dtype} and ${grid.dtype}`);
  // opset 16 spells the modes bilinear / bicubic
  const given = ctx.attrs.string("mode", ctx.opset >= 20 ? "linear" : "bilinear");
  const mode = ({ bilinear: "linear", bicubic: "cubic" } as Record<string, string>)[given] ?? given;
  const padding = ctx.attrs.string("padding_mode", "zeros");
  const alignCorners = ctx.attrs.int("align_corners", 0) === 1;
  if (!["nearest", "linear", "cubic"].includes(mode)) fail(`${ctx.label}: unknown mode '${mode}' (nearest, linear or cubic)`);
  if (!["zeros", "border", "reflection"].includes(padding)) fail(`${ctx.label}: unknown padding_mode '${padding}' (zeros, border or reflection)`);

  const [N, C] = input.shape, sizes = input.shape.slice(2), outSpatial = grid.shape.slice(1, -1);
  const coords = cast(grid, input.dtype);
  const pointShape = [N, ...outSpatial];
  // the taps of each spatial axis; the grid lists coordinates innermost axis first
  const tapsPerAxis: Tap[][] = sizes.map((d, axis) => {
    const lo = alignCorners ? 0 : -0.5, hi = alignCorners ? d - 1 : d - 0.5;
    const g = coords.slice(-1, rank - 1 - axis, rank - axis).reshape(pointShape);
    let pos = alignCorners ? g.add(1).mul((d - 1) / 2) : g.add(1).mul(d).sub(1).div(2);
    if (mode === "nearest") pos = pos.round();
    // cubic keeps an outside coordinate and clamps each tap, as PyTorch and onnxruntime do (onnx.reference
    // clamps the coordinate first; the backend tests do not tell them apart)
    if (padding === "border" && mode !== "cubic") pos = Tensor.where(pos.lt(lo).add(pos.gt(hi)).gt(0), pos.clamp(0, d - 1), pos);
    if (padding === "reflection") pos = reflect(pos, lo, hi);
    // a tap's integral index, read through the padding mode: out of range reads zero, the edge, or the mirror
    const tap = (index: Tensor, weight: Tensor): Tap => {
      if (padding === "zeros") return { index: index.clamp(0, d - 1), weight: weight.mul(cast(index.ge(0).mul(index.le(d - 1)), input.dtype)) };
      if (padding === "border") return { index: index.clamp(0, d - 1), weight };
      return { index: reflect(index, lo, hi).floor().clamp(0, d - 1), weight };
    };
    const ones = Tensor.full([], 1, input.dtype);
    if (mode === "nearest") return [tap(Tensor.where(pos.lt(0), pos.ceil(), pos.floor()), ones)];
    const left = pos.floor(), t = pos.sub(left);
    if (mode === "linear") return [tap(left, t.neg().add(1)), tap(left.add(1), t)];
    return cubicWeights(t).map((w, k) => tap(left.add(k - 1), w));
  });

  // channel rows of every sampled position: [N·∏sizes, C], gathered per combination of one tap per axis
  const rows = input.permute(0, ...sizes.map((_, a) => a + 2), 1).reshape([N * numel(sizes), C]);
  const batchBase = Tensor.arange(0, N, 1, "int32").mul(numel(sizes)).reshape([N, ...outSpatial.map(() => 1)]);
  const strides = sizes.map((_, a) => numel(sizes.slice(a + 1)));
  let sum: Tensor | undefined;
  const combine = (axis: number, flat: Tensor, weight: Tensor | undefined): void => {
    if (axis === rank) {
      const term = apply("gather", [rows, flat], { axis: 0 }).mul(weight!.unsqueeze(-1));
      sum = sum ? sum.add(term) : term;
      return;
    }
    for (const { index, weight: w } of tapsPerAxis[axis]) {
      combine(axis + 1, flat.add(cast(index, "int32").mul(strides[axis])), weight ? weight.mul(w) : w);
    }
  };
  combine(0, batchBase, undefined);
  // [N, …out, C] → [N, C, …out]
  return sum!.permute(0, rank + 1, ...outSpatial.map((_, a) => a + 1));
}

/** AffineGrid (opset 20): the sampling grid [N, …size, r] of theta [N, r, r + 1] over a constant size. */
function affineGrid(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  const theta = need(x, 0, ctx);
  const size = constValues(need(x, 1, ctx), "size", ctx);
  const spatial = size.slice(2), r = spatial.length, N = size[0];
  if ((r !== 2 && r !== 3) || theta.ndim !== 3 || theta.shape.join() !== [N, r, r + 1].join()) {
    fail(`${ctx.label}: theta ${shapeStr(theta.shape)} and size [${size}] must be [N, 2, 3] with [N, C, H, W] or [N, 3, 4] with [N, C, D, H, W]`);
  }
  if (!isFloat(theta.dtype)) fail(`${ctx.label}: theta must be float, got ${theta.dtype}`);
  const alignCorners = ctx.attrs.int("align_corners", 0) === 1;
  const ones = spatial.map(() => 1);
  // theta's column k as [N, 1…, r]: the weight of base coordinate k in each output coordinate
  const column = (k: number) => theta.slice(2, k, k + 1).reshape([N, ...ones, r]);
  let grid = column(r);
  for (let k = 0; k < r; k++) {
    // base coordinate k runs along spatial dim r - 1 - k (x along the last)
    const d = r - 1 - k, n = spatial[d];
    const values = Float32Array.from({ length: n }, (_, i) => (alignCorners ? (n === 1 ? -1 : -1 + (2 * i) / (n - 1)) : -1 + (2 * i + 1) / n));
    const base = Tensor.from(values, { shape: [1, ...spatial.map((m, j) => (j === d ? m : 1)), 1], dtype: "float32" });
    grid = grid.add(column(k).mul(cast(base, theta.dtype)));
  }
  return grid;
}

// --- DFT (opsets 17, 20) and STFT (17) ------------------------------------------------------------------

/** A constant [rows, cols] float32 table. */
function table(rows: number, cols: number, fn: (r: number, c: number) => number): Tensor {
  const data = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = fn(r, c);
  return Tensor.from(data, { shape: [rows, cols], dtype: "float32" });
}

/** x's last dim cut or zero-padded to `length`. */
function fitLength(x: Tensor, length: number): Tensor {
  const n = x.shape[x.ndim - 1];
  if (n > length) return x.slice(-1, 0, length);
  return n < length ? x.pad([0, length - n]) : x;
}

/**
 * The DFT of x's `axis` ([…, n, 1] real or […, n, 2] complex, as ONNX lays it out), of length `length`:
 * forward (onesided keeps the first ⌊L/2⌋+1 bins), inverse (scaled by 1/L) or, inverse and onesided, the
 * real signal of a one-sided spectrum (numpy's irfft: the other half is the conjugate mirror).
 */
function dft(x: Tensor, axis: number, length: number, inverse: boolean, onesided: boolean, ctx: OpContext): Tensor {
  const parts = x.shape[x.ndim - 1];
  if (parts !== 1 && parts !== 2) fail(`${ctx.label}: the last dim of ${shapeStr(x.shape)} must be 1 (real) or 2 (complex)`);
  if (axis === x.ndim - 1) fail(`${ctx.label}: axis ${axis} is the real/imaginary dim of ${shapeStr(x.shape)}`);
  if (!Number.isInteger(length) || length < 1) fail(`${ctx.label}: dft_length ${length} must be a positive integer`);
  const L = length, angle = (a: number, b: number) => (2 * Math.PI * ((a * b) % L)) / L;
  const signal = x.dtype === "float32" ? x : cast(x, "float32");
  // the transformed axis last: rows of [batch…, n]
  const order = [...x.shape.keys()].filter((d) => d !== axis && d !== x.ndim - 1);
  const moved = signal.permute(...order, x.ndim - 1, axis);
  // one [rows, n] matrix: a batched matmul would loop over the batch in inline code, one GEMM does not
  const rows = numel(moved.shape.slice(0, -2));
  const part = (p: number) => moved.slice(-2, p, p + 1).reshape([rows, moved.shape[moved.ndim - 1]]);
  const irfft = inverse && onesided;
  const inLength = irfft ? Math.floor(L / 2) + 1 : L;
  const re = fitLength(part(0), inLength);
  const im = parts === 2 ? fitLength(part(1), inLength) : undefined;
  let outRe: Tensor, outIm: Tensor | undefined;
  if (irfft) {
    // bins 1 … ⌈L/2⌉-1 stand for themselves and their mirror: weight 2
    const weight = (k: number) => (k === 0 || 2 * k === L ? 1 : 2) / L;
    outRe = re.matmul(table(inLength, L, (k, t) => weight(k) * Math.cos(angle(k, t))));
    if (im) outRe = outRe.sub(im.matmul(table(inLength, L, (k, t) => weight(k) * Math.sin(angle(k, t)))));
  } else {
    const bins = onesided ? Math.floor(L / 2) + 1 : L, scale = inverse ? 1 / L : 1, sign = inverse ? 1 : -1;
    // (a + ib)·(cos θ + i·sign·sin θ)
    const cos = table(L, bins, (t, k) => scale * Math.cos(angle(t, k)));
    const sin = table(L, bins, (t, k) => sign * scale * Math.sin(angle(t, k)));
    outRe = re.matmul(cos);
    outIm = re.matmul(sin);
    if (im) {
      outRe = outRe.sub(im.matmul(sin));
      outIm = outIm.add(im.matmul(cos));
    }
  }
  const stacked = (outIm ? Tensor.cat([outRe.unsqueeze(-1), outIm.unsqueeze(-1)], -1) : outRe.unsqueeze(-1)).reshape([...order.map((d) => x.shape[d]), outRe.shape[1], outIm ? 2 : 1]);
  // back to x's layout: the transformed axis where it was, real/imaginary last
  const back = new Array(x.ndim).fill(0);
  order.forEach((d, i) => (back[d] = i));
  back[axis] = order.length;
  back[x.ndim - 1] = order.length + 1;
  const y = stacked.permute(...back);
  return x.dtype === "float32" ? y : cast(y, x.dtype);
}

/** An optional scalar input that must be a compile-time constant. */
function optionalScalar(t: Tensor | undefined, what: string, ctx: OpContext): number | undefined {
  if (!t || t.size === 0) return undefined;
  const values = constValues(t, what, ctx);
  if (values.length !== 1) fail(`${ctx.label}: ${what} must be a scalar, got ${values.length} values`);
  return values[0];
}

function dftHandler(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  const input = need(x, 0, ctx);
  if (!isFloat(input.dtype)) fail(`${ctx.label}: DFT needs float input, got ${input.dtype}`);
  // the axis was an attribute (default 1) before opset 20, an input (default -2) since
  const rawAxis = ctx.opset >= 20 ? optionalScalar(x[2], "axis", ctx) ?? -2 : ctx.attrs.int("axis", 1);
  const axis = normalizeAxis(rawAxis, input.ndim);
  const inverse = ctx.attrs.int("inverse", 0) === 1, onesided = ctx.attrs.int("onesided", 0) === 1;
  if (onesided && !inverse && input.shape[input.ndim - 1] === 2) fail(`${ctx.label}: onesided needs a real input ([…, 1]), got ${shapeStr(input.shape)}`);
  const length = optionalScalar(x[1], "dft_length", ctx) ?? (inverse && onesided ? 2 * (input.shape[axis] - 1) : input.shape[axis]);
  return dft(input, axis, length, inverse, onesided, ctx);
}

function stftHandler(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  const signal = need(x, 0, ctx);
  if (!isFloat(signal.dtype) || signal.ndim !== 3) fail(`${ctx.label}: STFT needs a float [batch, length, 1 or 2] signal, got ${signal.dtype} ${shapeStr(signal.shape)}`);
  const step = optionalScalar(need(x, 1, ctx), "frame_step", ctx)!;
  const window = x[2] && x[2].size ? x[2] : undefined;
  const frameLength = optionalScalar(x[3], "frame_length", ctx) ?? window?.shape[0] ?? fail(`${ctx.label}: needs a window or a frame_length`);
  if (window && (window.ndim !== 1 || window.shape[0] !== frameLength)) fail(`${ctx.label}: window ${shapeStr(window.shape)} must have frame_length ${frameLength} values`);
  const n = signal.shape[1];
  if (!(step >= 1) || frameLength < 1 || frameLength > n) fail(`${ctx.label}: frame_step ${step} and frame_length ${frameLength} do not fit a signal of ${n}`);
  const frames = Math.floor((n - frameLength) / step) + 1;
  const positions = new Int32Array(frames * frameLength).map((_, i) => Math.floor(i / frameLength) * step + (i % frameLength));
  // time first, so one gather of whole rows takes every batch: [frames·frameLength, batch, parts] → [batch, frames, frameLength, parts]
  const [batch, , parts] = signal.shape;
  const rows = apply("gather", [signal.permute(1, 0, 2), Tensor.from(positions, { shape: [frames * frameLength], dtype: "int32" })], { axis: 0 });
  let framed = rows.reshape([frames, frameLength, batch, parts]).permute(2, 0, 1, 3);
  if (window) framed = framed.mul(cast(window, signal.dtype).reshape([frameLength, 1]));
  const onesided = ctx.attrs.int("onesided", 1) === 1;
  if (onesided && signal.shape[2] === 2) fail(`${ctx.label}: onesided needs a real signal ([…, 1]), got ${shapeStr(signal.shape)}`);
  return dft(framed, 2, frameLength, false, onesided, ctx);
}

// --- NonMaxSuppression (opsets 10, 11) on compile-time values --------------------------------------------

/** A box's extent [min, max] along one coordinate axis (0: y, 1: x), in float32 like onnx.reference. */
function boxExtent(box: number[], axis: number, centerPointBox: boolean): [number, number] {
  const f = Math.fround;
  if (centerPointBox) {
    // [x_center, y_center, width, height]
    const c = box[1 - axis], half = f(box[3 - axis] / 2);
    return [f(c - half), f(c + half)];
  }
  // [y1, x1, y2, x2] with either corner first
  const a = box[axis], b = box[axis + 2];
  return a >= b ? [b, a] : [a, b];
}

/** Whether box b's IoU with the selected box a exceeds the threshold (degenerate boxes never suppress). */
function suppresses(a: number[], b: number[], centerPointBox: boolean, threshold: number): boolean {
  const f = Math.fround;
  const [ay, ax] = [boxExtent(a, 0, centerPointBox), boxExtent(a, 1, centerPointBox)];
  const [by, bx] = [boxExtent(b, 0, centerPointBox), boxExtent(b, 1, centerPointBox)];
  const w = f(Math.min(ax[1], bx[1]) - Math.max(ax[0], bx[0])), h = f(Math.min(ay[1], by[1]) - Math.max(ay[0], by[0]));
  if (w <= 0 || h <= 0) return false;
  const inter = f(w * h);
  const areaA = f(f(ax[1] - ax[0]) * f(ay[1] - ay[0])), areaB = f(f(bx[1] - bx[0]) * f(by[1] - by[0]));
  const union = f(f(areaA + areaB) - inter);
  if (inter <= 0 || areaA <= 0 || areaB <= 0 || union <= 0) return false;
  return f(inter / union) > threshold;
}

/** Selected [batch, class, box] triples: per batch and class, greedily by score (ties to the lower box). */
function nonMaxSuppression(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  const boxes = need(x, 0, ctx), scores = need(x, 1, ctx);
  const pinned = x.filter((t): t is Tensor => t !== undefined && t.isSymbolic);
  if (pinned.length) {
    const inputs = [...new Set(pinned.flatMap(modelInputsBehind))];
    fail(`${ctx.label}: NonMaxSuppression's output shape [selected, 3] depends on the boxes' and scores' values, which must be known at compile time; pin ${inputs.map((n) => `--const ${n}=FILE.npy|VALUE`).join(" ")}`);
  }
  if (boxes.ndim !== 3 || boxes.shape[2] !== 4 || scores.ndim !== 3 || scores.shape[0] !== boxes.shape[0] || scores.shape[2] !== boxes.shape[1]) {
    fail(`${ctx.label}: boxes ${shapeStr(boxes.shape)} and scores ${shapeStr(scores.shape)} must be [batch, boxes, 4] and [batch, classes, boxes]`);
  }
  const scalar = (i: number, what: string) => (x[i] && x[i]!.size ? constValues(x[i]!, what, ctx)[0] : undefined);
  const maxPerClass = Math.max(scalar(2, "max_output_boxes_per_class") ?? 0, 0);
  const iouThreshold = Math.fround(scalar(3, "iou_threshold") ?? 0), scoreThreshold = scalar(4, "score_threshold");
  const centerPointBox = ctx.attrs.int("center_point_box", 0) === 1;
  const boxValues = constValues(boxes, "boxes", ctx).map(Math.fround), scoreValues = constValues(scores, "scores", ctx).map(Math.fround);
  const [B, S] = boxes.shape, C = scores.shape[1];
  const selected: number[] = [];
  for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) {
    const score = (i: number) => scoreValues[(b * C + c) * S + i];
    const box = (i: number) => boxValues.slice((b * S + i) * 4, (b * S + i) * 4 + 4);
    const order = Array.from({ length: S }, (_, i) => i)
      .filter((i) => scoreThreshold === undefined || score(i) > Math.fround(scoreThreshold))
      .sort((i, j) => score(j) - score(i) || i - j);
    const kept: number[] = [];
    for (const i of order) {
      if (kept.length >= maxPerClass) break;
      if (kept.every((k) => !suppresses(box(k), box(i), centerPointBox, iouThreshold))) kept.push(i);
    }
    for (const i of kept) selected.push(b, c, i);
  }
  return Tensor.from(new BigInt64Array(selected.map(BigInt)), { shape: [selected.length / 3, 3], dtype: "int64" });
}

registerHandlers({
  AffineGrid: affineGrid,
  NonMaxSuppression: nonMaxSuppression,
  GridSample: gridSample,
  DFT: dftHandler,
  STFT: stftHandler,
});
