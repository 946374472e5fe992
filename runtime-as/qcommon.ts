// TFLite's fixed-point requantization, the one copy every int8 kernel uses: an int32 accumulator times a
// real multiplier M = multiplier·2^(shift-31) (multiplier in [2^30, 2^31), from QuantizeMultiplier at
// compile time), as MultiplyByQuantizedMultiplier computes it: SaturatingRoundingDoublingHighMul, then a
// rounding right shift. The shift's ties go away from zero in TFLite's reference kernels (gemmlowp's
// RoundingDivideByPOT: TFLM everywhere, TFLite's ADD) and up in ruy and TFLite's builtin convolutions and
// fully connected: `roundUp` picks. Integer arithmetic only.

/** (a·b·2) / 2^32 rounded half away from zero, saturating the one overflowing case (MIN·MIN). */
@inline export function roundingDoublingHighMul(a: i32, b: i32): i32 {
  if (a == i32.MIN_VALUE && b == i32.MIN_VALUE) return i32.MAX_VALUE;
  // (ab + nudge) / 2^31 truncated toward zero, with nudge ±2^30, equals the floor (ab + 2^30) >> 31 for every integer ab
  return <i32>((<i64>a * <i64>b + (1 << 30)) >> 31);
}

/** x / 2^exponent rounded half away from zero (exponent in [0, 31]). */
@inline export function roundingDivideByPOT(x: i32, exponent: i32): i32 {
  const mask = (1 << exponent) - 1;
  const remainder = x & mask;
  const threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/** x / 2^exponent rounded half up, as ruy's kernels shift (an overflowing nudge saturates to 2^(31-exponent)). */
@inline export function roundingShiftRightUp(x: i32, exponent: i32): i32 {
  if (exponent == 0) return x;
  const nudge = 1 << (exponent - 1);
  if (x > i32.MAX_VALUE - nudge) return 1 << (31 - exponent);
  return (x + nudge) >> exponent;
}

/** MultiplyByQuantizedMultiplier(x, multiplier, shift): x·M on TFLite's rounding (ties up when `roundUp`). */
@inline export function multiplyByQuantizedMultiplier(x: i32, multiplier: i32, shift: i32, roundUp: bool = false): i32 {
  const high = roundingDoublingHighMul(x << (shift > 0 ? shift : 0), multiplier);
  const right = shift > 0 ? 0 : -shift;
  return roundUp ? roundingShiftRightUp(high, right) : roundingDivideByPOT(high, right);
}

/**
 * Stores one int8 output: the accumulator requantized with the (multiplier, shift) pair at `rq`, plus the
 * output zero point, clamped to the fused activation's range [lo, hi].
 */
@inline export function storeRequantized(y: usize, acc: i32, rq: usize, outZp: i32, lo: i32, hi: i32, roundUp: bool): void {
  const v = multiplyByQuantizedMultiplier(acc, load<i32>(rq), load<i32>(rq, 4), roundUp) + outZp;
  store<i8>(y, <i8>min(hi, max(lo, v)));
}
