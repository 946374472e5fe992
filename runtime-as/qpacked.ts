// int8 2-D convolution (groups 1, NCHW) on weights packed at compile time in the order the kernel reads them
// (compiler/ops/quant.ts, packConvWeights): for each tile of 4 output channels, for each tap (kh, kw), for each
// pair of input channels (c, c+1): the 4 channels' (w[c], w[c+1]) as 8 bytes. Channel counts are padded with
// zero weights (output channels to 4, input channels to 2). The bias has the input zero point folded in
// (bias − inZp·Σw), so taps outside the input read the zero point and input values go in as stored.
// SIMD: tiles of 4 output channels x 8 output pixels along a row (stride 1 or 2): two channels' 8 taps
// interleaved into (x[c], x[c+1]) lanes meet each channel's splat weight pair in i32x4.dot_i16x8_s, and
// each channel's 8 accumulators are requantized at once. Scalar: tiles of 4 channels x 4 pixels.
import { ceilDiv, floorDiv } from "./common";
import { gatherColumns } from "./qconv";
import { storeRequantized, storeRequantized8 } from "./qcommon";

export function qconv2dPacked(
  x: usize, wp: usize, bias: usize, rq: usize, y: usize,
  N: i32, C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
  inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const pairs = (C + 1) >> 1;
  const tileBytes = KH * KW * pairs * 8;
  const plane = H * W;
  for (let n = 0; n < N; n++) {
    const xn = x + <usize>(n * C * plane);
    for (let ot = 0; ot < OC; ot += 4) {
      const wt = wp + <usize>((ot >> 2) * tileBytes);
      const yt = y + <usize>((n * OC + ot) * OH * OW);
      if (ASC_FEATURE_SIMD) {
        for (let oh = 0; oh < OH; oh++) {
          for (let start = 0; start < OW; start += 8) {
            const ow = min(start, OW - 8);
            vectorTile(xn, wt, bias, rq, yt, ot, oh, ow, C, H, W, OC, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, inZp, outZp, lo, hi, roundUp);
          }
        }
      } else {
        for (let oh = 0; oh < OH; oh++) {
          for (let start = 0; start < OW; start += 4) {
            const ow = OW < 4 ? start : min(start, OW - 4);
            scalarTile(xn, wt, bias, rq, yt, ot, oh, ow, C, H, W, OC, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, inZp, outZp, lo, hi, roundUp);
          }
        }
      }
    }
  }
}

/**
 * A convolution through im2col tiles: `tile` output pixels at a time (the last tile overlapping the one before)
 * gathered into `columns` as [taps][tile] (gatherColumns), then multiplied by the weights packed as a 1x1
 * convolution over the taps, C·KH·KW input channels: for rows too narrow or strides too large for the row tiles.
 */
export function qconv2dPackedColumns(
  x: usize, wp: usize, bias: usize, rq: usize, y: usize,
  N: i32, C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
  inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool, columns: usize, tile: i32,
): void {
  const taps = C * KH * KW, P = OH * OW;
  const tileBytes = ((taps + 1) >> 1) * 8;
  for (let n = 0; n < N; n++) {
    const xn = x + <usize>(n * C * H * W);
    for (let start = 0; start < P; start += tile) {
      const p = min(start, P - tile);
      gatherColumns(xn, columns, p, tile, C, H, W, OW, KH, KW, SH, SW, PH, PW, DH, DW, inZp);
      for (let ot = 0; ot < OC; ot += 4) {
        const wt = wp + <usize>((ot >> 2) * tileBytes);
        // the tile's outputs as one row of the P-pixel plane, its columns as a 1-row input of `tile` pixels
        const yt = y + <usize>((n * OC + ot) * P + p);
        if (ASC_FEATURE_SIMD) {
          for (let j = 0; j < tile; j += 8) vectorTile(columns, wt, bias, rq, yt, ot, 0, j, taps, 1, tile, OC, 1, P, 1, 1, 1, 1, 0, 0, 1, 1, inZp, outZp, lo, hi, roundUp);
        } else {
          for (let j = 0; j < tile; j += 4) scalarTile(columns, wt, bias, rq, yt, ot, 0, j, taps, 1, tile, OC, 1, P, 1, 1, 1, 1, 0, 0, 1, 1, inZp, outZp, lo, hi, roundUp);
        }
      }
    }
  }
}

