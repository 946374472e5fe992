// int8 element-wise kernels: TFLite's integer ADD, its int8 softmax, and (de)quantization.
import { multiplyByQuantizedMultiplier } from "./qcommon";

/**
 * TFLite's integer ADD on n elements: each input, minus its zero point and shifted left by `leftShift`
 * bits, is rescaled to a common scale by its (multiplier, shift); the sum is requantized to the output.
 */
export function qadd(
  a: usize, b: usize, y: usize, n: i32,
  aZp: i32, aMult: i32, aShift: i32, bZp: i32, bMult: i32, bShift: i32,
  outZp: i32, outMult: i32, outShift: i32, leftShift: i32, lo: i32, hi: i32,
): void {
  for (let i = 0; i < n; i++) {
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
