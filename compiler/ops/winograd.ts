import { fail } from "../errors.js";
import type { HostTensor, Node } from "../ir/graph.js";
import { newHost, shapeStr } from "../ir/shape.js";
import { applyEpilogue, floatLiteral } from "./elementwise.js";
import { convGeometry, epilogueOf, linalgExtras, type ConvGeometry } from "./linalg.js";
import { defineOp } from "./registry.js";

/**
 * Winograd F(2x2, 3x3) for dense 3x3 stride-1 convolutions (runtime-as/winograd.ts): each 2x2 output tile is
 * Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, 16 multiplies per tile and channel pair where the direct sum takes 36. The weights
 * U = G g Gᵀ are transformed at compile time into a constant of 16·K·C floats, laid out [K][16][C].
 */

/** Scratch budget of the transformed input and product tiles of one block: 64 KiB stays in L2 beside the weights. */
export const WINOGRAD_BLOCK_BYTES = 64 * 1024;

/**
 * Whether a conv2d runs as Winograd on a SIMD target. It is chosen where it measured faster than im2col + GEMM
 * (npm run bench:kernels): 3x3 stride 1, no dilation, one group, at least 16 input and output channels (fewer,
 * and the transforms outweigh the GEMMs' saving) and planes of at least 8x8 (on smaller ones most tiles are
 * border tiles). Scalar targets keep im2col + GEMM: their flash is tight and U is 16/9 the weights' bytes.
 */
export function winogradFits(node: Node): boolean {
  if (node.op !== "conv2d" || node.inputs[0].dtype !== "float32" || !node.inputs[1].isConstant) return false;
  const g = convGeometry(node.inputs[0].shape, node.inputs[1].shape, node.attrs);
  return g.groups === 1 && g.KH === 3 && g.KW === 3 && g.stride.every((s) => s === 1) && g.dilation.every((d) => d === 1) &&
    g.C >= 16 && g.OC >= 16 && g.OH >= 8 && g.OW >= 8 && g.pads.every((p) => p <= 2);
}

/** U[k][xi][c] = (G g Gᵀ)[i][j] at xi = 4i + j for w[K, C, 3, 3], computed in float64 and rounded once. */
export function winogradWeights(w: HostTensor): HostTensor {
  const [K, C] = w.shape;
  const W = w.data as Float32Array;
  const G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];
  const u = newHost([K, 16, C], "float32");
  const U = u.data as Float32Array;
  for (let k = 0; k < K; k++) for (let c = 0; c < C; c++) {
    const g = W.subarray((k * C + c) * 9, (k * C + c) * 9 + 9);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) s += G[i][a] * g[a * 3 + b] * G[j][b];
      U[(k * 16 + i * 4 + j) * C + c] = s;
    }
  }
  return u;
}

const tilesOf = (g: ConvGeometry) => ({ TH: Math.ceil(g.OH / 2), TW: Math.ceil(g.OW / 2) });

/** Tiles per block: a multiple of 8 (the GEMM tile's width) within WINOGRAD_BLOCK_BYTES, or every tile of the plane. */
export function winogradBlock(g: ConvGeometry): number {
  const { TH, TW } = tilesOf(g);
  return Math.min(TH * TW, Math.max(8, 8 * Math.floor(WINOGRAD_BLOCK_BYTES / (64 * (g.C + g.OC) * 8))));
}

/** V and M of one block, and the zero-padded band of input rows its tiles read. */
export function winogradScratchBytes(g: ConvGeometry): number {
  const { TH, TW } = tilesOf(g);
  const block = winogradBlock(g);
  const tileRows = Math.min(TH, Math.floor((block - 1) / TW) + 2);
  return 4 * (16 * block * (g.C + g.OC) + (2 * tileRows + 2) * (2 * TW + 2));
}

/** The geometry of a conv2dWinograd node, whose weight operand is U [K, 16, C]. */
function geometry(node: { inputs: { shape: number[] }[]; attrs: Node["attrs"] }) {
  const [K, , C] = node.inputs[1].shape;
  return convGeometry(node.inputs[0].shape, [K, C, 3, 3], node.attrs);
}

