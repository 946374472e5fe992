// 2-D pooling over NC planes of H x W. Each output row: interior columns (every kw tap inside the
// row) 4 at a time in SIMD, the rest scalar with clipped windows. PH/PW are the top/left pads;
// bottom/right follow from OH/OW (ceil_mode overhang included).
import { ceilDiv, floorDiv, loadStrided } from "./common";

/** Padding never wins: a window with no input element gives -inf. NaN propagates. */
export function maxpool2d(
  x: usize, y: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32,
): void {
  const planeX = <usize>(H * W) << 2;
  const overRead = SW == 2 ? 1 : 0; // see loadStrided
  const owLo = min(OW, max(0, ceilDiv(PW, SW)));
  const owHi = min(OW - 1, floorDiv(W - 1 - overRead + PW - (KW - 1) * DW, SW));
  const rowStepX = <usize>(DH * W) << 2;
  const colStepX = <usize>DW << 2;
  for (let p = 0; p < NC; p++) {
    const xp = x + <usize>p * planeX;
    for (let oh = 0; oh < OH; oh++) {
      const ihTop = oh * SH - PH;
      const khLo = max(0, ceilDiv(-ihTop, DH));
      const khCount = max(0, min(KH - 1, floorDiv(H - 1 - ihTop, DH)) - khLo + 1);
      const xRow = xp + (<usize>((ihTop + khLo * DH) * W) << 2);
      const yRow = y + (<usize>((p * OH + oh) * OW) << 2);
      let ow = 0;
      if (ASC_FEATURE_SIMD) {
        for (ow = owLo; ow + 4 <= owHi + 1; ow += 4) {
          let m = f32x4.splat(-Infinity);
          let xh = xRow + (<usize>(ow * SW - PW) << 2);
          for (let kh = 0; kh < khCount; kh++) {
            let px = xh;
            for (let kw = 0; kw < KW; kw++) {
              m = f32x4.max(m, loadStrided(px, SW));
              px += colStepX;
            }
            xh += rowStepX;
          }
          v128.store(yRow + (<usize>ow << 2), m);
        }
        // scalar for everything the vector loop did not cover
        for (let o = 0; o < OW; o++) {
          if (o == owLo) o = ow;
          if (o >= OW) break;
          store<f32>(yRow + (<usize>o << 2), maxWindow(xRow, W, khCount, KW, o * SW - PW, DW, rowStepX));
        }
      } else {
        for (; ow < OW; ow++) {
          store<f32>(yRow + (<usize>ow << 2), maxWindow(xRow, W, khCount, KW, ow * SW - PW, DW, rowStepX));
        }
      }
    }
  }
}

/** Max over khCount rows from xRow and the kw taps of input column iwLeft that fall inside [0, W). */
@inline function maxWindow(xRow: usize, W: i32, khCount: i32, KW: i32, iwLeft: i32, DW: i32, rowStepX: usize): f32 {
  const kwLo = max(0, ceilDiv(-iwLeft, DW));
  const kwCount = max(0, min(KW - 1, floorDiv(W - 1 - iwLeft, DW)) - kwLo + 1);
  let m: f32 = -Infinity;
  let xh = xRow + (<usize>(iwLeft + kwLo * DW) << 2);
  for (let kh = 0; kh < khCount; kh++) {
    let px = xh;
    for (let kw = 0; kw < kwCount; kw++) {
      m = max(m, load<f32>(px));
      px += <usize>DW << 2;
    }
    xh += rowStepX;
  }
  return m;
}

/**
 * Divisor: with countIncludePad, the window positions inside the padded extent
 * [-PH0, H + PH1) x [-PW0, W + PW1); without, the positions inside the input (PyTorch / ONNX).
 */
export function avgpool2d(
  x: usize, y: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH0: i32, PW0: i32, PH1: i32, PW1: i32, countIncludePad: i32,
): void {
  const planeX = <usize>(H * W) << 2;
  const overRead = SW == 2 ? 1 : 0; // see loadStrided
  const owLo = min(OW, max(0, ceilDiv(PW0, SW)));
  const owHi = min(OW - 1, floorDiv(W - 1 - overRead + PW0 - (KW - 1), SW));
  const rowStepX = <usize>W << 2;
  for (let p = 0; p < NC; p++) {
    const xp = x + <usize>p * planeX;
    for (let oh = 0; oh < OH; oh++) {
      const hStart = oh * SH - PH0;
      const hEndPadded = min(hStart + KH, H + PH1);
      const ih0 = max(hStart, 0);
      const rows = max(0, min(hEndPadded, H) - ih0);
      const rowsCounted = countIncludePad ? hEndPadded - hStart : rows;
      const xRow = xp + (<usize>(ih0 * W) << 2);
      const yRow = y + (<usize>((p * OH + oh) * OW) << 2);
      let ow = 0;
      if (ASC_FEATURE_SIMD) {
        // interior columns: the whole kw window is inside the row, so it counts KW in both modes
        const divisor = f32x4.splat(<f32>(rowsCounted * KW));
        for (ow = owLo; ow + 4 <= owHi + 1; ow += 4) {
          let s = f32x4.splat(0);
          let xh = xRow + (<usize>(ow * SW - PW0) << 2);
          for (let kh = 0; kh < rows; kh++) {
            let px = xh;
            for (let kw = 0; kw < KW; kw++) {
              s = f32x4.add(s, loadStrided(px, SW));
              px += 4;
            }
            xh += rowStepX;
          }
          v128.store(yRow + (<usize>ow << 2), f32x4.div(s, divisor));
        }
        for (let o = 0; o < OW; o++) {
          if (o == owLo) o = ow;
          if (o >= OW) break;
          store<f32>(yRow + (<usize>o << 2), avgWindow(xRow, W, rows, rowsCounted, KW, o * SW - PW0, PW1, countIncludePad));
        }
      } else {
        for (; ow < OW; ow++) {
          store<f32>(yRow + (<usize>ow << 2), avgWindow(xRow, W, rows, rowsCounted, KW, ow * SW - PW0, PW1, countIncludePad));
        }
      }
    }
  }
}

@inline function avgWindow(
  xRow: usize, W: i32, rows: i32, rowsCounted: i32, KW: i32, wStart: i32, PW1: i32, countIncludePad: i32,
): f32 {
  const wEndPadded = min(wStart + KW, W + PW1);
  const iw0 = max(wStart, 0);
  const cols = max(0, min(wEndPadded, W) - iw0);
  const colsCounted = countIncludePad ? wEndPadded - wStart : cols;
  let s: f32 = 0;
  let xh = xRow + (<usize>iw0 << 2);
  for (let kh = 0; kh < rows; kh++) {
    for (let kw = 0; kw < cols; kw++) s += load<f32>(xh + (<usize>kw << 2));
    xh += <usize>W << 2;
  }
  return s / <f32>(rowsCounted * colsCounted);
}
