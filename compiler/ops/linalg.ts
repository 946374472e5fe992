import { fail } from "../errors.js";
import { numel } from "../ir/dtype.js";
import type { Attrs, HostTensor, Node, TensorType } from "../ir/graph.js";
import { broadcastShapes, newHost, shapeStr, stridesOf } from "../ir/shape.js";
import { apply, Tensor } from "../tensor/tensor.js";
import { ACT, applyEpilogue, floatLiteral } from "./elementwise.js";
import { defineOp, sumToShape, type Epilogue } from "./registry.js";

/** matmul and conv2d: the two ops whose kernels take a bias and a fused activation epilogue. */

export const epilogueOf = (attrs: Attrs): Epilogue =>
  (attrs.epilogue as Epilogue | undefined) ?? { act: ACT.none, p0: 0, p1: 0 };
const epilogueArgs = (attrs: Attrs): (number | string)[] => {
  const e = epilogueOf(attrs);
  return [e.act, floatLiteral(e.p0), floatLiteral(e.p1)];
};

/**
 * matmul's and conv2d's optional operands: [.., bias?, residual?]. A residual (a tensor shaped like the output,
 * added before the activation) is fused in by the compile passes and flagged by attrs.residual.
 */
export function linalgExtras<T>(inputs: T[], attrs: Attrs): { bias?: T; residual?: T } {
  const residual = attrs.residual ? inputs[inputs.length - 1] : undefined;
  const bias = inputs.length - (residual ? 1 : 0) > 2 ? inputs[2] : undefined;
  return { bias, residual };
}

function requireResidualShape(op: string, residual: TensorType | undefined, shape: number[]): void {
  if (residual && shapeStr(residual.shape) !== shapeStr(shape)) {
    fail(`${op}: a fused residual must have the output's shape ${shapeStr(shape)}, got ${shapeStr(residual.shape)}`);
  }
}

function requireFloat(op: string, ts: TensorType[]): void {
  for (const t of ts) if (t.dtype !== "float32" && t.dtype !== "float64") fail(`${op} needs float tensors, got ${t.dtype}`);
}

/** Fused epilogues exist only after compile passes; gradients are taken on the graph before them. */
function requireNoEpilogue(op: string, attrs: Attrs): void {
  if (epilogueOf(attrs).act !== ACT.none) fail(`${op}: no gradient through a fused activation epilogue; differentiate the graph before fusion`);
  if (attrs.residual) fail(`${op}: no gradient through a fused residual; differentiate the graph before fusion`);
}

// --- matmul: numpy semantics (1-D operands promoted, batch dims broadcast); optional bias[N] ------
/** Up to this many batches a batched matmul is one gemm call per batch (a kernel-library entry links it), beyond it a loop. */
const UNROLLED_BATCHES = 64;

interface MatmulDims { batch: number[]; M: number; K: number; N: number; aBatch: number[]; bBatch: number[] }

function matmulDims(a: number[], b: number[]): MatmulDims {
  if (a.length === 0 || b.length === 0) fail(`matmul needs tensors of rank >= 1, got ${shapeStr(a)} and ${shapeStr(b)}`);
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const K = a2[a2.length - 1];
  if (b2[b2.length - 2] !== K) fail(`matmul: inner dimensions differ: ${shapeStr(a)} @ ${shapeStr(b)}`);
  const aBatch = a2.slice(0, -2), bBatch = b2.slice(0, -2);
  return { batch: broadcastShapes(aBatch, bBatch), M: a2[a2.length - 2], K, N: b2[b2.length - 1], aBatch, bBatch };
}

function matmulOutShape(a: number[], b: number[]): number[] {
  const d = matmulDims(a, b);
  return [...d.batch, ...(a.length > 1 ? [d.M] : []), ...(b.length > 1 ? [d.N] : [])];
}

/** Element offset of batch index `i` (over the broadcast batch shape) into an operand with batch shape `own`. */
function batchOffset(i: number, batch: number[], own: number[], matrixSize: number): number {
  const idx: number[] = [];
  for (let d = batch.length - 1; d >= 0; d--) {
    idx.unshift(i % batch[d]);
    i = Math.floor(i / batch[d]);
  }
  const st = stridesOf(own);
  const off = batch.length - own.length;
  let e = 0;
  for (let d = 0; d < own.length; d++) if (own[d] !== 1) e += idx[d + off] * st[d];
  return e * matrixSize;
}

