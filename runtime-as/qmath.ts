// int8 element-wise kernels: TFLite's integer ADD and MUL, its int8 softmax, table lookups (LOGISTIC, TANH),
// MEAN, and (de)quantization.
import { multiplyByQuantizedMultiplier, multiplyByQuantizedMultiplier4 } from "./qcommon";

/**
 * TFLite's integer ADD on n elements: each input, minus its zero point and shifted left by `leftShift`
 * bits, is rescaled to a common scale by its (multiplier, shift); the sum is requantized to the output.
 * SIMD: 8 elements at a time (multiplyByQuantizedMultiplier4).
 */
export function qadd(
  a: usize, b: usize, y: usize, n: i32,
  aZp: i32, aMult: i32, aShift: i32, bZp: i32, bMult: i32, bShift: i32,
  outZp: i32, outMult: i32, outShift: i32, leftShift: i32, lo: i32, hi: i32,
): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const za = i16x8.splat(<i16>aZp), zb = i16x8.splat(<i16>bZp), zp = i32x4.splat(outZp);
    for (; i + 8 <= n; i += 8) {
      // x − zp fits i16; shifted left 20 bits it still fits i32 (TFLite's own bound)
      const da = i16x8.sub(v128.load8x8_s(a + <usize>i), za), db = i16x8.sub(v128.load8x8_s(b + <usize>i), zb);
      const sa0 = multiplyByQuantizedMultiplier4(i32x4.shl(i32x4.extend_low_i16x8_s(da), leftShift), aMult, aShift, false);
      const sa1 = multiplyByQuantizedMultiplier4(i32x4.shl(i32x4.extend_high_i16x8_s(da), leftShift), aMult, aShift, false);
      const sb0 = multiplyByQuantizedMultiplier4(i32x4.shl(i32x4.extend_low_i16x8_s(db), leftShift), bMult, bShift, false);
      const sb1 = multiplyByQuantizedMultiplier4(i32x4.shl(i32x4.extend_high_i16x8_s(db), leftShift), bMult, bShift, false);
      const v0 = i32x4.add(multiplyByQuantizedMultiplier4(i32x4.add(sa0, sb0), outMult, outShift, false), zp);
      const v1 = i32x4.add(multiplyByQuantizedMultiplier4(i32x4.add(sa1, sb1), outMult, outShift, false), zp);
      const bytes = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(v0, v1), i16x8.splat(0));
      v128.store64_lane(y + <usize>i, i8x16.min_s(i8x16.splat(<i8>hi), i8x16.max_s(i8x16.splat(<i8>lo), bytes)), 0);
    }
  }
  for (; i < n; i++) {
    const sa = multiplyByQuantizedMultiplier((<i32>load<i8>(a + <usize>i) - aZp) << leftShift, aMult, aShift);
    const sb = multiplyByQuantizedMultiplier((<i32>load<i8>(b + <usize>i) - bZp) << leftShift, bMult, bShift);
    const v = multiplyByQuantizedMultiplier(sa + sb, outMult, outShift) + outZp;
    store<i8>(y + <usize>i, <i8>min(hi, max(lo, v)));
  }
}

/**
 * TFLite's int8 softmax (its builtin kernel's lookup table): over each row of n, table[max − x] is
 * exp(−inputScale·β·(max − x)) as f32, summed in order; the output is round(table·1/(sum·outScale)) + zp.
 */
export function qsoftmax(x: usize, table: usize, y: usize, rows: i32, n: i32, outScale: f32, outZp: i32): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>(r * n), yr = y + <usize>(r * n);
    let m: i32 = -128;
    for (let j = 0; j < n; j++) m = max(m, <i32>load<i8>(xr + <usize>j));
    let sum: f32 = 0;
    for (let j = 0; j < n; j++) sum += load<f32>(table + (<usize>(m - <i32>load<i8>(xr + <usize>j)) << 2));
    const inv: f32 = <f32>1 / (sum * outScale);
    for (let j = 0; j < n; j++) {
      const p = load<f32>(table + (<usize>(m - <i32>load<i8>(xr + <usize>j)) << 2)) * inv;
      store<i8>(yr + <usize>j, <i8>min(127, max(-128, roundHalfAway(p) + outZp)));
    }
  }
}

/** float32 → int8: round(x / scale) (half away from zero) + zero point, saturated. */
export function quantize(x: usize, y: usize, n: i32, scale: f32, zp: i32): void {
  for (let i = 0; i < n; i++) {
    const q = roundHalfAway(load<f32>(x + (<usize>i << 2)) / scale) + zp;
    store<i8>(y + <usize>i, <i8>min(127, max(-128, q)));
  }
}

/** int8 → float32: (q − zero point)·scale. */
export function dequantize(x: usize, y: usize, n: i32, scale: f32, zp: i32): void {
  for (let i = 0; i < n; i++) store<f32>(y + (<usize>i << 2), <f32>(<i32>load<i8>(x + <usize>i) - zp) * scale);
}

/** Rounds half away from zero, saturating to the i32 range (NaN → 0). */
@inline function roundHalfAway(v: f32): i32 {
  const a = Mathf.abs(v);
  let r = Mathf.floor(a);
  if (a - r >= 0.5) r += 1;
  if (!(r < 2147483648.0)) return v != v ? 0 : v < 0 ? i32.MIN_VALUE : i32.MAX_VALUE;
  return v < 0 ? -<i32>r : <i32>r;
}

/** A unary int8 op by its 256-entry table (TFLite's int8 LOGISTIC and TANH): y = table[x + 128]. */
export function qlookup(x: usize, table: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<i8>(y + <usize>i, load<i8>(table + <usize>(<i32>load<i8>(x + <usize>i) + 128)));
}

/**
 * TFLite's integer MUL on n elements: (a − aZp)·(b − bZp) requantized to the output. b holds bn elements,
 * repeated along a (bn = n, or b is a's trailing dims).
 */
export function qmul(a: usize, b: usize, y: usize, n: i32, bn: i32, aZp: i32, bZp: i32, outZp: i32, multiplier: i32, shift: i32, lo: i32, hi: i32): void {
  for (let start = 0; start < n; start += bn) {
    for (let i = 0; i < bn; i++) {
      const at = <usize>(start + i);
      const product = (<i32>load<i8>(a + at) - aZp) * (<i32>load<i8>(b + <usize>i) - bZp);
      const v = multiplyByQuantizedMultiplier(product, multiplier, shift) + outZp;
      store<i8>(y + at, <i8>min(hi, max(lo, v)));
    }
  }
}

/**
 * TFLite's int8 MEAN over the middle axis of [outer, count, inner]: Σ x − inZp·count, requantized by
 * (multiplier, shift) (1/count folded in), plus outZp, saturated.
 */
export function qmean(x: usize, y: usize, outer: i32, count: i32, inner: i32, inZp: i32, outZp: i32, multiplier: i32, shift: i32): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let sum = -inZp * count;
      for (let r = 0; r < count; r++) sum += <i32>load<i8>(x + <usize>((o * count + r) * inner + i));
      const v = multiplyByQuantizedMultiplier(sum, multiplier, shift) + outZp;
      store<i8>(y + <usize>(o * inner + i), <i8>min(127, max(-128, v)));
    }
  }
}
