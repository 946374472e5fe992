// 2-D convolution, NCHW, w = [OC, C/groups, KH, KW], bias = [OC] or 0. PH/PW are the top/left pads;
// bottom/right pads are whatever OH/OW imply, so asymmetric padding needs no extra parameters.
// A 1x1 conv is a GEMM on the image as it lies; conv2d runs everything else as a direct conv, and
// conv2dIm2col (chosen by the compiler per layer) as GEMMs over im2col blocks in a scratch buffer.
// `res`, a fused residual laid out like y (0: none), is added before the activation: y = act(conv + bias + res).
import { ACT_CLAMP, ACT_NONE, ACT_RELU, actInPlace, addInPlace } from "./act";
import { ceilDiv, floorDiv, loadStrided, madd } from "./common";
import { gemm, BIAS_NONE, BIAS_ROW } from "./gemm";

// Geometry of the conv2d call in progress, set once at entry: without an allocator there are no
// structs, and the helpers below would otherwise take twenty parameters each.
let chanPerGroup: i32 = 0;
let inH: i32 = 0;
let inW: i32 = 0;
let outH: i32 = 0;
let outW: i32 = 0;
let kernelH: i32 = 0;
let kernelW: i32 = 0;
let strideH: i32 = 0;
let strideW: i32 = 0;
let padTop: i32 = 0;
let padLeft: i32 = 0;
let dilationH: i32 = 0;
let dilationW: i32 = 0;
/** Byte range of the whole input tensor: vector loads whose masked-off lanes stay inside it are safe. */
let inputStart: usize = 0;
let inputEnd: usize = 0;
/** Output columns whose every kw tap (and stride-2 over-read) is inside the row: unmasked tiles. */
let interiorLo: i32 = 0;
let interiorHi: i32 = -1;

export function conv2d(
  x: usize, w: usize, bias: usize, y: usize,
  N: i32, C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
  groups: i32, act: i32, p0: f32, p1: f32, res: usize,
): void {
  if (N <= 0 || OC <= 0 || OH <= 0 || OW <= 0) return;
  const Cg = C / groups;
  const OCg = OC / groups;
  const planeX = <usize>(H * W) << 2;
  const planeY = <usize>(OH * OW) << 2;
  const imageX = <usize>C * planeX;
  const imageY = <usize>OC * planeY;
  const wOcStride = <usize>(Cg * KH * KW) << 2;

  // Pointwise: per image and group, Y[OCg, HW] = W[OCg, Cg] . X[Cg, HW] + bias[oc].
  // Depthwise 1x1 (Cg == 1) is better served by the direct path's vector tiles than by K = 1 GEMMs.
  if (KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0 && OH == H && OW == W && Cg > 1) {
    const HW = H * W;
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        const out = <usize>n * imageY + <usize>(g * OCg) * planeY;
        gemm(
          w + <usize>(g * OCg) * wOcStride,
          x + <usize>n * imageX + <usize>(g * Cg) * planeX,
          y + out,
          bias == 0 ? 0 : bias + (<usize>(g * OCg) << 2),
          OCg, HW, Cg, Cg, HW, HW, bias == 0 ? BIAS_NONE : BIAS_ROW, act, p0, p1, res == 0 ? 0 : res + out,
        );
      }
    }
    return;
  }

  setGeometry(Cg, H, W, OW, KH, KW, SH, SW, PH, PW, DH, DW);
  outH = OH;
  inputStart = x;
  inputEnd = x + <usize>N * imageX;
  // Direct: blocks of 4 output channels share every input load (1 at a time for the remainder, which
  // is every channel of a depthwise conv: there each output channel is a per-channel stencil).
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < groups; g++) {
      const xg = x + <usize>n * imageX + <usize>(g * Cg) * planeX;
      for (let oc0 = 0; oc0 < OCg; ) {
        const rows = OCg - oc0 >= 4 ? 4 : 1;
        const oc = g * OCg + oc0;
        const out = <usize>n * imageY + <usize>oc * planeY;
        convPlanes(xg, w + <usize>oc * wOcStride, bias == 0 ? 0 : bias + (<usize>oc << 2), y + out, rows);
        if (res != 0) addInPlace(y + out, res + out, rows * OH * OW);
        actInPlace(y + out, rows * OH * OW, act, p0, p1);
        oc0 += rows;
      }
    }
  }
}

/**
 * conv2d through im2col + GEMM, for layers whose planes are too narrow (or strides too wide) for the direct
 * kernel's unmasked tiles: blocks of up to `tile` output pixels (flat over OH·OW) get their patches copied into
 * `scratch` as a [Cg·KH·KW, tile] matrix (zeros where a tap lands in the padding), and the GEMM's 4x8 register
 * tile multiplies the group's weights [OCg, Cg·KH·KW] by it, bias and activation in its epilogue.
 * `scratch` holds Cg·KH·KW·tile floats.
 */
export function conv2dIm2col(
  x: usize, w: usize, bias: usize, y: usize,
  N: i32, C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
  groups: i32, act: i32, p0: f32, p1: f32, scratch: usize, tile: i32, res: usize,
): void {
  if (N <= 0 || OC <= 0 || OH <= 0 || OW <= 0) return;
  const Cg = C / groups;
  const OCg = OC / groups;
  const K = Cg * KH * KW;
  const P = OH * OW;
  const planeX = <usize>(H * W) << 2;
  const imageX = <usize>C * planeX;
  const imageY = <usize>OC * (<usize>P << 2);
  setGeometry(Cg, H, W, OW, KH, KW, SH, SW, PH, PW, DH, DW);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < groups; g++) {
      const xg = x + <usize>n * imageX + <usize>(g * Cg) * planeX;
      const out = <usize>n * imageY + (<usize>(g * OCg * P) << 2);
      const yg = y + out;
      const rg = res == 0 ? 0 : res + out;
      const wg = w + (<usize>(g * OCg * K) << 2);
      const bg = bias == 0 ? 0 : bias + (<usize>(g * OCg) << 2);
      for (let first = 0; first < P; first += tile) {
        const T = min(tile, P - first);
        im2colBlock(xg, scratch, first, T);
        gemm(
          wg, scratch, yg + (<usize>first << 2), bg, OCg, T, K, K, T, P, bg == 0 ? BIAS_NONE : BIAS_ROW, act, p0, p1,
          rg == 0 ? 0 : rg + (<usize>first << 2),
        );
      }
    }
  }
}

