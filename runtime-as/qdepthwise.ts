// int8 convolutions vectorised across channels (NCHW in and out): depthwise, and 1x1 on tiny planes.
import { multiplyByQuantizedMultiplier4, storeRequantized } from "./qcommon";
// Depthwise, for the SIMD build's small planes, where
// the per-channel kernels (runtime-as/qconv.ts) spend more on each plane's edges and set-up than on its few
// multiply-adds. Channels go 8 at a time: their planes are transposed into `scratch` as one padded NHWC plane
// (8 bytes per pixel, the border holding the input zero point, which the folded bias cancels), so every output
// pixel is a plain loop over the taps: taps in pairs, the two taps' 8 channels interleaved into (x[t], x[t+1]) lanes
// against the packed weight pairs in i32x4.dot_i16x8_s. Requantization works on channel lanes, each lane with its
// own multiplier and shift (requantizeLanes). Weights packed at compile time (compiler/ops/quant.ts,
// packDepthwiseChannels): [C/8][taps/2][8 channels][2 taps], zero-padded; bias − inZp·Σw per channel; the lane
// table per 4 channels: multipliers, 2^(E − right shift), and the high product's clamp ±2^(right shift + 8).
// The output may be the input's own bytes (the planner writes it in place): a group's 8 planes are copied into
// the scratch before any of its outputs is stored. Where it may not (a different output shape), the plane can go
// in bands of `bandRows` output rows, so that large planes (VWW's 48x48 at stride 2) keep a small scratch.

/**
 * Scratch layout: the tap offsets (2·pairs i32, padded to 16 bytes), then the padded plane of a band: Hp x Wp
 * pixels, Hp = (bandRows − 1)·SH + (KH − 1)·DH + 1 rows from padded row ob·SH (input row ob·SH − PH) for the band
 * starting at output row ob, Wp = (OW − 1)·SW + (KW − 1)·DW + 1 columns from input column −PW.
 */