defineOp({
  name: "matmul",
  infer(inputs, attrs) {
    const [a, b] = inputs;
    const { bias, residual } = linalgExtras(inputs, attrs);
    requireFloat("matmul", inputs);
    const shape = matmulOutShape(a.shape, b.shape);
    requireResidualShape("matmul", residual, shape);
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== matmulDims(a.shape, b.shape).N)) {
      fail(`matmul bias must have shape [${matmulDims(a.shape, b.shape).N}], got ${shapeStr(bias.shape)}`);
    }
    return [{ shape, dtype: a.dtype }];
  },
  reference(inputs, attrs) {
    const [a, b] = inputs;
    const { bias, residual } = linalgExtras(inputs, attrs);
    const d = matmulDims(a.shape, b.shape);
    const out = newHost(matmulOutShape(a.shape, b.shape), a.dtype);
    const e = epilogueOf(attrs);
    const A = a.data as Float32Array, B = b.data as Float32Array, C = out.data as Float32Array;
    const batches = numel(d.batch);
    for (let t = 0; t < batches; t++) {
      const ao = batchOffset(t, d.batch, d.aBatch, d.M * d.K), bo = batchOffset(t, d.batch, d.bBatch, d.K * d.N);
      for (let i = 0; i < d.M; i++) for (let j = 0; j < d.N; j++) {
        let s = bias ? Number(bias.data[j]) : 0;
        for (let k = 0; k < d.K; k++) s += A[ao + i * d.K + k] * B[bo + k * d.N + j];
        const o = (t * d.M + i) * d.N + j;
        if (residual) s += Number(residual.data[o]);
        C[o] = applyEpilogue(s, e);
      }
    }
    return [out];
  },
  lower(ctx, node) {
    const [a, b] = node.inputs;
    const { bias, residual } = linalgExtras(node.inputs, node.attrs);
    const d = matmulDims(a.shape, b.shape);
    const [A, B, C] = [ctx.ptr(a), ctx.ptr(b), ctx.ptr(node.outputs[0])];
    const R = residual ? ctx.ptr(residual) : 0;
    const biasArgs = bias ? [ctx.ptr(bias), 1] : [0, 0];
    // the residual is laid out like C: its offset is C's (0 stays 0, no residual)
    const call = (ao: number | string, bo: number | string, co: number | string, offset: number | string = 0) =>
      ctx.call("gemm", "gemm", [
        ao, bo, co, biasArgs[0], d.M, d.N, d.K, d.K, d.N, d.N, biasArgs[1], ...epilogueArgs(node.attrs),
        R === 0 ? 0 : typeof offset === "number" ? R + offset : `${R} + ${offset}`,
      ]);
    const batches = numel(d.batch);
    // byte stride per batch step: 0 for an operand broadcast whole, null for a partial broadcast
    const strideOf = (own: number[], size: number) => (numel(own) === 1 ? 0 : numel(own) === batches ? size * 4 : null);
    const sa = strideOf(d.aBatch, d.M * d.K), sb = strideOf(d.bBatch, d.K * d.N);
    if (batches === 1) call(A, B, C);
    // a loop is inline code, which the kernel-library entry cannot hold: a few batches (attention's batch × heads) are calls
    else if (sa !== null && sb !== null && batches > UNROLLED_BATCHES) {
      ctx.emit(`for (let t: usize = 0; t < ${batches}; t++) {`);
      call(`${A} + t * ${sa}`, `${B} + t * ${sb}`, `${C} + t * ${d.M * d.N * 4}`, `t * ${d.M * d.N * 4}`);
      ctx.emit(`}`);
    } else {
      for (let t = 0; t < batches; t++) {
        call(A + 4 * batchOffset(t, d.batch, d.aBatch, d.M * d.K), B + 4 * batchOffset(t, d.batch, d.bBatch, d.K * d.N), C + 4 * t * d.M * d.N, 4 * t * d.M * d.N);
      }
    }
  },
  // on the operands promoted to matrices (1-D a is [1, K], 1-D b is [K, 1]): dA = G·Bᵀ, dB = Aᵀ·G,
  // each summed over the batch dims its operand was broadcast along
  grad({ inputs: [a, b, bias], attrs, grad, needs }) {
    requireNoEpilogue("matmul", attrs);
    const d = matmulDims(a.shape, b.shape);
    const a2 = a.ndim === 1 ? a.reshape(1, d.K) : a, b2 = b.ndim === 1 ? b.reshape(d.K, 1) : b;
    const g2 = grad.reshape([...d.batch, d.M, d.N]);
    return [
      needs[0] ? sumToShape(g2.matmul(b2.transpose(-2, -1)), a2.shape).reshape(a.shape) : null,
      needs[1] ? sumToShape(a2.transpose(-2, -1).matmul(g2), b2.shape).reshape(b.shape) : null,
      ...(bias ? [needs[2] ? sumToShape(g2, bias.shape) : null] : []),
    ];
  },
});

// --- conv2d (NCHW): weight [OC, C/groups, KH, KW], optional bias [OC] --------------------------------
export interface ConvAttrs { stride: number[]; pads: number[]; dilation: number[]; groups: number }

export function convOutSize(size: number, k: number, s: number, p0: number, p1: number, d: number, ceil = false): number {
  const span = size + p0 + p1 - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // PyTorch/ONNX: the last window must start inside the input or the leading pad
  if (ceil && (out - 1) * s >= size + p0) out--;
  return out;
}

