// Pooling backward: one pass over the windows writes dL/dx from dL/dy, with no per-tap tensors.
// Geometry as in ./pool (PH/PW top/left pads; windows clipped to the input).
import { ceilDiv, floorDiv, loadStrided } from "./common";

/**
 * dL/dx of max pooling: each window's gradient goes to the element the forward chose, PyTorch's rule:
 * the first maximum in scan order, a NaN wins (the last one), a window of -inf sends it to its first
 * element. Overlapping windows accumulate. SIMD: the argmax of 4 neighbouring interior windows at once.
 */
export function maxpool2dBackward(
  x: usize, gy: usize, gx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
): void {
  memory.fill(gx, 0, <usize>(NC * H * W) << 2);
  maxWindows(x, gy, gx, 0, 0, NC, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW);
}

/**
 * Max pooling that also writes, per output, the plane offset of the element it chose (as
 * maxpool2dBackward chooses), as i16 when indexBytes is 2 (planes up to 32767 elements), else i32:
 * the backward pass then needs these indices instead of the input.
 */
export function maxpool2dArgmax(
  x: usize, y: usize, indices: usize, indexBytes: i32, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
): void {
  maxWindows(x, y, 0, indices, indexBytes, NC, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW);
}

/**
 * dL/dx of max pooling from maxpool2dArgmax's indices: gx[plane, indices[o]] += gy[o]; with `y` (the
 * pooled values) non-zero, only where y[o] > 0 (an index of -1, a window with no input element, adds nothing): a ReLU before the pooling, whose mask at the chosen
 * element is exactly that.
 */
export function maxpool2dScatter(indices: usize, indexBytes: i32, gy: usize, y: usize, gx: usize, NC: i32, planeIn: i32, planeOut: i32): void {
  memory.fill(gx, 0, <usize>(NC * planeIn) << 2);
  for (let p = 0; p < NC; p++) {
    const gp = gx + (<usize>(p * planeIn) << 2);
    for (let o = p * planeOut, end = o + planeOut; o < end; o++) {
      const at = <usize>o << 2;
      const element = indexBytes == 2 ? <i32>load<i16>(indices + (at >> 1)) : load<i32>(indices + at);
      if (element < 0 || (y && !(load<f32>(y + at) > 0))) continue;
      addAt(gp, element, load<f32>(gy + at));
    }
  }
}

/**
 * Visits every window's choice: with gx, adds gy[o] at it; else stores the maximum in out[o] (gy is
 * then the pooled output) and its plane offset in indices[o].
 */
@inline function maxWindows(
  x: usize, gy: usize, gx: usize, indices: usize, indexBytes: i32, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
): void {
  const plane = H * W;
  const overRead = SW == 2 ? 1 : 0; // see loadStrided
  const owLo = min(OW, max(0, ceilDiv(PW, SW)));
  const owHi = min(OW - 1, floorDiv(W - 1 - overRead + PW - (KW - 1) * DW, SW));
  const twoByTwo = KH == 2 && KW == 2 && SW == 2 && DW == 1 && DH == 1;
  const owHi2x2 = min(OW - 1, floorDiv(W - 2 + PW, 2));
  for (let p = 0; p < NC; p++) {
    const xp = x + (<usize>(p * plane) << 2), gp = gx + (<usize>(p * plane) << 2);
    for (let oh = 0; oh < OH; oh++) {
      const ihTop = oh * SH - PH;
      const khLo = max(0, ceilDiv(-ihTop, DH));
      const khCount = max(0, min(KH - 1, floorDiv(H - 1 - ihTop, DH)) - khLo + 1);
      const rowStart = (ihTop + khLo * DH) * W; // element offset of the window's first row in the plane
      const row = <usize>((p * OH + oh) * OW) << 2;
      let ow = 0;
      if (ASC_FEATURE_SIMD) {
        if (khCount > 0) {
          // 2×2 windows at stride 2 (the usual pooling) read exactly their rows' [first, first + 8): no over-read, so
          // the windows up to the last one inside the row are vector windows, the last four (overlapping those before
          // them) rewritten when they are not a multiple of four: with indices that is idempotent, unlike adding to gx
          const fast = twoByTwo && khCount == 2;
          const hi = fast ? owHi2x2 : owHi;
          for (ow = owLo; ow + 4 <= hi + 1; ow += 4) fourWindows(xp, gp, gy, indices, indexBytes, row + (<usize>ow << 2), rowStart + ow * SW - PW, W, khCount, KW, SW, DH, DW, fast);
          if (fast && !gx && ow <= hi && hi - 3 >= owLo) {
            fourWindows(xp, gp, gy, indices, indexBytes, row + (<usize>(hi - 3) << 2), rowStart + (hi - 3) * SW - PW, W, khCount, KW, SW, DH, DW, fast);
            ow = hi + 1;
          }
        }
        for (let o = 0; o < OW; o++) {
          if (o == owLo && ow > owLo) o = ow;
          if (o >= OW) break;
          maxWindow(xp, gp, gy, indices, indexBytes, row + (<usize>o << 2), rowStart, W, khCount, KW, o * SW - PW, DH, DW);
        }
      } else {
        for (; ow < OW; ow++) maxWindow(xp, gp, gy, indices, indexBytes, row + (<usize>ow << 2), rowStart, W, khCount, KW, ow * SW - PW, DH, DW);
      }
    }
  }
}