/** Rows kh whose input row ihTop + kh·DH lies inside [0, H): [khLo, khHi]. */
@inline function firstRow(ihTop: i32, DH: i32): i32 {
  return max(0, ceilDiv(-ihTop, DH));
}
@inline function lastRow(ihTop: i32, H: i32, KH: i32, DH: i32): i32 {
  return min(KH - 1, floorDiv(H - 1 - ihTop, DH));
}

/** vectorTile's load modes, every tap inside: direct 8-byte rows (stride 1), the even bytes of 16 (stride 2); else masked; masked and clamped. */
const DIRECT = 0, DIRECT2 = 3, MASKED = 1, CLAMPED = 2;

/**
 * Output pixels (oh, ow .. ow + 7) of channels ot .. ot + 3. A tile whose loads could leave the input buffer
 * (its first row's left edge, its last row's right edge) loads through `clampedTaps`; a tile with taps outside
 * its rows masks them to the zero point; the others (most of a wide plane, all of a 1x1 convolution) load directly.
 */
function vectorTile(
  xn: usize, wt: usize, bias: usize, rq: usize, yt: usize, ot: i32, oh: i32, ow: i32,
  C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32, KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
  inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const plane = H * W;
  const ihTop = oh * SH - PH, iwLeft = ow * SW - PW;
  const khLo = firstRow(ihTop, DH), khHi = lastRow(ihTop, H, KH, DH);
  // the bytes the tile's loads touch, relative to the buffer: 8 (stride 1) or 16 (stride 2) per tap row
  const first = (ihTop + khLo * DH) * W + iwLeft;
  const end = (C - 1) * plane + (ihTop + khHi * DH) * W + iwLeft + (KW - 1) * DW + (SW == 1 ? 8 : 16);
  const inside = khLo > khHi || (first >= 0 && end <= C * plane);
  const interior = iwLeft >= 0 && iwLeft + 7 * SW + (KW - 1) * DW < W;
  if (inside && interior && SW == 1) {
    tileBody(DIRECT, xn, wt, bias, rq, yt, ot, oh, ow, C, H, W, OC, OH, OW, KH, KW, SW, DW, ihTop, iwLeft, khLo, khHi, DH, inZp, outZp, lo, hi, roundUp);
  } else if (inside && interior) {
    tileBody(DIRECT2, xn, wt, bias, rq, yt, ot, oh, ow, C, H, W, OC, OH, OW, KH, KW, SW, DW, ihTop, iwLeft, khLo, khHi, DH, inZp, outZp, lo, hi, roundUp);
  } else if (inside) {
    tileBody(MASKED, xn, wt, bias, rq, yt, ot, oh, ow, C, H, W, OC, OH, OW, KH, KW, SW, DW, ihTop, iwLeft, khLo, khHi, DH, inZp, outZp, lo, hi, roundUp);
  } else {
    tileBody(CLAMPED, xn, wt, bias, rq, yt, ot, oh, ow, C, H, W, OC, OH, OW, KH, KW, SW, DW, ihTop, iwLeft, khLo, khHi, DH, inZp, outZp, lo, hi, roundUp);
  }
}

