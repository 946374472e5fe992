// Transcendentals for f32 in two shapes: `fooScalar(x: f32): f32` and `fooVec(x: v128): v128` (4 lanes).
// Both shapes run the same range reduction and polynomials (Cephes single-precision), so a SIMD loop's
// scalar tail gives bit-identical results to its vector body. Vec versions may only be called inside
// `if (ASC_FEATURE_SIMD)` branches. Accuracy: a few ulp (<= 2e-6 relative) over the whole f32 range,
// saturating to 0 / 1 / inf where the true result does, NaN in -> NaN out.

// ---- exp ------------------------------------------------------------------------------------------

const LOG2E: f32 = 1.44269504088896341;
// ln2 split for Cody-Waite reduction: LN2_HI has few mantissa bits so n * LN2_HI is exact.
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
// Beyond these the result is inf / 0 in f32 anyway; clamping keeps 2^n within the scale trick below.
const EXP_MAX_ARG: f32 = 88.8;
const EXP_MIN_ARG: f32 = -104.0;
const EXP_P0: f32 = 1.9875691500e-4;
const EXP_P1: f32 = 1.3981999507e-3;
const EXP_P2: f32 = 8.3334519073e-3;
const EXP_P3: f32 = 4.1665795894e-2;
const EXP_P4: f32 = 1.6666665459e-1;
const EXP_P5: f32 = 5.0000001201e-1;

@inline export function expScalar(x: f32): f32 {
  x = min(max(x, EXP_MIN_ARG), EXP_MAX_ARG);
  const n = nearest<f32>(x * LOG2E);
  const r = x - n * LN2_HI - n * LN2_LO;
  let p = EXP_P0;
  p = p * r + EXP_P1;
  p = p * r + EXP_P2;
  p = p * r + EXP_P3;
  p = p * r + EXP_P4;
  p = p * r + EXP_P5;
  const y = p * (r * r) + r + 1.0;
  // 2^n as two normal factors: n ranges over [-150, 128], which a single biased exponent cannot hold,
  // and this way subnormal results round correctly and overflow lands on inf.
  const ni = <i32>n;
  const half = ni >> 1;
  return y * reinterpret<f32>((half + 127) << 23) * reinterpret<f32>((ni - half + 127) << 23);
}

@inline export function expVec(x: v128): v128 {
  x = f32x4.max(f32x4.min(x, f32x4.splat(EXP_MAX_ARG)), f32x4.splat(EXP_MIN_ARG));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.add(f32x4.mul(f32x4.splat(EXP_P0), r), f32x4.splat(EXP_P1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_P2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_P3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_P4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_P5));
  const y = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1.0));
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const half = i32x4.shr_s(ni, 1);
  const bias = i32x4.splat(127);
  const scale0 = i32x4.shl(i32x4.add(half, bias), 23);
  const scale1 = i32x4.shl(i32x4.add(i32x4.sub(ni, half), bias), 23);
  return f32x4.mul(f32x4.mul(y, scale0), scale1);
}

// ---- log ------------------------------------------------------------------------------------------

const SQRT_HALF: f32 = 0.707106781186547524;
const MIN_NORMAL: f32 = 1.17549435e-38;
const TWO_POW_23: f32 = 8388608.0;
const LOG_P0: f32 = 7.0376836292e-2;
const LOG_P1: f32 = -1.1514610310e-1;
const LOG_P2: f32 = 1.1676998740e-1;
const LOG_P3: f32 = -1.2420140846e-1;
const LOG_P4: f32 = 1.4249322787e-1;
const LOG_P5: f32 = -1.6668057665e-1;
const LOG_P6: f32 = 2.0000714765e-1;
const LOG_P7: f32 = -2.4999993993e-1;
const LOG_P8: f32 = 3.3333331174e-1;

@inline export function logScalar(x: f32): f32 {
  if (!(x > 0)) return x == 0 ? -Infinity : NaN; // also catches NaN and negatives
  if (x == Infinity) return x;
  // Subnormals: scale into the normal range so the exponent field is meaningful.
  let exponentBias = 126;
  if (x < MIN_NORMAL) {
    x *= TWO_POW_23;
    exponentBias += 23;
  }
  const bits = reinterpret<i32>(x);
  let e = (bits >>> 23) - exponentBias;
  // mantissa in [0.5, 1); fold to [sqrt(1/2), sqrt(2)) - 1 so the polynomial argument stays small
  let m = reinterpret<f32>((bits & 0x007fffff) | 0x3f000000);
  if (m < SQRT_HALF) {
    e -= 1;
    m = m + m - 1.0;
  } else {
    m = m - 1.0;
  }
  const ef = <f32>e;
  const z = m * m;
  let p = LOG_P0;
  p = p * m + LOG_P1;
  p = p * m + LOG_P2;
  p = p * m + LOG_P3;
  p = p * m + LOG_P4;
  p = p * m + LOG_P5;
  p = p * m + LOG_P6;
  p = p * m + LOG_P7;
  p = p * m + LOG_P8;
  let y = p * m * z + ef * LN2_LO - 0.5 * z;
  return m + y + ef * LN2_HI;
}

