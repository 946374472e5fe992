// Reductions over the middle axis of an [outer, R, inner] view of contiguous f32.
// inner == 1 reduces contiguous rows (vectorised along R, lanes combined at the end); inner > 1
// vectorises across `inner`, walking R with stride `inner`. Sums and products accumulate in f64: a
// cancelling f32 sum of 1000 terms can lose 4+ digits, and the f64 path costs little next to loads.
import { expScalar, expVec, logScalar, logVec } from "./vmath";

export const REDUCE_SUM: i32 = 0;
export const REDUCE_MEAN: i32 = 1;
export const REDUCE_MAX: i32 = 2;
export const REDUCE_MIN: i32 = 3;
export const REDUCE_PROD: i32 = 4;
export const REDUCE_SUM_SQUARE: i32 = 5;
export const REDUCE_L1: i32 = 6;
export const REDUCE_LOG_SUM_EXP: i32 = 7;

export function reduce(x: usize, y: usize, outer: i32, R: i32, inner: i32, kind: i32): void {
  const rowBytes = <usize>R * <usize>inner << 2;
  const op = kind == REDUCE_MEAN ? REDUCE_SUM : kind;
  const divisor: f64 = kind == REDUCE_MEAN ? <f64>R : 1.0;
  for (let o = 0; o < outer; o++) {
    const xo = x + <usize>o * rowBytes;
    const yo = y + (<usize>(o * inner) << 2);
    if (op == REDUCE_LOG_SUM_EXP) {
      if (inner == 1) store<f32>(yo, logSumExpRow(xo, R));
      else logSumExpColumns(xo, yo, R, inner);
    } else if (op == REDUCE_MAX || op == REDUCE_MIN) {
      if (inner == 1) store<f32>(yo, extremeRow(xo, R, op == REDUCE_MAX));
      else extremeColumns(xo, yo, R, inner, op == REDUCE_MAX);
    } else if (inner == 1) {
      store<f32>(yo, <f32>(accumulateRow(xo, R, op) / divisor));
    } else {
      accumulateColumns(xo, yo, R, inner, op, divisor);
    }
  }
}

// ---- max / min: exact in f32, NaN propagates ----------------------------------------------------

function extremeRow(p: usize, R: i32, isMax: bool): f32 {
  const end = p + (<usize>R << 2);
  let m: f32 = isMax ? -Infinity : Infinity;
  if (ASC_FEATURE_SIMD) {
    let a0 = f32x4.splat(m), a1 = a0;
    for (; p + 32 <= end; p += 32) {
      a0 = isMax ? f32x4.max(a0, v128.load(p)) : f32x4.min(a0, v128.load(p));
      a1 = isMax ? f32x4.max(a1, v128.load(p, 16)) : f32x4.min(a1, v128.load(p, 16));
    }
    if (p + 16 <= end) {
      a0 = isMax ? f32x4.max(a0, v128.load(p)) : f32x4.min(a0, v128.load(p));
      p += 16;
    }
    a0 = isMax ? f32x4.max(a0, a1) : f32x4.min(a0, a1);
    // fold the high pair onto the low pair, then lane 1 onto lane 0
    a1 = i32x4.shuffle(a0, a0, 2, 3, 2, 3);
    a0 = isMax ? f32x4.max(a0, a1) : f32x4.min(a0, a1);
    a1 = i32x4.shuffle(a0, a0, 1, 1, 1, 1);
    m = f32x4.extract_lane(isMax ? f32x4.max(a0, a1) : f32x4.min(a0, a1), 0);
  }
  for (; p < end; p += 4) m = isMax ? max(m, load<f32>(p)) : min(m, load<f32>(p));
  return m;
}

function extremeColumns(x: usize, y: usize, R: i32, inner: i32, isMax: bool): void {
  const stride = <usize>inner << 2;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= inner; i += 4) {
      let m = f32x4.splat(isMax ? -Infinity : Infinity);
      let p = x + (<usize>i << 2);
      for (let r = 0; r < R; r++, p += stride) m = isMax ? f32x4.max(m, v128.load(p)) : f32x4.min(m, v128.load(p));
      v128.store(y + (<usize>i << 2), m);
    }
  }
  for (; i < inner; i++) {
    let m: f32 = isMax ? -Infinity : Infinity;
    let p = x + (<usize>i << 2);
    for (let r = 0; r < R; r++, p += stride) m = isMax ? max(m, load<f32>(p)) : min(m, load<f32>(p));
    store<f32>(y + (<usize>i << 2), m);
  }
}