export function convGeometry(x: number[], w: number[], attrs: Attrs) {
  const { stride, pads, dilation, groups } = attrs as unknown as ConvAttrs;
  if (x.length !== 4) fail(`conv2d input must be [N, C, H, W], got ${shapeStr(x)}`);
  if (w.length !== 4) fail(`conv2d weight must be [OC, C/groups, KH, KW], got ${shapeStr(w)}`);
  const [N, C, H, W] = x, [OC, CG, KH, KW] = w;
  if (C % groups || OC % groups || CG * groups !== C) {
    fail(`conv2d: input ${shapeStr(x)} has ${C} channels but weight ${shapeStr(w)} with groups=${groups} expects ${CG * groups}`);
  }
  const OH = convOutSize(H, KH, stride[0], pads[0], pads[2], dilation[0]);
  const OW = convOutSize(W, KW, stride[1], pads[1], pads[3], dilation[1]);
  if (OH <= 0 || OW <= 0) fail(`conv2d: kernel ${KH}x${KW} does not fit input ${shapeStr(x)} with the given padding`);
  return { N, C, H, W, OC, CG, KH, KW, OH, OW, stride, pads, dilation, groups };
}

/**
 * Scratch budget of a float im2col block: 32 KiB keeps the patch matrix in L1 while the GEMM sweeps it; a layer
 * gets no more than its output's bytes, so the scratch hardly ever raises a small model's peak arena.
 */
export const FLOAT_IM2COL_BYTES = 32 * 1024;

/** Output pixels per float im2col block: a multiple of 8 (the GEMM tile's width) within the budget, or the whole plane. */
export function im2colTile(taps: number, pixels: number, budget = FLOAT_IM2COL_BYTES): number {
  return Math.max(8, Math.min(pixels, 8 * Math.floor(budget / (32 * taps))));
}

/**
 * The float conv2d kernel per layer: im2col + GEMM (its block's pixel count) or the direct kernel (0).
 * Measured (npm run bench:kernels), im2col + GEMM runs 3x3 layers at 28-33 GFLOP/s against the direct kernel's
 * 14-23 (whose unmasked 4x8 tiles need 8 interior columns of a row) and KWS's 10x4 stride-2 stem at 22 against
 * 9; the direct kernel stays ahead only on wide planes with few output channels (VWW's 3->8 stem: 19 vs 16),
 * where the patch copy weighs more against an 8-row GEMM. Pointwise stride-1 layers are a GEMM already, and
 * with fewer than 4 output channels per group (depthwise) a patch matrix has nothing to be shared by.
 */
export function convKernelTile(node: Node): number {
  const g = convGeometry(node.inputs[0].shape, node.inputs[1].shape, node.attrs);
  const OCg = g.OC / g.groups;
  const pointwise = g.KH === 1 && g.KW === 1 && g.stride.every((s) => s === 1) && g.pads.every((p) => p === 0);
  if ((pointwise && g.CG > 1) || OCg < 4 || (OCg < 16 && g.OW >= 16)) return 0;
  return im2colTile(g.CG * g.KH * g.KW, g.OH * g.OW, Math.min(FLOAT_IM2COL_BYTES, node.outputs[0].bytes));
}

/**
 * Floats of depthwise3x3's padded plane: every row and column the 3x3 taps reach, plus a stride-2 vector's
 * over-read; four of them for outputs under 8 columns wide or stride 2, which the SIMD build vectorises across
 * 4 channels (runtime-as/conv.ts, CHANNEL_CELLS_BELOW); `simd` false: the scalar build's one plane.
 */
export function depthwisePaddedFloats(OH: number, OW: number, SH: number, SW: number, simd = true): number {
  return (simd && (OW < 8 || SW === 2) ? 4 : 1) * ((OH - 1) * SH + 3) * ((OW - 1) * SW + 3 + (SW === 2 ? 1 : 0));
}

/** Whether a conv2d runs as depthwise3x3 (per-channel 3x3, stride 1 or 2, no dilation). */
export function isPaddedDepthwise(node: Node): boolean {
  const g = convGeometry(node.inputs[0].shape, node.inputs[1].shape, node.attrs);
  return g.groups === g.C && g.OC === g.C && g.CG === 1 && g.KH === 3 && g.KW === 3 &&
    g.dilation.every((d) => d === 1) && g.stride.every((s) => s === 1 || s === 2);
}

