import { fail } from "../../errors.js";
import { numel } from "../../ir/dtype.js";
import type { HostTensor } from "../../ir/graph.js";
import { TensorType } from "./schema/tflite_generated.js";
import type { Quantization, TfliteTensor } from "./reader.js";

/** Decoding constant tensors: float data as stored, integer data dequantized with its scales and zero points. */

/** Integer element types whose values the importer dequantizes, with their ranges. */
export const QUANTIZED_TYPES: Partial<Record<TensorType, { bytes: number; min: number; max: number }>> = {
  [TensorType.INT8]: { bytes: 1, min: -128, max: 127 },
  [TensorType.UINT8]: { bytes: 1, min: 0, max: 255 },
  [TensorType.INT16]: { bytes: 2, min: -32768, max: 32767 },
  [TensorType.INT32]: { bytes: 4, min: -(2 ** 31), max: 2 ** 31 - 1 },
  [TensorType.INT64]: { bytes: 8, min: -(2 ** 63), max: 2 ** 63 - 1 },
};

const FLOAT_BYTES: Partial<Record<TensorType, number>> = { [TensorType.FLOAT32]: 4, [TensorType.FLOAT16]: 2 };

export const typeName = (t: TensorType): string => TensorType[t] ?? `type ${t}`;

function view(t: TfliteTensor, elemBytes: number, source: string): DataView {
  const n = numel(t.shape);
  if (!t.data) fail(`${source}: tensor '${t.name}' has no data`);
  if (t.data.length !== n * elemBytes) {
    fail(`${source}: tensor '${t.name}' [${t.shape}] of ${typeName(t.type)} needs ${n * elemBytes} bytes but its buffer holds ${t.data.length}`);
  }
  return new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** IEEE 754 half → number */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The raw integer values of an integer tensor, in storage order. */
export function integerValues(t: TfliteTensor, source: string): number[] {
  const info = QUANTIZED_TYPES[t.type];
  if (!info) fail(`${source}: tensor '${t.name}' should hold integers, but it is ${typeName(t.type)}`);
  const dv = view(t, info.bytes, source);
  const n = numel(t.shape);
  const read = (i: number): number => {
    switch (t.type) {
      case TensorType.INT8: return dv.getInt8(i);
      case TensorType.UINT8: return dv.getUint8(i);
      case TensorType.INT16: return dv.getInt16(2 * i, true);
      case TensorType.INT32: return dv.getInt32(4 * i, true);
      default: return Number(dv.getBigInt64(8 * i, true));
    }
  };
  return Array.from({ length: n }, (_, i) => read(i));
}

/** A constant as float32 in its stored (TFLite) layout: floats as they are, integers as scale·(q - zero point). */
export function floatConstant(t: TfliteTensor, source: string): HostTensor {
  const n = numel(t.shape);
  const floatBytes = FLOAT_BYTES[t.type];
  if (floatBytes) {
    const dv = view(t, floatBytes, source);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = floatBytes === 4 ? dv.getFloat32(4 * i, true) : halfToFloat(dv.getUint16(2 * i, true));
    return { shape: [...t.shape], dtype: "float32", data: out };
  }
  if (!t.quantization) fail(`${source}: constant '${t.name}' is ${typeName(t.type)} without quantization parameters; only float and quantized constants become weights`);
  const q = integerValues(t, source);
  const out = new Float32Array(n);
  const { scale, zeroPoint, axis } = t.quantization;
  // per-channel: the channel of element i along `axis` picks its scale and zero point
  const inner = scale.length > 1 ? numel(t.shape.slice(axis + 1)) : 1;
  for (let i = 0; i < n; i++) {
    const c = scale.length > 1 ? Math.floor(i / inner) % scale.length : 0;
    out[i] = scale[c] * (q[i] - zeroPoint[c]);
  }
  return { shape: [...t.shape], dtype: "float32", data: out };
}

/** The per-tensor (scale, zero point) of an activation; per-channel activations do not exist in TFLite. */
export function perTensor(q: Quantization, t: TfliteTensor, source: string): { scale: number; zeroPoint: number } {
  if (q.scale.length !== 1) fail(`${source}: activation '${t.name}' has ${q.scale.length} per-channel scales; activations are quantized per tensor`);
  return { scale: q.scale[0], zeroPoint: q.zeroPoint[0] };
}

/** Why a quantized tensor's parameters are unusable (a scale not positive and finite, a zero point outside its type's range), or null. */
export function badQuantization(t: TfliteTensor): string | null {
  const q = t.quantization, range = QUANTIZED_TYPES[t.type];
  if (!q || !range) return null;
  const scale = q.scale.find((s) => !(s > 0) || !Number.isFinite(s));
  if (scale !== undefined) return `tensor '${t.name}' has scale ${scale} (scales must be positive and finite)`;
  const zp = q.zeroPoint.find((z) => !Number.isInteger(z) || z < range.min || z > range.max);
  if (zp !== undefined) return `tensor '${t.name}' has zero point ${zp}, outside ${typeName(t.type)}'s range [${range.min}, ${range.max}]`;
  return null;
}