/** Patch matrix of output pixels first..first+T-1 (flat): row (c, kh, kw), column t, T floats a row. */
function im2colBlock(xg: usize, dst: usize, first: i32, T: i32): void {
  const H = inH, W = inW, OW = outW, KH = kernelH, KW = kernelW, Cg = chanPerGroup;
  const SW = strideW, DW = dilationW;
  const planeX = <usize>(H * W) << 2;
  const rowBytes = <usize>T << 2;
  for (let t = 0, q = first; t < T; ) {
    const oh = q / OW;
    const ow0 = q - oh * OW;
    const len = min(OW - ow0, T - t);
    const segment = dst + (<usize>t << 2);
    for (let c = 0; c < Cg; c++) {
      for (let kh = 0; kh < KH; kh++) {
        const ih = oh * strideH - padTop + kh * dilationH;
        let out = segment + <usize>((c * KH + kh) * KW) * rowBytes;
        if (ih < 0 || ih >= H) {
          for (let kw = 0; kw < KW; kw++, out += rowBytes) zeroFloats(out, len);
          continue;
        }
        const src = xg + <usize>c * planeX + (<usize>(ih * W) << 2);
        for (let kw = 0; kw < KW; kw++, out += rowBytes) {
          const offset = kw * DW - padLeft; // input column of output column ow: ow·SW + offset
          const lo = min(len, max(0, ceilDiv(-offset, SW) - ow0));
          const hi = max(lo, min(len, floorDiv(W - 1 - offset, SW) - ow0 + 1));
          zeroFloats(out, lo);
          copyStrided(out + (<usize>lo << 2), src + (<usize>((ow0 + lo) * SW + offset) << 2), hi - lo, SW);
          zeroFloats(out + (<usize>hi << 2), len - hi);
        }
      }
    }
    t += len;
    q += len;
  }
}

/** im2colBlock for the weight gradient (conv-grad.ts): the geometry it reads, then pixels first..first+T-1 of a group's Cg channels at xg. */
export function im2colPixels(
  xg: usize, dst: usize, first: i32, T: i32, Cg: i32, H: i32, W: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
): void {
  setGeometry(Cg, H, W, OW, KH, KW, SH, SW, PH, PW, DH, DW);
  im2colBlock(xg, dst, first, T);
}

/** The geometry the tile and im2col helpers read from globals (kept out of their argument lists). */
@inline function setGeometry(
  Cg: i32, H: i32, W: i32, OW: i32, KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
): void {
  chanPerGroup = Cg;
  inH = H;
  inW = W;
  outW = OW;
  kernelH = KH;
  kernelW = KW;
  strideH = SH;
  strideW = SW;
  padTop = PH;
  padLeft = PW;
  dilationH = DH;
  dilationW = DW;
}

/** n zero floats at dst: the segments are short, where memory.fill's call costs more than the stores. */
@inline function zeroFloats(dst: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), f32x4.splat(0));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), 0);
}

/** n floats from every `stride`-th element of src to consecutive dst. */
@inline function copyStrided(dst: usize, src: usize, n: i32, stride: i32): void {
  let i = 0;
  if (stride == 1) {
    if (ASC_FEATURE_SIMD) {
      for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
    }
    for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
    return;
  }
  const step = <usize>stride << 2;
  for (let p = src; i < n; i++, p += step) store<f32>(dst + (<usize>i << 2), load<f32>(p));
}

/** `rows` (1 or 4) output planes of one group, bias added, activation not yet applied. */
function convPlanes(xg: usize, wOc: usize, biasOc: usize, yOc: usize, rows: i32): void {
  const H = inH, W = inW, OH = outH, OW = outW, KH = kernelH, KW = kernelW;
  const SH = strideH, SW = strideW, PH = padTop, PW = padLeft, DH = dilationH, DW = dilationW;
  if (!ASC_FEATURE_SIMD) {
    for (let oh = 0; oh < OH; oh++) points(xg, wOc, biasOc, yOc, rows, oh, 0, OW);
    return;
  }
  const overRead = SW == 2 ? 1 : 0; // see loadStrided
  // Interior columns, inclusive and possibly empty: every kw tap (and the over-read) inside [0, W).
  const owLo = min(OW, max(0, ceilDiv(PW, SW)));
  const owHi = min(OW - 1, floorDiv(W - 1 - overRead + PW - (KW - 1) * DW, SW));
  interiorLo = owLo;
  interiorHi = owHi;

  // Stride 1 with OW == W: output and input rows have the same pitch, so each tap is one flat offset
  // and all rows whose kh taps are in bounds form ONE vector segment running across row ends (what
  // makes narrow images like 25x5 vectorise). Starting at the first interior column and ending at the
  // last keeps every read inside the plane; lanes that read across a row end are masked off.
  let flatLo = OH;
  let flatHi = -1;
  if (SH == 1 && SW == 1 && OW == W && owLo <= owHi) {
    flatLo = max(0, PH);
    flatHi = min(OH - 1, H - 1 + PH - (KH - 1) * DH);
    if (flatLo <= flatHi) {
      const first = flatLo * OW + owLo;
      const end = flatHi * OW + owHi + 1;
      const done = vectorSegment(
        xg + (<usize>((flatLo - PH) * W + owLo - PW) << 2), wOc, biasOc, yOc + (<usize>first << 2),
        end - first, rows, owLo, KH,
      );
      points(xg, wOc, biasOc, yOc, rows, flatLo, 0, owLo);
      for (let f = first + done; f < end; ) { // a segment under 4 outputs, possibly across a row end
        const oh = f / OW;
        const ow = f - oh * OW;
        const stop = min(OW, ow + end - f);
        points(xg, wOc, biasOc, yOc, rows, oh, ow, stop);
        f += stop - ow;
      }
      points(xg, wOc, biasOc, yOc, rows, flatHi, owHi + 1, OW);
    }
  }

  const planeX = <usize>(H * W) << 2;
  for (let oh = 0; oh < OH; oh++) {
    if (oh >= flatLo && oh <= flatHi) continue;
    const ihTop = oh * SH - PH;
    const khLo = max(0, ceilDiv(-ihTop, DH));
    const khHi = min(KH - 1, floorDiv(H - 1 - ihTop, DH));
    let owA = 0;
    let owB = 0;
    if (khLo <= khHi) {
      // The whole row as one masked segment when its raw loads stay inside the input tensor (they
      // leave it only at the first / last row of the whole tensor); else interior + scalar border.
      const ihFirst = ihTop + khLo * DH;
      const ihLast = ihTop + khHi * DH;
      const lowest = xg + (<usize>(ihFirst * W) << 2);
      const highest = xg + <usize>(chanPerGroup - 1) * planeX + (<usize>(ihLast * W + (OW - 1) * SW - PW + (KW - 1) * DW + overRead) << 2);
      if (lowest >= inputStart + (<usize>PW << 2) && highest < inputEnd) {
        owB = OW;
      } else if (owLo <= owHi) {
        owA = owLo;
        owB = owHi + 1;
      }
    }
    let done = 0;
    if (owA < owB) {
      done = vectorSegment(
        xg + (<usize>((ihTop + khLo * DH) * W + owA * SW - PW) << 2), wOc + (<usize>(khLo * KW) << 2), biasOc,
        yOc + (<usize>(oh * OW + owA) << 2), owB - owA, rows, owA, khHi - khLo + 1,
      );
    }
    points(xg, wOc, biasOc, yOc, rows, oh, 0, owA);
    points(xg, wOc, biasOc, yOc, rows, oh, owA + done, OW);
  }
}

