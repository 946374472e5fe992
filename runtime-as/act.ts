// Activation codes shared by every kernel with a fused epilogue (gemm, conv2d) and by generated code.
import { erfScalar, erfVec, expScalar, expVec, sigmoidScalar, sigmoidVec, tanhScalar, tanhVec } from "./vmath";

export const ACT_NONE: i32 = 0;
export const ACT_RELU: i32 = 1;
/** p0 = min, p1 = max (relu6 = clamp 0..6) */
export const ACT_CLAMP: i32 = 2;
/** p0 = negative slope */
export const ACT_LEAKY: i32 = 3;
export const ACT_SIGMOID: i32 = 4;
export const ACT_TANH: i32 = 5;
export const ACT_SILU: i32 = 6;
/** x * relu6(x + 3) / 6 */
export const ACT_HARDSWISH: i32 = 7;
/** exact, erf-based (PyTorch default) */
export const ACT_GELU: i32 = 8;
/** max(0, min(1, p0 * x + p1)) */
export const ACT_HARDSIGMOID: i32 = 9;
/** p0 = alpha */
export const ACT_ELU: i32 = 10;

const SQRT_HALF: f32 = 0.707106781186547524;
const SIXTH: f32 = 0.16666666666666666;

@inline export function actScalar(x: f32, act: i32, p0: f32, p1: f32): f32 {
  switch (act) {
    case ACT_RELU: return max<f32>(x, 0);
    case ACT_CLAMP: return min<f32>(max<f32>(x, p0), p1);
    case ACT_LEAKY: return x > 0 ? x : x * p0;
    case ACT_SIGMOID: return sigmoidScalar(x);
    case ACT_TANH: return tanhScalar(x);
    case ACT_SILU: return x * sigmoidScalar(x);
    case ACT_HARDSWISH: return x * min<f32>(max<f32>(x + 3.0, 0), 6.0) * SIXTH;
    case ACT_GELU: return 0.5 * x * (1.0 + erfScalar(x * SQRT_HALF));
    case ACT_HARDSIGMOID: return max<f32>(min<f32>(p0 * x + p1, 1.0), 0);
    case ACT_ELU: return x > 0 ? x : p0 * (expScalar(x) - 1.0);
    default: return x;
  }
}

/** Same as actScalar on 4 lanes; call only inside `if (ASC_FEATURE_SIMD)`. */
@inline export function actVec(x: v128, act: i32, p0: f32, p1: f32): v128 {
  switch (act) {
    case ACT_RELU: return f32x4.max(x, f32x4.splat(0));
    case ACT_CLAMP: return f32x4.min(f32x4.max(x, f32x4.splat(p0)), f32x4.splat(p1));
    case ACT_LEAKY: return v128.bitselect(x, f32x4.mul(x, f32x4.splat(p0)), f32x4.gt(x, f32x4.splat(0)));
    case ACT_SIGMOID: return sigmoidVec(x);
    case ACT_TANH: return tanhVec(x);
    case ACT_SILU: return f32x4.mul(x, sigmoidVec(x));
    case ACT_HARDSWISH: {
      const gate = f32x4.min(f32x4.max(f32x4.add(x, f32x4.splat(3.0)), f32x4.splat(0)), f32x4.splat(6.0));
      return f32x4.mul(f32x4.mul(x, gate), f32x4.splat(SIXTH));
    }
    case ACT_GELU: {
      const e = erfVec(f32x4.mul(x, f32x4.splat(SQRT_HALF)));
      return f32x4.mul(f32x4.mul(f32x4.splat(0.5), x), f32x4.add(f32x4.splat(1.0), e));
    }
    case ACT_HARDSIGMOID: {
      const y = f32x4.add(f32x4.mul(f32x4.splat(p0), x), f32x4.splat(p1));
      return f32x4.max(f32x4.min(y, f32x4.splat(1.0)), f32x4.splat(0));
    }
    case ACT_ELU: {
      const neg = f32x4.mul(f32x4.splat(p0), f32x4.sub(expVec(x), f32x4.splat(1.0)));
      return v128.bitselect(x, neg, f32x4.gt(x, f32x4.splat(0)));
    }
    default: return x;
  }
}

/** x[i] = act(x[i]) for n contiguous f32; a no-op for ACT_NONE. */
export function actInPlace(x: usize, n: i32, act: i32, p0: f32, p1: f32): void {
  if (act == ACT_NONE) return;
  const end = x + (<usize>n << 2);
  if (ASC_FEATURE_SIMD) {
    for (; x + 16 <= end; x += 16) v128.store(x, actVec(v128.load(x), act, p0, p1));
  }
  for (; x < end; x += 4) store<f32>(x, actScalar(load<f32>(x), act, p0, p1));
}

/** x[i] += r[i] for n contiguous f32: a fused residual, added before the activation (as the graph's add). */
export function addInPlace(x: usize, r: usize, n: i32): void {
  const end = x + (<usize>n << 2);
  if (ASC_FEATURE_SIMD) {
    for (; x + 16 <= end; x += 16, r += 16) v128.store(x, f32x4.add(v128.load(x), v128.load(r)));
  }
  for (; x < end; x += 4, r += 4) store<f32>(x, load<f32>(x) + load<f32>(r));
}
