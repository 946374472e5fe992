// int8 2-D convolution, NCHW: x, y int8; w int8 [OC, C/groups, KH, KW] (symmetric: zero point 0);
// bias int32 [OC] or 0; rq int32 [OC, 2] (multiplier, shift) per output channel. The accumulator is
// bias + Σ (x − inZp)·w over the taps inside the input (padding is the input's zero point, worth 0),
// as TFLite's integer kernels compute it; storeRequantized turns it into the int8 output.
// SIMD: 8 output pixels at a time in widening i16x8 → i32x4 multiplies; scalar elsewhere. Convolutions with a small
// window and at least 4 output channels per group run as im2col tiles (`tile` pixels, in `columns`) through the
// 1x1 kernel, whose 4-channel tiles share every input load (any stride, however narrow the rows).
import { ceilDiv, floorDiv } from "./common";
import { requantBits, requantLeft, requantNudge, storeRequantized, storeRequantized8, storeRequantizedWith } from "./qcommon";

export function qconv2d(
  x: usize, w: usize, bias: usize, rq: usize, y: usize,
  N: i32, C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
  groups: i32, inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool, columns: usize, tile: i32,
): void {
  const Cg = C / groups;
  if (KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0 && OH == H && OW == W && groups == 1) {
    for (let n = 0; n < N; n++) {
      qpointwise(x + <usize>(n * C * H * W), H * W, w, bias, rq, y + <usize>(n * OC * H * W), H * W, C, H * W, OC, inZp, outZp, lo, hi, roundUp);
    }
    return;
  }
  if (ASC_FEATURE_SIMD && groups == C && OC == C && SH == 1 && SW == 1 && OW == W && W < 16384) {
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const plane = <usize>((n * C + c) * H * W);
        depthwisePlane(
          x + plane, w + <usize>(c * KH * KW), bias == 0 ? 0 : load<i32>(bias + (<usize>c << 2)), rq + (<usize>c << 3), y + <usize>((n * C + c) * OH * OW),
          H, W, OH, KH, KW, PH, PW, DH, DW, inZp, outZp, lo, hi, roundUp,
        );
      }
    }
    return;
  }
  if (!ASC_FEATURE_SIMD && groups == C && OC == C && KH == 3 && KW == 3 && DW == 1) {
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        depthwise3x3Scalar(
          x + <usize>((n * C + c) * H * W), w + <usize>(c * 9), bias == 0 ? 0 : load<i32>(bias + (<usize>c << 2)), rq + (<usize>c << 3), y + <usize>((n * C + c) * OH * OW),
          H, W, OH, OW, SH, SW, PH, PW, DH, inZp, outZp, lo, hi, roundUp,
        );
      }
    }
    return;
  }
  if (ASC_FEATURE_SIMD && groups == C && OC == C && SW == 2 && OW >= 8 && H * W >= 16 && W < 16384) {
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const plane = <usize>((n * C + c) * H * W);
        depthwiseRows2(
          x + plane, w + <usize>(c * KH * KW), bias == 0 ? 0 : load<i32>(bias + (<usize>c << 2)), rq + (<usize>c << 3), y + <usize>((n * C + c) * OH * OW),
          H, W, OH, OW, KH, KW, SH, PH, PW, DH, DW, inZp, outZp, lo, hi, roundUp,
        );
      }
    }
    return;
  }
  const OCg = OC / groups;
  const taps = Cg * KH * KW;
  if (tile > 0) {
    // im2col by tiles of `tile` output pixels (the last tile overlapping the one before), each a 1x1 convolution
    const P = OH * OW;
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        const xg = x + <usize>((n * C + g * Cg) * H * W);
        const o = g * OCg;
        for (let start = 0; start < P; start += tile) {
          const p = min(start, P - tile);
          gatherColumns(xg, columns, p, tile, Cg, H, W, OW, KH, KW, SH, SW, PH, PW, DH, DW, inZp);
          qpointwise(
            columns, tile, w + <usize>(o * taps), bias == 0 ? 0 : bias + (<usize>o << 2), rq + (<usize>o << 3), y + <usize>((n * OC + o) * P + p), P,
            taps, tile, OCg, inZp, outZp, lo, hi, roundUp,
          );
        }
      }
    }
    return;
  }
  // output columns whose every kw tap lies inside the row (vector tiles need no bounds checks)
  const owLo = min(OW, max(0, ceilDiv(PW, SW)));
  const owHi = min(OW - 1, floorDiv(W - 1 + PW - (KW - 1) * DW, SW));
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < OC; oc++) {
      const xc = x + <usize>((n * C + (oc / OCg) * Cg) * H * W);
      const wo = w + <usize>(oc * taps);
      const b = bias == 0 ? 0 : load<i32>(bias + (<usize>oc << 2));
      const rqo = rq + (<usize>oc << 3);
      const left = requantLeft(rqo), multiplier = <i64>load<i32>(rqo), bits = requantBits(rqo);
      const nudge = requantNudge(rqo, roundUp, false), negativeNudge = requantNudge(rqo, roundUp, true);
      for (let oh = 0; oh < OH; oh++) {
        const ihTop = oh * SH - PH;
        const khLo = max(0, ceilDiv(-ihTop, DH));
        const khHi = min(KH - 1, floorDiv(H - 1 - ihTop, DH));
        const yr = y + <usize>(((n * OC + oc) * OH + oh) * OW);
        if (ASC_FEATURE_SIMD) {
          let ow = owLo;
          if (SW == 1) {
            const zp = i16x8.splat(<i16>inZp);
            for (; ow + 8 <= owHi + 1; ow += 8) {
              let acc0 = i32x4.splat(b), acc1 = i32x4.splat(b);
              for (let c = 0; c < Cg; c++) {
                for (let kh = khLo; kh <= khHi; kh++) {
                  const xr = xc + <usize>((c * H + ihTop + kh * DH) * W + ow - PW);
                  const wr = wo + <usize>((c * KH + kh) * KW);
                  for (let kw = 0; kw < KW; kw++) {
                    const xv = i16x8.sub(v128.load8x8_s(xr + <usize>(kw * DW)), zp);
                    const wv = i16x8.splat(<i16>load<i8>(wr + <usize>kw));
                    acc0 = i32x4.add(acc0, i32x4.extmul_low_i16x8_s(xv, wv));
                    acc1 = i32x4.add(acc1, i32x4.extmul_high_i16x8_s(xv, wv));
                  }
                }
              }
              storeRequantized8(yr + <usize>ow, acc0, acc1, rqo, outZp, lo, hi, roundUp);
            }
          }
          // the columns the vector tiles did not cover
          for (let o = 0; o < OW; o++) {
            if (o == owLo) o = ow;
            if (o >= OW) break;
            storeRequantized(yr + <usize>o, windowSum(xc, wo, b, Cg, H, W, KH, KW, ihTop, khLo, khHi, o * SW - PW, DH, DW, inZp), rqo, outZp, lo, hi, roundUp);
          }
        } else {
          for (let o = 0; o < OW; o++) {
            storeRequantizedWith(yr + <usize>o, windowSum(xc, wo, b, Cg, H, W, KH, KW, ihTop, khLo, khHi, o * SW - PW, DH, DW, inZp), left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
          }
        }
      }
    }
  }
}

