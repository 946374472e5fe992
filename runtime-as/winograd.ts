// conv2dWinograd: a dense 3x3 stride-1 convolution (groups 1, no dilation) as Winograd F(2x2, 3x3), chosen by the
// compiler per layer on SIMD targets (compiler/passes/winograd.ts). Each 2x2 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A
// over its 4x4 input patch d: 16 multiplies per tile and channel pair instead of 36.
//   u:    the transformed weights U = G g Gᵀ, made at compile time, laid out [K][16][C] (a range of output channels
//         is contiguous: a call split by output channels offsets u, bias, y and res by pointer)
//   scratch: V [16][C][block] (transformed input tiles) | M [16][K][block] (the 16 GEMMs' products) | one padded
//         band of an input channel ((2·tile rows + 2) x (2·TW + 2) floats)
// y = act(Aᵀ M A + bias + res); `res`, a fused residual laid out like y (0: none).
import { actScalar, actVec } from "./act";
import { gemm, BIAS_NONE } from "./gemm";

export function conv2dWinograd(
  x: usize, u: usize, bias: usize, y: usize,
  N: i32, C: i32, H: i32, W: i32, K: i32, OH: i32, OW: i32, PH: i32, PW: i32,
  act: i32, p0: f32, p1: f32, scratch: usize, block: i32, res: usize,
): void {
  if (N <= 0 || K <= 0 || OH <= 0 || OW <= 0) return;
  const TW = (OW + 1) >> 1;
  const T = ((OH + 1) >> 1) * TW;
  const planeX = <usize>(H * W) << 2;
  const planeY = <usize>(OH * OW) << 2;
  const v = scratch;
  const m = v + ((<usize>(16 * C) * <usize>block) << 2);
  const band = m + ((<usize>(16 * K) * <usize>block) << 2);
  for (let n = 0; n < N; n++) {
    const xn = x + <usize>n * <usize>C * planeX;
    const out = <usize>n * <usize>K * planeY;
    for (let t0 = 0; t0 < T; t0 += block) {
      const tb = min(block, T - t0);
      const tileBytes = <usize>tb << 2;
      for (let c = 0; c < C; c++) {
        inputTransform(xn + <usize>c * planeX, v + <usize>c * tileBytes, band, H, W, PH, PW, TW, t0, tb, <usize>(C * tb) << 2);
      }
      for (let xi = 0; xi < 16; xi++) {
        gemm(
          u + (<usize>(xi * C) << 2), v + <usize>(xi * C) * tileBytes, m + <usize>(xi * K) * tileBytes, 0,
          K, tb, C, 16 * C, tb, tb, BIAS_NONE, 0, 0, 0, 0,
        );
      }
      for (let k = 0; k < K; k++) {
        const o = out + <usize>k * planeY;
        outputTransform(m + <usize>k * tileBytes, y + o, res == 0 ? 0 : res + o, bias == 0 ? 0 : load<f32>(bias + (<usize>k << 2)),
          OH, OW, TW, t0, tb, <usize>(K * tb) << 2, act, p0, p1);
      }
    }
  }
}

/**
 * Bᵀ d B of tiles t0..t0+tb-1 of one input channel into V (element xi of tile t at v + xi·step + 4t). The tiles'
 * rows of the plane are first copied into a zero-padded band, so every patch is read without bounds checks.
 */