/** One tile in one load mode (a constant, so each call site keeps only its own loads). */
@inline function tileBody(
  mode: i32, xn: usize, wt: usize, bias: usize, rq: usize, yt: usize, ot: i32, oh: i32, ow: i32,
  C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32, KH: i32, KW: i32, SW: i32, DW: i32,
  ihTop: i32, iwLeft: i32, khLo: i32, khHi: i32, DH: i32, inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const plane = H * W, pairs = (C + 1) >> 1, full = C >> 1;
  const xEnd = xn + <usize>(C * plane);
  // lanes' columns
  const columns = i16x8.add(i16x8.splat(<i16>iwLeft), i16x8.mul(i16x8(0, 1, 2, 3, 4, 5, 6, 7), i16x8.splat(<i16>SW)));
  let a0 = i32x4.splat(bias32(bias, ot, OC)), a1 = i32x4.splat(bias32(bias, ot + 1, OC));
  let a2 = i32x4.splat(bias32(bias, ot + 2, OC)), a3 = i32x4.splat(bias32(bias, ot + 3, OC));
  let e0 = a0, e1 = a1, e2 = a2, e3 = a3;
  const zp = i16x8.splat(<i16>inZp);
  let wr = wt;
  for (let kh = 0; kh < KH; kh++) {
    const ih = ihTop + kh * DH;
    if (kh < khLo || kh > khHi) {
      // a row outside the input: every tap reads the zero point
      for (let t = 0; t < KW * pairs; t++, wr += 8) {
        const wv = v128.load8x8_s(wr);
        let d = i32x4.dot_i16x8_s(zp, i32x4.shuffle(wv, wv, 0, 0, 0, 0));
        a0 = i32x4.add(a0, d);
        e0 = i32x4.add(e0, d);
        d = i32x4.dot_i16x8_s(zp, i32x4.shuffle(wv, wv, 1, 1, 1, 1));
        a1 = i32x4.add(a1, d);
        e1 = i32x4.add(e1, d);
        d = i32x4.dot_i16x8_s(zp, i32x4.shuffle(wv, wv, 2, 2, 2, 2));
        a2 = i32x4.add(a2, d);
        e2 = i32x4.add(e2, d);
        d = i32x4.dot_i16x8_s(zp, i32x4.shuffle(wv, wv, 3, 3, 3, 3));
        a3 = i32x4.add(a3, d);
        e3 = i32x4.add(e3, d);
      }
      continue;
    }
    for (let kw = 0; kw < KW; kw++) {
      const column = i16x8.add(columns, i16x8.splat(<i16>(kw * DW)));
      const valid = v128.and(i16x8.ge_s(column, i16x8.splat(0)), i16x8.lt_s(column, i16x8.splat(<i16>W)));
      const xa = xn + <usize>(ih * W + iwLeft + kw * DW);
      // channel pairs (c, c + 1), then the last channel of an odd count paired with itself (its partner's weights are 0)
      let xc = xa, partner = <usize>plane, stop = wr + <usize>(full << 3);
      while (true) {
        for (; wr < stop; xc += <usize>(2 * plane), wr += 8) {
          const xd = xc + partner;
          let va: v128, vb: v128;
          if (mode == DIRECT) {
            va = v128.load8x8_s(xc);
            vb = v128.load8x8_s(xd);
          } else if (mode == DIRECT2) {
            va = evenBytes(v128.load(xc));
            vb = evenBytes(v128.load(xd));
          } else {
            if (mode == MASKED) {
              va = SW == 1 ? v128.load8x8_s(xc) : evenBytes(v128.load(xc));
              vb = SW == 1 ? v128.load8x8_s(xd) : evenBytes(v128.load(xd));
            } else {
              va = clampedTaps(xc, xn, xEnd, SW);
              vb = clampedTaps(xd, xn, xEnd, SW);
            }
            va = v128.bitselect(va, zp, valid);
            vb = v128.bitselect(vb, zp, valid);
          }
          const lo4 = i16x8.shuffle(va, vb, 0, 8, 1, 9, 2, 10, 3, 11), hi4 = i16x8.shuffle(va, vb, 4, 12, 5, 13, 6, 14, 7, 15);
          const wv = v128.load8x8_s(wr);
          let s = i32x4.shuffle(wv, wv, 0, 0, 0, 0);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(lo4, s));
          e0 = i32x4.add(e0, i32x4.dot_i16x8_s(hi4, s));
          s = i32x4.shuffle(wv, wv, 1, 1, 1, 1);
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(lo4, s));
          e1 = i32x4.add(e1, i32x4.dot_i16x8_s(hi4, s));
          s = i32x4.shuffle(wv, wv, 2, 2, 2, 2);
          a2 = i32x4.add(a2, i32x4.dot_i16x8_s(lo4, s));
          e2 = i32x4.add(e2, i32x4.dot_i16x8_s(hi4, s));
          s = i32x4.shuffle(wv, wv, 3, 3, 3, 3);
          a3 = i32x4.add(a3, i32x4.dot_i16x8_s(lo4, s));
          e3 = i32x4.add(e3, i32x4.dot_i16x8_s(hi4, s));
        }
        if (!(C & 1) || partner == 0) break;
        partner = 0;
        stop = wr + 8;
      }
    }
  }
  const yr = yt + <usize>(oh * OW + ow), step = <usize>(OH * OW);
  const rqt = rq + (<usize>ot << 3);
  storeRequantized8(yr, a0, e0, rqt, outZp, lo, hi, roundUp);
  if (ot + 1 < OC) storeRequantized8(yr + step, a1, e1, rqt + 8, outZp, lo, hi, roundUp);
  if (ot + 2 < OC) storeRequantized8(yr + 2 * step, a2, e2, rqt + 16, outZp, lo, hi, roundUp);
  if (ot + 3 < OC) storeRequantized8(yr + 3 * step, a3, e3, rqt + 24, outZp, lo, hi, roundUp);
}

/** Lanes 0, 2, … 14 of 16 bytes, as i16: a stride-2 row's 8 taps. */
@inline function evenBytes(v: v128): v128 {
  return i16x8.extend_low_i8x16_s(i8x16.shuffle(v, v, 0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14));
}