// ---- sum, sum of squares, L1, product: f64 accumulators ---------------------------------------

@inline function combine64(acc: f64, v: f64, op: i32): f64 {
  if (op == REDUCE_PROD) return acc * v;
  if (op == REDUCE_SUM_SQUARE) return acc + v * v;
  if (op == REDUCE_L1) return acc + abs(v);
  return acc + v;
}

@inline function combine64x2(acc: v128, v: v128, op: i32): v128 {
  if (op == REDUCE_PROD) return f64x2.mul(acc, v);
  if (op == REDUCE_SUM_SQUARE) return f64x2.add(acc, f64x2.mul(v, v));
  if (op == REDUCE_L1) return f64x2.add(acc, f64x2.abs(v));
  return f64x2.add(acc, v);
}

/** Partial results merge by + (sum, squares, L1) or by * (product). */
@inline function merge64(a: f64, b: f64, op: i32): f64 {
  return op == REDUCE_PROD ? a * b : a + b;
}

@inline function highHalf(v: v128): v128 {
  return i32x4.shuffle(v, v, 2, 3, 2, 3);
}

function accumulateRow(p: usize, R: i32, op: i32): f64 {
  const end = p + (<usize>R << 2);
  let acc: f64 = op == REDUCE_PROD ? 1 : 0;
  if (ASC_FEATURE_SIMD) {
    let lo = f64x2.splat(acc), hi = lo;
    for (; p + 16 <= end; p += 16) {
      const v = v128.load(p);
      lo = combine64x2(lo, f64x2.promote_low_f32x4(v), op);
      hi = combine64x2(hi, f64x2.promote_low_f32x4(highHalf(v)), op);
    }
    acc = merge64(merge64(f64x2.extract_lane(lo, 0), f64x2.extract_lane(lo, 1), op), merge64(f64x2.extract_lane(hi, 0), f64x2.extract_lane(hi, 1), op), op);
  }
  for (; p < end; p += 4) acc = combine64(acc, <f64>load<f32>(p), op);
  return acc;
}

/** y[i] = (op over r of x[r * inner + i]) / divisor, for i < inner. */
function accumulateColumns(x: usize, y: usize, R: i32, inner: i32, op: i32, divisor: f64): void {
  const stride = <usize>inner << 2;
  const start: f64 = op == REDUCE_PROD ? 1 : 0;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const div = f64x2.splat(divisor);
    for (; i + 4 <= inner; i += 4) {
      let lo = f64x2.splat(start), hi = lo;
      let p = x + (<usize>i << 2);
      for (let r = 0; r < R; r++, p += stride) {
        const v = v128.load(p);
        lo = combine64x2(lo, f64x2.promote_low_f32x4(v), op);
        hi = combine64x2(hi, f64x2.promote_low_f32x4(highHalf(v)), op);
      }
      lo = f32x4.demote_f64x2_zero(f64x2.div(lo, div));
      hi = f32x4.demote_f64x2_zero(f64x2.div(hi, div));
      v128.store(y + (<usize>i << 2), i32x4.shuffle(lo, hi, 0, 1, 4, 5));
    }
  }
  for (; i < inner; i++) {
    let acc = start;
    let p = x + (<usize>i << 2);
    for (let r = 0; r < R; r++, p += stride) acc = combine64(acc, <f64>load<f32>(p), op);
    store<f32>(y + (<usize>i << 2), <f32>(acc / divisor));
  }
}

// log(sum exp x) = m + log(sum exp(x - m)) with m = max: nothing overflows. When m is +-inf the
// shift is 0 instead (inf - inf would be NaN): all -inf gives log 0 = -inf, any +inf gives +inf.