function inputTransform(xc: usize, v: usize, band: usize, H: i32, W: i32, PH: i32, PW: i32, TW: i32, t0: i32, tb: i32, step: usize): void {
  const th0 = t0 / TW;
  const rows = 2 * ((t0 + tb - 1) / TW - th0) + 4;
  const bw = 2 * TW + 2;
  const rowBytes = <usize>bw << 2;
  for (let r = 0; r < rows; r++) {
    const ih = 2 * th0 - PH + r;
    const dst = band + <usize>r * rowBytes;
    if (ih < 0 || ih >= H) {
      memory.fill(dst, 0, rowBytes);
      continue;
    }
    // band column j holds input column j - PW
    const lo = min(PW, bw), len = min(W, bw - lo);
    if (lo > 0) memory.fill(dst, 0, <usize>lo << 2);
    memory.copy(dst + (<usize>lo << 2), xc + (<usize>(ih * W) << 2), <usize>len << 2);
    if (lo + len < bw) memory.fill(dst + (<usize>(lo + len) << 2), 0, <usize>(bw - lo - len) << 2);
  }
  const step2 = step << 1, step3 = step * 3;
  for (let t = t0, end = t0 + tb; t < end; ) {
    const th = t / TW, tw = t - th * TW;
    const p = band + <usize>(2 * (th - th0)) * rowBytes + (<usize>(2 * tw) << 2);
    const pv = v + (<usize>(t - t0) << 2);
    if (ASC_FEATURE_SIMD) {
      // 4 tiles of one tile row in the lanes: their patch columns j are band columns 2l + j
      if (tw + 4 <= TW && t + 4 <= end) {
        let q = pv;
        let a0: v128, a1: v128, a2: v128, a3: v128;
        let b0: v128, b1: v128, b2: v128, b3: v128;
        let c0: v128, c1: v128, c2: v128, c3: v128;
        let d0: v128, d1: v128, d2: v128, d3: v128;
        // rows 0..3 of the patches, each as columns 0..3
        {
          const s = p;
          const l0 = v128.load(s), l1 = v128.load(s, 16), l2 = v128.load(s, 8), l3 = v128.load(s, 24);
          a0 = f32x4.shuffle(l0, l1, 0, 2, 4, 6); a1 = f32x4.shuffle(l0, l1, 1, 3, 5, 7);
          a2 = f32x4.shuffle(l2, l3, 0, 2, 4, 6); a3 = f32x4.shuffle(l2, l3, 1, 3, 5, 7);
        }
        {
          const s = p + rowBytes;
          const l0 = v128.load(s), l1 = v128.load(s, 16), l2 = v128.load(s, 8), l3 = v128.load(s, 24);
          b0 = f32x4.shuffle(l0, l1, 0, 2, 4, 6); b1 = f32x4.shuffle(l0, l1, 1, 3, 5, 7);
          b2 = f32x4.shuffle(l2, l3, 0, 2, 4, 6); b3 = f32x4.shuffle(l2, l3, 1, 3, 5, 7);
        }
        {
          const s = p + 2 * rowBytes;
          const l0 = v128.load(s), l1 = v128.load(s, 16), l2 = v128.load(s, 8), l3 = v128.load(s, 24);
          c0 = f32x4.shuffle(l0, l1, 0, 2, 4, 6); c1 = f32x4.shuffle(l0, l1, 1, 3, 5, 7);
          c2 = f32x4.shuffle(l2, l3, 0, 2, 4, 6); c3 = f32x4.shuffle(l2, l3, 1, 3, 5, 7);
        }
        {
          const s = p + 3 * rowBytes;
          const l0 = v128.load(s), l1 = v128.load(s, 16), l2 = v128.load(s, 8), l3 = v128.load(s, 24);
          d0 = f32x4.shuffle(l0, l1, 0, 2, 4, 6); d1 = f32x4.shuffle(l0, l1, 1, 3, 5, 7);
          d2 = f32x4.shuffle(l2, l3, 0, 2, 4, 6); d3 = f32x4.shuffle(l2, l3, 1, 3, 5, 7);
        }
        // Bᵀ d: rows r0 - r2, r1 + r2, r2 - r1, r1 - r3; then the same along columns, element (i, j) at xi = 4i + j
        q = storeRowTransform(q, step, f32x4.sub(a0, c0), f32x4.sub(a1, c1), f32x4.sub(a2, c2), f32x4.sub(a3, c3));
        q = storeRowTransform(q, step, f32x4.add(b0, c0), f32x4.add(b1, c1), f32x4.add(b2, c2), f32x4.add(b3, c3));
        q = storeRowTransform(q, step, f32x4.sub(c0, b0), f32x4.sub(c1, b1), f32x4.sub(c2, b2), f32x4.sub(c3, b3));
        storeRowTransform(q, step, f32x4.sub(b0, d0), f32x4.sub(b1, d1), f32x4.sub(b2, d2), f32x4.sub(b3, d3));
        t += 4;
        continue;
      }
    }
    // one tile
    let q = pv;
    for (let j = 0; j < 4; j++) {
      // column j of Bᵀ d
      const s = p + (<usize>j << 2);
      const e0 = load<f32>(s), e1 = load<f32>(s + rowBytes), e2 = load<f32>(s + 2 * rowBytes), e3 = load<f32>(s + 3 * rowBytes);
      store<f32>(q + (<usize>j) * step, e0 - e2);
      store<f32>(q + (<usize>(4 + j)) * step, e1 + e2);
      store<f32>(q + (<usize>(8 + j)) * step, e2 - e1);
      store<f32>(q + (<usize>(12 + j)) * step, e1 - e3);
    }
    // then (Bᵀ d) B along each row, in place
    for (let i = 0; i < 4; i++) {
      const r = q + <usize>(4 * i) * step;
      const e0 = load<f32>(r), e1 = load<f32>(r + step), e2 = load<f32>(r + step2), e3 = load<f32>(r + step3);
      store<f32>(r, e0 - e2);
      store<f32>(r + step, e1 + e2);
      store<f32>(r + step2, e2 - e1);
      store<f32>(r + step3, e1 - e3);
    }
    t++;
  }
}