/** Outputs (oh, owA..owB-1), scalar, each with its in-bounds kh/kw ranges: padding is never read. */
function points(xg: usize, wOc: usize, biasOc: usize, yOc: usize, rows: i32, oh: i32, owA: i32, owB: i32): void {
  if (owA >= owB) return;
  const H = inH, W = inW, OW = outW, KH = kernelH, KW = kernelW;
  const SW = strideW, PW = padLeft, DH = dilationH, DW = dilationW;
  const planeX = <usize>(H * W) << 2;
  const planeY = <usize>(outH * OW) << 2;
  const rowStepX = <usize>(DH * W) << 2;
  const colStepX = <usize>DW << 2;
  const wOcStride = <usize>(chanPerGroup * KH * KW) << 2;
  const wCStride = <usize>(KH * KW) << 2;
  const wRowStride = <usize>KW << 2;
  const ihTop = oh * strideH - padTop;
  const khLo = max(0, ceilDiv(-ihTop, DH));
  const khCount = max(0, min(KH - 1, floorDiv(H - 1 - ihTop, DH)) - khLo + 1);
  const kernelSpanW = (KW - 1) * DW;
  for (let ow = owA; ow < owB; ow++) {
    const iwLeft = ow * SW - PW;
    let kwLo = 0;
    let kwCount = KW;
    if (iwLeft < 0 || iwLeft + kernelSpanW >= W) { // border column: divisions only here
      kwLo = max(0, ceilDiv(-iwLeft, DW));
      kwCount = max(0, min(KW - 1, floorDiv(W - 1 - iwLeft, DW)) - kwLo + 1);
    }
    const xs = xg + (<usize>((ihTop + khLo * DH) * W + iwLeft + kwLo * DW) << 2);
    const ws = wOc + (<usize>(khLo * KW + kwLo) << 2);
    const ys = yOc + (<usize>(oh * OW + ow) << 2);
    if (rows == 4) {
      scalarTile4(xs, ws, biasOc, ys, khCount, kwCount, planeX, rowStepX, colStepX, wOcStride, wCStride, wRowStride, planeY);
    } else {
      scalarTile1(xs, ws, biasOc, ys, khCount, kwCount, planeX, rowStepX, colStepX, wCStride, wRowStride);
    }
  }
}

/** One output of 4 channels; each input load is shared by the 4. */
@inline function scalarTile4(
  xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32, kwCount: i32, planeX: usize, rowStepX: usize,
  colStepX: usize, wOcStride: usize, wCStride: usize, wRowStride: usize, planeY: usize,
): void {
  let c0 = biasOf(biasOc, 0), c1 = biasOf(biasOc, 1), c2 = biasOf(biasOc, 2), c3 = biasOf(biasOc, 3);
  for (let c = 0, Cg = chanPerGroup; c < Cg; c++) {
    let xh = xs + <usize>c * planeX;
    let wh = ws + <usize>c * wCStride;
    for (let kh = 0; kh < khCount; kh++) {
      let px = xh, pw = wh;
      for (let kw = 0; kw < kwCount; kw++) {
        const xv = load<f32>(px);
        c0 += load<f32>(pw) * xv;
        c1 += load<f32>(pw + wOcStride) * xv;
        c2 += load<f32>(pw + 2 * wOcStride) * xv;
        c3 += load<f32>(pw + 3 * wOcStride) * xv;
        px += colStepX;
        pw += 4;
      }
      xh += rowStepX;
      wh += wRowStride;
    }
  }
  store<f32>(ys, c0);
  store<f32>(ys + planeY, c1);
  store<f32>(ys + 2 * planeY, c2);
  store<f32>(ys + 3 * planeY, c3);
}

@inline function scalarTile1(
  xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32, kwCount: i32, planeX: usize, rowStepX: usize,
  colStepX: usize, wCStride: usize, wRowStride: usize,
): void {
  let acc = biasOf(biasOc, 0);
  for (let c = 0, Cg = chanPerGroup; c < Cg; c++) {
    let xh = xs + <usize>c * planeX;
    let wh = ws + <usize>c * wCStride;
    for (let kh = 0; kh < khCount; kh++) {
      let px = xh, pw = wh;
      for (let kw = 0; kw < kwCount; kw++) {
        acc += load<f32>(pw) * load<f32>(px);
        px += colStepX;
        pw += 4;
      }
      xh += rowStepX;
      wh += wRowStride;
    }
  }
  store<f32>(ys, acc);
}

@inline function biasOf(biasOc: usize, r: i32): f32 {
  return biasOc == 0 ? 0 : load<f32>(biasOc + (<usize>r << 2));
}

// ---- SIMD segments -----------------------------------------------------------------------------

/**
 * `count` consecutive outputs (flat order) of `rows` channels in tiles of 8 and 4, using khCount
 * kernel rows; returns how many it did: all of them, or none when count < 4 (the caller's scalar
 * path does those). xs: input under tap (c = 0, first kh, kw = 0) of the first output, which is in
 * column owStart; ws: weights at that kh. Tiles wholly inside the interior columns run unmasked; the
 * others mask lanes whose kw tap falls outside [0, W) to zero, so the caller only has to keep the raw
 * loads inside the input tensor. A ragged end is covered by one more 4-tile overlapping the previous
 * one (recomputing up to 3 outputs beats scalar code).
 */
function vectorSegment(xs: usize, ws: usize, biasOc: usize, ys: usize, count: i32, rows: i32, owStart: i32, khCount: i32): i32 {
  if (!ASC_FEATURE_SIMD) return 0; // keeps the v128 tiles out of the scalar build
  if (count < 4) return 0;
  const OW = outW, sw = strideW, lo = interiorLo, hi = interiorHi;
  const step = <usize>sw << 2; // input bytes per output column
  // Lane columns owT + 0..7 may pass a row end (flat segments) at most this many times.
  const wraps = (OW + 6) / OW;
  let t = 0;
  let owT = owStart; // column of output t
  while (t + 4 <= count) {
    const px = xs + <usize>t * step;
    const py = ys + (<usize>t << 2);
    if (rows == 1 && t + 16 <= count && owT >= lo && owT + 15 <= hi) {
      if (sw == 1) tile1x16Contiguous(px, ws, biasOc, py, khCount);
      else if (sw == 2) tile1x16Stride2(px, ws, biasOc, py, khCount);
      else tile1x16Strided(px, ws, biasOc, py, khCount, sw);
      t += 16;
      owT = wrapColumn(owT + 16, OW);
    } else if (t + 8 <= count && owT >= lo && owT + 7 <= hi) {
      if (rows == 4) {
        if (sw == 1) tile4x8Contiguous(px, ws, biasOc, py, khCount);
        else if (sw == 2) tile4x8Stride2(px, ws, biasOc, py, khCount);
        else tile4x8Strided(px, ws, biasOc, py, khCount, sw);
      } else {
        if (sw == 1) tile1x8Contiguous(px, ws, biasOc, py, khCount);
        else if (sw == 2) tile1x8Stride2(px, ws, biasOc, py, khCount);
        else tile1x8Strided(px, ws, biasOc, py, khCount, sw);
      }
      t += 8;
      owT = wrapColumn(owT + 8, OW);
    } else if (rows == 1 && t + 8 <= count) {
      const cols1 = laneColumns(wrapColumn(owT + 4, OW), OW, wraps);
      tile1x8Masked(px, ws, biasOc, py, laneColumns(owT, OW, wraps), cols1, khCount, sw);
      t += 8;
      owT = wrapColumn(owT + 8, OW);
    } else {
      // a border step of 4, after which an unmasked 8-tile may fit again
      if (rows == 4) tile4x4(px, ws, biasOc, py, laneColumns(owT, OW, wraps), khCount, sw);
      else tile1x4(px, ws, biasOc, py, laneColumns(owT, OW, wraps), khCount, sw);
      t += 4;
      owT = wrapColumn(owT + 4, OW);
    }
  }
  if (t < count) {
    t = count - 4;
    const px = xs + <usize>t * step;
    const py = ys + (<usize>t << 2);
    const cols = laneColumns((owStart + t) % OW, OW, wraps);
    if (rows == 4) tile4x4(px, ws, biasOc, py, cols, khCount, sw);
    else tile1x4(px, ws, biasOc, py, cols, khCount, sw);
  }
  return count;
}

