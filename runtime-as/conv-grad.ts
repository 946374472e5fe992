// conv2d backward (NCHW, weight [OC, C/G, KH, KW]) straight from the forward's geometry: no padded or
// spread copies of a tensor. Strides, dilations, asymmetric pads (PH/PW top/left; the bottom
// and right follow from OH/OW) and groups (depthwise: G = C) all take the same loops; SIMD runs 4 output
// columns at once. A stride-1 input gradient with enough channels is instead the forward convolution of dL/dy
// with the flipped weights, on the forward's im2col + GEMM kernel, and a weight gradient with blocks of four output
// channels per group multiplies dL/dy by the forward's patch matrix (im2col blocks), transposed, in place.
import { ACT_NONE } from "./act";
import { ceilDiv, floorDiv, loadStrided, madd } from "./common";
import { conv2dIm2col, im2colPixels } from "./conv";
import { BIAS_NONE, gemm } from "./gemm";

/** First and last output column whose tap kw reads an input column inside [0, W - overRead). */
@inline function columnRange(OW: i32, W: i32, kw: i32, SW: i32, PW: i32, DW: i32, overRead: i32): i64 {
  const lo = max(0, ceilDiv(PW - kw * DW, SW));
  const hi = min(OW - 1, floorDiv(W - 1 - overRead + PW - kw * DW, SW));
  return (<i64>lo << 32) | <i64><u32>hi;
}

/**
 * dL/dx: every output gradient, times each tap's weight, added to the input element that tap read.
 * With `tile` > 0 (stride 1, no dilation, pads below the kernel's size: the compiler's choice), the transposed
 * convolution instead: dL/dx = conv2d(dL/dy, w flipped in kh and kw with its channel axes swapped, pads K - 1 - P),
 * the flipped weights in `scratch`, then `tile` pixels' im2col block.
 */
export function conv2dInputGrad(
  gy: usize, w: usize, gx: usize, N: i32, C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32, scratch: usize, tile: i32,
): void {
  const ocPerGroup = OC / G, CG = C / G;
  // rows as wide as the input's: the patch gradient wᵀ·dL/dy (half the transposed convolution's patch
  // matrix for the MNIST CNN's second layer, so less to write and read) added back as shifted rows, in blocks that
  // fit where that patch matrix's block would
  const rowsBlock = tile * ocPerGroup / CG;
  if (tile > 0 && OW == W && rowsBlock >= 4) {
    inputGradByShiftedRows(gy, w, gx, N, C, H, W, OC, OH, OW, KH, KW, PH, PW, G, scratch, rowsBlock);
    return;
  }
  if (tile > 0) {
    flipWeights(w, scratch, OC, CG, KH, KW, G);
    conv2dIm2col(gy, scratch, 0, gx, N, OC, OH, OW, C, H, W, KH, KW, 1, 1, KH - 1 - PH, KW - 1 - PW, 1, 1, G, ACT_NONE, 0, 0,
      scratch + (<usize>(OC * CG * KH * KW) << 2), tile, 0);
    return;
  }
  memory.fill(gx, 0, <usize>(N * C * H * W) << 2);
  // SIMD, stride 1: four output channels of one group at a time, so each input-gradient vector is loaded and stored once for four
  const block = ASC_FEATURE_SIMD && SW == 1 && ocPerGroup % 4 == 0 ? 4 : 1;
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < OC; oc += block) {
      const gyPlane = gy + (<usize>((n * OC + oc) * OH * OW) << 2);
      const c0 = (oc / ocPerGroup) * CG;
      for (let cg = 0; cg < CG; cg++) {
        const gxPlane = gx + (<usize>((n * C + c0 + cg) * H * W) << 2);
        const wTaps = w + (<usize>((oc * CG + cg) * KH * KW) << 2);
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++) {
            const wv = load<f32>(wTaps + (<usize>(kh * KW + kw) << 2));
            const range = columnRange(OW, W, kw, SW, PW, DW, 0);
            const owLo = <i32>(range >> 32), owHi = <i32>range;
            const shift = kw * DW - PW;
            if (ASC_FEATURE_SIMD) {
              if (block == 4) {
                fourChannelScatter(gxPlane, gyPlane, <usize>(OH * OW) << 2, wTaps + (<usize>(kh * KW + kw) << 2), <usize>(CG * KH * KW) << 2,
                  OH, OW, H, W, SH, PH, kh, DH, owLo, owHi, shift);
                continue;
              }
            }
            for (let oh = 0; oh < OH; oh++) {
              const ih = oh * SH - PH + kh * DH;
              if (ih < 0 || ih >= H) continue;
              const gxRow = gxPlane + (<usize>(ih * W) << 2), gyRow = gyPlane + (<usize>(oh * OW) << 2);
              let ow = owLo;
              if (ASC_FEATURE_SIMD) {
                if (SW == 1) {
                  const wvec = f32x4.splat(wv);
                  for (; ow + 4 <= owHi + 1; ow += 4) {
                    const q = gxRow + (<usize>(ow + shift) << 2);
                    v128.store(q, f32x4.add(v128.load(q), f32x4.mul(wvec, v128.load(gyRow + (<usize>ow << 2)))));
                  }
                }
              }
              for (; ow <= owHi; ow++) {
                const q = gxRow + (<usize>(ow * SW + shift) << 2);
                store<f32>(q, load<f32>(q) + wv * load<f32>(gyRow + (<usize>ow << 2)));
              }
            }
          }
        }
      }
    }
  }
}