@inline export function logVec(x: v128): v128 {
  const tiny = f32x4.lt(x, f32x4.splat(MIN_NORMAL));
  const xs = v128.bitselect(f32x4.mul(x, f32x4.splat(TWO_POW_23)), x, tiny);
  const exponentBias = v128.bitselect(i32x4.splat(126 + 23), i32x4.splat(126), tiny);
  let e = i32x4.sub(i32x4.shr_u(xs, 23), exponentBias);
  let m = v128.or(v128.and(xs, i32x4.splat(0x007fffff)), i32x4.splat(0x3f000000));
  const low = f32x4.lt(m, f32x4.splat(SQRT_HALF)); // all-ones lanes == -1 as i32
  e = i32x4.add(e, low);
  m = f32x4.add(f32x4.sub(m, f32x4.splat(1.0)), v128.and(m, low));
  const ef = f32x4.convert_i32x4_s(e);
  const z = f32x4.mul(m, m);
  let p = f32x4.add(f32x4.mul(f32x4.splat(LOG_P0), m), f32x4.splat(LOG_P1));
  p = f32x4.add(f32x4.mul(p, m), f32x4.splat(LOG_P2));
  p = f32x4.add(f32x4.mul(p, m), f32x4.splat(LOG_P3));
  p = f32x4.add(f32x4.mul(p, m), f32x4.splat(LOG_P4));
  p = f32x4.add(f32x4.mul(p, m), f32x4.splat(LOG_P5));
  p = f32x4.add(f32x4.mul(p, m), f32x4.splat(LOG_P6));
  p = f32x4.add(f32x4.mul(p, m), f32x4.splat(LOG_P7));
  p = f32x4.add(f32x4.mul(p, m), f32x4.splat(LOG_P8));
  let y = f32x4.mul(f32x4.mul(p, m), z);
  y = f32x4.add(y, f32x4.mul(ef, f32x4.splat(LN2_LO)));
  y = f32x4.sub(y, f32x4.mul(z, f32x4.splat(0.5)));
  let r = f32x4.add(f32x4.add(m, y), f32x4.mul(ef, f32x4.splat(LN2_HI)));
  r = v128.bitselect(f32x4.splat(Infinity), r, f32x4.eq(x, f32x4.splat(Infinity)));
  r = v128.bitselect(f32x4.splat(-Infinity), r, f32x4.eq(x, f32x4.splat(0)));
  return v128.bitselect(f32x4.splat(NaN), r, v128.not(f32x4.ge(x, f32x4.splat(0)))); // NaN and x < 0
}

// ---- sigmoid --------------------------------------------------------------------------------------

// e / (1 + e) with e = exp(-|x|) keeps full relative accuracy for very negative x (no 1 - tiny).
@inline export function sigmoidScalar(x: f32): f32 {
  const e = expScalar(-abs(x));
  const s: f32 = 1.0 / (1.0 + e);
  return x >= 0 ? s : e * s;
}

@inline export function sigmoidVec(x: v128): v128 {
  const e = expVec(f32x4.neg(f32x4.abs(x)));
  const s = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), e));
  return v128.bitselect(s, f32x4.mul(e, s), f32x4.ge(x, f32x4.splat(0)));
}

// ---- tanh -----------------------------------------------------------------------------------------

const TANH_SMALL: f32 = 0.625;
const TANH_P0: f32 = -5.70498872745e-3;
const TANH_P1: f32 = 2.06390887954e-2;
const TANH_P2: f32 = -5.37397155531e-2;
const TANH_P3: f32 = 1.33314422036e-1;
const TANH_P4: f32 = -3.33332819422e-1;
const SIGN_BIT: i32 = 0x80000000;