@inline function wrapColumn(ow: i32, OW: i32): i32 {
  while (ow >= OW) ow -= OW;
  return ow;
}

/** Output columns of the 4 lanes of a tile whose lane 0 is in column owT, wrapping at row ends. */
@inline function laneColumns(owT: i32, OW: i32, wraps: i32): v128 {
  const width = i32x4.splat(OW);
  let cols = i32x4.add(i32x4.splat(owT), i32x4(0, 1, 2, 3));
  for (let i = 0; i < wraps; i++) cols = i32x4.sub(cols, v128.and(i32x4.ge_s(cols, width), width));
  return cols;
}

// Interior tiles come in stride-1 and stride-2 copies (sw folded to a constant: no per-load
// branches, fewer live registers) and a general one; small separate functions keep V8's register
// allocation local.
function tile4x8Contiguous(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32): void {
  tile4x8(xs, ws, biasOc, ys, khCount, 1);
}

function tile4x8Stride2(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32): void {
  tile4x8(xs, ws, biasOc, ys, khCount, 2);
}

function tile1x8Stride2(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32): void {
  tile1x8(xs, ws, biasOc, ys, khCount, 2);
}

function tile1x16Contiguous(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32): void {
  tile1x16(xs, ws, biasOc, ys, khCount, 1);
}

function tile1x16Stride2(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32): void {
  tile1x16(xs, ws, biasOc, ys, khCount, 2);
}

function tile1x16Strided(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32, sw: i32): void {
  tile1x16(xs, ws, biasOc, ys, khCount, sw);
}

function tile4x8Strided(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32, sw: i32): void {
  tile4x8(xs, ws, biasOc, ys, khCount, sw);
}

function tile1x8Contiguous(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32): void {
  tile1x8(xs, ws, biasOc, ys, khCount, 1);
}

function tile1x8Strided(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32, sw: i32): void {
  tile1x8(xs, ws, biasOc, ys, khCount, sw);
}

/** 4 channels x 8 outputs = 8 accumulators, the GEMM micro-kernel's register budget. */
@inline function tile4x8(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32, sw: i32): void {
  const W = inW, KW = kernelW, Cg = chanPerGroup;
  const planeX = <usize>(inH * W) << 2;
  const rowStepX = <usize>(dilationH * W) << 2;
  const colStepX = <usize>dilationW << 2;
  const wOc1 = <usize>(Cg * kernelH * KW) << 2;
  const wOc3 = wOc1 * 3;
  const wCStride = <usize>(kernelH * KW) << 2;
  const wRowBytes = <usize>KW << 2;
  const secondHalf = <usize>sw << 4;
  let c00 = f32x4.splat(biasOf(biasOc, 0)), c01 = c00;
  let c10 = f32x4.splat(biasOf(biasOc, 1)), c11 = c10;
  let c20 = f32x4.splat(biasOf(biasOc, 2)), c21 = c20;
  let c30 = f32x4.splat(biasOf(biasOc, 3)), c31 = c30;
  for (let c = 0; c < Cg; c++) {
    let xh = xs + <usize>c * planeX;
    let wh = ws + <usize>c * wCStride;
    for (let kh = 0; kh < khCount; kh++) {
      let px = xh;
      for (let pw = wh, pwEnd = wh + wRowBytes; pw < pwEnd; pw += 4) {
        const x0 = loadStrided(px, sw);
        const x1 = loadStrided(px + secondHalf, sw);
        let wv = v128.load32_splat(pw);
        c00 = madd(wv, x0, c00);
        c01 = madd(wv, x1, c01);
        wv = v128.load32_splat(pw + wOc1);
        c10 = madd(wv, x0, c10);
        c11 = madd(wv, x1, c11);
        wv = v128.load32_splat(pw + (wOc1 << 1));
        c20 = madd(wv, x0, c20);
        c21 = madd(wv, x1, c21);
        wv = v128.load32_splat(pw + wOc3);
        c30 = madd(wv, x0, c30);
        c31 = madd(wv, x1, c31);
        px += colStepX;
      }
      xh += rowStepX;
      wh += wRowBytes;
    }
  }
  const planeY = <usize>(outH * outW) << 2;
  v128.store(ys, c00);
  v128.store(ys, c01, 16);
  v128.store(ys + planeY, c10);
  v128.store(ys + planeY, c11, 16);
  v128.store(ys + 2 * planeY, c20);
  v128.store(ys + 2 * planeY, c21, 16);
  v128.store(ys + 3 * planeY, c30);
  v128.store(ys + 3 * planeY, c31, 16);
}

@inline function tile1x8(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32, sw: i32): void {
  const W = inW, KW = kernelW, Cg = chanPerGroup;
  const planeX = <usize>(inH * W) << 2;
  const rowStepX = <usize>(dilationH * W) << 2;
  const colStepX = <usize>dilationW << 2;
  const wCStride = <usize>(kernelH * KW) << 2;
  const wRowBytes = <usize>KW << 2;
  const secondHalf = <usize>sw << 4;
  let c0 = f32x4.splat(biasOf(biasOc, 0)), c1 = c0;
  for (let c = 0; c < Cg; c++) {
    let xh = xs + <usize>c * planeX;
    let wh = ws + <usize>c * wCStride;
    for (let kh = 0; kh < khCount; kh++) {
      let px = xh;
      for (let pw = wh, pwEnd = wh + wRowBytes; pw < pwEnd; pw += 4) {
        const wv = v128.load32_splat(pw);
        c0 = madd(wv, loadStrided(px, sw), c0);
        c1 = madd(wv, loadStrided(px + secondHalf, sw), c1);
        px += colStepX;
      }
      xh += rowStepX;
      wh += wRowBytes;
    }
  }
  v128.store(ys, c0);
  v128.store(ys, c1, 16);
}