/**
 * dL/dx at stride 1 without dilation when OW == W: per image, group and block of T output pixels, the block's patch
 * gradient P[k, t] = Σ_oc w[oc, k]·dL/dy[oc, t] (k = (c, kh, kw); GEMM on the weights transposed to [K, OC/G] in
 * `scratch`), then each row P[k, ·] added to its input plane shifted by its tap, as shiftedPatches reads it: zero
 * where a tap's column leaves the row, and only where the shifted pixel is inside the plane.
 */
function inputGradByShiftedRows(
  gy: usize, w: usize, gx: usize, N: i32, C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, PH: i32, PW: i32, G: i32, scratch: usize, T: i32,
): void {
  const ocPerGroup = OC / G, CG = C / G, K = CG * KH * KW, P = OH * OW, HW = H * W;
  const wt = scratch, patch = scratch + (<usize>(OC * K) << 2);
  for (let oc = 0; oc < OC; oc++) {
    const g = oc / ocPerGroup, j = oc - g * ocPerGroup;
    const src = w + (<usize>(oc * K) << 2), dst = wt + (<usize>(g * K * ocPerGroup + j) << 2);
    for (let k = 0; k < K; k++) store<f32>(dst + (<usize>(k * ocPerGroup) << 2), load<f32>(src + (<usize>k << 2)));
  }
  memory.fill(gx, 0, <usize>(N * C * HW) << 2);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const gyg = gy + (<usize>((n * OC + g * ocPerGroup) * P) << 2), gxg = gx + (<usize>((n * C + g * CG) * HW) << 2);
      for (let first = 0; first < P; first += T) {
        const cols = min(T, P - first);
        gemm(wt + (<usize>(g * K * ocPerGroup) << 2), gyg + (<usize>first << 2), patch, 0, K, cols, ocPerGroup, ocPerGroup, P, cols, BIAS_NONE, ACT_NONE, 0, 0, 0);
        let row = patch;
        for (let c = 0; c < CG; c++) {
          const plane = gxg + (<usize>(c * HW) << 2);
          for (let kh = 0; kh < KH; kh++) {
            for (let kw = 0; kw < KW; kw++, row += <usize>cols << 2) {
              const dx = kw - PW, start = first + (kh - PH) * W + dx;
              const lo = min(cols, max(0, -start)), hi = max(lo, min(cols, HW - start));
              if (dx != 0) {
                // columns ow with ow + dx outside [0, W): the first -dx of a row, or the last dx
                const bad0 = dx < 0 ? 0 : W - dx, bad1 = dx < 0 ? -dx : W;
                for (let t = -(first % W); t < cols; t += W) for (let ow = bad0; ow < bad1; ow++) if (t + ow >= 0 && t + ow < cols) store<f32>(row + (<usize>(t + ow) << 2), 0);
              }
              addRow(plane + (<usize>(start + lo) << 2), row + (<usize>lo << 2), hi - lo);
            }
          }
        }
      }
    }
  }
}