export function qdepthwiseChannels(
  x: usize, wp: usize, bias: usize, lanes: usize, y: usize, scratch: usize,
  N: i32, C: i32, H: i32, W: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
  inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool, E: i32, bandRows: i32,
): void {
  const Hp = (bandRows - 1) * SH + (KH - 1) * DH + 1, Wp = (OW - 1) * SW + (KW - 1) * DW + 1;
  const taps = KH * KW, pairs = (taps + 1) >> 1, groups = (C + 7) >> 3;
  const P = H * W, OP = OH * OW;
  const offsets = scratch, plane = scratch + <usize>(((pairs * 8) + 15) & ~15);
  // each tap's byte offset in the padded plane from the output pixel's top-left tap (an odd count's last pair
  // repeats its tap, against zero weights)
  for (let t = 0; t < 2 * pairs; t++) {
    const k = min(t, taps - 1);
    store<i32>(offsets + (<usize>t << 2), (((k / KW) * DH) * Wp + (k % KW) * DW) * 8);
  }
  // the side columns keep the zero point through every group and band; the rows are rewritten by each
  memory.fill(plane, <u8>inZp, <usize>(Hp * Wp * 8));
  const xEnd = x + <usize>(N * C * P);
  for (let n = 0; n < N; n++) {
    const xn = x + <usize>(n * C * P), yn = y + <usize>(n * C * OP);
    for (let g = 0; g < groups; g++) {
      const c0 = g << 3, count = min(8, C - c0);
      const wg = wp + <usize>(g * pairs * 16), bg = bias + (<usize>g << 5), rg = lanes + (<usize>g << 7);
      for (let ob = 0; ob < OH; ob += bandRows) {
        const rows = min(bandRows, OH - ob);
        gatherGroup(xn + <usize>(c0 * P), xEnd, plane, count, P, H, W, (rows - 1) * SH + (KH - 1) * DH + 1, Wp, ob * SH - PH, PW, inZp);
        const yg = yn + <usize>(c0 * OP + ob * OW);
        for (let oh = 0; oh < rows; oh++) {
          let ow = 0;
          if (ASC_FEATURE_SIMD) {
            // two output pixels at a time share the weight and offset loads
            for (; ow + 1 < OW; ow += 2) {
              const at = plane + <usize>(((oh * SH) * Wp + ow * SW) * 8), next = at + <usize>(SW * 8);
              let a0 = v128.load(bg), a1 = v128.load(bg, 16), b0 = a0, b1 = a1;
              for (let tp = 0; tp < pairs; tp++) {
                const o = offsets + (<usize>tp << 3), wt = wg + (<usize>tp << 4);
                const first = <usize>load<i32>(o), second = <usize>load<i32>(o, 4);
                const wa = v128.load8x8_s(wt), wb = v128.load8x8_s(wt, 8);
                let xa = v128.load8x8_s(at + first), xb = v128.load8x8_s(at + second);
                a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), wa));
                a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15), wb));
                xa = v128.load8x8_s(next + first);
                xb = v128.load8x8_s(next + second);
                b0 = i32x4.add(b0, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), wa));
                b1 = i32x4.add(b1, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15), wb));
              }
              const yp = yg + <usize>(oh * OW + ow);
              storeLanes(yp, a0, a1, rg, outZp, lo, hi, roundUp, E, <usize>OP, count);
              storeLanes(yp + 1, b0, b1, rg, outZp, lo, hi, roundUp, E, <usize>OP, count);
            }
          }
          for (; ow < OW; ow++) {
            const at = plane + <usize>(((oh * SH) * Wp + ow * SW) * 8);
            const yp = yg + <usize>(oh * OW + ow);
            if (ASC_FEATURE_SIMD) {
              let a0 = v128.load(bg), a1 = v128.load(bg, 16);
              for (let tp = 0; tp < pairs; tp++) {
                const o = offsets + (<usize>tp << 3);
                const xa = v128.load8x8_s(at + <usize>load<i32>(o)), xb = v128.load8x8_s(at + <usize>load<i32>(o, 4));
                const wt = wg + (<usize>tp << 4);
                a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), v128.load8x8_s(wt)));
                a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15), v128.load8x8_s(wt, 8)));
              }
              storeLanes(yp, a0, a1, rg, outZp, lo, hi, roundUp, E, <usize>OP, count);
            } else {
              for (let k = 0; k < count; k++) {
                let acc = load<i32>(bg + (<usize>k << 2));
                for (let t = 0; t < taps; t++) {
                  const xv = <i32>load<i8>(at + <usize>(load<i32>(offsets + (<usize>t << 2)) + k));
                  acc += xv * <i32>load<i8>(wg + <usize>((t >> 1) * 16 + k * 2 + (t & 1)));
                }
                const r = rg + <usize>((k >> 2) * 64 + (k & 3) * 4);
                const v = requantizeLane(acc, load<i32>(r), load<i32>(r, 16), load<i32>(r, 32), load<i32>(r, 48), E, roundUp) + outZp;
                store<i8>(yp + <usize>(k * OP), <i8>min(hi, max(lo, v)));
              }
            }
          }
        }
      }
    }
  }
}

/**
 * Channels c0 .. c0 + count − 1 (planes P bytes apart from xc) into the band's Hp padded rows, row r holding input
 * row top + r (the zero point where that lies outside the input): pixel (ih, iw) at ((ih − top)·Wp + iw + PW)·8 +
 * channel. SIMD: 8 pixels of a row at a time, the 8 channels' rows transposed by
 * three rounds of interleaving shuffles; missing channels repeat the last one (their weights are zero).
 */