/** One channel x 16 outputs: the depthwise workhorse, one weight broadcast feeds 4 vectors. */
@inline function tile1x16(xs: usize, ws: usize, biasOc: usize, ys: usize, khCount: i32, sw: i32): void {
  const W = inW, KW = kernelW, Cg = chanPerGroup;
  const planeX = <usize>(inH * W) << 2;
  const rowStepX = <usize>(dilationH * W) << 2;
  const colStepX = <usize>dilationW << 2;
  const wCStride = <usize>(kernelH * KW) << 2;
  const wRowBytes = <usize>KW << 2;
  const quarter = <usize>sw << 4;
  let c0 = f32x4.splat(biasOf(biasOc, 0)), c1 = c0, c2 = c0, c3 = c0;
  for (let c = 0; c < Cg; c++) {
    let xh = xs + <usize>c * planeX;
    let wh = ws + <usize>c * wCStride;
    for (let kh = 0; kh < khCount; kh++) {
      let px = xh;
      for (let pw = wh, pwEnd = wh + wRowBytes; pw < pwEnd; pw += 4) {
        const wv = v128.load32_splat(pw);
        c0 = madd(wv, loadStrided(px, sw), c0);
        c1 = madd(wv, loadStrided(px + quarter, sw), c1);
        c2 = madd(wv, loadStrided(px + 2 * quarter, sw), c2);
        c3 = madd(wv, loadStrided(px + 3 * quarter, sw), c3);
        px += colStepX;
      }
      xh += rowStepX;
      wh += wRowBytes;
    }
  }
  v128.store(ys, c0);
  v128.store(ys, c1, 16);
  v128.store(ys, c2, 32);
  v128.store(ys, c3, 48);
}

// Border tiles: each lane mask (input column inside [0, W)) is built once per kernel column and
// channel; masked lanes load in-tensor garbage that the AND turns into +0.
function tile4x4(xs: usize, ws: usize, biasOc: usize, ys: usize, cols: v128, khCount: i32, sw: i32): void {
  const W = inW, KW = kernelW, Cg = chanPerGroup;
  const planeX = <usize>(inH * W) << 2;
  const rowStepX = <usize>(dilationH * W) << 2;
  const colStepX = <usize>dilationW << 2;
  const wOc1 = <usize>(Cg * kernelH * KW) << 2;
  const wOc3 = wOc1 * 3;
  const wCStride = <usize>(kernelH * KW) << 2;
  const wRowBytes = <usize>KW << 2;
  let c0 = f32x4.splat(biasOf(biasOc, 0));
  let c1 = f32x4.splat(biasOf(biasOc, 1));
  let c2 = f32x4.splat(biasOf(biasOc, 2));
  let c3 = f32x4.splat(biasOf(biasOc, 3));
  const iwFirst = i32x4.sub(i32x4.mul(cols, i32x4.splat(sw)), i32x4.splat(padLeft));
  const dilation = i32x4.splat(dilationW);
  for (let c = 0; c < Cg; c++) {
    let iw = iwFirst;
    let xc = xs + <usize>c * planeX;
    for (let wc = ws + <usize>c * wCStride, wcEnd = wc + wRowBytes; wc < wcEnd; wc += 4) {
      const mask = insideRow(iw, W);
      let px = xc, pw = wc;
      for (let kh = 0; kh < khCount; kh++) {
        const xv = v128.and(loadStrided(px, sw), mask);
        c0 = madd(v128.load32_splat(pw), xv, c0);
        c1 = madd(v128.load32_splat(pw + wOc1), xv, c1);
        c2 = madd(v128.load32_splat(pw + (wOc1 << 1)), xv, c2);
        c3 = madd(v128.load32_splat(pw + wOc3), xv, c3);
        px += rowStepX;
        pw += wRowBytes;
      }
      xc += colStepX;
      iw = i32x4.add(iw, dilation);
    }
  }
  const planeY = <usize>(outH * outW) << 2;
  v128.store(ys, c0);
  v128.store(ys + planeY, c1);
  v128.store(ys + 2 * planeY, c2);
  v128.store(ys + 3 * planeY, c3);
}

function tile1x8Masked(xs: usize, ws: usize, biasOc: usize, ys: usize, cols0: v128, cols1: v128, khCount: i32, sw: i32): void {
  const W = inW, KW = kernelW, Cg = chanPerGroup;
  const planeX = <usize>(inH * W) << 2;
  const rowStepX = <usize>(dilationH * W) << 2;
  const colStepX = <usize>dilationW << 2;
  const wCStride = <usize>(kernelH * KW) << 2;
  const wRowBytes = <usize>KW << 2;
  const secondHalf = <usize>sw << 4;
  const scale = i32x4.splat(sw), pad = i32x4.splat(padLeft), dilation = i32x4.splat(dilationW);
  const iwFirst0 = i32x4.sub(i32x4.mul(cols0, scale), pad);
  const iwFirst1 = i32x4.sub(i32x4.mul(cols1, scale), pad);
  let c0 = f32x4.splat(biasOf(biasOc, 0)), c1 = c0;
  for (let c = 0; c < Cg; c++) {
    let iw0 = iwFirst0, iw1 = iwFirst1;
    let xc = xs + <usize>c * planeX;
    for (let wc = ws + <usize>c * wCStride, wcEnd = wc + wRowBytes; wc < wcEnd; wc += 4) {
      const mask0 = insideRow(iw0, W);
      const mask1 = insideRow(iw1, W);
      let px = xc, pw = wc;
      for (let kh = 0; kh < khCount; kh++) {
        const wv = v128.load32_splat(pw);
        c0 = madd(wv, v128.and(loadStrided(px, sw), mask0), c0);
        c1 = madd(wv, v128.and(loadStrided(px + secondHalf, sw), mask1), c1);
        px += rowStepX;
        pw += wRowBytes;
      }
      xc += colStepX;
      iw0 = i32x4.add(iw0, dilation);
      iw1 = i32x4.add(iw1, dilation);
    }
  }
  v128.store(ys, c0);
  v128.store(ys, c1, 16);
}

function tile1x4(xs: usize, ws: usize, biasOc: usize, ys: usize, cols: v128, khCount: i32, sw: i32): void {
  const W = inW, KW = kernelW, Cg = chanPerGroup;
  const planeX = <usize>(inH * W) << 2;
  const rowStepX = <usize>(dilationH * W) << 2;
  const colStepX = <usize>dilationW << 2;
  const wCStride = <usize>(kernelH * KW) << 2;
  const wRowBytes = <usize>KW << 2;
  const iwFirst = i32x4.sub(i32x4.mul(cols, i32x4.splat(sw)), i32x4.splat(padLeft));
  const dilation = i32x4.splat(dilationW);
  let c0 = f32x4.splat(biasOf(biasOc, 0));
  for (let c = 0; c < Cg; c++) {
    let iw = iwFirst;
    let xc = xs + <usize>c * planeX;
    for (let wc = ws + <usize>c * wCStride, wcEnd = wc + wRowBytes; wc < wcEnd; wc += 4) {
      const mask = insideRow(iw, W);
      let px = xc, pw = wc;
      for (let kh = 0; kh < khCount; kh++) {
        c0 = madd(v128.load32_splat(pw), v128.and(loadStrided(px, sw), mask), c0);
        px += rowStepX;
        pw += wRowBytes;
      }
      xc += colStepX;
      iw = i32x4.add(iw, dilation);
    }
  }
  v128.store(ys, c0);
}