/** dst[i] += src[i], i < n */
@inline function addRow(dst: usize, src: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) {
      const q = dst + (<usize>i << 2);
      v128.store(q, f32x4.add(v128.load(q), v128.load(src + (<usize>i << 2))));
    }
  }
  for (; i < n; i++) {
    const q = dst + (<usize>i << 2);
    store<f32>(q, load<f32>(q) + load<f32>(src + (<usize>i << 2)));
  }
}

/** The transposed convolution's weights [C, OC/G, KH, KW]: w[oc, c, kh, kw] at [c, oc, KH-1-kh, KW-1-kw] within each group. */
function flipWeights(w: usize, dst: usize, OC: i32, CG: i32, KH: i32, KW: i32, G: i32): void {
  const ocPerGroup = OC / G, taps = KH * KW;
  for (let oc = 0; oc < OC; oc++) {
    const g = oc / ocPerGroup, j = oc - g * ocPerGroup;
    for (let c = 0; c < CG; c++) {
      const src = w + (<usize>((oc * CG + c) * taps) << 2);
      const out = dst + (<usize>(((g * CG + c) * ocPerGroup + j) * taps) << 2);
      for (let t = 0; t < taps; t++) store<f32>(out + (<usize>(taps - 1 - t) << 2), load<f32>(src + (<usize>t << 2)));
    }
  }
}

/**
 * dL/dw: per weight, the dot product of its output channel's gradient with the inputs its tap read, over the batch.
 * With `tile` > 0 (the compiler's choice), per image, group and block of `tile` output pixels: the block's patch
 * matrix [CG·KH·KW, tile] in `scratch` (the forward's im2col), and dL/dw[oc, k] += Σ_t dL/dy[oc, t] · patch[k, t].
 */
export function conv2dWeightGrad(
  x: usize, gy: usize, gw: usize, N: i32, C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32, scratch: usize, tile: i32,
): void {
  const ocPerGroup = OC / G, CG = C / G;
  memory.fill(gw, 0, <usize>(OC * CG * KH * KW) << 2);
  if (tile > 0) {
    const K = CG * KH * KW, P = OH * OW;
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < G; g++) {
        const xg = x + (<usize>((n * C + g * CG) * H * W) << 2);
        const gyg = gy + (<usize>((n * OC + g * ocPerGroup) * P) << 2);
        const gwg = gw + (<usize>(g * ocPerGroup * K) << 2);
        for (let first = 0; first < P; first += tile) {
          const T = min(tile, P - first);
          if (SH == 1 && SW == 1 && DH == 1 && DW == 1 && OW == W) shiftedPatches(xg, scratch, first, T, CG, H, W, KH, KW, PH, PW);
          else im2colPixels(xg, scratch, first, T, CG, H, W, OW, KH, KW, SH, SW, PH, PW, DH, DW);
          accumulatePatchProducts(gyg + (<usize>first << 2), <usize>P << 2, scratch, T, gwg, ocPerGroup, K);
        }
      }
    }
    return;
  }
  const overRead = SW == 2 ? 1 : 0; // see loadStrided
  // SIMD: four output channels of one group at a time, so each input vector loaded serves four products
  const block = ASC_FEATURE_SIMD && ocPerGroup % 4 == 0 ? 4 : 1;
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < OC; oc += block) {
      const gyPlane = gy + (<usize>((n * OC + oc) * OH * OW) << 2);
      const c0 = (oc / ocPerGroup) * CG;
      for (let cg = 0; cg < CG; cg++) {
        const xPlane = x + (<usize>((n * C + c0 + cg) * H * W) << 2);
        const gwTaps = gw + (<usize>((oc * CG + cg) * KH * KW) << 2);
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++) {
            const range = columnRange(OW, W, kw, SW, PW, DW, 0);
            const owLo = <i32>(range >> 32), owHi = <i32>range;
            const vecHi = <i32>columnRange(OW, W, kw, SW, PW, DW, overRead);
            const shift = kw * DW - PW;
            if (ASC_FEATURE_SIMD) {
              if (block == 4) {
                fourChannelTap(xPlane, gyPlane, <usize>(OH * OW) << 2, gwTaps + (<usize>(kh * KW + kw) << 2), <usize>(CG * KH * KW) << 2,
                  OH, OW, H, W, SH, PH, kh, DH, owLo, vecHi, owHi, SW, shift);
                continue;
              }
            }
            let sum: f32 = 0;
            for (let oh = 0; oh < OH; oh++) {
              const ih = oh * SH - PH + kh * DH;
              if (ih < 0 || ih >= H) continue;
              sum += rowDot(xPlane + (<usize>(ih * W) << 2), gyPlane + (<usize>(oh * OW) << 2), owLo, vecHi, owHi, SW, shift);
            }
            const q = gwTaps + (<usize>(kh * KW + kw) << 2);
            store<f32>(q, load<f32>(q) + sum);
          }
        }
      }
    }
  }
}

