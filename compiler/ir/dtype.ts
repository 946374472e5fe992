/**
 * Element types. Compiled kernels handle float32 now; the table is what lets int8, int32 and bool slot in.
 * float16 is a storage type so far: its elements are IEEE half bit patterns in a Uint16Array (npy, safetensors,
 * ONNX tensors, host I/O); ops do not compute on it yet.
 */
export type DType = "float16" | "float32" | "float64" | "int8" | "uint8" | "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64" | "bool";

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

interface DTypeInfo {
  bytes: number;
  array: { new (n: number): TypedArray; new (buf: ArrayBuffer, off: number, n: number): TypedArray };
  /** numpy descr ('<f4'), used by .npy */
  npy: string;
  /** safetensors dtype name */
  safetensors: string;
  /** AssemblyScript load/store type in generated code */
  as: string;
}

export const DTYPES: Record<DType, DTypeInfo> = {
  float16: { bytes: 2, array: Uint16Array, npy: "<f2", safetensors: "F16", as: "u16" },
  float32: { bytes: 4, array: Float32Array, npy: "<f4", safetensors: "F32", as: "f32" },
  float64: { bytes: 8, array: Float64Array, npy: "<f8", safetensors: "F64", as: "f64" },
  int8: { bytes: 1, array: Int8Array, npy: "|i1", safetensors: "I8", as: "i8" },
  uint8: { bytes: 1, array: Uint8Array, npy: "|u1", safetensors: "U8", as: "u8" },
  int16: { bytes: 2, array: Int16Array, npy: "<i2", safetensors: "I16", as: "i16" },
  uint16: { bytes: 2, array: Uint16Array, npy: "<u2", safetensors: "U16", as: "u16" },
  int32: { bytes: 4, array: Int32Array, npy: "<i4", safetensors: "I32", as: "i32" },
  uint32: { bytes: 4, array: Uint32Array, npy: "<u4", safetensors: "U32", as: "u32" },
  int64: { bytes: 8, array: BigInt64Array as unknown as DTypeInfo["array"], npy: "<i8", safetensors: "I64", as: "i64" },
  uint64: { bytes: 8, array: BigUint64Array as unknown as DTypeInfo["array"], npy: "<u8", safetensors: "U64", as: "u64" },
  bool: { bytes: 1, array: Uint8Array, npy: "|b1", safetensors: "BOOL", as: "u8" },
};

/** The 64-bit integer arrays, whose elements are bigints. */
export const isBigIntArray = (a: unknown): a is BigInt64Array | BigUint64Array => a instanceof BigInt64Array || a instanceof BigUint64Array;

export const isDType = (s: string): s is DType => Object.hasOwn(DTYPES, s);

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** An IEEE half bit pattern → its value (exact). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** A number → the nearest IEEE half bit pattern, rounded once, ties to even, overflow to infinity (numpy's astype). */
export function floatToHalf(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (Number.isNaN(a)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00; // 65504 + half its last place rounds up, to infinity
  // the half's last place: 2^-24 for subnormals, else 2^(exponent - 10)
  let exponent = a === 0 ? -15 : Math.floor(Math.log2(a));
  if (2 ** exponent > a) exponent--;
  else if (2 ** (exponent + 1) <= a) exponent++;
  const ulp = 2 ** (Math.max(exponent, -14) - 10);
  // a / ulp < 2^11 is exact in float64, so the tie test is exact
  const q = a / ulp, floor = Math.floor(q), rest = q - floor;
  const units = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  // units counts last places above the exponent's base; a carry into 2048 moves to the next exponent, which the sum gets for free
  return exponent < -14 ? sign | units : sign | ((((exponent + 15) << 10) - 1024) + units);
}

/** A narrow float format for roundToFloatFormat: mantissa bits, smallest normal exponent, largest value, overflow and flags (below). */
/** x rounded to float8e8m0 as runtime-as/common.ts's roundToE8m0 (mode 0 up, 1 down, 2 nearest; the sign dropped). */
export function roundToE8m0(x: number, mode: number, saturate: boolean): number {
  const bits = new Uint32Array(new Float32Array([x]).buffer)[0];
  let exponent = (bits >>> 23) & 0xff;
  if (exponent === 0xff) return NaN;
  const up = mode === 0 ? (bits & 0x7fffff) !== 0 : mode === 2 ? (bits & 0x400000) !== 0 && ((bits & 0x3fffff) !== 0 || exponent > 0) : false;
  if (up && !(saturate && exponent === 0xfe)) exponent++;
  return exponent === 0xff ? NaN : 2 ** (exponent - 127);
}

export interface FloatFormatParams {
  mantissa: number;
  minExponent: number;
  max: number;
  overflow: number;
  flags: number;
}

/**
 * x rounded to a narrow float format (ONNX's float8 kinds, float4e2m1, bfloat16), ties to even, as
 * runtime-as/common.ts's roundToFloatFormat computes it: scaled so the format's last place is 1, rounded,
 * scaled back. Beyond `max`, overflow 0 gives max, 1 infinity, 2 NaN; flags 1: zero is unsigned (fnuz),
 * 2: NaN becomes -0 (a format without NaN).
 */
export function roundToFloatFormat(x: number, a: FloatFormatParams): number {
  if (Number.isNaN(x)) return a.flags & 2 ? -0 : NaN;
  const m = Math.abs(Math.fround(x));
  // the float32's exponent field (subnormals and zero: -127), at least the format's smallest normal one
  const exponent = Math.max(((new Uint32Array(new Float32Array([m]).buffer)[0] >>> 23) & 0xff) - 127, a.minExponent);
  const scale = 2 ** (a.mantissa - exponent);
  const q = m * scale, floor = Math.floor(q), rest = q - floor;
  let r = Number.isFinite(m) ? (rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor) / scale : Infinity;
  if (r > a.max) r = a.overflow === 0 ? a.max : a.overflow === 1 ? Infinity : NaN;
  if (r === 0 && a.flags & 1) return 0;
  return x < 0 || Object.is(x, -0) ? -r : r;
}