/** All-ones lanes where 0 <= iw < W (signed compares: SSE has no unsigned one). */
@inline function insideRow(iw: v128, W: i32): v128 {
  return v128.and(i32x4.gt_s(iw, i32x4.splat(-1)), i32x4.lt_s(iw, i32x4.splat(W)));
}

// ---- depthwise 3x3 through a zero-padded plane ------------------------------------------------------

/**
 * Depthwise 3x3 convolution (groups == C == OC, dilation 1, stride 1 or 2), for the small planes of KWS and
 * VWW where conv2d's row tiles are mostly masked: each channel's plane is first copied into `scratch` with its
 * zero padding made real, so every output row runs in unmasked vectors of 8 and 4 (a ragged end overlaps
 * the previous vector), the nine weights held in registers and ReLU / ReLU6 applied before the store.
 * Planes under 4 columns wide go through the same padded plane one output at a time. `scratch` holds
 * ((OH - 1)·SH + 3) · ((OW - 1)·SW + 3 + (SW == 2 ? 1 : 0)) floats: one padded plane.
 */
export function depthwise3x3(
  x: usize, w: usize, bias: usize, y: usize, N: i32, C: i32, H: i32, W: i32, OH: i32, OW: i32,
  SH: i32, SW: i32, PH: i32, PW: i32, act: i32, p0: f32, p1: f32, scratch: usize, res: usize,
): void {
  if (N <= 0 || C <= 0 || OH <= 0 || OW <= 0) return;
  // with a residual the activation waits for the sum
  const storeAct = res == 0 ? act : ACT_NONE;
  const rows = (OH - 1) * SH + 3;
  const pitch = paddedPitch(OW, SW);
  const planeX = <usize>(H * W) << 2;
  const planeY = <usize>(OH * OW) << 2;
  if (ASC_FEATURE_SIMD && (OW < CHANNEL_CELLS_BELOW || SW == 2)) {
    depthwiseChannels(x, w, bias, y, N, C, H, W, OH, OW, SH, SW, PH, PW, act, p0, p1, scratch, res, rows, pitch);
    return;
  }
  // a loop, not memory.fill: bulk memory would keep the scalar build out of wasm3
  zeroFloats(scratch, rows * pitch);
  for (let plane = 0; plane < N * C; plane++) {
    const c = plane % C;
    padPlane(x + <usize>plane * planeX, scratch, H, W, rows, pitch, PH, PW);
    const wc = w + (<usize>(c * 9) << 2);
    const b: f32 = bias == 0 ? 0 : load<f32>(bias + (<usize>c << 2));
    const yc = y + <usize>plane * planeY;
    if (!ASC_FEATURE_SIMD || OW < 4) depthwisePoints(scratch, wc, b, yc, OH, OW, SH, SW, pitch, storeAct, p0, p1);
    else if (SW == 1) depthwiseRowsStride1(scratch, wc, b, yc, OH, OW, SH, pitch, storeAct, p0, p1);
    else depthwiseRowsStride2(scratch, wc, b, yc, OH, OW, SH, pitch, storeAct, p0, p1);
    if (res != 0) addInPlace(yc, res + <usize>plane * planeY, OH * OW);
    if (res != 0 || (act != ACT_RELU && act != ACT_CLAMP)) actInPlace(yc, OH * OW, act, p0, p1);
  }
}

/**
 * Output rows narrower than this (SIMD build) fill too few lanes of a row vector (5 of 8 at KWS's 25x5, 3x3 planes
 * none), so depthwiseChannels vectorises across 4 channels instead: four padded planes (compiler/ops/linalg.ts's
 * depthwisePaddedFloats sizes the scratch for it).
 */
const CHANNEL_CELLS_BELOW: i32 = 8;

/**
 * Depthwise 3x3 with 4 channels in the lanes: each group of 4 planes is interleaved into a padded plane of
 * 4-channel cells, so every output is 9 vector multiply-adds with per-channel weight vectors wherever it lies,
 * and the outputs run in flat order (no ragged row ends). A last group of 1-3 channels repeats its last channel
 * in the spare lanes, which are computed and never stored.
 */