/**
 * The patch matrix at stride 1 without dilation when a row of the output is a row of the input (OW == W): each
 * patch row is the flat plane shifted by its tap, so one contiguous copy, zero where the shift leaves the plane,
 * then zero in the columns whose tap falls left or right of the row.
 */
function shiftedPatches(xg: usize, dst: usize, first: i32, T: i32, CG: i32, H: i32, W: i32, KH: i32, KW: i32, PH: i32, PW: i32): void {
  const HW = H * W;
  let out = dst;
  for (let c = 0; c < CG; c++) {
    const plane = xg + (<usize>(c * HW) << 2);
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++, out += <usize>T << 2) {
        const dx = kw - PW, start = first + (kh - PH) * W + dx;
        // t with a flat source index inside [0, HW): [lo, hi)
        const lo = min(T, max(0, -start)), hi = max(lo, min(T, HW - start));
        memory.fill(out, 0, <usize>lo << 2);
        memory.copy(out + (<usize>lo << 2), plane + (<usize>(start + lo) << 2), <usize>(hi - lo) << 2);
        memory.fill(out + (<usize>hi << 2), 0, <usize>(T - hi) << 2);
        if (dx == 0) continue;
        // columns ow with ow + dx outside [0, W): the first -dx of a row, or the last dx
        const bad0 = dx < 0 ? 0 : W - dx, bad1 = dx < 0 ? -dx : W;
        let t = -(first % W);
        for (; t < T; t += W) for (let ow = bad0; ow < bad1; ow++) if (t + ow >= 0 && t + ow < T) store<f32>(out + (<usize>(t + ow) << 2), 0);
      }
    }
  }
}

/** gw[r, k] += Σ_{t < T} gy[r·gyRow + t] · patch[k·T + t] for r < rows, k < K (rows even): two rows by four patch rows at a time. */
function accumulatePatchProducts(gy: usize, gyRow: usize, patch: usize, T: i32, gw: usize, rows: i32, K: i32): void {
  const patchRow = <usize>T << 2, gwRow = <usize>K << 2;
  for (let r = 0; r < rows; r += 2) {
    const g0 = gy + <usize>r * gyRow, out = gw + <usize>r * gwRow;
    let k = 0;
    for (; k + 4 <= K; k += 4) twoByFour(g0, gyRow, patch + <usize>k * patchRow, patchRow, T, out + (<usize>k << 2), gwRow);
    for (; k < K; k++) {
      for (let i = 0; i < 2; i++) {
        const q = out + <usize>i * gwRow + (<usize>k << 2);
        store<f32>(q, load<f32>(q) + dot(g0 + <usize>i * gyRow, patch + <usize>k * patchRow, T));
      }
    }
  }
}

/**
 * 2 x 4 dot products of length T: two rows of gy `gyRow` bytes apart, four patch rows `patchRow` apart, added to gw
 * (rows `gwRow` apart). SIMD: each gw row's four sums leave their accumulators as one vector (a transpose-add).
 */