function logSumExpRow(x: usize, R: i32): f32 {
  const m = extremeRow(x, R, true);
  const shift: f32 = abs(m) == Infinity ? 0 : m;
  const end = x + (<usize>R << 2);
  let s: f32 = 0;
  let p = x;
  if (ASC_FEATURE_SIMD) {
    let acc = f32x4.splat(0);
    const shiftVec = f32x4.splat(shift);
    for (; p + 16 <= end; p += 16) acc = f32x4.add(acc, expVec(f32x4.sub(v128.load(p), shiftVec)));
    s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  }
  for (; p < end; p += 4) s += expScalar(load<f32>(p) - shift);
  return logScalar(s) + shift;
}

function logSumExpColumns(x: usize, y: usize, R: i32, inner: i32): void {
  const stride = <usize>inner << 2;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= inner; i += 4) {
      const first = x + (<usize>i << 2);
      let m = f32x4.splat(-Infinity);
      let p = first;
      for (let r = 0; r < R; r++) {
        m = f32x4.max(m, v128.load(p));
        p += stride;
      }
      const shift = v128.bitselect(f32x4.splat(0), m, f32x4.eq(f32x4.abs(m), f32x4.splat(Infinity)));
      let s = f32x4.splat(0);
      p = first;
      for (let r = 0; r < R; r++) {
        s = f32x4.add(s, expVec(f32x4.sub(v128.load(p), shift)));
        p += stride;
      }
      v128.store(y + (<usize>i << 2), f32x4.add(logVec(s), shift));
    }
  }
  for (; i < inner; i++) {
    const first = x + (<usize>i << 2);
    let m: f32 = -Infinity;
    let p = first;
    for (let r = 0; r < R; r++) {
      m = max(m, load<f32>(p));
      p += stride;
    }
    const shift: f32 = abs(m) == Infinity ? 0 : m;
    let s: f32 = 0;
    p = first;
    for (let r = 0; r < R; r++) {
      s += expScalar(load<f32>(p) - shift);
      p += stride;
    }
    store<f32>(y + (<usize>i << 2), logScalar(s) + shift);
  }
}

/** Index of the max (isMin: min) along R >= 1 into i32 y; first on ties unless selectLast. NaN counts
 * as the extreme (like PyTorch): the first NaN wins, or the last one with selectLast. */
export function argreduce(x: usize, y: usize, outer: i32, R: i32, inner: i32, isMin: i32, selectLast: i32): void {
  if (R <= 0) return;
  const stride = <usize>inner << 2;
  for (let o = 0; o < outer; o++) {
    const xo = x + <usize>o * <usize>R * stride;
    const yo = y + (<usize>(o * inner) << 2);
    let i = 0;
    if (ASC_FEATURE_SIMD) {
      for (; i + 4 <= inner; i += 4) {
        let p = xo + (<usize>i << 2);
        let best = v128.load(p);
        let bestIndex = i32x4.splat(0);
        for (let r = 1; r < R; r++) {
          p += stride;
          const v = v128.load(p);
          let wins = isMin ? f32x4.lt(v, best) : f32x4.gt(v, best);
          if (selectLast) wins = v128.or(wins, f32x4.eq(v, best));
          const vNaN = f32x4.ne(v, v);
          const bestNaN = f32x4.ne(best, best);
          // a NaN beats any number; NaN vs NaN follows the tie rule; a number never beats a NaN
          wins = v128.or(v128.andnot(wins, bestNaN), v128.and(vNaN, selectLast ? i32x4.splat(-1) : v128.not(bestNaN)));
          best = v128.bitselect(v, best, wins);
          bestIndex = v128.bitselect(i32x4.splat(r), bestIndex, wins);
        }
        v128.store(yo + (<usize>i << 2), bestIndex);
      }
    }
    for (; i < inner; i++) {
      let p = xo + (<usize>i << 2);
      let best = load<f32>(p);
      let bestIndex = 0;
      for (let r = 1; r < R; r++) {
        p += stride;
        const v = load<f32>(p);
        let wins = isMin ? v < best : v > best;
        if (selectLast && v == best) wins = true;
        if (best != best) wins = selectLast != 0 && v != v;
        else if (v != v) wins = true;
        if (wins) {
          best = v;
          bestIndex = r;
        }
      }
      store<i32>(yo + (<usize>i << 2), bestIndex);
    }
  }
}
