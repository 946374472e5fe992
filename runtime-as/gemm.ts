// C[i*ldc+j] = act(sum_k A[i*lda+k] * B[k*ldb+j] + bias + R[i*ldc+j]), row-major f32, no packing (no scratch
// memory). R, the fused residual, is laid out like C (0: none), so a call split by rows splits it alike.
import { actInPlace, addInPlace } from "./act";
import { madd } from "./common";

export const BIAS_NONE: i32 = 0;
/** bias[j], one per output column */
export const BIAS_COL: i32 = 1;
/** bias[i], one per output row */
export const BIAS_ROW: i32 = 2;

// Cache blocking: a KC x NC block of B (256 KB) stays in L2 while every 4-row strip of A sweeps it, and
// the 4 x KC strip of A stays in L1. Measured flat for KC, NC in 64..512 at N = 512 on a Zen core.
const KC: i32 = 256;
const NC: i32 = 256;

export function gemm(
  a: usize, b: usize, c: usize, bias: usize,
  M: i32, N: i32, K: i32, lda: i32, ldb: i32, ldc: i32,
  biasMode: i32, act: i32, p0: f32, p1: f32, res: usize,
): void {
  if (M <= 0 || N <= 0) return;
  for (let j0 = 0; j0 < N; j0 += NC) {
    const j1 = min(j0 + NC, N);
    // K == 0 still runs one (empty) pass so C receives act(bias).
    let k0 = 0;
    do {
      const k1 = min(k0 + KC, K);
      const first = k0 == 0;
      const last = k1 >= K;
      const pa = a + (<usize>k0 << 2);
      const pb = b + ((<usize>k0 * <usize>ldb) << 2);
      if (ASC_FEATURE_SIMD) {
        blockSimd(pa, pb, c, bias, M, j0, j1, k1 - k0, lda, ldb, ldc, first, last, biasMode, act, p0, p1, res);
      } else {
        blockScalar(pa, pb, c, bias, M, j0, j1, k1 - k0, lda, ldb, ldc, first, last, biasMode, act, p0, p1, res);
      }
      k0 = k1;
    } while (k0 < K);
  }
}

// ---- SIMD ------------------------------------------------------------------------------------------

/** Initial accumulator for 4 columns: partial C from an earlier K block, else the bias (or 0). */
@inline function initVec(pc: usize, bias: usize, i: i32, j: i32, first: bool, biasMode: i32): v128 {
  if (!first) return v128.load(pc);
  if (biasMode == BIAS_COL) return v128.load(bias + (<usize>j << 2));
  if (biasMode == BIAS_ROW) return v128.load32_splat(bias + (<usize>i << 2));
  return f32x4.splat(0);
}

@inline function initScalar(pc: usize, bias: usize, i: i32, j: i32, first: bool, biasMode: i32): f32 {
  if (!first) return load<f32>(pc);
  if (biasMode == BIAS_COL) return load<f32>(bias + (<usize>j << 2));
  if (biasMode == BIAS_ROW) return load<f32>(bias + (<usize>i << 2));
  return 0;
}

/** The residual and activation run over a finished strip of C while it is still in L1: keeping them out of
 * the tiles keeps every tile small instead of inlining the whole activation switch per accumulator. */
@inline function activateStrip(pc: usize, c: usize, res: usize, rows: i32, cols: i32, rowC: usize, act: i32, p0: f32, p1: f32): void {
  if (res != 0) for (let r = 0; r < rows; r++) addInPlace(pc + <usize>r * rowC, res + (pc - c) + <usize>r * rowC, cols);
  for (let r = 0; r < rows; r++) actInPlace(pc + <usize>r * rowC, cols, act, p0, p1);
}