@inline function twoByFour(g0: usize, gyRow: usize, p0: usize, patchRow: usize, T: i32, out: usize, gwRow: usize): void {
  const p1 = p0 + patchRow, p2 = p1 + patchRow, p3 = p2 + patchRow, g1 = g0 + gyRow;
  let t = 0;
  if (ASC_FEATURE_SIMD) {
    let a00 = f32x4.splat(0), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    for (; t + 4 <= T; t += 4) {
      const o = <usize>t << 2;
      const c0 = v128.load(p0 + o), c1 = v128.load(p1 + o), c2 = v128.load(p2 + o), c3 = v128.load(p3 + o);
      let g = v128.load(g0 + o);
      a00 = madd(g, c0, a00);
      a01 = madd(g, c1, a01);
      a02 = madd(g, c2, a02);
      a03 = madd(g, c3, a03);
      g = v128.load(g1 + o);
      a10 = madd(g, c0, a10);
      a11 = madd(g, c1, a11);
      a12 = madd(g, c2, a12);
      a13 = madd(g, c3, a13);
    }
    v128.store(out, f32x4.add(v128.load(out), sums(a00, a01, a02, a03)));
    v128.store(out + gwRow, f32x4.add(v128.load(out + gwRow), sums(a10, a11, a12, a13)));
  }
  if (t == T) return;
  let s00: f32 = 0, s01: f32 = 0, s02: f32 = 0, s03: f32 = 0, s10: f32 = 0, s11: f32 = 0, s12: f32 = 0, s13: f32 = 0;
  for (; t < T; t++) {
    const o = <usize>t << 2;
    const c0 = load<f32>(p0 + o), c1 = load<f32>(p1 + o), c2 = load<f32>(p2 + o), c3 = load<f32>(p3 + o);
    let g = load<f32>(g0 + o);
    s00 += g * c0;
    s01 += g * c1;
    s02 += g * c2;
    s03 += g * c3;
    g = load<f32>(g1 + o);
    s10 += g * c0;
    s11 += g * c1;
    s12 += g * c2;
    s13 += g * c3;
  }
  addFour(out, s00, s01, s02, s03);
  addFour(out + gwRow, s10, s11, s12, s13);
}

/** [Σ lanes of a, of b, of c, of d] */
@inline function sums(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(f32x4.shuffle(a, b, 0, 4, 1, 5), f32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(f32x4.shuffle(c, d, 0, 4, 1, 5), f32x4.shuffle(c, d, 2, 6, 3, 7));
  return f32x4.add(f32x4.shuffle(ab, cd, 0, 1, 4, 5), f32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

@inline function addFour(q: usize, a: f32, b: f32, c: f32, d: f32): void {
  store<f32>(q, load<f32>(q) + a);
  store<f32>(q + 4, load<f32>(q + 4) + b);
  store<f32>(q + 8, load<f32>(q + 8) + c);
  store<f32>(q + 12, load<f32>(q + 12) + d);
}

@inline function lanes(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/** Σ a[t]·b[t], t < T */
@inline function dot(a: usize, b: usize, T: i32): f32 {
  let sum: f32 = 0;
  let t = 0;
  if (ASC_FEATURE_SIMD) {
    let acc = f32x4.splat(0);
    for (; t + 4 <= T; t += 4) acc = madd(v128.load(a + (<usize>t << 2)), v128.load(b + (<usize>t << 2)), acc);
    sum = lanes(acc);
  }
  for (; t < T; t++) sum += load<f32>(a + (<usize>t << 2)) * load<f32>(b + (<usize>t << 2));
  return sum;
}

/** Σ x[ow·SW + shift]·gy[ow] over ow in [owLo, owHi]; vector lanes up to vecHi (room for loadStrided's over-read). */
@inline function rowDot(xRow: usize, gyRow: usize, owLo: i32, vecHi: i32, owHi: i32, SW: i32, shift: i32): f32 {
  let sum: f32 = 0;
  let ow = owLo;
  if (ASC_FEATURE_SIMD) {
    let acc = f32x4.splat(0);
    for (; ow + 4 <= vecHi + 1; ow += 4) {
      acc = f32x4.add(acc, f32x4.mul(loadStrided(xRow + (<usize>(ow * SW + shift) << 2), SW), v128.load(gyRow + (<usize>ow << 2))));
    }
    sum = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  }
  for (; ow <= owHi; ow++) sum += load<f32>(xRow + (<usize>(ow * SW + shift) << 2)) * load<f32>(gyRow + (<usize>ow << 2));
  return sum;
}

/** One tap's weight gradient for four consecutive output channels (planes `plane` bytes apart in gy, taps `tapStride` apart in gw). */
@inline function fourChannelTap(
  xPlane: usize, gyPlane: usize, plane: usize, gwTap: usize, tapStride: usize,
  OH: i32, OW: i32, H: i32, W: i32, SH: i32, PH: i32, kh: i32, DH: i32, owLo: i32, vecHi: i32, owHi: i32, SW: i32, shift: i32,
): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let oh = 0; oh < OH; oh++) {
    const ih = oh * SH - PH + kh * DH;
    if (ih < 0 || ih >= H) continue;
    const xRow = xPlane + (<usize>(ih * W) << 2), g0 = gyPlane + (<usize>(oh * OW) << 2);
    let ow = owLo;
    for (; ow + 4 <= vecHi + 1; ow += 4) {
      const xv = loadStrided(xRow + (<usize>(ow * SW + shift) << 2), SW), g = g0 + (<usize>ow << 2);
      a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(g)));
      a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(g + plane)));
      a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(g + 2 * plane)));
      a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(g + 3 * plane)));
    }
    for (; ow <= owHi; ow++) {
      const xv = load<f32>(xRow + (<usize>(ow * SW + shift) << 2)), g = g0 + (<usize>ow << 2);
      s0 += xv * load<f32>(g);
      s1 += xv * load<f32>(g + plane);
      s2 += xv * load<f32>(g + 2 * plane);
      s3 += xv * load<f32>(g + 3 * plane);
    }
  }
  addLanes(gwTap, a0, s0);
  addLanes(gwTap + tapStride, a1, s1);
  addLanes(gwTap + 2 * tapStride, a2, s2);
  addLanes(gwTap + 3 * tapStride, a3, s3);
}