function depthwiseChannels(
  x: usize, w: usize, bias: usize, y: usize, N: i32, C: i32, H: i32, W: i32, OH: i32, OW: i32,
  SH: i32, SW: i32, PH: i32, PW: i32, act: i32, p0: f32, p1: f32, scratch: usize, res: usize, rows: i32, pitch: i32,
): void {
  if (!ASC_FEATURE_SIMD) return; // keeps the v128 code out of the scalar build
  const cellRow = <usize>pitch << 4;
  const planeX = <usize>(H * W) << 2;
  const P = OH * OW;
  const planeY = <usize>P << 2;
  const storeAct = res == 0 ? act : ACT_NONE;
  const count = <usize>max(0, min(W, pitch - PW)) << 2;
  const lastRow = min(H, rows - PH);
  const rowStep = <usize>SH * cellRow;
  const colStep = <usize>SW << 4;
  zeroFloats(scratch, rows * pitch * 4);
  for (let n = 0; n < N; n++) {
    for (let c0 = 0; c0 < C; c0 += 4) {
      const lanes = min(4, C - c0);
      const c1 = min(c0 + 1, C - 1), c2 = min(c0 + 2, C - 1), c3 = min(c0 + 3, C - 1);
      const xa = x + <usize>(n * C + c0) * planeX, xb = x + <usize>(n * C + c1) * planeX;
      const xc = x + <usize>(n * C + c2) * planeX, xd = x + <usize>(n * C + c3) * planeX;
      for (let ih = 0; ih < lastRow; ih++) {
        const off = <usize>(ih * W) << 2, end = off + count;
        let cell = scratch + <usize>(ih + PH) * cellRow + (<usize>PW << 4);
        let i = off;
        for (; i + 16 <= end; i += 16, cell += 64) {
          transposeStore(cell, 16, v128.load(xa + i), v128.load(xb + i), v128.load(xc + i), v128.load(xd + i), 4);
        }
        for (; i < end; i += 4, cell += 16) v128.store(cell, tapVec(xa, xb, xc, xd, i));
      }
      const wa = w + <usize>(c0 * 36), wb = w + <usize>(c1 * 36), wc = w + <usize>(c2 * 36), wd = w + <usize>(c3 * 36);
      const w0 = tapVec(wa, wb, wc, wd, 0), w1 = tapVec(wa, wb, wc, wd, 4), w2 = tapVec(wa, wb, wc, wd, 8);
      const w3 = tapVec(wa, wb, wc, wd, 12), w4 = tapVec(wa, wb, wc, wd, 16), w5 = tapVec(wa, wb, wc, wd, 20);
      const w6 = tapVec(wa, wb, wc, wd, 24), w7 = tapVec(wa, wb, wc, wd, 28), w8 = tapVec(wa, wb, wc, wd, 32);
      const bv = bias == 0 ? f32x4.splat(0) : tapVec(bias + (<usize>c0 << 2), bias + (<usize>c1 << 2), bias + (<usize>c2 << 2), bias + (<usize>c3 << 2), 0);
      const ya = y + <usize>(n * C + c0) * planeY;
      let rowStart = scratch;
      let r = scratch;
      let ow = 0;
      let f: usize = 0;
      const end = <usize>P << 2;
      // 4 outputs (4 channels each) at a time, transposed into 4 output vectors of one channel each
      for (; f + 16 <= end; f += 16) {
        const q0 = r;
        r += colStep;
        if (++ow == OW) { ow = 0; rowStart += rowStep; r = rowStart; }
        const q1 = r;
        r += colStep;
        if (++ow == OW) { ow = 0; rowStart += rowStep; r = rowStart; }
        const q2 = r;
        r += colStep;
        if (++ow == OW) { ow = 0; rowStart += rowStep; r = rowStart; }
        const q3 = r;
        r += colStep;
        if (++ow == OW) { ow = 0; rowStart += rowStep; r = rowStart; }
        const o0 = clampVec(cellOutput(q0, cellRow, bv, w0, w1, w2, w3, w4, w5, w6, w7, w8), storeAct, p0, p1);
        const o1 = clampVec(cellOutput(q1, cellRow, bv, w0, w1, w2, w3, w4, w5, w6, w7, w8), storeAct, p0, p1);
        const o2 = clampVec(cellOutput(q2, cellRow, bv, w0, w1, w2, w3, w4, w5, w6, w7, w8), storeAct, p0, p1);
        const o3 = clampVec(cellOutput(q3, cellRow, bv, w0, w1, w2, w3, w4, w5, w6, w7, w8), storeAct, p0, p1);
        transposeStore(ya + f, planeY, o0, o1, o2, o3, lanes);
      }
      for (; f < end; f += 4) {
        const a = clampVec(cellOutput(r, cellRow, bv, w0, w1, w2, w3, w4, w5, w6, w7, w8), storeAct, p0, p1);
        v128.store32_lane(ya + f, a, 0);
        if (lanes > 1) v128.store32_lane(ya + planeY + f, a, 1);
        if (lanes > 2) v128.store32_lane(ya + 2 * planeY + f, a, 2);
        if (lanes > 3) v128.store32_lane(ya + 3 * planeY + f, a, 3);
        r += colStep;
        if (++ow == OW) { ow = 0; rowStart += rowStep; r = rowStart; }
      }
      for (let l = 0; l < lanes; l++) {
        const yl = ya + <usize>l * planeY;
        if (res != 0) addInPlace(yl, res + (yl - y), P);
        if (res != 0 || (act != ACT_RELU && act != ACT_CLAMP)) actInPlace(yl, P, act, p0, p1);
      }
    }
  }
}

/** One output of 4 channels: its 3x3 window of cells from q (rows cellRow bytes apart) times the tap vectors. */
@inline function cellOutput(
  q: usize, cellRow: usize, bv: v128, w0: v128, w1: v128, w2: v128, w3: v128, w4: v128, w5: v128, w6: v128, w7: v128, w8: v128,
): v128 {
  const q1 = q + cellRow, q2 = q1 + cellRow;
  let a = madd(w0, v128.load(q), bv);
  a = madd(w1, v128.load(q, 16), a);
  a = madd(w2, v128.load(q, 32), a);
  a = madd(w3, v128.load(q1), a);
  a = madd(w4, v128.load(q1, 16), a);
  a = madd(w5, v128.load(q1, 32), a);
  a = madd(w6, v128.load(q2), a);
  a = madd(w7, v128.load(q2, 16), a);
  return madd(w8, v128.load(q2, 32), a);
}