/**
 * The 8 taps at p, p + SW, … as i16, loading only inside [start, end): the load is moved inside and its bytes
 * shifted back by swizzle; taps outside the buffer come out 0 (their lanes are masked: they lie outside the row).
 */
@inline function clampedTaps(p: usize, start: usize, end: usize, SW: i32): v128 {
  const span = SW == 1 ? 8 : 16;
  const at = min(max(p, start), end - <usize>span);
  const shift = i8x16.splat(<i8>(<isize>p - <isize>at));
  if (SW == 1) {
    const lanes = i8x16.add(i8x16(0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0), shift);
    return i16x8.extend_low_i8x16_s(i8x16.swizzle(v128.load64_zero(at), lanes));
  }
  const lanes = i8x16.add(i8x16(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0), shift);
  return i16x8.extend_low_i8x16_s(i8x16.swizzle(v128.load(at), lanes));
}

@inline function bias32(bias: usize, oc: i32, OC: i32): i32 {
  return oc < OC ? load<i32>(bias + (<usize>oc << 2)) : 0;
}

/**
 * Scalar: output pixels (oh, ow .. ow + 3) of channels ot .. ot + 3 in 16 accumulators, each loaded input and
 * weight used 4 times, when every tap of the 4 pixels lies inside the input; pixel by pixel otherwise.
 */
function scalarTile(
  xn: usize, wt: usize, bias: usize, rq: usize, yt: usize, ot: i32, oh: i32, ow: i32,
  C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32, KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
  inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const plane = H * W, step = <usize>(OH * OW);
  const ihTop = oh * SH - PH, iwLeft = ow * SW - PW;
  const yr = yt + <usize>(oh * OW + ow), rqt = rq + (<usize>ot << 3);
  const pairs = (C + 1) >> 1;
  if (OW < 4) {
    for (let k = 0; k < 4 && ot + k < OC; k++) {
      for (let j = 0; j < 4 && ow + j < OW; j++) {
        const acc = pixelSum(xn, wt + <usize>(2 * k), bias32(bias, ot + k, OC), C, H, W, KH, KW, ihTop, iwLeft + j * SW, DH, DW, inZp);
        storeRequantized(yr + <usize>k * step + <usize>j, acc, rqt + (<usize>k << 3), outZp, lo, hi, roundUp);
      }
    }
    return;
  }
  // two output channels' accumulators per i64 (k in the low half, k + 1 in the high): one multiply serves both, as
  // x·(w[k] + w[k+1]·2^32) = x·w[k] + x·w[k+1]·2^32, and each half's sum fits i32, so the halves separate exactly
  const b01 = pairOf(bias32(bias, ot, OC), bias32(bias, ot + 1, OC)), b23 = pairOf(bias32(bias, ot + 2, OC), bias32(bias, ot + 3, OC));
  let p01 = b01, q01 = b01, r01 = b01, t01 = b01, p23 = b23, q23 = b23, r23 = b23, t23 = b23;
  const s1 = <usize>SW, s2 = <usize>(2 * SW), s3 = <usize>(3 * SW);
  const interior = firstRow(ihTop, DH) == 0 && lastRow(ihTop, H, KH, DH) == KH - 1 && iwLeft >= 0 && iwLeft + 3 * SW + (KW - 1) * DW < W;
  const zp = <i64>inZp;
  let wr = wt;
  for (let kh = 0; kh < KH; kh++) {
    const ih = ihTop + kh * DH;
    for (let kw = 0; kw < KW; kw++) {
      let xr = xn + <usize>(ih * W + iwLeft + kw * DW);
      // channel c's weights for the 4 output channels sit at 2k + (c & 1) of its pair's 8 bytes
      let wc = wr;
      if (!interior) {
        // a border tile: each pixel's tap inside the input or not; outside ones read the zero point
        const row = <u32>ih < <u32>H, iw = iwLeft + kw * DW;
        const in0 = row && <u32>iw < <u32>W, in1 = row && <u32>(iw + SW) < <u32>W;
        const in2 = row && <u32>(iw + 2 * SW) < <u32>W, in3 = row && <u32>(iw + 3 * SW) < <u32>W;
        for (let c = 0; c < C; c++, wc += <usize>(c & 1 ? 1 : 7), xr += <usize>plane) {
          const x0 = in0 ? <i64>load<i8>(xr) : zp, x1 = in1 ? <i64>load<i8>(xr + s1) : zp;
          const x2 = in2 ? <i64>load<i8>(xr + s2) : zp, x3 = in3 ? <i64>load<i8>(xr + s3) : zp;
          const w01 = <i64>load<i8>(wc) + (<i64>load<i8>(wc, 2) << 32), w23 = <i64>load<i8>(wc, 4) + (<i64>load<i8>(wc, 6) << 32);
          p01 += x0 * w01; q01 += x1 * w01; r01 += x2 * w01; t01 += x3 * w01;
          p23 += x0 * w23; q23 += x1 * w23; r23 += x2 * w23; t23 += x3 * w23;
        }
        wr += <usize>(pairs << 3);
        continue;
      }
      for (let c = 0; c < C; c++, wc += <usize>(c & 1 ? 1 : 7), xr += <usize>plane) {
        let x0: i64, x1: i64, x2: i64, x3: i64;
        if (SW == 1) {
          x0 = <i64>load<i8>(xr); x1 = <i64>load<i8>(xr, 1); x2 = <i64>load<i8>(xr, 2); x3 = <i64>load<i8>(xr, 3);
        } else {
          x0 = <i64>load<i8>(xr); x1 = <i64>load<i8>(xr + s1); x2 = <i64>load<i8>(xr + s2); x3 = <i64>load<i8>(xr + s3);
        }
        const w01 = <i64>load<i8>(wc) + (<i64>load<i8>(wc, 2) << 32), w23 = <i64>load<i8>(wc, 4) + (<i64>load<i8>(wc, 6) << 32);
        p01 += x0 * w01; q01 += x1 * w01; r01 += x2 * w01; t01 += x3 * w01;
        p23 += x0 * w23; q23 += x1 * w23; r23 += x2 * w23; t23 += x3 * w23;
      }
      wr += <usize>(pairs << 3);
    }
  }
  storeRequantized4(yr, low(p01), low(q01), low(r01), low(t01), rqt, outZp, lo, hi, roundUp);
  if (ot + 1 < OC) storeRequantized4(yr + step, high(p01), high(q01), high(r01), high(t01), rqt + 8, outZp, lo, hi, roundUp);
  if (ot + 2 < OC) storeRequantized4(yr + 2 * step, low(p23), low(q23), low(r23), low(t23), rqt + 16, outZp, lo, hi, roundUp);
  if (ot + 3 < OC) storeRequantized4(yr + 3 * step, high(p23), high(q23), high(r23), high(t23), rqt + 24, outZp, lo, hi, roundUp);
}