/**
 * One depthwise channel whose output rows are as wide as its input rows (stride 1): the plane read as one
 * flat row, so 8 outputs at a time fit a vector tile however narrow the rows are (KWS's are 5 wide). Output
 * p = oh·W + ow reads input p + (kh·DH − PH)·W + kw·DW − PW; lanes whose column ow + kw·DW − PW falls
 * outside the row are masked to zero, and then so are the rows outside the plane, as long as the whole
 * tile's reads stay inside the plane. The outputs near the plane's two ends are scalar.
 */
function depthwisePlane(
  xc: usize, wo: usize, b: i32, rqo: usize, yc: usize, H: i32, W: i32, OH: i32, KH: i32, KW: i32,
  PH: i32, PW: i32, DH: i32, DW: i32, inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const P = OH * W;
  const firstOffset = -PH * W - PW, lastOffset = ((KH - 1) * DH - PH) * W + (KW - 1) * DW - PW;
  const tileStart = min(P, max(0, -firstOffset));
  // tiles start below tileEnd: their 8 outputs exist and their reads end inside the plane
  const tileEnd = min(P - 7, H * W - 7 - lastOffset);
  const zp = i16x8.splat(<i16>inZp), width = i16x8.splat(<i16>W), zero = i16x8.splat(0);
  // columns of the tile's 8 outputs, kept in [0, W) by subtracting W where they reach it (1 + 7/W times)
  let columns = wrapColumns(i16x8.add(i16x8.splat(<i16>(tileStart % W)), i16x8(0, 1, 2, 3, 4, 5, 6, 7)), width, W);
  let p = tileStart;
  if (KH == 3 && KW == 3) {
    p = depthwiseTiles3x3(xc, wo, b, rqo, yc, p, tileEnd, columns, W, PH, PW, DH, DW, zp, width, outZp, lo, hi, roundUp);
  }
  for (; p < tileEnd; p += 8) {
    let acc0 = i32x4.splat(b), acc1 = i32x4.splat(b);
    for (let kw = 0; kw < KW; kw++) {
      const column = i16x8.add(columns, i16x8.splat(<i16>(kw * DW - PW)));
      const inside = v128.and(i16x8.ge_s(column, zero), i16x8.lt_s(column, width));
      for (let kh = 0; kh < KH; kh++) {
        const xv = v128.and(i16x8.sub(v128.load8x8_s(xc + <usize>(p + (kh * DH - PH) * W + kw * DW - PW)), zp), inside);
        const wv = i16x8.splat(<i16>load<i8>(wo + <usize>(kh * KW + kw)));
        acc0 = i32x4.add(acc0, i32x4.extmul_low_i16x8_s(xv, wv));
        acc1 = i32x4.add(acc1, i32x4.extmul_high_i16x8_s(xv, wv));
      }
    }
    storeRequantized8(yc + <usize>p, acc0, acc1, rqo, outZp, lo, hi, roundUp);
    columns = wrapColumns(i16x8.add(columns, i16x8.splat(8)), width, W);
  }
  // the outputs near the plane's two ends: 8-output tiles whose loads are clamped to the plane and whose lanes
  // outside the input are masked (the last tile overlapping the one before), where lane positions fit i16
  if (P >= 8 && H * W >= 8 && P + (KH * DH + 1) * W + KW * DW < 32000) {
    for (let q = 0; q < tileStart; q += 8) depthwiseEdgeTile(xc, wo, b, rqo, yc, q, H, W, KH, KW, PH, PW, DH, DW, zp, outZp, lo, hi, roundUp);
    for (let q = p; q < P; q += 8) depthwiseEdgeTile(xc, wo, b, rqo, yc, min(q, P - 8), H, W, KH, KW, PH, PW, DH, DW, zp, outZp, lo, hi, roundUp);
    return;
  }
  for (let o = 0; o < P; o++) {
    if (o == tileStart) o = p;
    if (o >= P) break;
    const oh = o / W, ow = o % W;
    const ihTop = oh - PH;
    const khLo = max(0, ceilDiv(-ihTop, DH)), khHi = min(KH - 1, floorDiv(H - 1 - ihTop, DH));
    storeRequantized(yc + <usize>o, windowSum(xc, wo, b, 1, H, W, KH, KW, ihTop, khLo, khHi, ow - PW, DH, DW, inZp), rqo, outZp, lo, hi, roundUp);
  }
}