/** The 4x4 transpose of rows v0..v3, its first `count` rows stored `step` bytes apart from p. */
@inline function transposeStore(p: usize, step: usize, v0: v128, v1: v128, v2: v128, v3: v128, count: i32): void {
  const t0 = f32x4.shuffle(v0, v1, 0, 4, 1, 5), t1 = f32x4.shuffle(v0, v1, 2, 6, 3, 7);
  const t2 = f32x4.shuffle(v2, v3, 0, 4, 1, 5), t3 = f32x4.shuffle(v2, v3, 2, 6, 3, 7);
  v128.store(p, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
  if (count > 1) v128.store(p + step, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
  if (count > 2) v128.store(p + 2 * step, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
  if (count > 3) v128.store(p + 3 * step, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
}

/** [a[k], b[k], c[k], d[k]] for a byte offset k: one weight tap (or bias) of 4 channels. */
@inline function tapVec(a: usize, b: usize, c: usize, d: usize, k: usize): v128 {
  let v = v128.load32_zero(a + k);
  v = v128.load32_lane(b + k, v, 1);
  v = v128.load32_lane(c + k, v, 2);
  return v128.load32_lane(d + k, v, 3);
}

// ReLU and clamp (ReLU6) are applied as the vectors are stored; the rest run over the finished plane, which
// keeps their vector math out of the unrolled row code (one copy instead of six).
@inline function clampVec(v: v128, act: i32, p0: f32, p1: f32): v128 {
  if (act == ACT_RELU) return f32x4.max(v, f32x4.splat(0));
  if (act == ACT_CLAMP) return f32x4.min(f32x4.max(v, f32x4.splat(p0)), f32x4.splat(p1));
  return v;
}

@inline function clampScalar(v: f32, act: i32, p0: f32, p1: f32): f32 {
  if (act == ACT_RELU) return max<f32>(v, 0);
  if (act == ACT_CLAMP) return min<f32>(max<f32>(v, p0), p1);
  return v;
}

/** Padded row length: every tap of the last output column, plus the element a stride-2 vector over-reads. */
@inline function paddedPitch(OW: i32, SW: i32): i32 {
  return (OW - 1) * SW + 3 + (SW == 2 ? 1 : 0);
}

/**
 * The plane's rows into a rows x pitch padded plane at (PH, PW), dropping whatever lies beyond the last tap.
 * The padding is zeroed once per call: every channel writes the same interior positions.
 */
function padPlane(src: usize, dst: usize, H: i32, W: i32, rows: i32, pitch: i32, PH: i32, PW: i32): void {
  const count = max(0, min(W, pitch - PW));
  const rowBytes = <usize>pitch << 2;
  for (let ih = 0, last = min(H, rows - PH); ih < last; ih++) {
    copyStrided(dst + <usize>(ih + PH) * rowBytes + (<usize>PW << 2), src + (<usize>(ih * W) << 2), count, 1);
  }
}

function depthwisePoints(
  xp: usize, wc: usize, b: f32, yc: usize, OH: i32, OW: i32, SH: i32, SW: i32, pitch: i32, act: i32, p0: f32, p1: f32,
): void {
  const row = <usize>pitch << 2;
  for (let oh = 0; oh < OH; oh++) {
    for (let ow = 0; ow < OW; ow++) {
      let acc = b;
      let px = xp + <usize>(oh * SH) * row + (<usize>(ow * SW) << 2);
      for (let kh = 0; kh < 3; kh++) {
        const wr = wc + <usize>(kh * 12);
        acc += load<f32>(wr) * load<f32>(px) + load<f32>(wr, 4) * load<f32>(px, 4) + load<f32>(wr, 8) * load<f32>(px, 8);
        px += row;
      }
      store<f32>(yc + (<usize>(oh * OW + ow) << 2), clampScalar(acc, act, p0, p1));
    }
  }
}

function depthwiseRowsStride1(xp: usize, wc: usize, b: f32, yc: usize, OH: i32, OW: i32, SH: i32, pitch: i32, act: i32, p0: f32, p1: f32): void {
  if (!ASC_FEATURE_SIMD) return; // keeps the v128 code out of the scalar build
  depthwiseRows(xp, wc, b, yc, OH, OW, SH, 1, pitch, act, p0, p1);
}

function depthwiseRowsStride2(xp: usize, wc: usize, b: f32, yc: usize, OH: i32, OW: i32, SH: i32, pitch: i32, act: i32, p0: f32, p1: f32): void {
  if (!ASC_FEATURE_SIMD) return;
  depthwiseRows(xp, wc, b, yc, OH, OW, SH, 2, pitch, act, p0, p1);
}

/** OW >= 4: each output row in vectors of 8, then of 4, the last one ending at the row's end. */
@inline function depthwiseRows(
  xp: usize, wc: usize, b: f32, yc: usize, OH: i32, OW: i32, SH: i32, sw: i32, pitch: i32, act: i32, p0: f32, p1: f32,
): void {
  const w0 = v128.load32_splat(wc), w1 = v128.load32_splat(wc + 4), w2 = v128.load32_splat(wc + 8);
  const w3 = v128.load32_splat(wc + 12), w4 = v128.load32_splat(wc + 16), w5 = v128.load32_splat(wc + 20);
  const w6 = v128.load32_splat(wc + 24), w7 = v128.load32_splat(wc + 28), w8 = v128.load32_splat(wc + 32);
  const bv = f32x4.splat(b);
  const row = <usize>pitch << 2;
  const half = <usize>sw << 4; // input bytes under 4 output columns
  for (let oh = 0; oh < OH; oh++) {
    const r0 = xp + <usize>(oh * SH) * row, r1 = r0 + row, r2 = r1 + row;
    const yr = yc + (<usize>(oh * OW) << 2);
    let ow = 0;
    for (; ow + 8 <= OW; ow += 8) {
      const off = <usize>(ow * sw) << 2;
      let a = bv, c = bv;
      a = madd(w0, loadStrided(r0 + off, sw), a); c = madd(w0, loadStrided(r0 + off + half, sw), c);
      a = madd(w1, loadStrided(r0 + off + 4, sw), a); c = madd(w1, loadStrided(r0 + off + half + 4, sw), c);
      a = madd(w2, loadStrided(r0 + off + 8, sw), a); c = madd(w2, loadStrided(r0 + off + half + 8, sw), c);
      a = madd(w3, loadStrided(r1 + off, sw), a); c = madd(w3, loadStrided(r1 + off + half, sw), c);
      a = madd(w4, loadStrided(r1 + off + 4, sw), a); c = madd(w4, loadStrided(r1 + off + half + 4, sw), c);
      a = madd(w5, loadStrided(r1 + off + 8, sw), a); c = madd(w5, loadStrided(r1 + off + half + 8, sw), c);
      a = madd(w6, loadStrided(r2 + off, sw), a); c = madd(w6, loadStrided(r2 + off + half, sw), c);
      a = madd(w7, loadStrided(r2 + off + 4, sw), a); c = madd(w7, loadStrided(r2 + off + half + 4, sw), c);
      a = madd(w8, loadStrided(r2 + off + 8, sw), a); c = madd(w8, loadStrided(r2 + off + half + 8, sw), c);
      v128.store(yr + (<usize>ow << 2), clampVec(a, act, p0, p1));
      v128.store(yr + (<usize>ow << 2), clampVec(c, act, p0, p1), 16);
    }
    for (; ow < OW; ow += 4) {
      if (ow + 4 > OW) ow = OW - 4; // overlaps outputs already stored, with the same values
      const off = <usize>(ow * sw) << 2;
      let a = bv;
      a = madd(w0, loadStrided(r0 + off, sw), a);
      a = madd(w1, loadStrided(r0 + off + 4, sw), a);
      a = madd(w2, loadStrided(r0 + off + 8, sw), a);
      a = madd(w3, loadStrided(r1 + off, sw), a);
      a = madd(w4, loadStrided(r1 + off + 4, sw), a);
      a = madd(w5, loadStrided(r1 + off + 8, sw), a);
      a = madd(w6, loadStrided(r2 + off, sw), a);
      a = madd(w7, loadStrided(r2 + off + 4, sw), a);
      a = madd(w8, loadStrided(r2 + off + 8, sw), a);
      v128.store(yr + (<usize>ow << 2), clampVec(a, act, p0, p1));
    }
  }
}

/**
 * conv2dIm2col on output pixels [first, end) of one image and one group (N == groups == 1), in blocks of up to
 * `tile` from `first`: a worker's share in the threaded build (compiler/codegen/threads.ts). `first` is a multiple
 * of 8, the GEMM tile's width, so every pixel's column takes the path it takes in the whole call (full 8-wide
 * tiles, and the same ragged tail at the plane's end), with the same bytes. (conv2dIm2col keeps its own loop: the
 * single-threaded blobs stay as they were.)
 */
export function conv2dIm2colPixels(
  x: usize, w: usize, bias: usize, y: usize,
  N: i32, C: i32, H: i32, W: i32, OC: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
  groups: i32, act: i32, p0: f32, p1: f32, scratch: usize, tile: i32, res: usize, first: i32, end: i32,
): void {
  if (N != 1 || groups != 1 || OC <= 0 || OH <= 0 || OW <= 0) return;
  const K = C * KH * KW;
  const P = OH * OW;
  setGeometry(C, H, W, OW, KH, KW, SH, SW, PH, PW, DH, DW);
  for (let q = first, stop = min(end, P); q < stop; q += tile) {
    const T = min(tile, stop - q);
    im2colBlock(x, scratch, q, T);
    const at = <usize>q << 2;
    gemm(w, scratch, y + at, bias, OC, T, K, K, T, P, bias == 0 ? BIAS_NONE : BIAS_ROW, act, p0, p1, res == 0 ? 0 : res + at);
  }
}