defineOp({
  name: "conv2d",
  infer(inputs, attrs) {
    requireFloat("conv2d", inputs);
    const g = convGeometry(inputs[0].shape, inputs[1].shape, attrs);
    const { bias, residual } = linalgExtras(inputs, attrs);
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== g.OC)) fail(`conv2d bias must have shape [${g.OC}], got ${shapeStr(bias.shape)}`);
    requireResidualShape("conv2d", residual, [g.N, g.OC, g.OH, g.OW]);
    return [{ shape: [g.N, g.OC, g.OH, g.OW], dtype: inputs[0].dtype }];
  },
  reference(inputs, attrs) {
    const [x, w] = inputs;
    const { bias, residual } = linalgExtras(inputs, attrs);
    const g = convGeometry(x.shape, w.shape, attrs);
    const out = newHost([g.N, g.OC, g.OH, g.OW], x.dtype);
    const X = x.data as Float32Array, Wt = w.data as Float32Array, Y = out.data as Float32Array;
    const e = epilogueOf(attrs);
    const ocPerGroup = g.OC / g.groups;
    let o = 0;
    for (let n = 0; n < g.N; n++) for (let oc = 0; oc < g.OC; oc++) {
      const c0 = Math.floor(oc / ocPerGroup) * g.CG;
      for (let oh = 0; oh < g.OH; oh++) for (let ow = 0; ow < g.OW; ow++) {
        let s = bias ? Number(bias.data[oc]) : 0;
        for (let c = 0; c < g.CG; c++) for (let kh = 0; kh < g.KH; kh++) {
          const ih = oh * g.stride[0] - g.pads[0] + kh * g.dilation[0];
          if (ih < 0 || ih >= g.H) continue;
          for (let kw = 0; kw < g.KW; kw++) {
            const iw = ow * g.stride[1] - g.pads[1] + kw * g.dilation[1];
            if (iw < 0 || iw >= g.W) continue;
            s += X[((n * g.C + c0 + c) * g.H + ih) * g.W + iw] * Wt[((oc * g.CG + c) * g.KH + kh) * g.KW + kw];
          }
        }
        if (residual) s += Number(residual.data[o]);
        Y[o++] = applyEpilogue(s, e);
      }
    }
    return [out];
  },
  scratchBytes(node) {
    if (isPaddedDepthwise(node)) {
      const [, , OH, OW] = node.outputs[0].shape;
      const stride = node.attrs.stride as number[];
      return 4 * depthwisePaddedFloats(OH, OW, stride[0], stride[1], !node.attrs.scalarKernels);
    }
    const tile = convKernelTile(node);
    const [, CG, KH, KW] = node.inputs[1].shape;
    return 4 * tile * CG * KH * KW;
  },
  lower(ctx, node) {
    const [x, w] = node.inputs;
    const { bias, residual } = linalgExtras(node.inputs, node.attrs);
    const res = residual ? ctx.ptr(residual) : 0;
    const g = convGeometry(x.shape, w.shape, node.attrs);
    if (isPaddedDepthwise(node)) {
      ctx.call("conv", "depthwise3x3", [
        ctx.ptr(x), ctx.ptr(w), bias ? ctx.ptr(bias) : 0, ctx.ptr(node.outputs[0]), g.N, g.C, g.H, g.W, g.OH, g.OW,
        g.stride[0], g.stride[1], g.pads[0], g.pads[1], ...epilogueArgs(node.attrs), ctx.scratch(node), res,
      ]);
      return;
    }
    const tile = convKernelTile(node);
    const args = [
      ctx.ptr(x), ctx.ptr(w), bias ? ctx.ptr(bias) : 0, ctx.ptr(node.outputs[0]),
      g.N, g.C, g.H, g.W, g.OC, g.OH, g.OW, g.KH, g.KW, g.stride[0], g.stride[1], g.pads[0], g.pads[1],
      g.dilation[0], g.dilation[1], g.groups, ...epilogueArgs(node.attrs),
    ];
    if (tile) ctx.call("conv", "conv2dIm2col", [...args, ctx.scratch(node), tile, res]);
    else ctx.call("conv", "conv2d", [...args, res]);
  },
  grad({ inputs: [x, w, bias], attrs, grad, needs }) {
    requireNoEpilogue("conv2d", attrs);
    const { stride, pads, dilation, groups } = attrs;
    return [
      needs[0] ? apply("conv2dInputGrad", [grad, w], { stride, pads, dilation, groups, inputShape: [...x.shape] }) : null,
      needs[1] ? apply("conv2dWeightGrad", [x, grad], { stride, pads, dilation, groups, weightShape: [...w.shape] }) : null,
      // the spatial sum first runs over contiguous memory: summing [0, 2, 3] at once needs a permuted copy of the gradient
      ...(bias ? [needs[2] ? grad.sum([2, 3]).sum(0) : null] : []),
    ];
  },
});

export type ConvGeometry = ReturnType<typeof convGeometry>;

const BACKWARD_KERNEL = "it is a backward kernel: gradients of gradients are not supported";

/**
 * Every tap of a conv2d on the host: output element `o` (NCHW order) reads input element `xIndex` times
 * weight `wIndex`, for the taps inside the input. The backward references scatter through it; the int8
 * forward reference accumulates through it.
 */