@inline function gatherGroup(xc: usize, xEnd: usize, plane: usize, count: i32, P: i32, H: i32, W: i32, Hp: i32, Wp: i32, top: i32, PW: i32, inZp: i32): void {
  const cols = min(W, Wp - PW);
  for (let r = 0; r < Hp; r++) {
    const ih = top + r;
    if (ih < 0 || ih >= H) {
      memory.fill(plane + <usize>(r * Wp * 8), <u8>inZp, <usize>(Wp * 8));
      continue;
    }
    const row = plane + <usize>((r * Wp + PW) * 8);
    let iw = 0;
    if (ASC_FEATURE_SIMD) {
      // a chunk's 8-byte loads may run past its row (into the next row or plane), never past the input
      for (; iw < cols && xc + <usize>((count - 1) * P + ih * W + iw + 8) <= xEnd; iw += 8) {
        const src = xc + <usize>(ih * W + iw), step = <usize>P;
        const r0 = v128.load64_zero(src), r1 = v128.load64_zero(src + <usize>min(1, count - 1) * step);
        const r2 = v128.load64_zero(src + <usize>min(2, count - 1) * step), r3 = v128.load64_zero(src + <usize>min(3, count - 1) * step);
        const r4 = v128.load64_zero(src + <usize>min(4, count - 1) * step), r5 = v128.load64_zero(src + <usize>min(5, count - 1) * step);
        const r6 = v128.load64_zero(src + <usize>min(6, count - 1) * step), r7 = v128.load64_zero(src + <usize>min(7, count - 1) * step);
        // bytes of channel pairs, then 16-bit pairs of pairs, then 32-bit halves: pixel-major 8-channel groups
        const p01 = i8x16.shuffle(r0, r1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const p23 = i8x16.shuffle(r2, r3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const p45 = i8x16.shuffle(r4, r5, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const p67 = i8x16.shuffle(r6, r7, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const q0 = i16x8.shuffle(p01, p23, 0, 8, 1, 9, 2, 10, 3, 11), q1 = i16x8.shuffle(p01, p23, 4, 12, 5, 13, 6, 14, 7, 15);
        const q2 = i16x8.shuffle(p45, p67, 0, 8, 1, 9, 2, 10, 3, 11), q3 = i16x8.shuffle(p45, p67, 4, 12, 5, 13, 6, 14, 7, 15);
        const out = row + <usize>(iw * 8), left = cols - iw;
        storePixels(out, i32x4.shuffle(q0, q2, 0, 4, 1, 5), left);
        if (left > 2) storePixels(out + 16, i32x4.shuffle(q0, q2, 2, 6, 3, 7), left - 2);
        if (left > 4) storePixels(out + 32, i32x4.shuffle(q1, q3, 0, 4, 1, 5), left - 4);
        if (left > 6) storePixels(out + 48, i32x4.shuffle(q1, q3, 2, 6, 3, 7), left - 6);
      }
    }
    for (; iw < cols; iw++) {
      for (let k = 0; k < 8; k++) {
        store<i8>(row + <usize>(iw * 8 + k), load<i8>(xc + <usize>(min(k, count - 1) * P + ih * W + iw)));
      }
    }
  }
}

/** Two pixels' 8 channels, or only the first when one pixel is left. */
@inline function storePixels(at: usize, v: v128, left: i32): void {
  if (left >= 2) v128.store(at, v);
  else v128.store64_lane(at, v, 0);
}

/** Byte k of `bytes` to y + k·step for the first `count` lanes (one output pixel of 8 channels' planes). */
@inline function storeChannels(y: usize, bytes: v128, step: usize, count: i32): void {
  v128.store8_lane(y, bytes, 0);
  if (count > 1) v128.store8_lane(y + step, bytes, 1);
  if (count > 2) v128.store8_lane(y + 2 * step, bytes, 2);
  if (count > 3) v128.store8_lane(y + 3 * step, bytes, 3);
  if (count > 4) v128.store8_lane(y + 4 * step, bytes, 4);
  if (count > 5) v128.store8_lane(y + 5 * step, bytes, 5);
  if (count > 6) v128.store8_lane(y + 6 * step, bytes, 6);
  if (count > 7) v128.store8_lane(y + 7 * step, bytes, 7);
}

/**
 * MultiplyByQuantizedMultiplier on 4 lanes, each with its own multiplier and right shift e (no left shift), from
 * the lane table at r: multipliers, then 2^(E − e), then the clamp bounds ∓2^(e + 8). The high multiply as
 * qcommon's; the rounding shift by e as one shift by E of h·2^(E − e) plus 2^(E − 1) (minus one for negative h
 * when ties go away from zero): floor((h·2^(E−e) + 2^(E−1) − [h < 0]) / 2^E) = floor((h + 2^(e−1) − [h < 0]) / 2^e),
 * exactly the rounding shift, and h itself when e = 0. Clamping h first keeps h·2^(E−e) inside i32 (E ≤ 22) and
 * changes nothing the int8 output can show: |h / 2^e| ≥ 2^8 saturates either way, whatever the zero point.
 */
@inline function requantizeLanes(acc: v128, r: usize, E: i32, roundUp: bool): v128 {
  const m = v128.load(r), half = i64x2.splat(1 << 30);
  const t0 = i64x2.shl(i64x2.add(i64x2.extmul_low_i32x4_s(acc, m), half), 1);
  const t1 = i64x2.shl(i64x2.add(i64x2.extmul_high_i32x4_s(acc, m), half), 1);
  const h = i32x4.min_s(v128.load(r, 48), i32x4.max_s(v128.load(r, 32), i32x4.shuffle(t0, t1, 1, 3, 5, 7)));
  let v = i32x4.add(i32x4.mul(h, v128.load(r, 16)), i32x4.splat(1 << (E - 1)));
  if (!roundUp) v = i32x4.add(v, i32x4.shr_s(h, 31));
  return i32x4.shr_s(v, E);
}

/** requantizeLanes for one lane (the scalar build). */
@inline function requantizeLane(acc: i32, m: i32, scale: i32, low: i32, high: i32, E: i32, roundUp: bool): i32 {
  const h = min(high, max(low, <i32>((<i64>acc * <i64>m + (<i64>1 << 30)) >> 31)));
  return (h * scale + (1 << (E - 1)) + (roundUp ? 0 : h >> 31)) >> E;
}

/**
 * A 1x1 convolution (Y[OC, P] = W[OC, C]·X[C, P] + bias) vectorised across output channels, for planes too small for
 * the packed kernel's 8-pixel tiles (qpacked.ts; VWW's 3x3 planes would waste 7 of every 16 lanes). The input goes
 * into `scratch` pixel-major as pairs of channels, (x[c], x[c+1]) as two i16 in an i32, so each pixel's pair is one
 * 32-bit splat against 4 output channels' packed weight pairs (packConvWeights' layout, output channels padded to
 * 8) in i32x4.dot_i16x8_s; tiles of 8 output channels x 4 pixels, whose accumulators are transposed to 4 pixels per
 * channel and requantized with each channel's multiplier and shift (qcommon's, any shift); single pixels after them.
 */
export function qpointwiseChannels(
  x: usize, wp: usize, bias: usize, rq: usize, y: usize, scratch: usize,
  N: i32, C: i32, P: i32, OC: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const pairs = (C + 1) >> 1, tileBytes = <usize>(pairs * 8), row = <usize>(pairs * 4);
  for (let n = 0; n < N; n++) {
    const xn = x + <usize>(n * C * P), yn = y + <usize>(n * OC * P);
    for (let p = 0; p < P; p++) {
      for (let k = 0; k < pairs; k++) {
        const a = <i32>load<i8>(xn + <usize>(2 * k * P + p)), b = 2 * k + 1 < C ? <i32>load<i8>(xn + <usize>((2 * k + 1) * P + p)) : 0;
        store<i32>(scratch + <usize>p * row + (<usize>k << 2), (a & 0xffff) | (b << 16));
      }
    }
    for (let ot = 0; ot < OC; ot += 8) {
      const w0 = wp + <usize>(ot >> 2) * tileBytes, w1 = w0 + tileBytes;
      const b0 = bias + (<usize>ot << 2), r0 = rq + (<usize>ot << 3);
      const count = min(8, OC - ot), yt = yn + <usize>(ot * P);
      let p = 0;
      if (ASC_FEATURE_SIMD) {
        for (; p + 4 <= P; p += 4) {
          const s = scratch + <usize>p * row;
          let a0 = v128.load(b0), a1 = v128.load(b0, 16), c0 = a0, c1 = a1, d0 = a0, d1 = a1, e0 = a0, e1 = a1;
          for (let k: usize = 0; k < row; k += 4) {
            const wa = v128.load8x8_s(w0 + (k << 1)), wb = v128.load8x8_s(w1 + (k << 1));
            let xs = v128.load32_splat(s + k);
            a0 = i32x4.add(a0, i32x4.dot_i16x8_s(xs, wa));
            a1 = i32x4.add(a1, i32x4.dot_i16x8_s(xs, wb));
            xs = v128.load32_splat(s + row + k);
            c0 = i32x4.add(c0, i32x4.dot_i16x8_s(xs, wa));
            c1 = i32x4.add(c1, i32x4.dot_i16x8_s(xs, wb));
            xs = v128.load32_splat(s + 2 * row + k);
            d0 = i32x4.add(d0, i32x4.dot_i16x8_s(xs, wa));
            d1 = i32x4.add(d1, i32x4.dot_i16x8_s(xs, wb));
            xs = v128.load32_splat(s + 3 * row + k);
            e0 = i32x4.add(e0, i32x4.dot_i16x8_s(xs, wa));
            e1 = i32x4.add(e1, i32x4.dot_i16x8_s(xs, wb));
          }
          storeTransposed(yt + <usize>p, a0, c0, d0, e0, r0, <usize>P, count, outZp, lo, hi, roundUp);
          if (count > 4) storeTransposed(yt + <usize>(4 * P + p), a1, c1, d1, e1, r0 + 32, <usize>P, count - 4, outZp, lo, hi, roundUp);
        }
      }
      for (; p < P; p++) {
        for (let j = 0; j < count; j++) {
          const wj = (j < 4 ? w0 : w1) + <usize>((j & 3) * 2);
          let acc = load<i32>(b0 + (<usize>j << 2));
          for (let k = 0; k < pairs; k++) {
            const pair = load<i32>(scratch + <usize>p * row + (<usize>k << 2));
            acc += <i32><i16>pair * <i32>load<i8>(wj + <usize>(k * 8)) + (pair >> 16) * <i32>load<i8>(wj + <usize>(k * 8 + 1));
          }
          storeRequantized(yt + <usize>(j * P + p), acc, r0 + (<usize>j << 3), outZp, lo, hi, roundUp);
        }
      }
    }
  }
}

/**
 * Pixels p .. p + 3 of 4 output channels from the pixels' accumulators (a, c, d, e: the channels on lanes), transposed
 * to each channel's 4 pixels, requantized with its (multiplier, shift) and stored as 4 bytes of its plane.
 */
@inline function storeTransposed(y: usize, a: v128, c: v128, d: v128, e: v128, rq: usize, step: usize, count: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool): void {
  const t0 = i32x4.shuffle(a, c, 0, 4, 1, 5), t1 = i32x4.shuffle(a, c, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(d, e, 0, 4, 1, 5), t3 = i32x4.shuffle(d, e, 2, 6, 3, 7);
  storeRequantized4(y, i32x4.shuffle(t0, t2, 0, 1, 4, 5), rq, outZp, lo, hi, roundUp);
  if (count > 1) storeRequantized4(y + step, i32x4.shuffle(t0, t2, 2, 3, 6, 7), rq + 8, outZp, lo, hi, roundUp);
  if (count > 2) storeRequantized4(y + 2 * step, i32x4.shuffle(t1, t3, 0, 1, 4, 5), rq + 16, outZp, lo, hi, roundUp);
  if (count > 3) storeRequantized4(y + 3 * step, i32x4.shuffle(t1, t3, 2, 3, 6, 7), rq + 24, outZp, lo, hi, roundUp);
}

/** 4 outputs of one channel requantized with its (multiplier, shift) at rq, stored at y. */
@inline function storeRequantized4(y: usize, acc: v128, rq: usize, outZp: i32, lo: i32, hi: i32, roundUp: bool): void {
  const v = i32x4.add(multiplyByQuantizedMultiplier4(acc, load<i32>(rq), load<i32>(rq, 4), roundUp), i32x4.splat(outZp));
  const bytes = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(v, v), i16x8.splat(0));
  v128.store32_lane(y, i8x16.min_s(i8x16.splat(<i8>hi), i8x16.max_s(i8x16.splat(<i8>lo), bytes)), 0);
}

/** One output pixel of 8 channels from their accumulators (channels 0-3, 4-7): requantized on lanes, stored to their planes. */
@inline function storeLanes(y: usize, a0: v128, a1: v128, r: usize, outZp: i32, lo: i32, hi: i32, roundUp: bool, E: i32, step: usize, count: i32): void {
  const zp = i32x4.splat(outZp);
  const v0 = i32x4.add(requantizeLanes(a0, r, E, roundUp), zp), v1 = i32x4.add(requantizeLanes(a1, r + 64, E, roundUp), zp);
  // the narrowings saturate, and [lo, hi] lies inside the int8 range: the same as clamping the i32 values
  const bytes = i8x16.min_s(i8x16.splat(<i8>hi), i8x16.max_s(i8x16.splat(<i8>lo), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(v0, v1), i16x8.splat(0))));
  storeChannels(y, bytes, step, count);
}
