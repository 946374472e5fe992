// Data movement: strided boxes (transpose / permute, slice, concat, pad interiors, expand), fills and
// row gathers. Sizes and strides are in elements.

/**
 * Copy a 6-d box of d0 x ... x d5 elements (outermost first, unused dims = 1) from src to dst with
 * per-dim element strides ss* / ds* (0 repeats: expand). Inner dims that are contiguous in both get
 * merged, so e.g. a concat copies whole rows with memory.copy.
 */
export function stridedCopy(
  src: usize, dst: usize, elemBytes: i32,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  ss0: i32, ss1: i32, ss2: i32, ss3: i32, ss4: i32, ss5: i32,
  ds0: i32, ds1: i32, ds2: i32, ds3: i32, ds4: i32, ds5: i32,
): void {
  if (d0 <= 0 || d1 <= 0 || d2 <= 0 || d3 <= 0 || d4 <= 0 || d5 <= 0) return;
  // A size-1 innermost dim says nothing: shift the outer dims in so the run is a real one.
  for (let k = 0; k < 5 && d5 == 1; k++) {
    d5 = d4; ss5 = ss4; ds5 = ds4;
    d4 = d3; ss4 = ss3; ds4 = ds3;
    d3 = d2; ss3 = ss2; ds3 = ds2;
    d2 = d1; ss2 = ss1; ds2 = ds1;
    d1 = d0; ss1 = ss0; ds1 = ds0;
    d0 = 1;
  }
  // Fold dim k into the innermost while it continues it in both tensors (size-1 dims always do).
  let run = d5;
  if (d4 == 1 || (ss4 == ss5 * run && ds4 == ds5 * run)) {
    run *= d4;
    d4 = 1;
    if (d3 == 1 || (ss3 == ss5 * run && ds3 == ds5 * run)) {
      run *= d3;
      d3 = 1;
      if (d2 == 1 || (ss2 == ss5 * run && ds2 == ds5 * run)) {
        run *= d2;
        d2 = 1;
        if (d1 == 1 || (ss1 == ss5 * run && ds1 == ds5 * run)) {
          run *= d1;
          d1 = 1;
          if (d0 == 1 || (ss0 == ss5 * run && ds0 == ds5 * run)) {
            run *= d0;
            d0 = 1;
          }
        }
      }
    }
  }
  const size = <usize>elemBytes;
  for (let i0 = 0; i0 < d0; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        for (let i3 = 0; i3 < d3; i3++) {
          for (let i4 = 0; i4 < d4; i4++) {
            const s = <isize>i0 * ss0 + <isize>i1 * ss1 + <isize>i2 * ss2 + <isize>i3 * ss3 + <isize>i4 * ss4;
            const d = <isize>i0 * ds0 + <isize>i1 * ds1 + <isize>i2 * ds2 + <isize>i3 * ds3 + <isize>i4 * ds4;
            copyRun(src + <usize>s * size, dst + <usize>d * size, run, ss5, ds5, elemBytes);
          }
        }
      }
    }
  }
}

/** n elements, strides in elements. */
function copyRun(src: usize, dst: usize, n: i32, srcStride: i32, dstStride: i32, elemBytes: i32): void {
  if (srcStride == 1 && dstStride == 1) {
    memory.copy(dst, src, <usize>n * <usize>elemBytes);
    return;
  }
  const ss = <usize>(srcStride * elemBytes);
  const ds = <usize>(dstStride * elemBytes);
  let i = 0;
  if (elemBytes == 4) {
    if (ASC_FEATURE_SIMD) {
      if (dstStride == 1) {
        // gather (transpose) or broadcast (expand) into contiguous vectors
        if (srcStride == 0) {
          const v = v128.load32_splat(src);
          for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v);
        } else {
          for (; i + 4 <= n; i += 4) {
            const p = src + <usize>i * ss;
            let v = v128.load32_zero(p);
            v = v128.load32_lane(p + ss, v, 1);
            v = v128.load32_lane(p + 2 * ss, v, 2);
            v = v128.load32_lane(p + 3 * ss, v, 3);
            v128.store(dst + (<usize>i << 2), v);
          }
        }
      }
    }
    for (; i < n; i++) store<u32>(dst + <usize>i * ds, load<u32>(src + <usize>i * ss));
  } else if (elemBytes == 8) {
    for (; i < n; i++) store<u64>(dst + <usize>i * ds, load<u64>(src + <usize>i * ss));
  } else if (elemBytes == 2) {
    for (; i < n; i++) store<u16>(dst + <usize>i * ds, load<u16>(src + <usize>i * ss));
  } else if (elemBytes == 1) {
    for (; i < n; i++) store<u8>(dst + <usize>i * ds, load<u8>(src + <usize>i * ss));
  } else {
    for (; i < n; i++) memory.copy(dst + <usize>i * ds, src + <usize>i * ss, <usize>elemBytes);
  }
}

/** n 32-bit words of `bits` at dst (any f32 / i32 constant, e.g. the bits of -inf). */
export function fill32(dst: usize, n: i32, bits: i32): void {
  if (n <= 0) return;
  const bytes = <usize>n << 2;
  if (bits == (bits & 0xff) * 0x01010101) {
    memory.fill(dst, <u8>bits, bytes); // 0, -1 and other byte patterns
    return;
  }
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const v = i32x4.splat(bits);
    for (; i + 16 <= bytes; i += 16) v128.store(dst + i, v);
  }
  for (; i < bytes; i += 4) store<i32>(dst + i, bits);
}

/**
 * dst[k] = table[idx[k]] for nIdx rows of rowElems f32; indices (i32) may be negative (from the end).
 * Returns 1 at the first index outside [-nRows, nRows) (rows before it are already copied), else 0.
 */
export function gatherRows(table: usize, idx: usize, dst: usize, nIdx: i32, rowElems: i32, nRows: i32): i32 {
  const rowBytes = <usize>rowElems << 2;
  for (let k = 0; k < nIdx; k++) {
    let r = load<i32>(idx + (<usize>k << 2));
    if (r < 0) r += nRows;
    if (<u32>r >= <u32>nRows) return 1;
    memory.copy(dst + <usize>k * rowBytes, table + <usize>r * rowBytes, rowBytes);
  }
  return 0;
}