export function forEachConvTap(g: ConvGeometry, visit: (xIndex: number, wIndex: number, o: number) => void): void {
  const ocPerGroup = g.OC / g.groups;
  let o = 0;
  for (let n = 0; n < g.N; n++) for (let oc = 0; oc < g.OC; oc++) {
    const c0 = Math.floor(oc / ocPerGroup) * g.CG;
    for (let oh = 0; oh < g.OH; oh++) for (let ow = 0; ow < g.OW; ow++, o++) {
      for (let c = 0; c < g.CG; c++) for (let kh = 0; kh < g.KH; kh++) {
        const ih = oh * g.stride[0] - g.pads[0] + kh * g.dilation[0];
        if (ih < 0 || ih >= g.H) continue;
        for (let kw = 0; kw < g.KW; kw++) {
          const iw = ow * g.stride[1] - g.pads[1] + kw * g.dilation[1];
          if (iw < 0 || iw >= g.W) continue;
          visit(((n * g.C + c0 + c) * g.H + ih) * g.W + iw, ((oc * g.CG + c) * g.KH + kh) * g.KW + kw, o);
        }
      }
    }
  }
}

const convGradArgs = (ptrs: number[], g: ConvGeometry): (number | string)[] => [
  ...ptrs, g.N, g.C, g.H, g.W, g.OC, g.OH, g.OW, g.KH, g.KW, g.stride[0], g.stride[1], g.pads[0], g.pads[1], g.dilation[0], g.dilation[1], g.groups,
];

function requireOutputGradient(op: string, gy: TensorType, g: ConvGeometry): void {
  const want = [g.N, g.OC, g.OH, g.OW];
  if (shapeStr(gy.shape) !== shapeStr(want)) fail(`${op}: the output gradient is ${shapeStr(gy.shape)}, the convolution's output ${shapeStr(want)}`);
}

/**
 * conv2dInputGrad's im2col tile, or 0 for its direct kernel. At stride 1 without dilation dL/dx is the forward
 * convolution of dL/dy with the flipped weights, which runs on im2col + GEMM as convKernelTile would choose for a
 * forward layer: at least 4 output channels per group (here the input's) and a kernel larger than 1x1.
 * Pads of the kernel's size or more would make the transposed convolution's pads negative.
 */
function inputGradTile(node: Node): number {
  const g = convGeometry(node.attrs.inputShape as number[], node.inputs[1].shape, node.attrs);
  const transposable = g.stride.every((s) => s === 1) && g.dilation.every((d) => d === 1) && g.pads[0] < g.KH && g.pads[1] < g.KW;
  if (!transposable || g.CG < 4 || g.KH * g.KW === 1) return 0;
  return im2colTile((g.OC / g.groups) * g.KH * g.KW, g.H * g.W, Math.min(FLOAT_IM2COL_BYTES, node.outputs[0].bytes));
}

// conv2dInputGrad(dL/dy, w) -> dL/dx, with the convolution's attrs plus inputShape
defineOp({
  name: "conv2dInputGrad",
  infer([gy, w], attrs) {
    requireFloat("conv2dInputGrad", [gy, w]);
    const g = convGeometry(attrs.inputShape as number[], w.shape, attrs);
    requireOutputGradient("conv2dInputGrad", gy, g);
    return [{ shape: [g.N, g.C, g.H, g.W], dtype: gy.dtype }];
  },
  reference([gy, w], attrs) {
    const g = convGeometry(attrs.inputShape as number[], w.shape, attrs);
    const gx = newHost([g.N, g.C, g.H, g.W], gy.dtype);
    const GX = gx.data as Float32Array, Wt = w.data as Float32Array, GY = gy.data as Float32Array;
    forEachConvTap(g, (xi, wi, o) => (GX[xi] += Wt[wi] * GY[o]));
    return [gx];
  },
  // the flipped weights, then the im2col block
  scratchBytes(node) {
    const tile = inputGradTile(node);
    const [OC, CG, KH, KW] = node.inputs[1].shape;
    const groups = node.attrs.groups as number;
    return tile ? 4 * (OC * CG * KH * KW + tile * (OC / groups) * KH * KW) : 0;
  },
  lower(ctx, node) {
    const [gy, w] = node.inputs;
    const g = convGeometry(node.attrs.inputShape as number[], w.shape, node.attrs);
    const tile = inputGradTile(node);
    ctx.call("conv-grad", "conv2dInputGrad", [...convGradArgs([ctx.ptr(gy), ctx.ptr(w), ctx.ptr(node.outputs[0])], g), tile ? ctx.scratch(node) : 0, tile]);
  },
  notDifferentiable: BACKWARD_KERNEL,
});

/**
 * conv2dWeightGrad's im2col tile, or 0 for its direct kernel: with blocks of 4 output channels per group and a
 * kernel larger than 1x1, dL/dy times the forward's patch matrix, transposed, in blocks of pixels within
 * FLOAT_IM2COL_BYTES (and x's bytes).
 */
function weightGradTile(node: Node): number {
  const g = convGeometry(node.inputs[0].shape, node.attrs.weightShape as number[], node.attrs);
  if ((g.OC / g.groups) % 4 !== 0 || g.KH * g.KW === 1) return 0;
  return im2colTile(g.CG * g.KH * g.KW, g.OH * g.OW, Math.min(FLOAT_IM2COL_BYTES, node.inputs[0].bytes));
}

