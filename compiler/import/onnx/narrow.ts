import type { DType, FloatFormatParams } from "../../ir/dtype.js";
import type { Tensor } from "../../tensor/tensor.js";

/**
 * ONNX element types narrower than the dtypes teenygrad computes in. Their values compute in a carrier
 * dtype (float32 for the floats, int8/uint8 for the 4- and 2-bit integers) and each op's result is
 * rounded (floats) or wrapped (Cast to the integers) back to the type. float16 stays float16 at a
 * model's inputs and outputs (.npy has it); the others cross as their carrier, since .npy has no such types.
 * Names are the ONNX checker's.
 */
export type Narrow = "float16" | "bfloat16" | "float8e8m0" | "float8e4m3fn" | "float8e4m3fnuz" | "float8e5m2" | "float8e5m2fnuz" | "float4e2m1" | "int4" | "uint4" | "int2" | "uint2";

/** TensorProto.DataType codes of the narrow types */
export const NARROW_CODES: Record<number, Narrow> = {
  10: "float16", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
};

export const narrowOfCode = (code: number | undefined): Narrow | undefined => NARROW_CODES[code ?? 0];

/** The dtype a narrow type's values compute in. */
export function carrierOf(n: Narrow): DType {
  if (n === "int4" || n === "int2") return "int8";
  if (n === "uint4" || n === "uint2") return "uint8";
  return "float32";
}

/** A narrow integer type: its bits and range. */
export const NARROW_INTS: Partial<Record<Narrow, { bits: number; signed: boolean; range: [number, number] }>> = {
  int4: { bits: 4, signed: true, range: [-8, 7] }, uint4: { bits: 4, signed: false, range: [0, 15] },
  int2: { bits: 2, signed: true, range: [-2, 1] }, uint2: { bits: 2, signed: false, range: [0, 3] },
};

/**
 * A narrow float format as the ONNX spec defines it: mantissa bits, the smallest normal exponent, the
 * largest finite value, what overflow gives without saturation, and the formats without -0 (fnuz) or NaN.
 */
export interface FloatFormat {
  mantissa: number;
  minExponent: number;
  max: number;
  /** beyond max when not saturating: infinity (formats that have it) or NaN */
  overflow: "infinity" | "nan";
  /** the saturate attribute applies (float8); others always saturate (float4e2m1) or never do (bfloat16, to infinity) */
  saturating: "attribute" | "always" | "never";
  /** fnuz: zero is unsigned */
  unsignedZero?: boolean;
  /** float4e2m1 has no NaN: NaN becomes -0, as onnx's reference gives */
  nanToZero?: boolean;
}

export const FLOAT_FORMATS: Partial<Record<Narrow, FloatFormat>> = {
  bfloat16: { mantissa: 7, minExponent: -126, max: 3.3895313892515355e38, overflow: "infinity", saturating: "never" },
  float8e4m3fn: { mantissa: 3, minExponent: -6, max: 448, overflow: "nan", saturating: "attribute" },
  float8e4m3fnuz: { mantissa: 3, minExponent: -7, max: 240, overflow: "nan", saturating: "attribute", unsignedZero: true },
  float8e5m2: { mantissa: 2, minExponent: -14, max: 57344, overflow: "infinity", saturating: "attribute" },
  float8e5m2fnuz: { mantissa: 2, minExponent: -15, max: 57344, overflow: "nan", saturating: "attribute", unsignedZero: true },
  float4e2m1: { mantissa: 1, minExponent: 0, max: 6, overflow: "nan", saturating: "always", nanToZero: true },
};

/** The attrs of the registry's roundToFloat op for a format (overflow: 0 the largest value, 1 infinity, 2 NaN). */
export function roundAttrs(f: FloatFormat, saturate: boolean): FloatFormatParams {
  const saturates = f.saturating === "always" || (f.saturating === "attribute" && saturate);
  return {
    mantissa: f.mantissa, minExponent: f.minExponent, max: f.max,
    overflow: saturates ? 0 : f.overflow === "infinity" ? 1 : 2,
    flags: (f.unsignedZero ? 1 : 0) | (f.nanToZero ? 2 : 0),
  };
}

/** Which tensors hold values of a narrow type (in their carrier dtype). */
const NARROW = new WeakMap<Tensor, Narrow>();

export const narrowOf = (t: Tensor | undefined): Narrow | undefined => (t ? NARROW.get(t) : undefined);

export function markNarrow(t: Tensor, n: Narrow | undefined): Tensor {
  if (n && t.dtype === carrierOf(n)) NARROW.set(t, n);
  return t;
}

/** A narrow format's bit pattern → its value (exact). */
export function decodeFloat(n: Narrow, bits: number): number {
  if (n === "bfloat16") return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
  if (n === "float8e8m0") return bits === 0xff ? NaN : 2 ** (bits - 127);
  const f = FLOAT_FORMATS[n]!;
  const width = n === "float4e2m1" ? 4 : 8, exponentBits = width - 1 - f.mantissa;
  const sign = bits >> (width - 1) & 1, exponent = (bits >> f.mantissa) & ((1 << exponentBits) - 1), mantissa = bits & ((1 << f.mantissa) - 1);
  const bias = 1 - f.minExponent;
  if (f.unsignedZero && bits === 1 << (width - 1)) return NaN; // fnuz: the "-0" pattern is NaN
  if (n === "float8e4m3fn" && (bits & 0x7f) === 0x7f) return NaN;
  if (n === "float8e5m2" && exponent === 31) return mantissa ? NaN : sign ? -Infinity : Infinity;
  const magnitude = exponent === 0 ? mantissa * 2 ** (f.minExponent - f.mantissa) : (1 + mantissa / 2 ** f.mantissa) * 2 ** (exponent - bias);
  return sign ? -magnitude : magnitude;
}