function blockSimd(
  a: usize, b: usize, c: usize, bias: usize, M: i32, j0: i32, j1: i32, kc: i32,
  lda: i32, ldb: i32, ldc: i32, first: bool, last: bool, biasMode: i32, act: i32, p0: f32, p1: f32, res: usize,
): void {
  const rowA = <usize>lda << 2;
  const rowB = <usize>ldb << 2;
  const rowC = <usize>ldc << 2;
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    const pa = a + <usize>i * rowA;
    const pcRow = c + <usize>i * rowC;
    let j = j0;
    for (; j + 8 <= j1; j += 8) tile4x8(pa, b + (<usize>j << 2), pcRow + (<usize>j << 2), bias, i, j, kc, rowA, rowB, rowC, first, biasMode);
    if (j + 4 <= j1) {
      tile4x4(pa, b + (<usize>j << 2), pcRow + (<usize>j << 2), bias, i, j, kc, rowA, rowB, rowC, first, biasMode);
      j += 4;
    }
    for (; j < j1; j++) tile4x1(pa, b + (<usize>j << 2), pcRow + (<usize>j << 2), bias, i, j, kc, rowA, rowB, rowC, first, biasMode);
    if (last) activateStrip(pcRow + (<usize>j0 << 2), c, res, 4, j1 - j0, rowC, act, p0, p1);
  }
  for (; i < M; i++) {
    const pa = a + <usize>i * rowA;
    const pcRow = c + <usize>i * rowC;
    let j = j0;
    for (; j + 8 <= j1; j += 8) tile1x8(pa, b + (<usize>j << 2), pcRow + (<usize>j << 2), bias, i, j, kc, rowB, first, biasMode);
    if (j + 4 <= j1) {
      tile1x4(pa, b + (<usize>j << 2), pcRow + (<usize>j << 2), bias, i, j, kc, rowB, first, biasMode);
      j += 4;
    }
    for (; j < j1; j++) tile1x1(pa, b + (<usize>j << 2), pcRow + (<usize>j << 2), bias, i, j, kc, rowB, first, biasMode);
    if (last) activateStrip(pcRow + (<usize>j0 << 2), c, res, 1, j1 - j0, rowC, act, p0, p1);
  }
}

// The micro-kernel: 4 rows x 8 columns = 8 f32x4 accumulators + 2 B vectors + 1 broadcast A,
// which fits V8's 16 xmm registers without spilling.
@inline function tile4x8(
  pa: usize, pb: usize, pc: usize, bias: usize, i: i32, j: i32, kc: i32,
  rowA: usize, rowB: usize, rowC: usize, first: bool, biasMode: i32,
): void {
  let c00 = initVec(pc, bias, i, j, first, biasMode);
  let c01 = initVec(pc + 16, bias, i, j + 4, first, biasMode);
  let c10 = initVec(pc + rowC, bias, i + 1, j, first, biasMode);
  let c11 = initVec(pc + rowC + 16, bias, i + 1, j + 4, first, biasMode);
  let c20 = initVec(pc + 2 * rowC, bias, i + 2, j, first, biasMode);
  let c21 = initVec(pc + 2 * rowC + 16, bias, i + 2, j + 4, first, biasMode);
  let c30 = initVec(pc + 3 * rowC, bias, i + 3, j, first, biasMode);
  let c31 = initVec(pc + 3 * rowC + 16, bias, i + 3, j + 4, first, biasMode);
  const pa1 = pa + rowA, pa2 = pa + 2 * rowA, pa3 = pa + 3 * rowA;
  for (let k: usize = 0, kEnd = <usize>kc << 2; k < kEnd; k += 4) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let av = v128.load32_splat(pa + k);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    av = v128.load32_splat(pa1 + k);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    av = v128.load32_splat(pa2 + k);
    c20 = madd(av, b0, c20);
    c21 = madd(av, b1, c21);
    av = v128.load32_splat(pa3 + k);
    c30 = madd(av, b0, c30);
    c31 = madd(av, b1, c31);
    pb += rowB;
  }
  v128.store(pc, c00);
  v128.store(pc + 16, c01);
  v128.store(pc + rowC, c10);
  v128.store(pc + rowC + 16, c11);
  v128.store(pc + 2 * rowC, c20);
  v128.store(pc + 2 * rowC + 16, c21);
  v128.store(pc + 3 * rowC, c30);
  v128.store(pc + 3 * rowC + 16, c31);
}

@inline function tile4x4(
  pa: usize, pb: usize, pc: usize, bias: usize, i: i32, j: i32, kc: i32,
  rowA: usize, rowB: usize, rowC: usize, first: bool, biasMode: i32,
): void {
  let c0 = initVec(pc, bias, i, j, first, biasMode);
  let c1 = initVec(pc + rowC, bias, i + 1, j, first, biasMode);
  let c2 = initVec(pc + 2 * rowC, bias, i + 2, j, first, biasMode);
  let c3 = initVec(pc + 3 * rowC, bias, i + 3, j, first, biasMode);
  const pa1 = pa + rowA, pa2 = pa + 2 * rowA, pa3 = pa + 3 * rowA;
  for (let k: usize = 0, kEnd = <usize>kc << 2; k < kEnd; k += 4) {
    const bv = v128.load(pb);
    c0 = madd(v128.load32_splat(pa + k), bv, c0);
    c1 = madd(v128.load32_splat(pa1 + k), bv, c1);
    c2 = madd(v128.load32_splat(pa2 + k), bv, c2);
    c3 = madd(v128.load32_splat(pa3 + k), bv, c3);
    pb += rowB;
  }
  v128.store(pc, c0);
  v128.store(pc + rowC, c1);
  v128.store(pc + 2 * rowC, c2);
  v128.store(pc + 3 * rowC, c3);
}

