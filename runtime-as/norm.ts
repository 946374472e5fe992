// Layer normalisation of `outer` contiguous rows of length R:
// y = (x - mean) / sqrt(var + eps) * gamma + beta, biased variance, two passes over x for accuracy.
// gamma / beta may be 0 (absent: scale 1, shift 0).

export function layernorm(x: usize, gamma: usize, beta: usize, y: usize, outer: i32, R: i32, eps: f32): void {
  const n = <usize>R << 2;
  for (let o = 0; o < outer; o++) {
    const xo = x + <usize>o * n;
    const yo = y + <usize>o * n;
    const mean = rowSum(xo, n, 0, false) / <f32>R;
    const variance = rowSum(xo, n, mean, true) / <f32>R;
    const inv: f32 = 1.0 / sqrt<f32>(variance + eps);
    let i: usize = 0;
    if (ASC_FEATURE_SIMD) {
      const meanVec = f32x4.splat(mean);
      const invVec = f32x4.splat(inv);
      for (; i + 16 <= n; i += 16) {
        let v = f32x4.mul(f32x4.sub(v128.load(xo + i), meanVec), invVec);
        if (gamma) v = f32x4.mul(v, v128.load(gamma + i));
        if (beta) v = f32x4.add(v, v128.load(beta + i));
        v128.store(yo + i, v);
      }
    }
    for (; i < n; i += 4) {
      let v = (load<f32>(xo + i) - mean) * inv;
      if (gamma) v *= load<f32>(gamma + i);
      if (beta) v += load<f32>(beta + i);
      store<f32>(yo + i, v);
    }
  }
}

/** Sum of x (or of (x - center)^2 when `squares`) over n bytes of f32. */
function rowSum(x: usize, n: usize, center: f32, squares: bool): f32 {
  let s: f32 = 0;
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const c = f32x4.splat(center);
    let a0 = f32x4.splat(0), a1 = a0;
    for (; i + 32 <= n; i += 32) {
      let v0 = v128.load(x + i), v1 = v128.load(x + i, 16);
      if (squares) {
        v0 = f32x4.sub(v0, c);
        v1 = f32x4.sub(v1, c);
        v0 = f32x4.mul(v0, v0);
        v1 = f32x4.mul(v1, v1);
      }
      a0 = f32x4.add(a0, v0);
      a1 = f32x4.add(a1, v1);
    }
    a0 = f32x4.add(a0, a1);
    s = f32x4.extract_lane(a0, 0) + f32x4.extract_lane(a0, 1) + f32x4.extract_lane(a0, 2) + f32x4.extract_lane(a0, 3);
  }
  for (; i < n; i += 4) {
    let v = load<f32>(x + i);
    if (squares) {
      v -= center;
      v *= v;
    }
    s += v;
  }
  return s;
}