@inline function addLanes(q: usize, acc: v128, tail: f32): void {
  store<f32>(q, load<f32>(q) + tail + (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3)));
}

/** One tap's input gradient from four consecutive output channels, stride 1 (gy planes `plane` bytes apart, weights `tapStride` apart). */
@inline function fourChannelScatter(
  gxPlane: usize, gyPlane: usize, plane: usize, wTap: usize, tapStride: usize,
  OH: i32, OW: i32, H: i32, W: i32, SH: i32, PH: i32, kh: i32, DH: i32, owLo: i32, owHi: i32, shift: i32,
): void {
  const w0 = load<f32>(wTap), w1 = load<f32>(wTap + tapStride), w2 = load<f32>(wTap + 2 * tapStride), w3 = load<f32>(wTap + 3 * tapStride);
  const v0 = f32x4.splat(w0), v1 = f32x4.splat(w1), v2 = f32x4.splat(w2), v3 = f32x4.splat(w3);
  for (let oh = 0; oh < OH; oh++) {
    const ih = oh * SH - PH + kh * DH;
    if (ih < 0 || ih >= H) continue;
    const gxRow = gxPlane + (<usize>(ih * W) << 2), g0 = gyPlane + (<usize>(oh * OW) << 2);
    let ow = owLo;
    for (; ow + 4 <= owHi + 1; ow += 4) {
      const q = gxRow + (<usize>(ow + shift) << 2), g = g0 + (<usize>ow << 2);
      let v = f32x4.add(v128.load(q), f32x4.mul(v0, v128.load(g)));
      v = f32x4.add(v, f32x4.mul(v1, v128.load(g + plane)));
      v = f32x4.add(v, f32x4.mul(v2, v128.load(g + 2 * plane)));
      v128.store(q, f32x4.add(v, f32x4.mul(v3, v128.load(g + 3 * plane))));
    }
    for (; ow <= owHi; ow++) {
      const q = gxRow + (<usize>(ow + shift) << 2), g = g0 + (<usize>ow << 2);
      store<f32>(q, load<f32>(q) + w0 * load<f32>(g) + w1 * load<f32>(g + plane) + w2 * load<f32>(g + 2 * plane) + w3 * load<f32>(g + 3 * plane));
    }
  }
}