// conv2dWinograd(x, U[K, 16, C], bias?, residual?): made from a conv2d by compiler/passes/winograd.ts after epilogue fusion
defineOp({
  name: "conv2dWinograd",
  infer(inputs, attrs) {
    const [x, u] = inputs;
    if (x.dtype !== "float32" || u.dtype !== "float32" || u.shape.length !== 3 || u.shape[1] !== 16 || u.shape[2] !== x.shape[1]) {
      fail(`conv2dWinograd: needs float32 x [N, C, H, W] and transformed weights [K, 16, C], got ${shapeStr(x.shape)} and ${shapeStr(u.shape)}`);
    }
    const g = geometry({ inputs, attrs });
    return [{ shape: [g.N, g.OC, g.OH, g.OW], dtype: "float32" }];
  },
  // the transform's own arithmetic in float64: U ⊙ (Bᵀ d B) summed over channels, then Aᵀ M A
  reference(inputs, attrs) {
    const [x, u] = inputs;
    const { bias, residual } = linalgExtras(inputs, attrs);
    const g = geometry({ inputs, attrs });
    const X = x.data as Float32Array, U = u.data as Float32Array;
    const out = newHost([g.N, g.OC, g.OH, g.OW], "float32"), Y = out.data as Float32Array;
    const e = epilogueOf(attrs);
    const { TH, TW } = tilesOf(g);
    const d = new Float64Array(16), v = new Float64Array(16 * g.C), m = new Float64Array(16);
    const at = (n: number, c: number, ih: number, iw: number) => (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? X[((n * g.C + c) * g.H + ih) * g.W + iw] : 0);
    for (let n = 0; n < g.N; n++) for (let th = 0; th < TH; th++) for (let tw = 0; tw < TW; tw++) {
      for (let c = 0; c < g.C; c++) {
        for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) d[i * 4 + j] = at(n, c, 2 * th - g.pads[0] + i, 2 * tw - g.pads[1] + j);
        const bt = (r: number, j: number) => [d[j] - d[8 + j], d[4 + j] + d[8 + j], d[8 + j] - d[4 + j], d[4 + j] - d[12 + j]][r];
        for (let i = 0; i < 4; i++) {
          const r = [0, 1, 2, 3].map((j) => bt(i, j));
          [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]].forEach((s, j) => (v[(i * 4 + j) * g.C + c] = s));
        }
      }
      for (let k = 0; k < g.OC; k++) {
        m.fill(0);
        for (let xi = 0; xi < 16; xi++) for (let c = 0; c < g.C; c++) m[xi] += U[(k * 16 + xi) * g.C + c] * v[xi * g.C + c];
        const s = [0, 1, 2, 3].map((j) => m[j] + m[4 + j] + m[8 + j]), t = [0, 1, 2, 3].map((j) => m[4 + j] - m[8 + j] - m[12 + j]);
        const tile = [[s[0] + s[1] + s[2], s[1] - s[2] - s[3]], [t[0] + t[1] + t[2], t[1] - t[2] - t[3]]];
        for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) {
          const oh = 2 * th + i, ow = 2 * tw + j;
          if (oh >= g.OH || ow >= g.OW) continue;
          const o = ((n * g.OC + k) * g.OH + oh) * g.OW + ow;
          Y[o] = applyEpilogue(tile[i][j] + (bias ? Number(bias.data[k]) : 0) + (residual ? Number(residual.data[o]) : 0), e);
        }
      }
    }
    return [out];
  },
  scratchBytes: (node) => winogradScratchBytes(geometry(node)),
  lower(ctx, node) {
    const [x, u] = node.inputs;
    const { bias, residual } = linalgExtras(node.inputs, node.attrs);
    const g = geometry(node);
    const e = epilogueOf(node.attrs);
    // conv2dWinograd(x, u, bias, y, N, C, H, W, K, OH, OW, PH, PW, act, p0, p1, scratch, block, res)
    ctx.call("winograd", "conv2dWinograd", [
      ctx.ptr(x), ctx.ptr(u), bias ? ctx.ptr(bias) : 0, ctx.ptr(node.outputs[0]), g.N, g.C, g.H, g.W, g.OC, g.OH, g.OW,
      g.pads[0], g.pads[1], e.act, floatLiteral(e.p0), floatLiteral(e.p1), ctx.scratch(node), winogradBlock(g), residual ? ctx.ptr(residual) : 0,
    ]);
  },
  notDifferentiable: "it exists only in a compiled graph, after the passes (differentiate the conv2d before them)",
});