/** One row of Bᵀ d (4 tiles in the lanes) times B: its 4 elements stored at q, q + step, …; returns q + 4·step. */
@inline function storeRowTransform(q: usize, step: usize, r0: v128, r1: v128, r2: v128, r3: v128): usize {
  v128.store(q, f32x4.sub(r0, r2));
  v128.store(q + step, f32x4.add(r1, r2));
  v128.store(q + 2 * step, f32x4.sub(r2, r1));
  v128.store(q + 3 * step, f32x4.sub(r1, r3));
  return q + 4 * step;
}

/**
 * Aᵀ M A of one output channel's tiles t0..t0+tb-1 (element xi of tile t at mk + xi·step + 4t), plus bias and the
 * residual, activated, into the output plane y (and the residual plane r, 0: none).
 */
function outputTransform(mk: usize, y: usize, r: usize, b: f32, OH: i32, OW: i32, TW: i32, t0: i32, tb: i32, step: usize, act: i32, p0: f32, p1: f32): void {
  for (let t = t0, end = t0 + tb; t < end; ) {
    const th = t / TW, tw = t - th * TW;
    const q = mk + (<usize>(t - t0) << 2);
    const oh = 2 * th, ow = 2 * tw;
    const at = (<usize>(oh * OW + ow)) << 2;
    const rowBytes = <usize>OW << 2;
    if (ASC_FEATURE_SIMD) {
      // 4 whole tiles of one tile row: 8 output columns of 2 rows
      if (tw + 4 <= TW && t + 4 <= end && ow + 8 <= OW && oh + 2 <= OH) {
        // Aᵀ m: rows m0 + m1 + m2 and m1 - m2 - m3 of the 4x4 elements, per column j
        const s00 = f32x4.add(f32x4.add(v128.load(q), v128.load(q + 4 * step)), v128.load(q + 8 * step));
        const s01 = f32x4.add(f32x4.add(v128.load(q + step), v128.load(q + 5 * step)), v128.load(q + 9 * step));
        const s02 = f32x4.add(f32x4.add(v128.load(q + 2 * step), v128.load(q + 6 * step)), v128.load(q + 10 * step));
        const s03 = f32x4.add(f32x4.add(v128.load(q + 3 * step), v128.load(q + 7 * step)), v128.load(q + 11 * step));
        const s10 = f32x4.sub(f32x4.sub(v128.load(q + 4 * step), v128.load(q + 8 * step)), v128.load(q + 12 * step));
        const s11 = f32x4.sub(f32x4.sub(v128.load(q + 5 * step), v128.load(q + 9 * step)), v128.load(q + 13 * step));
        const s12 = f32x4.sub(f32x4.sub(v128.load(q + 6 * step), v128.load(q + 10 * step)), v128.load(q + 14 * step));
        const s13 = f32x4.sub(f32x4.sub(v128.load(q + 7 * step), v128.load(q + 11 * step)), v128.load(q + 15 * step));
        const bv = f32x4.splat(b);
        const y00 = f32x4.add(f32x4.add(f32x4.add(s00, s01), s02), bv);
        const y01 = f32x4.add(f32x4.sub(f32x4.sub(s01, s02), s03), bv);
        const y10 = f32x4.add(f32x4.add(f32x4.add(s10, s11), s12), bv);
        const y11 = f32x4.add(f32x4.sub(f32x4.sub(s11, s12), s13), bv);
        storeOutputRow(y + at, r == 0 ? 0 : r + at, y00, y01, act, p0, p1);
        storeOutputRow(y + at + rowBytes, r == 0 ? 0 : r + at + rowBytes, y10, y11, act, p0, p1);
        t += 4;
        continue;
      }
    }
    const m0 = load<f32>(q), m1 = load<f32>(q + step), m2 = load<f32>(q + 2 * step), m3 = load<f32>(q + 3 * step);
    const m4 = load<f32>(q + 4 * step), m5 = load<f32>(q + 5 * step), m6 = load<f32>(q + 6 * step), m7 = load<f32>(q + 7 * step);
    const m8 = load<f32>(q + 8 * step), m9 = load<f32>(q + 9 * step), m10 = load<f32>(q + 10 * step), m11 = load<f32>(q + 11 * step);
    const m12 = load<f32>(q + 12 * step), m13 = load<f32>(q + 13 * step), m14 = load<f32>(q + 14 * step), m15 = load<f32>(q + 15 * step);
    const s0 = m0 + m4 + m8, s1 = m1 + m5 + m9, s2 = m2 + m6 + m10, s3 = m3 + m7 + m11;
    const u0 = m4 - m8 - m12, u1 = m5 - m9 - m13, u2 = m6 - m10 - m14, u3 = m7 - m11 - m15;
    storeOutput(y + at, r == 0 ? 0 : r + at, s0 + s1 + s2 + b, act, p0, p1);
    if (ow + 1 < OW) storeOutput(y + at + 4, r == 0 ? 0 : r + at + 4, s1 - s2 - s3 + b, act, p0, p1);
    if (oh + 1 < OH) {
      storeOutput(y + at + rowBytes, r == 0 ? 0 : r + at + rowBytes, u0 + u1 + u2 + b, act, p0, p1);
      if (ow + 1 < OW) storeOutput(y + at + rowBytes + 4, r == 0 ? 0 : r + at + rowBytes + 4, u1 - u2 - u3 + b, act, p0, p1);
    }
    t++;
  }
}

/** Columns 0, 2, 4, 6 (e) and 1, 3, 5, 7 (o) of 8 outputs, interleaved, plus the residual, activated. */
function storeOutputRow(p: usize, r: usize, e: v128, o: v128, act: i32, p0: f32, p1: f32): void {
  let lo = f32x4.shuffle(e, o, 0, 4, 1, 5), hi = f32x4.shuffle(e, o, 2, 6, 3, 7);
  if (r != 0) {
    lo = f32x4.add(lo, v128.load(r));
    hi = f32x4.add(hi, v128.load(r, 16));
  }
  v128.store(p, actVec(lo, act, p0, p1));
  v128.store(p, actVec(hi, act, p0, p1), 16);
}

function storeOutput(p: usize, r: usize, s: f32, act: i32, p0: f32, p1: f32): void {
  store<f32>(p, actScalar(r == 0 ? s : s + load<f32>(r), act, p0, p1));
}