/** Four neighbouring windows starting at element `first` (outputs at byte offset `o`), handled as in maxWindows. */
@inline function fourWindows(
  xp: usize, gp: usize, gy: usize, indices: usize, indexBytes: i32, o: usize, first: i32, W: i32, khCount: i32, KW: i32, SW: i32, DH: i32, DW: i32, twoByTwo: bool,
): void {
  const lanes = i32x4(0, SW, 2 * SW, 3 * SW);
  let best = f32x4.splat(-Infinity);
  let at = i32x4.add(i32x4.splat(first), lanes);
  if (twoByTwo) {
    const top = xp + (<usize>first << 2), bottom = top + (<usize>W << 2);
    const a = v128.load(top), b = v128.load(top, 16), c = v128.load(bottom), d = v128.load(bottom, 16);
    // the first tap always wins against -inf or ties it (as maxWindow's loop would)
    best = f32x4.shuffle(a, b, 0, 2, 4, 6);
    let v = f32x4.shuffle(a, b, 1, 3, 5, 7);
    let wins = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
    best = v128.bitselect(v, best, wins);
    at = v128.bitselect(i32x4.add(at, i32x4.splat(1)), at, wins);
    const atBottom = i32x4.add(i32x4.splat(first + W), lanes);
    v = f32x4.shuffle(c, d, 0, 2, 4, 6);
    wins = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
    best = v128.bitselect(v, best, wins);
    at = v128.bitselect(atBottom, at, wins);
    v = f32x4.shuffle(c, d, 1, 3, 5, 7);
    wins = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
    best = v128.bitselect(v, best, wins);
    at = v128.bitselect(i32x4.add(atBottom, i32x4.splat(1)), at, wins);
  } else {
    for (let kh = 0; kh < khCount; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const offset = first + kh * DH * W + kw * DW;
        const v = loadStrided(xp + (<usize>offset << 2), SW);
        const wins = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
        best = v128.bitselect(v, best, wins);
        at = v128.bitselect(i32x4.add(i32x4.splat(offset), lanes), at, wins);
      }
    }
  }
  if (indices) {
    v128.store(gy + o, best);
    if (indexBytes == 2) v128.store64_lane(indices + (o >> 1), i16x8.narrow_i32x4_s(at, at), 0);
    else v128.store(indices + o, at);
  } else {
    const g = v128.load(gy + o);
    addAt(gp, i32x4.extract_lane(at, 0), f32x4.extract_lane(g, 0));
    addAt(gp, i32x4.extract_lane(at, 1), f32x4.extract_lane(g, 1));
    addAt(gp, i32x4.extract_lane(at, 2), f32x4.extract_lane(g, 2));
    addAt(gp, i32x4.extract_lane(at, 3), f32x4.extract_lane(g, 3));
  }
}

@inline function addAt(plane: usize, element: i32, value: f32): void {
  const p = plane + (<usize>element << 2);
  store<f32>(p, load<f32>(p) + value);
}