// conv2dWeightGrad(x, dL/dy) -> dL/dw, with the convolution's attrs plus weightShape
defineOp({
  name: "conv2dWeightGrad",
  infer([x, gy], attrs) {
    requireFloat("conv2dWeightGrad", [x, gy]);
    const g = convGeometry(x.shape, attrs.weightShape as number[], attrs);
    requireOutputGradient("conv2dWeightGrad", gy, g);
    return [{ shape: [g.OC, g.CG, g.KH, g.KW], dtype: x.dtype }];
  },
  reference([x, gy], attrs) {
    const g = convGeometry(x.shape, attrs.weightShape as number[], attrs);
    const gw = newHost([g.OC, g.CG, g.KH, g.KW], x.dtype);
    const GW = gw.data as Float32Array, X = x.data as Float32Array, GY = gy.data as Float32Array;
    forEachConvTap(g, (xi, wi, o) => (GW[wi] += X[xi] * GY[o]));
    return [gw];
  },
  // the patch matrix of one block of pixels
  scratchBytes(node) {
    const [, CG, KH, KW] = node.attrs.weightShape as number[];
    return 4 * weightGradTile(node) * CG * KH * KW;
  },
  lower(ctx, node) {
    const [x, gy] = node.inputs;
    const g = convGeometry(x.shape, node.attrs.weightShape as number[], node.attrs);
    const tile = weightGradTile(node);
    ctx.call("conv-grad", "conv2dWeightGrad", [...convGradArgs([ctx.ptr(x), ctx.ptr(gy), ctx.ptr(node.outputs[0])], g), tile ? ctx.scratch(node) : 0, tile]);
  },
  notDifferentiable: BACKWARD_KERNEL,
});

// --- pooling (NCHW) -------------------------------------------------------------------------------
export function poolGeometry(x: number[], attrs: Attrs) {
  if (x.length !== 4) fail(`pooling input must be [N, C, H, W], got ${shapeStr(x)}`);
  const kernel = attrs.kernel as number[], stride = attrs.stride as number[], pads = attrs.pads as number[];
  const dilation = (attrs.dilation as number[] | undefined) ?? [1, 1];
  const ceil = Boolean(attrs.ceilMode);
  const [N, C, H, W] = x;
  const OH = convOutSize(H, kernel[0], stride[0], pads[0], pads[2], dilation[0], ceil);
  const OW = convOutSize(W, kernel[1], stride[1], pads[1], pads[3], dilation[1], ceil);
  if (OH <= 0 || OW <= 0) fail(`pooling window ${kernel.join("x")} does not fit input ${shapeStr(x)}`);
  return { N, C, H, W, OH, OW, kernel, stride, pads, dilation };
}

/**
 * Max pooling's choice per output on the host, as the kernels choose (PyTorch's rule: the first maximum
 * in scan order, a NaN wins, an all -inf window picks its first element): the element's offset in its
 * plane, -1 for a window with no input element.
 */
function maxChoices(x: HostTensor, attrs: Attrs): Int32Array {
  const X = x.data as Float32Array;
  return poolWindows(x.shape, attrs, (taps) => {
    let best = -Infinity, at = taps[0];
    for (const t of taps) if (X[t] > best || Number.isNaN(X[t])) [best, at] = [X[t], t];
    return at;
  });
}

/** Visits each output's window: `taps` are the flat input indices inside the input, `padded` the window's count inside the padded extent. */
function poolWindows(shape: number[], attrs: Attrs, visit: (taps: number[], padded: number, o: number) => number | void): Int32Array {
  const g = poolGeometry(shape, attrs);
  const [kh, kw] = g.kernel, [sh, sw] = g.stride, [dh, dw] = g.dilation;
  const chosen = new Int32Array(g.N * g.C * g.OH * g.OW);
  let o = 0;
  for (let nc = 0; nc < g.N * g.C; nc++) for (let oh = 0; oh < g.OH; oh++) for (let ow = 0; ow < g.OW; ow++, o++) {
    const taps: number[] = [];
    let padded = 0;
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
      const ih = oh * sh - g.pads[0] + i * dh, iw = ow * sw - g.pads[1] + j * dw;
      if (ih >= -g.pads[0] && ih < g.H + g.pads[2] && iw >= -g.pads[1] && iw < g.W + g.pads[3]) padded++;
      if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) taps.push((nc * g.H + ih) * g.W + iw);
    }
    chosen[o] = taps.length ? visit(taps, padded, o) ?? -1 : -1;
  }
  return chosen;
}

const poolArgs = (g: ReturnType<typeof poolGeometry>) => [g.N * g.C, g.H, g.W, g.OH, g.OW, g.kernel[0], g.kernel[1], g.stride[0], g.stride[1], g.pads[0], g.pads[1], g.dilation[0], g.dilation[1]];

