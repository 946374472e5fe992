// Small inline helpers shared by the window kernels (conv, pool).

/** Floor division for b > 0 and any sign of a (i32 `/` truncates toward zero). */
@inline export function floorDiv(a: i32, b: i32): i32 {
  if (b == 1) return a; // unit stride / dilation: skip the slow integer division
  const q = a / b;
  return q * b > a ? q - 1 : q;
}

@inline export function ceilDiv(a: i32, b: i32): i32 {
  return -floorDiv(-a, b);
}

/**
 * 4 f32 spaced `stride` elements apart, p the first. Stride 2 loads 8 and keeps the even lanes, so it
 * reads one element past the last lane: callers leave room for it. Only inside `if (ASC_FEATURE_SIMD)`.
 */
@inline export function loadStrided(p: usize, stride: i32): v128 {
  if (stride == 1) return v128.load(p);
  if (stride == 2) return f32x4.shuffle(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
  const s = <usize>stride << 2;
  let v = v128.load32_zero(p);
  v = v128.load32_lane(p + s, v, 1);
  v = v128.load32_lane(p + 2 * s, v, 2);
  return v128.load32_lane(p + 3 * s, v, 3);
}

/**
 * a·b + c on 4 lanes: one fused relaxed_madd in a relaxed-SIMD build (target wasm-relaxed), else a
 * multiply and an add. Only inside `if (ASC_FEATURE_SIMD)`.
 */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Python's %: the remainder takes the divisor's sign (integers and floats alike). */
@inline export function floorMod<T>(a: T, b: T): T {
  const r = a % b;
  return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}

/** An IEEE half bit pattern → its f32 value (exact): the half's bits shifted into f32 place, rescaled by 2^112. */
export function halfToFloat(h: u32): f32 {
  const sign = (h & 0x8000) << 16, magnitude = h & 0x7fff;
  // infinity and NaN keep an all-ones exponent (and NaN its payload)
  if (magnitude >= 0x7c00) return reinterpret<f32>(sign | 0x7f800000 | ((magnitude & 0x3ff) << 13));
  return reinterpret<f32>(reinterpret<u32>(reinterpret<f32>(magnitude << 13) * reinterpret<f32>(0x77800000)) | sign);
}

/** An f32 → the nearest half bit pattern, ties to even, overflow to infinity, NaN to a quiet NaN (numpy's astype). */
export function floatToHalf(x: f32): u32 {
  let bits = reinterpret<u32>(x);
  const sign = (bits >> 16) & 0x8000;
  bits &= 0x7fffffff;
  if (bits >= 0x47800000) return sign | (bits > 0x7f800000 ? 0x7e00 : 0x7c00); // |x| >= 2^16, infinity or NaN
  if (bits < 0x38800000) {
    // a half subnormal (|x| < 2^-14): adding 0.5 aligns the 10 mantissa bits at the bottom, rounded by the f32 add
    return sign | (reinterpret<u32>(reinterpret<f32>(bits) + reinterpret<f32>(0x3f000000)) - 0x3f000000);
  }
  // rebias the exponent and round the 13 dropped bits to nearest even; a carry moves into the exponent (up to infinity)
  return sign | ((bits + 0xc8000fff + ((bits >> 13) & 1)) >> 13);
}

/**
 * x rounded to a narrow float format (ONNX's float8 kinds, float4e2m1, bfloat16), ties to even: scaled in
 * f64 so the format's last place is 1, rounded, scaled back. Beyond `largest`, overflow 0 gives it, 1
 * infinity, 2 NaN; flags 1: zero is unsigned (fnuz), 2: NaN becomes -0 (a format without NaN).
 */
export function roundToFloatFormat(x: f32, mantissa: i32, minExponent: i32, largest: f32, overflow: i32, flags: i32): f32 {
  if (isNaN(x)) return flags & 2 ? -0.0 : x;
  const bits = reinterpret<u32>(x) & 0x7fffffff;
  const exponent = max<i32>(<i32>(bits >> 23) - 127, minExponent);
  // 2^(mantissa - exponent) as an f64 bit pattern
  const scale = reinterpret<f64>(<u64>(1023 + mantissa - exponent) << 52);
  let r: f64 = bits >= 0x7f800000 ? Infinity : nearest<f64>(<f64>reinterpret<f32>(bits) * scale) / scale;
  if (r > <f64>largest) r = overflow == 0 ? <f64>largest : overflow == 1 ? Infinity : NaN;
  if (r == 0 && (flags & 1)) return 0;
  return copysign<f32>(<f32>r, x);
}

/**
 * x rounded to float8e8m0 (a power of two 2^-127 … 2^127, or NaN) from its f32 exponent field, as onnx's
 * to_float8e8m0: mode 0 rounds up when any fraction bit is set, 1 down, 2 to nearest; saturate keeps 2^127
 * from rounding up into NaN. The sign is dropped.
 */
export function roundToE8m0(x: f32, mode: i32, saturate: i32): f32 {
  const bits = reinterpret<u32>(x);
  let exponent = (bits >> 23) & 0xff;
  if (exponent == 0xff) return NaN;
  const up = mode == 0 ? (bits & 0x7fffff) != 0 : mode == 2 ? (bits & 0x400000) != 0 && ((bits & 0x3fffff) != 0 || exponent > 0) : false;
  if (up && !(saturate && exponent == 0xfe)) exponent++;
  if (exponent == 0xff) return NaN;
  return exponent == 0 ? reinterpret<f32>(0x400000) : reinterpret<f32>(exponent << 23);
}