/** One clipped window (taps inside [0, W)): its choice, handled as in maxWindows; `o` is the output's byte offset. */
@inline function maxWindow(
  xp: usize, gp: usize, gy: usize, indices: usize, indexBytes: i32, o: usize, rowStart: i32, W: i32, khCount: i32, KW: i32, iwLeft: i32, DH: i32, DW: i32,
): void {
  const kwLo = max(0, ceilDiv(-iwLeft, DW));
  const kwCount = max(0, min(KW - 1, floorDiv(W - 1 - iwLeft, DW)) - kwLo + 1);
  const first = rowStart + iwLeft + kwLo * DW;
  let best: f32 = -Infinity;
  let at = first;
  for (let kh = 0; kh < khCount; kh++) {
    for (let kw = 0; kw < kwCount; kw++) {
      const offset = first + kh * DH * W + kw * DW;
      const v = load<f32>(xp + (<usize>offset << 2));
      if (v > best || isNaN(v)) {
        best = v;
        at = offset;
      }
    }
  }
  if (indices) {
    store<f32>(gy + o, best);
    const index = khCount > 0 && kwCount > 0 ? at : -1;
    if (indexBytes == 2) store<i16>(indices + (o >> 1), <i16>index);
    else store<i32>(indices + o, index);
  } else if (khCount > 0 && kwCount > 0) {
    addAt(gp, at, load<f32>(gy + o));
  }
}

/**
 * dL/dx of average pooling: each window adds dL/dy divided by its count (as in ./pool's avgpool2d) to
 * every input element it covers. SIMD, at stride 1: 4 neighbouring interior windows' shares added to 4
 * consecutive elements per tap.
 */
export function avgpool2dBackward(
  gy: usize, gx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH0: i32, PW0: i32, PH1: i32, PW1: i32, countIncludePad: i32,
): void {
  const plane = H * W;
  memory.fill(gx, 0, <usize>(NC * plane) << 2);
  const owLo = min(OW, max(0, PW0));
  const owHi = min(OW - 1, W - KW + PW0);
  for (let p = 0; p < NC; p++) {
    const gp = gx + (<usize>(p * plane) << 2);
    for (let oh = 0; oh < OH; oh++) {
      const hStart = oh * SH - PH0;
      const hEndPadded = min(hStart + KH, H + PH1);
      const ih0 = max(hStart, 0);
      const rows = max(0, min(hEndPadded, H) - ih0);
      const rowsCounted = countIncludePad ? hEndPadded - hStart : rows;
      const gRow = gp + (<usize>(ih0 * W) << 2);
      const gyRow = gy + (<usize>((p * OH + oh) * OW) << 2);
      let ow = 0;
      if (ASC_FEATURE_SIMD) {
        if (SW == 1 && rows > 0) {
          // interior columns: the whole kw window is inside the row, so it counts KW in both modes
          const divisor = f32x4.splat(<f32>(rowsCounted * KW));
          for (ow = owLo; ow + 4 <= owHi + 1; ow += 4) {
            const share = f32x4.div(v128.load(gyRow + (<usize>ow << 2)), divisor);
            let row = gRow + (<usize>(ow - PW0) << 2);
            for (let kh = 0; kh < rows; kh++) {
              for (let kw = 0; kw < KW; kw++) {
                const q = row + (<usize>kw << 2);
                v128.store(q, f32x4.add(v128.load(q), share));
              }
              row += <usize>W << 2;
            }
          }
        }
        for (let o = 0; o < OW; o++) {
          if (o == owLo && ow > owLo) o = ow;
          if (o >= OW) break;
          avgWindowBackward(gRow, load<f32>(gyRow + (<usize>o << 2)), W, rows, rowsCounted, KW, o * SW - PW0, PW1, countIncludePad);
        }
      } else {
        for (; ow < OW; ow++) avgWindowBackward(gRow, load<f32>(gyRow + (<usize>ow << 2)), W, rows, rowsCounted, KW, ow * SW - PW0, PW1, countIncludePad);
      }
    }
  }
}

@inline function avgWindowBackward(
  gRow: usize, g: f32, W: i32, rows: i32, rowsCounted: i32, KW: i32, wStart: i32, PW1: i32, countIncludePad: i32,
): void {
  const wEndPadded = min(wStart + KW, W + PW1);
  const iw0 = max(wStart, 0);
  const cols = max(0, min(wEndPadded, W) - iw0);
  const colsCounted = countIncludePad ? wEndPadded - wStart : cols;
  const share = g / <f32>(rowsCounted * colsCounted);
  let row = gRow + (<usize>iw0 << 2);
  for (let kh = 0; kh < rows; kh++) {
    for (let kw = 0; kw < cols; kw++) {
      const q = row + (<usize>kw << 2);
      store<f32>(q, load<f32>(q) + share);
    }
    row += <usize>W << 2;
  }
}