/** One column of 4 rows: the 4 rows go in the lanes, gathering A's 4 rows per k. */
@inline function tile4x1(
  pa: usize, pb: usize, pc: usize, bias: usize, i: i32, j: i32, kc: i32,
  rowA: usize, rowB: usize, rowC: usize, first: bool, biasMode: i32,
): void {
  let acc0 = initScalar(pc, bias, i, j, first, biasMode);
  let acc1 = initScalar(pc + rowC, bias, i + 1, j, first, biasMode);
  let acc2 = initScalar(pc + 2 * rowC, bias, i + 2, j, first, biasMode);
  let acc3 = initScalar(pc + 3 * rowC, bias, i + 3, j, first, biasMode);
  const pa1 = pa + rowA, pa2 = pa + 2 * rowA, pa3 = pa + 3 * rowA;
  for (let k: usize = 0, kEnd = <usize>kc << 2; k < kEnd; k += 4) {
    const bk = load<f32>(pb);
    acc0 += load<f32>(pa + k) * bk;
    acc1 += load<f32>(pa1 + k) * bk;
    acc2 += load<f32>(pa2 + k) * bk;
    acc3 += load<f32>(pa3 + k) * bk;
    pb += rowB;
  }
  store<f32>(pc, acc0);
  store<f32>(pc + rowC, acc1);
  store<f32>(pc + 2 * rowC, acc2);
  store<f32>(pc + 3 * rowC, acc3);
}

@inline function tile1x8(
  pa: usize, pb: usize, pc: usize, bias: usize, i: i32, j: i32, kc: i32,
  rowB: usize, first: bool, biasMode: i32,
): void {
  let c0 = initVec(pc, bias, i, j, first, biasMode);
  let c1 = initVec(pc + 16, bias, i, j + 4, first, biasMode);
  for (let k: usize = 0, kEnd = <usize>kc << 2; k < kEnd; k += 4) {
    const av = v128.load32_splat(pa + k);
    c0 = madd(av, v128.load(pb), c0);
    c1 = madd(av, v128.load(pb, 16), c1);
    pb += rowB;
  }
  v128.store(pc, c0);
  v128.store(pc + 16, c1);
}

@inline function tile1x4(
  pa: usize, pb: usize, pc: usize, bias: usize, i: i32, j: i32, kc: i32,
  rowB: usize, first: bool, biasMode: i32,
): void {
  let c0 = initVec(pc, bias, i, j, first, biasMode);
  for (let k: usize = 0, kEnd = <usize>kc << 2; k < kEnd; k += 4) {
    c0 = madd(v128.load32_splat(pa + k), v128.load(pb), c0);
    pb += rowB;
  }
  v128.store(pc, c0);
}

@inline function tile1x1(
  pa: usize, pb: usize, pc: usize, bias: usize, i: i32, j: i32, kc: i32,
  rowB: usize, first: bool, biasMode: i32,
): void {
  let acc = initScalar(pc, bias, i, j, first, biasMode);
  for (let k: usize = 0, kEnd = <usize>kc << 2; k < kEnd; k += 4) {
    acc += load<f32>(pa + k) * load<f32>(pb);
    pb += rowB;
  }
  store<f32>(pc, acc);
}

// ---- scalar ----------------------------------------------------------------------------------------

