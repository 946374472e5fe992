// TFLite's fixed-point requantization, the one copy every int8 kernel uses: an int32 accumulator times a
// real multiplier M = multiplier·2^(shift-31) (multiplier in [2^30, 2^31), from QuantizeMultiplier at
// compile time), as MultiplyByQuantizedMultiplier computes it: SaturatingRoundingDoublingHighMul, then a
// rounding right shift. The shift's ties go away from zero in TFLite's reference kernels (gemmlowp's
// RoundingDivideByPOT: TFLM everywhere, TFLite's ADD) and up in ruy and TFLite's builtin convolutions and
// fully connected: `roundUp` picks. Integer arithmetic only.

// Both roundings fold into one 64-bit step: floor(floor(t / 2^31) + n) / 2^e) = floor((t + n·2^31) / 2^(31+e))
// for t = a·b + 2^30 (the high multiply's nudge) and the shift's integer nudge n. The multiplier is positive
// (QuantizeMultiplier's), so the high multiply's one saturating case (MIN·MIN) never arises.

/** The shift's nudge 2^(e-1), times 2^31 (none without a shift). */
@inline function shiftNudge(exponent: i32): i64 {
  return exponent > 0 ? (<i64>1 << (30 + exponent)) : 0;
}

/** Ties away from zero nudge negative values one less: 2^31 taken off negative t (unless ties go up or there is no shift). */
@inline function negativeAdjust(exponent: i32, roundUp: bool): i64 {
  return roundUp || exponent == 0 ? 0 : <i64>1 << 31;
}

/** MultiplyByQuantizedMultiplier(x, multiplier, shift): x·M on TFLite's rounding (ties up when `roundUp`). */
@inline export function multiplyByQuantizedMultiplier(x: i32, multiplier: i32, shift: i32, roundUp: bool = false): i32 {
  const right = shift > 0 ? 0 : -shift;
  const t = <i64>(x << (shift > 0 ? shift : 0)) * <i64>multiplier + (1 << 30);
  return <i32>((t + shiftNudge(right) - (t < 0 ? negativeAdjust(right, roundUp) : 0)) >> (31 + right));
}

/**
 * Stores one int8 output: the accumulator requantized with the (multiplier, shift) pair at `rq`, plus the
 * output zero point, clamped to the fused activation's range [lo, hi].
 */
@inline export function storeRequantized(y: usize, acc: i32, rq: usize, outZp: i32, lo: i32, hi: i32, roundUp: bool): void {
  const v = multiplyByQuantizedMultiplier(acc, load<i32>(rq), load<i32>(rq, 4), roundUp) + outZp;
  store<i8>(y, <i8>min(hi, max(lo, v)));
}

/**
 * Stores 8 int8 outputs at y: the accumulators lo4 (outputs 0-3) and hi4 (4-7) requantized with one
 * channel's (multiplier, shift) at `rq`, as storeRequantized does each.
 */
@inline export function storeRequantized8(y: usize, lo4: v128, hi4: v128, rq: usize, outZp: i32, lo: i32, hi: i32, roundUp: bool): void {
  const multiplier = load<i32>(rq), shift = load<i32>(rq, 4);
  const zp = i32x4.splat(outZp);
  const a = i32x4.add(multiplyByQuantizedMultiplier4(lo4, multiplier, shift, roundUp), zp);
  const b = i32x4.add(multiplyByQuantizedMultiplier4(hi4, multiplier, shift, roundUp), zp);
  // the narrowings saturate, and [lo, hi] lies inside the int8 range: the same as clamping the i32 values
  const bytes = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.splat(0));
  v128.store64_lane(y, i8x16.min_s(i8x16.splat(<i8>hi), i8x16.max_s(i8x16.splat(<i8>lo), bytes)), 0);
}

/**
 * multiplyByQuantizedMultiplier on four i32 lanes: the high multiply on 64-bit products, doubled so that
 * floor(t / 2^31) is each product's upper half (no 64-bit shift, which SIMD lacks), then the rounding shift on
 * i32 lanes: ties up as (h >> e) + bit e−1 of h, away from zero as gemmlowp's RoundingDivideByPOT (remainder
 * against half the divisor, plus one for negative h). Neither can overflow.
 */
@inline export function multiplyByQuantizedMultiplier4(x: v128, multiplier: i32, shift: i32, roundUp: bool): v128 {
  const right = shift > 0 ? 0 : -shift;
  // (a left shift is rare: per-channel multipliers are below 1; V8 spends 3 instructions on a variable shift)
  const xs = shift > 0 ? i32x4.shl(x, shift) : x, m = i32x4.splat(multiplier), half = i64x2.splat(1 << 30);
  // |x·m| < 2^62, so the doubled sum stays inside i64
  const t0 = i64x2.shl(i64x2.add(i64x2.extmul_low_i32x4_s(xs, m), half), 1);
  const t1 = i64x2.shl(i64x2.add(i64x2.extmul_high_i32x4_s(xs, m), half), 1);
  const high = i32x4.shuffle(t0, t1, 1, 3, 5, 7);
  if (right == 0) return high;
  const quotient = i32x4.shr_s(high, right);
  if (roundUp) return i32x4.add(quotient, v128.and(i32x4.shr_s(high, right - 1), i32x4.splat(1)));
  const mask = (1 << right) - 1;
  const threshold = i32x4.sub(i32x4.splat(mask >> 1), i32x4.shr_s(high, 31));
  return i32x4.sub(quotient, i32x4.gt_s(v128.and(high, i32x4.splat(mask)), threshold));
}

// The scalar kernels' requantization with one channel's constants hoisted out of its loop over outputs (the
// same value as storeRequantized): x·M is t = (x << left)·multiplier + 2^30 shifted right by 31 + right, with
// both nudges and the ties-away adjustment folded into one of two constants picked by the sign of t.

/** the left shift of the channel's (multiplier, shift) at rq */
@inline export function requantLeft(rq: usize): i32 {
  return max(0, load<i32>(rq, 4));
}

/** the right shift: 31 + the channel's right shift */
@inline export function requantBits(rq: usize): i64 {
  return <i64>(31 + max(0, -load<i32>(rq, 4)));
}

/** what is added to (x << left)·multiplier when t is not negative (`negative` false) or negative */
@inline export function requantNudge(rq: usize, roundUp: bool, negative: bool): i64 {
  const right = max(0, -load<i32>(rq, 4));
  return (<i64>1 << 30) + shiftNudge(right) - (negative ? negativeAdjust(right, roundUp) : 0);
}

/** multiplyByQuantizedMultiplier(x, ·) on the channel's hoisted constants */
@inline export function requantize(x: i32, left: i32, multiplier: i64, bits: i64, nudge: i64, negativeNudge: i64): i32 {
  const product = <i64>(x << left) * multiplier;
  // t = product + 2^30 < 0
  return <i32>((product + (product < -(<i64>1 << 30) ? negativeNudge : nudge)) >> bits);
}

/** storeRequantized on the channel's hoisted constants */
@inline export function storeRequantizedWith(y: usize, acc: i32, left: i32, multiplier: i64, bits: i64, nudge: i64, negativeNudge: i64, outZp: i32, lo: i32, hi: i32): void {
  store<i8>(y, <i8>min(hi, max(lo, requantize(acc, left, multiplier, bits, nudge, negativeNudge) + outZp)));
}