// maxpool2dGrad(x, dL/dy) -> dL/dx, with the pooling's attrs
defineOp({
  name: "maxpool2dGrad",
  infer([x, gy], attrs) {
    requireFloat("maxpool2dGrad", [x, gy]);
    const g = poolGeometry(x.shape, attrs);
    if (shapeStr(gy.shape) !== shapeStr([g.N, g.C, g.OH, g.OW])) fail(`maxpool2dGrad: the output gradient is ${shapeStr(gy.shape)}, the pooling's output ${shapeStr([g.N, g.C, g.OH, g.OW])}`);
    return [{ shape: [...x.shape], dtype: x.dtype }];
  },
  reference([x, gy], attrs) {
    const gx = newHost([...x.shape], gy.dtype);
    maxChoices(x, attrs).forEach((at, o) => {
      if (at >= 0) (gx.data as Float32Array)[at] += Number(gy.data[o]);
    });
    return [gx];
  },
  lower(ctx, node) {
    const [x, gy] = node.inputs;
    ctx.call("pool-grad", "maxpool2dBackward", [ctx.ptr(x), ctx.ptr(gy), ctx.ptr(node.outputs[0]), ...poolArgs(poolGeometry(x.shape, node.attrs))]);
  },
  notDifferentiable: BACKWARD_KERNEL,
});

// avgpool2dGrad(dL/dy) -> dL/dx, with the pooling's attrs plus inputShape
defineOp({
  name: "avgpool2dGrad",
  infer([gy], attrs) {
    requireFloat("avgpool2dGrad", [gy]);
    const g = poolGeometry(attrs.inputShape as number[], attrs);
    if (shapeStr(gy.shape) !== shapeStr([g.N, g.C, g.OH, g.OW])) fail(`avgpool2dGrad: the output gradient is ${shapeStr(gy.shape)}, the pooling's output ${shapeStr([g.N, g.C, g.OH, g.OW])}`);
    return [{ shape: [g.N, g.C, g.H, g.W], dtype: gy.dtype }];
  },
  reference([gy], attrs) {
    const shape = attrs.inputShape as number[];
    const gx = newHost(shape, gy.dtype), G = gx.data as Float32Array;
    poolWindows(shape, attrs, (taps, padded, o) => {
      const share = Number(gy.data[o]) / (attrs.countIncludePad ? padded : taps.length);
      for (const t of taps) G[t] += share;
    });
    return [gx];
  },
  lower(ctx, node) {
    const g = poolGeometry(node.attrs.inputShape as number[], node.attrs);
    if (g.dilation.some((d) => d !== 1)) fail(`avgpool2dGrad (node ${node.name}): dilated average pooling has no kernel; express it as a convolution`);
    ctx.call("pool-grad", "avgpool2dBackward", [ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]), g.N * g.C, g.H, g.W, g.OH, g.OW,
      g.kernel[0], g.kernel[1], g.stride[0], g.stride[1], ...g.pads, node.attrs.countIncludePad ? 1 : 0]);
  },
  notDifferentiable: BACKWARD_KERNEL,
});

/** maxpool2dArgmax's plane offsets: int16 while a plane has at most 32767 elements, else int32 */
const choiceDType = (plane: number): "int16" | "int32" => (plane <= 32767 ? "int16" : "int32");
const indexBytes = (dtype: string): number => (dtype === "int16" ? 2 : 4);

// maxpool2dArgmax(x) -> [y, indices]: max pooling that keeps, per output, the plane offset of the element
// it chose (int16 or int32, -1 for an empty window), so that the backward pass need not keep x. Made by training's
// graph rewrite (compiler/training), after the backward pass is traced.
defineOp({
  name: "maxpool2dArgmax",
  infer([x], attrs) {
    requireFloat("maxpool2dArgmax", [x]);
    const g = poolGeometry(x.shape, attrs);
    return [{ shape: [g.N, g.C, g.OH, g.OW], dtype: x.dtype }, { shape: [g.N, g.C, g.OH, g.OW], dtype: choiceDType(g.H * g.W) }];
  },
  reference([x], attrs) {
    const g = poolGeometry(x.shape, attrs);
    const y = newHost([g.N, g.C, g.OH, g.OW], x.dtype), indices = newHost([g.N, g.C, g.OH, g.OW], choiceDType(g.H * g.W));
    const plane = g.H * g.W, X = x.data as Float32Array;
    maxChoices(x, attrs).forEach((at, o) => {
      (y.data as Float32Array)[o] = at >= 0 ? X[at] : -Infinity;
      (indices.data as Int32Array)[o] = at >= 0 ? at % plane : -1;
    });
    return [y, indices];
  },
  lower(ctx, node) {
    const x = node.inputs[0];
    ctx.call("pool-grad", "maxpool2dArgmax", [ctx.ptr(x), ctx.ptr(node.outputs[0]), ctx.ptr(node.outputs[1]), indexBytes(node.outputs[1].dtype), ...poolArgs(poolGeometry(x.shape, node.attrs))]);
  },
  compiledDTypes: (node) => node.inputs[0].dtype === "float32",
  notDifferentiable: "it exists only in a training step's graph, after the backward pass is traced",
});

