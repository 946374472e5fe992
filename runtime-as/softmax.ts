// Softmax / log-softmax over the middle axis of an [outer, R, inner] view, max-subtracted so exp never
// overflows. inner == 1 works on contiguous rows; inner > 1 runs 4 columns per vector.
import { expScalar, expVec, logScalar, logVec } from "./vmath";

export function softmax(x: usize, y: usize, outer: i32, R: i32, inner: i32, log: i32): void {
  const rowBytes = <usize>R * <usize>inner << 2;
  for (let o = 0; o < outer; o++) {
    const xo = x + <usize>o * rowBytes;
    const yo = y + <usize>o * rowBytes;
    if (inner == 1) softmaxRow(xo, yo, R, log);
    else softmaxColumns(xo, yo, R, inner, log);
  }
}

function softmaxRow(x: usize, y: usize, R: i32, log: i32): void {
  const n = <usize>R << 2;
  let i: usize = 0;
  // pass 1: max
  let m: f32 = -Infinity;
  if (ASC_FEATURE_SIMD) {
    let mv = f32x4.splat(-Infinity);
    for (; i + 16 <= n; i += 16) mv = f32x4.max(mv, v128.load(x + i));
    m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  }
  for (; i < n; i += 4) m = max(m, load<f32>(x + i));
  // pass 2: sum of exp(x - m); softmax keeps the exps in y for pass 3
  let s: f32 = 0;
  i = 0;
  if (ASC_FEATURE_SIMD) {
    const mv = f32x4.splat(m);
    let sv = f32x4.splat(0);
    for (; i + 16 <= n; i += 16) {
      const e = expVec(f32x4.sub(v128.load(x + i), mv));
      if (!log) v128.store(y + i, e);
      sv = f32x4.add(sv, e);
    }
    s = f32x4.extract_lane(sv, 0) + f32x4.extract_lane(sv, 1) + f32x4.extract_lane(sv, 2) + f32x4.extract_lane(sv, 3);
  }
  for (; i < n; i += 4) {
    const e = expScalar(load<f32>(x + i) - m);
    if (!log) store<f32>(y + i, e);
    s += e;
  }
  // pass 3: normalise (log: (x - m) - log s, in that order: rounding m + log s first would cost half an ulp of m,
  // all of a small log-probability such as a confident right answer's loss)
  i = 0;
  if (log) {
    const ls = logScalar(s);
    if (ASC_FEATURE_SIMD) {
      const mVec = f32x4.splat(m), lsVec = f32x4.splat(ls);
      for (; i + 16 <= n; i += 16) v128.store(y + i, f32x4.sub(f32x4.sub(v128.load(x + i), mVec), lsVec));
    }
    for (; i < n; i += 4) store<f32>(y + i, (load<f32>(x + i) - m) - ls);
  } else {
    const inv: f32 = 1.0 / s;
    if (ASC_FEATURE_SIMD) {
      const invVec = f32x4.splat(inv);
      for (; i + 16 <= n; i += 16) v128.store(y + i, f32x4.mul(v128.load(y + i), invVec));
    }
    for (; i < n; i += 4) store<f32>(y + i, load<f32>(y + i) * inv);
  }
}

function softmaxColumns(x: usize, y: usize, R: i32, inner: i32, log: i32): void {
  const stride = <usize>inner << 2;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= inner; i += 4) {
      const px0 = x + (<usize>i << 2);
      const py0 = y + (<usize>i << 2);
      let m = f32x4.splat(-Infinity);
      let p = px0;
      for (let r = 0; r < R; r++, p += stride) m = f32x4.max(m, v128.load(p));
      let s = f32x4.splat(0);
      p = px0;
      let q = py0;
      for (let r = 0; r < R; r++, p += stride, q += stride) {
        const e = expVec(f32x4.sub(v128.load(p), m));
        if (!log) v128.store(q, e);
        s = f32x4.add(s, e);
      }
      p = px0;
      q = py0;
      if (log) {
        const ls = logVec(s);
        for (let r = 0; r < R; r++, p += stride, q += stride) v128.store(q, f32x4.sub(f32x4.sub(v128.load(p), m), ls));
      } else {
        const inv = f32x4.div(f32x4.splat(1.0), s);
        for (let r = 0; r < R; r++, q += stride) v128.store(q, f32x4.mul(v128.load(q), inv));
      }
    }
  }
  for (; i < inner; i++) {
    const px0 = x + (<usize>i << 2);
    const py0 = y + (<usize>i << 2);
    let m: f32 = -Infinity;
    let p = px0;
    for (let r = 0; r < R; r++, p += stride) m = max(m, load<f32>(p));
    let s: f32 = 0;
    p = px0;
    let q = py0;
    for (let r = 0; r < R; r++, p += stride, q += stride) {
      const e = expScalar(load<f32>(p) - m);
      if (!log) store<f32>(q, e);
      s += e;
    }
    p = px0;
    q = py0;
    if (log) {
      const ls = logScalar(s);
      for (let r = 0; r < R; r++, p += stride, q += stride) store<f32>(q, (load<f32>(p) - m) - ls);
    } else {
      const inv: f32 = 1.0 / s;
      for (let r = 0; r < R; r++, q += stride) store<f32>(q, load<f32>(q) * inv);
    }
  }
}