/** Scalar build: 4 x 4 register tile (16 accumulators), 1-wide edges. */
function blockScalar(
  a: usize, b: usize, c: usize, bias: usize, M: i32, j0: i32, j1: i32, kc: i32,
  lda: i32, ldb: i32, ldc: i32, first: bool, last: bool, biasMode: i32, act: i32, p0: f32, p1: f32, res: usize,
): void {
  const rowA = <usize>lda << 2;
  const rowB = <usize>ldb << 2;
  const rowC = <usize>ldc << 2;
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    const pa = a + <usize>i * rowA;
    const pcRow = c + <usize>i * rowC;
    let j = j0;
    for (; j + 4 <= j1; j += 4) scalarTile4x4(pa, b + (<usize>j << 2), pcRow + (<usize>j << 2), bias, i, j, kc, rowA, rowB, rowC, first, biasMode);
    for (; j < j1; j++) tile4x1(pa, b + (<usize>j << 2), pcRow + (<usize>j << 2), bias, i, j, kc, rowA, rowB, rowC, first, biasMode);
    if (last) activateStrip(pcRow + (<usize>j0 << 2), c, res, 4, j1 - j0, rowC, act, p0, p1);
  }
  for (; i < M; i++) {
    const pa = a + <usize>i * rowA;
    const pcRow = c + <usize>i * rowC;
    for (let j = j0; j < j1; j++) tile1x1(pa, b + (<usize>j << 2), pcRow + (<usize>j << 2), bias, i, j, kc, rowB, first, biasMode);
    if (last) activateStrip(pcRow + (<usize>j0 << 2), c, res, 1, j1 - j0, rowC, act, p0, p1);
  }
}

@inline function scalarTile4x4(
  pa: usize, pb: usize, pc: usize, bias: usize, i: i32, j: i32, kc: i32,
  rowA: usize, rowB: usize, rowC: usize, first: bool, biasMode: i32,
): void {
  const pc1 = pc + rowC, pc2 = pc + 2 * rowC, pc3 = pc + 3 * rowC;
  let c00 = initScalar(pc, bias, i, j, first, biasMode), c01 = initScalar(pc + 4, bias, i, j + 1, first, biasMode);
  let c02 = initScalar(pc + 8, bias, i, j + 2, first, biasMode), c03 = initScalar(pc + 12, bias, i, j + 3, first, biasMode);
  let c10 = initScalar(pc1, bias, i + 1, j, first, biasMode), c11 = initScalar(pc1 + 4, bias, i + 1, j + 1, first, biasMode);
  let c12 = initScalar(pc1 + 8, bias, i + 1, j + 2, first, biasMode), c13 = initScalar(pc1 + 12, bias, i + 1, j + 3, first, biasMode);
  let c20 = initScalar(pc2, bias, i + 2, j, first, biasMode), c21 = initScalar(pc2 + 4, bias, i + 2, j + 1, first, biasMode);
  let c22 = initScalar(pc2 + 8, bias, i + 2, j + 2, first, biasMode), c23 = initScalar(pc2 + 12, bias, i + 2, j + 3, first, biasMode);
  let c30 = initScalar(pc3, bias, i + 3, j, first, biasMode), c31 = initScalar(pc3 + 4, bias, i + 3, j + 1, first, biasMode);
  let c32 = initScalar(pc3 + 8, bias, i + 3, j + 2, first, biasMode), c33 = initScalar(pc3 + 12, bias, i + 3, j + 3, first, biasMode);
  const pa1 = pa + rowA, pa2 = pa + 2 * rowA, pa3 = pa + 3 * rowA;
  for (let k: usize = 0, kEnd = <usize>kc << 2; k < kEnd; k += 4) {
    const b0 = load<f32>(pb), b1 = load<f32>(pb, 4), b2 = load<f32>(pb, 8), b3 = load<f32>(pb, 12);
    let av = load<f32>(pa + k);
    c00 += av * b0; c01 += av * b1; c02 += av * b2; c03 += av * b3;
    av = load<f32>(pa1 + k);
    c10 += av * b0; c11 += av * b1; c12 += av * b2; c13 += av * b3;
    av = load<f32>(pa2 + k);
    c20 += av * b0; c21 += av * b1; c22 += av * b2; c23 += av * b3;
    av = load<f32>(pa3 + k);
    c30 += av * b0; c31 += av * b1; c32 += av * b2; c33 += av * b3;
    pb += rowB;
  }
  store<f32>(pc, c00); store<f32>(pc + 4, c01);
  store<f32>(pc + 8, c02); store<f32>(pc + 12, c03);
  store<f32>(pc1, c10); store<f32>(pc1 + 4, c11);
  store<f32>(pc1 + 8, c12); store<f32>(pc1 + 12, c13);
  store<f32>(pc2, c20); store<f32>(pc2 + 4, c21);
  store<f32>(pc2 + 8, c22); store<f32>(pc2 + 12, c23);
  store<f32>(pc3, c30); store<f32>(pc3 + 4, c31);
  store<f32>(pc3 + 8, c32); store<f32>(pc3 + 12, c33);
}