// maxpool2dScatter(indices, dL/dy[, y]) -> dL/dx with attrs inputShape: the gradient sent to the chosen
// elements; with y (the pooled values), only where y > 0 (a ReLU's mask before the pooling, folded in)
defineOp({
  name: "maxpool2dScatter",
  infer([indices, gy, y], attrs) {
    const shape = attrs.inputShape as number[];
    if ((indices.dtype !== "int16" && indices.dtype !== "int32") || shapeStr(indices.shape) !== shapeStr(gy.shape) || (y && shapeStr(y.shape) !== shapeStr(gy.shape))) {
      fail(`maxpool2dScatter: int16 or int32 indices, the output gradient and the pooled values must share one shape, got ${indices.dtype} ${shapeStr(indices.shape)}, ${shapeStr(gy.shape)}${y ? `, ${shapeStr(y.shape)}` : ""}`);
    }
    if (shape.length !== 4 || shape[0] !== gy.shape[0] || shape[1] !== gy.shape[1]) fail(`maxpool2dScatter: input shape ${shapeStr(shape)} does not match the gradient ${shapeStr(gy.shape)}`);
    return [{ shape: [...shape], dtype: gy.dtype }];
  },
  reference([indices, gy, y], attrs) {
    const shape = attrs.inputShape as number[];
    const gx = newHost(shape, gy.dtype), G = gx.data as Float32Array;
    const planeIn = shape[2] * shape[3], planeOut = gy.shape[2] * gy.shape[3];
    indices.data.forEach((at, o) => {
      if (Number(at) >= 0 && (!y || Number(y.data[o]) > 0)) G[Math.floor(o / planeOut) * planeIn + Number(at)] += Number(gy.data[o]);
    });
    return [gx];
  },
  lower(ctx, node) {
    const [indices, gy, y] = node.inputs, shape = node.attrs.inputShape as number[];
    ctx.call("pool-grad", "maxpool2dScatter", [ctx.ptr(indices), indexBytes(indices.dtype), ctx.ptr(gy), y ? ctx.ptr(y) : 0, ctx.ptr(node.outputs[0]), shape[0] * shape[1], shape[2] * shape[3], gy.shape[2] * gy.shape[3]]);
  },
  compiledDTypes: (node) => node.inputs[1].dtype === "float32",
  notDifferentiable: BACKWARD_KERNEL,
});

function pool(name: "maxpool2d" | "avgpool2d"): void {
  const isMax = name === "maxpool2d";
  defineOp({
    name,
    infer([x], attrs) {
      requireFloat(name, [x]);
      const g = poolGeometry(x.shape, attrs);
      return [{ shape: [g.N, g.C, g.OH, g.OW], dtype: x.dtype }];
    },
    reference([x], attrs) {
      const g = poolGeometry(x.shape, attrs);
      const out = newHost([g.N, g.C, g.OH, g.OW], x.dtype);
      const X = x.data as Float32Array, Y = out.data as Float32Array;
      const [kh, kw] = g.kernel, [sh, sw] = g.stride, [dh, dw] = g.dilation;
      let o = 0;
      for (let nc = 0; nc < g.N * g.C; nc++) for (let oh = 0; oh < g.OH; oh++) for (let ow = 0; ow < g.OW; ow++) {
        let acc = isMax ? -Infinity : 0, count = 0, padded = 0;
        for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
          const ih = oh * sh - g.pads[0] + i * dh, iw = ow * sw - g.pads[1] + j * dw;
          if (ih >= -g.pads[0] && ih < g.H + g.pads[2] && iw >= -g.pads[1] && iw < g.W + g.pads[3]) padded++;
          if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
          const v = X[(nc * g.H + ih) * g.W + iw];
          acc = isMax ? (v > acc || Number.isNaN(v) ? v : acc) : acc + v;
          count++;
        }
        Y[o++] = isMax ? acc : acc / (attrs.countIncludePad ? padded : count);
      }
      return [out];
    },
    lower(ctx, node) {
      const g = poolGeometry(node.inputs[0].shape, node.attrs);
      const head = [ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]), g.N * g.C, g.H, g.W, g.OH, g.OW, g.kernel[0], g.kernel[1], g.stride[0], g.stride[1]];
      if (isMax) ctx.call("pool", "maxpool2d", [...head, g.pads[0], g.pads[1], g.dilation[0], g.dilation[1]]);
      else {
        if (g.dilation.some((d) => d !== 1)) fail(`avgpool2d (node ${node.name}): dilated average pooling has no kernel; express it as a convolution`);
        ctx.call("pool", "avgpool2d", [...head, ...g.pads.slice(0, 2), ...g.pads.slice(2), node.attrs.countIncludePad ? 1 : 0]);
      }
    },
    grad: ({ inputs: [x], attrs, grad }) => [isMax ? apply("maxpool2dGrad", [x, grad], attrs) : apply("avgpool2dGrad", [grad], { ...attrs, inputShape: [...x.shape] })],
  });
}
pool("maxpool2d");
pool("avgpool2d");
