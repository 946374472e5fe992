// int8 fully connected: y[M, N] = requantize(bias + (x[M, K] − inZp) · w[N, K]ᵀ). The weights stay in
// TFLite's [units, inputs] order, so every output is a dot product of two contiguous int8 rows:
// i32x4.dot_i16x8_s on 8 inputs at a time (scalar: one), 4 units sharing each input load.
import { storeRequantized } from "./qcommon";

export function qfullyConnected(
  x: usize, w: usize, bias: usize, rq: usize, y: usize, M: i32, N: i32, K: i32, inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  const K8 = K & ~7;
  for (let m = 0; m < M; m++) {
    const xr = x + <usize>(m * K);
    const yr = y + <usize>(m * N);
    let n = 0;
    if (ASC_FEATURE_SIMD) {
      const zp = i16x8.splat(<i16>inZp);
      for (; n + 4 <= N; n += 4) {
        const w0 = w + <usize>(n * K), w1 = w0 + <usize>K, w2 = w1 + <usize>K, w3 = w2 + <usize>K;
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        for (let k = 0; k < K8; k += 8) {
          const xv = i16x8.sub(v128.load8x8_s(xr + <usize>k), zp);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(xv, v128.load8x8_s(w0 + <usize>k)));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(xv, v128.load8x8_s(w1 + <usize>k)));
          a2 = i32x4.add(a2, i32x4.dot_i16x8_s(xv, v128.load8x8_s(w2 + <usize>k)));
          a3 = i32x4.add(a3, i32x4.dot_i16x8_s(xv, v128.load8x8_s(w3 + <usize>k)));
        }
        finish(xr, w0, bias, rq, yr, n, K8, K, horizontalSum(a0), inZp, outZp, lo, hi, roundUp);
        finish(xr, w1, bias, rq, yr, n + 1, K8, K, horizontalSum(a1), inZp, outZp, lo, hi, roundUp);
        finish(xr, w2, bias, rq, yr, n + 2, K8, K, horizontalSum(a2), inZp, outZp, lo, hi, roundUp);
        finish(xr, w3, bias, rq, yr, n + 3, K8, K, horizontalSum(a3), inZp, outZp, lo, hi, roundUp);
      }
    }
    if (!ASC_FEATURE_SIMD && K > 0) {
      // scalar: 4 units share each input, its zero point taken off once
      const step = <usize>K, step2 = step << 1, step3 = step2 + step, xEnd = xr + step;
      for (; n + 4 <= N; n += 4) {
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        let xk = xr, wk = w + <usize>(n * K);
        do {
          const xv = <i32>load<i8>(xk) - inZp;
          a0 += xv * <i32>load<i8>(wk);
          a1 += xv * <i32>load<i8>(wk + step);
          a2 += xv * <i32>load<i8>(wk + step2);
          a3 += xv * <i32>load<i8>(wk + step3);
          wk++;
        } while (++xk < xEnd);
        for (let j = 0; j < 4; j++) {
          const acc = j == 0 ? a0 : j == 1 ? a1 : j == 2 ? a2 : a3;
          storeRequantized(yr + <usize>(n + j), acc + (bias == 0 ? 0 : load<i32>(bias + (<usize>(n + j) << 2))), rq + (<usize>(n + j) << 3), outZp, lo, hi, roundUp);
        }
      }
    }
    for (; n < N; n++) finish(xr, w + <usize>(n * K), bias, rq, yr, n, 0, K, 0, inZp, outZp, lo, hi, roundUp);
  }
}

/** Adds inputs [from, K) and the bias to `acc`, requantizes, stores output n. */
@inline function finish(
  xr: usize, wr: usize, bias: usize, rq: usize, yr: usize, n: i32, from: i32, K: i32, acc: i32, inZp: i32, outZp: i32, lo: i32, hi: i32, roundUp: bool,
): void {
  for (let k = from; k < K; k++) acc += (<i32>load<i8>(xr + <usize>k) - inZp) * <i32>load<i8>(wr + <usize>k);
  if (bias != 0) acc += load<i32>(bias + (<usize>n << 2));
  storeRequantized(yr + <usize>n, acc, rq + (<usize>n << 3), outZp, lo, hi, roundUp);
}

@inline function horizontalSum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}