/**
 * One depthwise channel at stride 2 across (MobileNet's downsampling layers): 8 outputs of a row at a time, each
 * tap's 8 inputs the even bytes of a 16-byte load (moved inside the plane and shifted back by swizzle near its two
 * ends), lanes whose column falls outside the row masked to zero; rows outside the input are skipped.
 */
function depthwiseRows2(
  xc: usize, wo: usize, b: i32, rqo: usize, yc: usize, H: i32, W: i32, OH: i32, OW: i32, KH: i32, KW: i32, SH: i32,
  PH: i32, PW: i32, DH: i32, DW: i32, inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const zp = i16x8.splat(<i16>inZp), width = i16x8.splat(<i16>W);
  const xEnd = xc + <usize>(H * W);
  const evens = i8x16(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
  for (let oh = 0; oh < OH; oh++) {
    const ihTop = oh * SH - PH;
    const khLo = max(0, ceilDiv(-ihTop, DH)), khHi = min(KH - 1, floorDiv(H - 1 - ihTop, DH));
    for (let start = 0; start < OW; start += 8) {
      const ow = min(start, OW - 8);
      const iwLeft = ow * 2 - PW;
      const columns = i16x8.add(i16x8.splat(<i16>iwLeft), i16x8(0, 2, 4, 6, 8, 10, 12, 14));
      let acc0 = i32x4.splat(b), acc1 = i32x4.splat(b);
      for (let kh = khLo; kh <= khHi; kh++) {
        const row = xc + <usize>((ihTop + kh * DH) * W);
        for (let kw = 0; kw < KW; kw++) {
          const at = row + <usize>(iwLeft + kw * DW);
          const start16 = min(max(at, xc), xEnd - 16);
          const lanes = i8x16.add(evens, i8x16.splat(<i8>(<isize>at - <isize>start16)));
          const taps = i16x8.extend_low_i8x16_s(i8x16.swizzle(v128.load(start16), lanes));
          const xv = v128.and(i16x8.sub(taps, zp), insideColumns(columns, kw * DW, width));
          const wv = i16x8.splat(<i16>load<i8>(wo + <usize>(kh * KW + kw)));
          acc0 = i32x4.add(acc0, i32x4.extmul_low_i16x8_s(xv, wv));
          acc1 = i32x4.add(acc1, i32x4.extmul_high_i16x8_s(xv, wv));
        }
      }
      storeRequantized8(yc + <usize>(oh * OW + ow), acc0, acc1, rqo, outZp, lo, hi, roundUp);
    }
  }
}

/**
 * One 3x3 depthwise channel in the scalar build (what microcontroller interpreters run), with no test per tap: each
 * output row reads three input rows, a row outside the input read as one inside it with its three weights zeroed
 * (the zero point folded into the bias over the weights left), so the columns whose three taps lie inside the row
 * are nine loads at fixed offsets; the border columns test each of their three columns once. The requantization's
 * constants are the channel's, computed once.
 */
function depthwise3x3Scalar(
  xc: usize, wo: usize, b: i32, rqo: usize, yc: usize, H: i32, W: i32, OH: i32, OW: i32, SH: i32, SW: i32,
  PH: i32, PW: i32, DH: i32, inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const w0 = <i32>load<i8>(wo), w1 = <i32>load<i8>(wo, 1), w2 = <i32>load<i8>(wo, 2);
  const w3 = <i32>load<i8>(wo, 3), w4 = <i32>load<i8>(wo, 4), w5 = <i32>load<i8>(wo, 5);
  const w6 = <i32>load<i8>(wo, 6), w7 = <i32>load<i8>(wo, 7), w8 = <i32>load<i8>(wo, 8);
  const left = requantLeft(rqo), multiplier = <i64>load<i32>(rqo), bits = requantBits(rqo);
  const nudge = requantNudge(rqo, roundUp, false), negativeNudge = requantNudge(rqo, roundUp, true);
  // output columns whose three taps lie inside the row
  const owLo = min(OW, max(0, ceilDiv(PW, SW))), owHi = min(OW - 1, floorDiv(W - 3 + PW, SW));
  for (let oh = 0; oh < OH; oh++) {
    const ihTop = oh * SH - PH;
    const khLo = max(0, ceilDiv(-ihTop, DH)), khHi = min(2, floorDiv(H - 1 - ihTop, DH));
    const yr = yc + <usize>(oh * OW);
    if (khLo > khHi) {
      // no row of the window inside the input: the bias alone
      for (let ow = 0; ow < OW; ow++) storeRequantizedWith(yr + <usize>ow, b, left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
      continue;
    }
    const top = xc + <usize>(ihTop * W), inside = top + <usize>(khLo * DH * W);
    const in0 = khLo == 0, in1 = khLo <= 1 && khHi >= 1, in2 = khHi == 2;
    const r0 = in0 ? top : inside, r1 = in1 ? top + <usize>(DH * W) : inside, r2 = in2 ? top + <usize>(2 * DH * W) : inside;
    const v0 = in0 ? w0 : 0, v1 = in0 ? w1 : 0, v2 = in0 ? w2 : 0;
    const v3 = in1 ? w3 : 0, v4 = in1 ? w4 : 0, v5 = in1 ? w5 : 0;
    const v6 = in2 ? w6 : 0, v7 = in2 ? w7 : 0, v8 = in2 ? w8 : 0;
    // the rows' weights summed per column, for the zero point of the columns a border output keeps
    const s0 = v0 + v3 + v6, s1 = v1 + v4 + v7, s2 = v2 + v5 + v8;
    let ow = 0;
    for (; ow < owLo; ow++) {
      const acc = borderSum(r0, r1, r2, ow * SW - PW, W, b, inZp, v0, v1, v2, v3, v4, v5, v6, v7, v8, s0, s1, s2);
      storeRequantizedWith(yr + <usize>ow, acc, left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
    }
    if (ow <= owHi) {
      const folded = b - inZp * (s0 + s1 + s2);
      const step = <usize>SW, at = <usize>(ow * SW - PW);
      let x0 = r0 + at, x1 = r1 + at, x2 = r2 + at;
      const end = yr + <usize>(owHi + 1);
      let yo = yr + <usize>ow;
      do {
        let acc = folded + <i32>load<i8>(x0) * v0 + <i32>load<i8>(x0, 1) * v1 + <i32>load<i8>(x0, 2) * v2;
        acc += <i32>load<i8>(x1) * v3 + <i32>load<i8>(x1, 1) * v4 + <i32>load<i8>(x1, 2) * v5;
        acc += <i32>load<i8>(x2) * v6 + <i32>load<i8>(x2, 1) * v7 + <i32>load<i8>(x2, 2) * v8;
        storeRequantizedWith(yo, acc, left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
        x0 += step; x1 += step; x2 += step;
      } while (++yo < end);
      ow = owHi + 1;
    }
    for (; ow < OW; ow++) {
      const acc = borderSum(r0, r1, r2, ow * SW - PW, W, b, inZp, v0, v1, v2, v3, v4, v5, v6, v7, v8, s0, s1, s2);
      storeRequantizedWith(yr + <usize>ow, acc, left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
    }
  }
}

/** depthwise3x3Scalar's border output at input column iwLeft: its three columns, those inside the row. */
@inline function borderSum(
  r0: usize, r1: usize, r2: usize, iwLeft: i32, W: i32, b: i32, inZp: i32,
  v0: i32, v1: i32, v2: i32, v3: i32, v4: i32, v5: i32, v6: i32, v7: i32, v8: i32, s0: i32, s1: i32, s2: i32,
): i32 {
  let acc = b, kept = 0;
  if (<u32>iwLeft < <u32>W) {
    const at = <usize>iwLeft;
    acc += <i32>load<i8>(r0 + at) * v0 + <i32>load<i8>(r1 + at) * v3 + <i32>load<i8>(r2 + at) * v6;
    kept = s0;
  }
  if (<u32>(iwLeft + 1) < <u32>W) {
    const at = <usize>(iwLeft + 1);
    acc += <i32>load<i8>(r0 + at) * v1 + <i32>load<i8>(r1 + at) * v4 + <i32>load<i8>(r2 + at) * v7;
    kept += s1;
  }
  if (<u32>(iwLeft + 2) < <u32>W) {
    const at = <usize>(iwLeft + 2);
    acc += <i32>load<i8>(r0 + at) * v2 + <i32>load<i8>(r1 + at) * v5 + <i32>load<i8>(r2 + at) * v8;
    kept += s2;
  }
  return acc - inZp * kept;
}

/**
 * depthwisePlane's outputs q .. q + 7 anywhere in the plane: each tap's 8 inputs loaded inside the plane (moved in
 * and shifted back by swizzle where they would start before it or end after it), lanes whose input column or row
 * falls outside masked to zero.
 */
function depthwiseEdgeTile(
  xc: usize, wo: usize, b: i32, rqo: usize, yc: usize, q: i32, H: i32, W: i32, KH: i32, KW: i32,
  PH: i32, PW: i32, DH: i32, DW: i32, zp: v128, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const width = i16x8.splat(<i16>W), size = i16x8.splat(<i16>(H * W)), zero = i16x8.splat(0);
  const lanes = i16x8.add(i16x8.splat(<i16>q), i16x8(0, 1, 2, 3, 4, 5, 6, 7));
  const columns = wrapColumns(i16x8.add(i16x8.splat(<i16>(q % W)), i16x8(0, 1, 2, 3, 4, 5, 6, 7)), width, W);
  const xEnd = xc + <usize>(H * W);
  let acc0 = i32x4.splat(b), acc1 = i32x4.splat(b);
  for (let kh = 0; kh < KH; kh++) {
    // rows: the lanes' positions moved by whole rows stay inside the plane
    const rowStart = i16x8.add(lanes, i16x8.splat(<i16>((kh * DH - PH) * W)));
    const rowInside = v128.and(i16x8.ge_s(rowStart, zero), i16x8.lt_s(rowStart, size));
    for (let kw = 0; kw < KW; kw++) {
      const inside = v128.and(rowInside, insideColumns(columns, kw * DW - PW, width));
      const at = xc + <usize>(q + (kh * DH - PH) * W + kw * DW - PW);
      const start = min(max(at, xc), xEnd - 8);
      const shift = i8x16.splat(<i8>(<isize>at - <isize>start));
      const bytes = i8x16.swizzle(v128.load64_zero(start), i8x16.add(i8x16(0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0), shift));
      const xv = v128.and(i16x8.sub(i16x8.extend_low_i8x16_s(bytes), zp), inside);
      const wv = i16x8.splat(<i16>load<i8>(wo + <usize>(kh * KW + kw)));
      acc0 = i32x4.add(acc0, i32x4.extmul_low_i16x8_s(xv, wv));
      acc1 = i32x4.add(acc1, i32x4.extmul_high_i16x8_s(xv, wv));
    }
  }
  storeRequantized8(yc + <usize>q, acc0, acc1, rqo, outZp, lo, hi, roundUp);
}

/**
 * depthwisePlane's tiles from p on for a 3x3 window, returning where they stop: the nine weights stay in registers
 * as splat pairs, and the taps (kw-major: (kh, kw) = (0,0) (1,0) | (2,0) (0,1) | (1,1) (2,1) | (0,2) (1,2) | (2,2) and
 * a zero) meet them in pairs, their two masked rows interleaved into i32x4.dot_i16x8_s. The products fit i16
 * pairs summed in i32 exactly, so the sums are the 8-lane tile's.
 */
function depthwiseTiles3x3(
  xc: usize, wo: usize, b: i32, rqo: usize, yc: usize, p: i32, tileEnd: i32, columns: v128, W: i32,
  PH: i32, PW: i32, DH: i32, DW: i32, zp: v128, width: v128, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): i32 {
  const w00 = tapWeights(wo, 0, 3), w20 = tapWeights(wo, 6, 1), w11 = tapWeights(wo, 4, 7);
  const w02 = tapWeights(wo, 2, 5), w22 = i32x4.splat(<i32>load<i8>(wo, 8) & 0xffff);
  const row0 = -PH * W, row1 = (DH - PH) * W, row2 = (2 * DH - PH) * W;
  const col0 = -PW, col1 = DW - PW, col2 = 2 * DW - PW;
  const zero = i16x8.splat(0);
  for (; p < tileEnd; p += 8) {
    const inside0 = insideColumns(columns, col0, width), inside1 = insideColumns(columns, col1, width), inside2 = insideColumns(columns, col2, width);
    const x = xc + <usize>p;
    const x00 = tapRow(x, row0 + col0, zp, inside0), x10 = tapRow(x, row1 + col0, zp, inside0), x20 = tapRow(x, row2 + col0, zp, inside0);
    const x01 = tapRow(x, row0 + col1, zp, inside1), x11 = tapRow(x, row1 + col1, zp, inside1), x21 = tapRow(x, row2 + col1, zp, inside1);
    const x02 = tapRow(x, row0 + col2, zp, inside2), x12 = tapRow(x, row1 + col2, zp, inside2), x22 = tapRow(x, row2 + col2, zp, inside2);
    let acc0 = i32x4.add(i32x4.splat(b), pairDotLow(x00, x10, w00)), acc1 = i32x4.add(i32x4.splat(b), pairDotHigh(x00, x10, w00));
    acc0 = i32x4.add(acc0, pairDotLow(x20, x01, w20));
    acc1 = i32x4.add(acc1, pairDotHigh(x20, x01, w20));
    acc0 = i32x4.add(acc0, pairDotLow(x11, x21, w11));
    acc1 = i32x4.add(acc1, pairDotHigh(x11, x21, w11));
    acc0 = i32x4.add(acc0, pairDotLow(x02, x12, w02));
    acc1 = i32x4.add(acc1, pairDotHigh(x02, x12, w02));
    acc0 = i32x4.add(acc0, pairDotLow(x22, zero, w22));
    acc1 = i32x4.add(acc1, pairDotHigh(x22, zero, w22));
    storeRequantized8(yc + <usize>p, acc0, acc1, rqo, outZp, lo, hi, roundUp);
    columns = wrapColumns(i16x8.add(columns, i16x8.splat(8)), width, W);
  }
  return p;
}

/** The splat (w[a], w[b]) pair of i16 lanes for i32x4.dot_i16x8_s. */
@inline function tapWeights(wo: usize, a: i32, b: i32): v128 {
  return i32x4.splat((<i32>load<i8>(wo + <usize>a) & 0xffff) | (<i32>load<i8>(wo + <usize>b) << 16));
}

/** Lanes whose column, shifted by `offset`, lies inside [0, W). */
@inline function insideColumns(columns: v128, offset: i32, width: v128): v128 {
  const column = i16x8.add(columns, i16x8.splat(<i16>offset));
  return v128.and(i16x8.ge_s(column, i16x8.splat(0)), i16x8.lt_s(column, width));
}

/** x[offset .. offset + 8) − inZp as i16 lanes, zero outside the mask. */
@inline function tapRow(x: usize, offset: i32, zp: v128, inside: v128): v128 {
  return v128.and(i16x8.sub(v128.load8x8_s(x + <usize>offset), zp), inside);
}

/** Outputs 0-3: a[i]·w0 + b[i]·w1 for the splat weight pair w. */
@inline function pairDotLow(a: v128, b: v128, w: v128): v128 {
  return i32x4.dot_i16x8_s(i8x16.shuffle(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), w);
}

/** Outputs 4-7, as pairDotLow. */
@inline function pairDotHigh(a: v128, b: v128, w: v128): v128 {
  return i32x4.dot_i16x8_s(i8x16.shuffle(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), w);
}

/**
 * The im2col tile for output pixels [p, p + tile): row t = (c·KH + kh)·KW + kw holds tap t of each pixel, the
 * stored input value, or the input zero point (worth 0) where the tap falls outside the input.
 */
export function gatherColumns(
  xc: usize, columns: usize, p: i32, tile: i32, Cg: i32, H: i32, W: i32, OW: i32, KH: i32, KW: i32,
  SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, inZp: i32,
): void {
  for (let j = 0; j < tile; j++) {
    const oh = (p + j) / OW, ow = (p + j) % OW;
    const ihTop = oh * SH - PH, iwLeft = ow * SW - PW;
    let t = 0;
    for (let c = 0; c < Cg; c++) {
      for (let kh = 0; kh < KH; kh++) {
        const ih = ihTop + kh * DH;
        const xr = xc + <usize>((c * H + ih) * W);
        for (let kw = 0; kw < KW; kw++, t++) {
          const iw = iwLeft + kw * DW;
          let v = inZp;
          if (<u32>ih < <u32>H && <u32>iw < <u32>W) v = <i32>load<i8>(xr + <usize>iw);
          store<i8>(columns + <usize>(t * tile + j), <i8>v);
        }
      }
    }
  }
}

/** Columns in [0, W + 8) back into [0, W). */
@inline function wrapColumns(columns: v128, width: v128, W: i32): v128 {
  for (let k = 0; k <= 7 / W; k++) columns = i16x8.sub(columns, v128.and(i16x8.ge_s(columns, width), width));
  return columns;
}

/** bias + Σ (x − inZp)·w over one output pixel's taps inside the input. */
@inline function windowSum(
  xc: usize, wo: usize, b: i32, Cg: i32, H: i32, W: i32, KH: i32, KW: i32,
  ihTop: i32, khLo: i32, khHi: i32, iwLeft: i32, DH: i32, DW: i32, inZp: i32,
): i32 {
  const kwLo = max(0, ceilDiv(-iwLeft, DW));
  const kwHi = min(KW - 1, floorDiv(W - 1 - iwLeft, DW));
  let acc = b;
  for (let c = 0; c < Cg; c++) {
    for (let kh = khLo; kh <= khHi; kh++) {
      const xr = xc + <usize>((c * H + ihTop + kh * DH) * W + iwLeft);
      const wr = wo + <usize>((c * KH + kh) * KW);
      for (let kw = kwLo; kw <= kwHi; kw++) {
        acc += (<i32>load<i8>(xr + <usize>(kw * DW)) - inZp) * <i32>load<i8>(wr + <usize>kw);
      }
    }
  }
  return acc;
}

/**
 * 1x1 convolution: Y[OC, P] = W[OC, C] · (X[C, P] − inZp) + bias, rows xStride (X) and yStride (Y) apart. SIMD tiles of 4 channels x 8 pixels take
 * input channels in pairs: the two rows interleaved into (x[c], x[c+1]) lanes meet a splat (w[c], w[c+1])
 * in i32x4.dot_i16x8_s, the zero point folded into the bias (bias − inZp·Σw, exact in integers). When P is
 * not a multiple of 8, the last tile overlaps the one before it (the same values stored twice); the scalar
 * build (and planes narrower than 8 pixels) blocks 4 channels x 4 pixels the same way.
 */
function qpointwise(
  x: usize, xStride: i32, w: usize, bias: usize, rq: usize, y: usize, yStride: i32, C: i32, P: i32, OC: i32,
  inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  let oc = 0;
  if (ASC_FEATURE_SIMD && P >= 8) {
    const C2 = C & ~1;
    for (; oc + 4 <= OC; oc += 4) {
      const w0 = w + <usize>(oc * C), w1 = w0 + <usize>C, w2 = w1 + <usize>C, w3 = w2 + <usize>C;
      const b0 = i32x4.splat(foldedBias(w0, bias, oc, C, inZp)), b1 = i32x4.splat(foldedBias(w1, bias, oc + 1, C, inZp));
      const b2 = i32x4.splat(foldedBias(w2, bias, oc + 2, C, inZp)), b3 = i32x4.splat(foldedBias(w3, bias, oc + 3, C, inZp));
      for (let tile = 0; tile < P; tile += 8) {
        const p = min(tile, P - 8);
        let a0 = b0, a1 = b1, a2 = b2, a3 = b3, e0 = b0, e1 = b1, e2 = b2, e3 = b3;
        for (let c = 0; c < C2; c += 2) {
          const xa = v128.load8x8_s(x + <usize>(c * xStride + p)), xb = v128.load8x8_s(x + <usize>((c + 1) * xStride + p));
          const lo4 = i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), hi4 = i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15);
          let wv = weightPair(w0 + <usize>c);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(lo4, wv));
          e0 = i32x4.add(e0, i32x4.dot_i16x8_s(hi4, wv));
          wv = weightPair(w1 + <usize>c);
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(lo4, wv));
          e1 = i32x4.add(e1, i32x4.dot_i16x8_s(hi4, wv));
          wv = weightPair(w2 + <usize>c);
          a2 = i32x4.add(a2, i32x4.dot_i16x8_s(lo4, wv));
          e2 = i32x4.add(e2, i32x4.dot_i16x8_s(hi4, wv));
          wv = weightPair(w3 + <usize>c);
          a3 = i32x4.add(a3, i32x4.dot_i16x8_s(lo4, wv));
          e3 = i32x4.add(e3, i32x4.dot_i16x8_s(hi4, wv));
        }
        if (C2 < C) {
          const xv = v128.load8x8_s(x + <usize>(C2 * xStride + p));
          let wv = i16x8.splat(<i16>load<i8>(w0 + <usize>C2));
          a0 = i32x4.add(a0, i32x4.extmul_low_i16x8_s(xv, wv));
          e0 = i32x4.add(e0, i32x4.extmul_high_i16x8_s(xv, wv));
          wv = i16x8.splat(<i16>load<i8>(w1 + <usize>C2));
          a1 = i32x4.add(a1, i32x4.extmul_low_i16x8_s(xv, wv));
          e1 = i32x4.add(e1, i32x4.extmul_high_i16x8_s(xv, wv));
          wv = i16x8.splat(<i16>load<i8>(w2 + <usize>C2));
          a2 = i32x4.add(a2, i32x4.extmul_low_i16x8_s(xv, wv));
          e2 = i32x4.add(e2, i32x4.extmul_high_i16x8_s(xv, wv));
          wv = i16x8.splat(<i16>load<i8>(w3 + <usize>C2));
          a3 = i32x4.add(a3, i32x4.extmul_low_i16x8_s(xv, wv));
          e3 = i32x4.add(e3, i32x4.extmul_high_i16x8_s(xv, wv));
        }
        storeRequantized8(y + <usize>(oc * yStride + p), a0, e0, rq + (<usize>oc << 3), outZp, lo, hi, roundUp);
        storeRequantized8(y + <usize>((oc + 1) * yStride + p), a1, e1, rq + (<usize>(oc + 1) << 3), outZp, lo, hi, roundUp);
        storeRequantized8(y + <usize>((oc + 2) * yStride + p), a2, e2, rq + (<usize>(oc + 2) << 3), outZp, lo, hi, roundUp);
        storeRequantized8(y + <usize>((oc + 3) * yStride + p), a3, e3, rq + (<usize>(oc + 3) << 3), outZp, lo, hi, roundUp);
      }
    }
  }
  // scalar: 4 channels x 4 pixels in 16 accumulators, so each loaded input and weight is used 4 times; the
  // channels' requantization constants computed once
  if (P >= 4 && C > 0) {
    const wStep = <usize>C, wStep2 = wStep << 1, wStep3 = wStep2 + wStep;
    for (; oc + 4 <= OC; oc += 4) {
      const w0 = w + <usize>(oc * C), wEnd = w0 + wStep;
      const b0 = foldedBias(w0, bias, oc, C, inZp), b1 = foldedBias(w0 + wStep, bias, oc + 1, C, inZp);
      const b2 = foldedBias(w0 + 2 * wStep, bias, oc + 2, C, inZp), b3 = foldedBias(w0 + 3 * wStep, bias, oc + 3, C, inZp);
      const rq0 = rq + (<usize>oc << 3), rq1 = rq0 + 8, rq2 = rq0 + 16, rq3 = rq0 + 24;
      const l0 = requantLeft(rq0), m0 = <i64>load<i32>(rq0), s0 = requantBits(rq0), n0 = requantNudge(rq0, roundUp, false), q0 = requantNudge(rq0, roundUp, true);
      const l1 = requantLeft(rq1), m1 = <i64>load<i32>(rq1), s1 = requantBits(rq1), n1 = requantNudge(rq1, roundUp, false), q1 = requantNudge(rq1, roundUp, true);
      const l2 = requantLeft(rq2), m2 = <i64>load<i32>(rq2), s2 = requantBits(rq2), n2 = requantNudge(rq2, roundUp, false), q2 = requantNudge(rq2, roundUp, true);
      const l3 = requantLeft(rq3), m3 = <i64>load<i32>(rq3), s3 = requantBits(rq3), n3 = requantNudge(rq3, roundUp, false), q3 = requantNudge(rq3, roundUp, true);
      for (let tile = 0; tile < P; tile += 4) {
        const p = min(tile, P - 4);
        let a00 = b0, a01 = b0, a02 = b0, a03 = b0, a10 = b1, a11 = b1, a12 = b1, a13 = b1;
        let a20 = b2, a21 = b2, a22 = b2, a23 = b2, a30 = b3, a31 = b3, a32 = b3, a33 = b3;
        let xr = x + <usize>p, wc = w0;
        do {
          const x0 = <i32>load<i8>(xr), x1 = <i32>load<i8>(xr, 1), x2 = <i32>load<i8>(xr, 2), x3 = <i32>load<i8>(xr, 3);
          let wv = <i32>load<i8>(wc);
          a00 += x0 * wv; a01 += x1 * wv; a02 += x2 * wv; a03 += x3 * wv;
          wv = <i32>load<i8>(wc + wStep);
          a10 += x0 * wv; a11 += x1 * wv; a12 += x2 * wv; a13 += x3 * wv;
          wv = <i32>load<i8>(wc + wStep2);
          a20 += x0 * wv; a21 += x1 * wv; a22 += x2 * wv; a23 += x3 * wv;
          wv = <i32>load<i8>(wc + wStep3);
          a30 += x0 * wv; a31 += x1 * wv; a32 += x2 * wv; a33 += x3 * wv;
          xr += <usize>xStride;
        } while (++wc < wEnd);
        const yr = y + <usize>(oc * yStride + p), yStep = <usize>yStride;
        storeRequantized4(yr, a00, a01, a02, a03, l0, m0, s0, n0, q0, outZp, lo, hi);
        storeRequantized4(yr + yStep, a10, a11, a12, a13, l1, m1, s1, n1, q1, outZp, lo, hi);
        storeRequantized4(yr + 2 * yStep, a20, a21, a22, a23, l2, m2, s2, n2, q2, outZp, lo, hi);
        storeRequantized4(yr + 3 * yStep, a30, a31, a32, a33, l3, m3, s3, n3, q3, outZp, lo, hi);
      }
    }
  }
  for (; oc < OC; oc++) pointwiseScalar(x, xStride, w, bias, rq, y, yStride, C, oc, P, inZp, outZp, lo, hi, roundUp);
}

/** Four consecutive outputs of one channel, on its hoisted requantization constants. */
@inline function storeRequantized4(
  y: usize, a0: i32, a1: i32, a2: i32, a3: i32, left: i32, multiplier: i64, bits: i64, nudge: i64, negativeNudge: i64, outZp: i32, lo: i32, hi: i32,
): void {
  storeRequantizedWith(y, a0, left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
  storeRequantizedWith(y + 1, a1, left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
  storeRequantizedWith(y + 2, a2, left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
  storeRequantizedWith(y + 3, a3, left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
}

/** bias − inZp·Σ w[oc, ·]: the accumulator's start when the inputs go in without their zero point. */
@inline function foldedBias(wr: usize, bias: usize, oc: i32, C: i32, inZp: i32): i32 {
  let sum = 0;
  for (let c = 0; c < C; c++) sum += <i32>load<i8>(wr + <usize>c);
  return (bias == 0 ? 0 : load<i32>(bias + (<usize>oc << 2))) - inZp * sum;
}

/** (w[c], w[c+1]) four times as i16 lanes. */
@inline function weightPair(wr: usize): v128 {
  return i16x8.extend_low_i8x16_s(i16x8.splat(load<i16>(wr)));
}

/** Output channel oc's P pixels one at a time (the channels past the last block of 4, planes under 4 pixels). */
function pointwiseScalar(
  x: usize, xStride: i32, w: usize, bias: usize, rq: usize, y: usize, yStride: i32, C: i32, oc: i32, P: i32, inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const rqo = rq + (<usize>oc << 3);
  const left = requantLeft(rqo), multiplier = <i64>load<i32>(rqo), bits = requantBits(rqo);
  const nudge = requantNudge(rqo, roundUp, false), negativeNudge = requantNudge(rqo, roundUp, true);
  const wr = w + <usize>(oc * C);
  const start = foldedBias(wr, bias, oc, C, inZp);
  for (let p = 0; p < P; p++) {
    let acc = start;
    for (let c = 0; c < C; c++) acc += <i32>load<i8>(x + <usize>(c * xStride + p)) * <i32>load<i8>(wr + <usize>c);
    storeRequantizedWith(y + <usize>(oc * yStride + p), acc, left, multiplier, bits, nudge, negativeNudge, outZp, lo, hi);
  }
}