/** a + b·2^32: two i32 accumulators in one i64. */
@inline function pairOf(a: i32, b: i32): i64 {
  return <i64>a + (<i64>b << 32);
}
@inline function low(v: i64): i32 {
  return <i32>v;
}
@inline function high(v: i64): i32 {
  return <i32>((v - <i64><i32>v) >> 32);
}

/** Four consecutive outputs of one channel. */
@inline function storeRequantized4(y: usize, a0: i32, a1: i32, a2: i32, a3: i32, rq: usize, outZp: i32, lo: i32, hi: i32, roundUp: bool): void {
  storeRequantized(y, a0, rq, outZp, lo, hi, roundUp);
  storeRequantized(y + 1, a1, rq, outZp, lo, hi, roundUp);
  storeRequantized(y + 2, a2, rq, outZp, lo, hi, roundUp);
  storeRequantized(y + 3, a3, rq, outZp, lo, hi, roundUp);
}

/** One output pixel of one channel (packed weights from wk, stride 8 per channel pair): taps outside read inZp. */
function pixelSum(
  xn: usize, wk: usize, acc: i32, C: i32, H: i32, W: i32, KH: i32, KW: i32, ihTop: i32, iwLeft: i32, DH: i32, DW: i32, inZp: i32,
): i32 {
  const pairs = (C + 1) >> 1;
  for (let kh = 0; kh < KH; kh++) {
    const ih = ihTop + kh * DH;
    for (let kw = 0; kw < KW; kw++) {
      const iw = iwLeft + kw * DW;
      const inside = <u32>ih < <u32>H && <u32>iw < <u32>W;
      const wr = wk + <usize>((kh * KW + kw) * pairs * 8);
      for (let c = 0; c < C; c++) {
        const v = inside ? <i32>load<i8>(xn + <usize>((c * H + ih) * W + iw)) : inZp;
        acc += v * <i32>load<i8>(wr + <usize>((c >> 1) * 8 + (c & 1)));
      }
    }
  }
  return acc;
}