@inline export function tanhScalar(x: f32): f32 {
  const ax = abs(x);
  if (ax > TANH_SMALL) {
    // exp overflows to inf for large |x|, which correctly yields +-1
    return copysign<f32>(1.0 - 2.0 / (expScalar(ax + ax) + 1.0), x);
  }
  const z = x * x;
  let p = TANH_P0;
  p = p * z + TANH_P1;
  p = p * z + TANH_P2;
  p = p * z + TANH_P3;
  p = p * z + TANH_P4;
  return p * z * x + x;
}

@inline export function tanhVec(x: v128): v128 {
  const ax = f32x4.abs(x);
  const e = expVec(f32x4.add(ax, ax));
  let big = f32x4.sub(f32x4.splat(1.0), f32x4.div(f32x4.splat(2.0), f32x4.add(e, f32x4.splat(1.0))));
  big = v128.or(big, v128.and(x, i32x4.splat(SIGN_BIT)));
  const z = f32x4.mul(x, x);
  let p = f32x4.add(f32x4.mul(f32x4.splat(TANH_P0), z), f32x4.splat(TANH_P1));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(TANH_P2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(TANH_P3));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(TANH_P4));
  const small = f32x4.add(f32x4.mul(f32x4.mul(p, z), x), x);
  return v128.bitselect(big, small, f32x4.gt(ax, f32x4.splat(TANH_SMALL))); // NaN takes the small path
}

// ---- erf ------------------------------------------------------------------------------------------

// |x| < 1: x * T(x^2) (Cephes erff). |x| >= 1: 1 - t * exp(-x^2) * Q(t), t = 1 / (1 + ERF_Q * |x|)
// (Abramowitz & Stegun 7.1.26, absolute error 1.5e-7 there, where erf >= 0.84). erf(4) rounds to 1.
const ERF_T0: f32 = 7.853861353153693e-5;
const ERF_T1: f32 = -8.010193625184903e-4;
const ERF_T2: f32 = 5.188327685732524e-3;
const ERF_T3: f32 = -2.685381193529856e-2;
const ERF_T4: f32 = 1.128358514861418e-1;
const ERF_T5: f32 = -3.761262582423300e-1;
const ERF_T6: f32 = 1.128379165726710;
const ERF_Q: f32 = 0.3275911;
const ERF_A1: f32 = 0.254829592;
const ERF_A2: f32 = -0.284496736;
const ERF_A3: f32 = 1.421413741;
const ERF_A4: f32 = -1.453152027;
const ERF_A5: f32 = 1.061405429;
const ERF_SATURATE: f32 = 4.0;

@inline export function erfScalar(x: f32): f32 {
  const ax = abs(x);
  if (ax >= 1.0) {
    const a = min(ax, ERF_SATURATE);
    const t: f32 = 1.0 / (1.0 + ERF_Q * a);
    let q = ERF_A5;
    q = q * t + ERF_A4;
    q = q * t + ERF_A3;
    q = q * t + ERF_A2;
    q = q * t + ERF_A1;
    return copysign<f32>(1.0 - q * t * expScalar(-a * a), x);
  }
  const z = x * x;
  let p = ERF_T0;
  p = p * z + ERF_T1;
  p = p * z + ERF_T2;
  p = p * z + ERF_T3;
  p = p * z + ERF_T4;
  p = p * z + ERF_T5;
  p = p * z + ERF_T6;
  return x * p;
}

@inline export function erfVec(x: v128): v128 {
  const ax = f32x4.abs(x);
  const a = f32x4.min(ax, f32x4.splat(ERF_SATURATE));
  const t = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), f32x4.mul(f32x4.splat(ERF_Q), a)));
  let q = f32x4.add(f32x4.mul(f32x4.splat(ERF_A5), t), f32x4.splat(ERF_A4));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(ERF_A3));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(ERF_A2));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(ERF_A1));
  const e = expVec(f32x4.neg(f32x4.mul(a, a)));
  let big = f32x4.sub(f32x4.splat(1.0), f32x4.mul(f32x4.mul(q, t), e));
  big = v128.or(big, v128.and(x, i32x4.splat(SIGN_BIT)));
  const z = f32x4.mul(x, x);
  let p = f32x4.add(f32x4.mul(f32x4.splat(ERF_T0), z), f32x4.splat(ERF_T1));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(ERF_T2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(ERF_T3));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(ERF_T4));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(ERF_T5));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(ERF_T6));
  return v128.bitselect(big, f32x4.mul(x, p), f32x4.ge(ax, f32x4.splat(1.0))); // NaN takes the small path
}
