import protobuf from "protobufjs";
import { fail } from "../../errors.js";
import { DTYPES, halfToFloat, isBigIntArray, numel, type DType } from "../../ir/dtype.js";
import type { HostTensor } from "../../ir/graph.js";
import { shapeStr } from "../../ir/shape.js";
import { carrierOf, decodeFloat, NARROW_INTS, narrowOfCode, type Narrow } from "./narrow.js";
import schema from "./onnx-schema.json" with { type: "json" };

/** onnx.proto as plain objects: protobufjs's toObject with int64 as decimal strings (exact) and bytes as Uint8Array. */
export interface TensorProto {
  name?: string;
  dims?: string[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: string[];
  uint64_data?: string[];
  double_data?: number[];
  raw_data?: Uint8Array;
  string_data?: Uint8Array[];
  data_location?: number;
  external_data?: { key: string; value: string }[];
}
export interface AttributeProto {
  name: string;
  type?: number;
  f?: number;
  i?: string;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  graphs?: GraphProto[];
  floats?: number[];
  ints?: string[];
  strings?: Uint8Array[];
  ref_attr_name?: string;
}
export interface NodeProto {
  name?: string;
  op_type: string;
  domain?: string;
  input?: string[];
  output?: string[];
  attribute?: AttributeProto[];
}
export interface TypeProto {
  tensor_type?: { elem_type?: number; shape?: { dim?: { dim_value?: string; dim_param?: string }[] } };
  sequence_type?: { elem_type?: TypeProto };
  optional_type?: { elem_type?: TypeProto };
  map_type?: unknown;
  sparse_tensor_type?: unknown;
}
export interface ValueInfoProto {
  name: string;
  type?: TypeProto;
}
export interface GraphProto {
  name?: string;
  node?: NodeProto[];
  initializer?: TensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
}
export interface ModelProto {
  ir_version?: string;
  opset_import?: { domain?: string; version?: string }[];
  graph?: GraphProto;
  producer_name?: string;
}

/** onnx-data.proto's containers, as the backend tests store sequence and optional values (maps and sparse tensors left out). */
export interface SequenceProto {
  elem_type?: number;
  tensor_values?: TensorProto[];
  sequence_values?: SequenceProto[];
  optional_values?: OptionalProto[];
}
export interface OptionalProto {
  elem_type?: number;
  tensor_value?: TensorProto;
  sequence_value?: SequenceProto;
  optional_value?: OptionalProto;
}

const root = protobuf.Root.fromJSON(schema as protobuf.INamespace);
(root.lookup("onnx") as protobuf.Namespace)
  .add(new protobuf.Type("SequenceProto").add(new protobuf.Field("name", 1, "string")).add(new protobuf.Field("elem_type", 2, "int32"))
    .add(new protobuf.Field("tensor_values", 3, "TensorProto", "repeated")).add(new protobuf.Field("sequence_values", 5, "SequenceProto", "repeated"))
    .add(new protobuf.Field("optional_values", 7, "OptionalProto", "repeated")))
  .add(new protobuf.Type("OptionalProto").add(new protobuf.Field("name", 1, "string")).add(new protobuf.Field("elem_type", 2, "int32"))
    .add(new protobuf.Field("tensor_value", 3, "TensorProto")).add(new protobuf.Field("sequence_value", 5, "SequenceProto"))
    .add(new protobuf.Field("optional_value", 7, "OptionalProto")));
const ModelType = root.lookupType("onnx.ModelProto");
const TensorType = root.lookupType("onnx.TensorProto");
const SequenceType = root.lookupType("onnx.SequenceProto");
const OptionalType = root.lookupType("onnx.OptionalProto");
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, bytes: Uint8Array, defaults: false, arrays: true };

function decode<T>(type: protobuf.Type, bytes: Uint8Array, what: string): T {
  try {
    return type.toObject(type.decode(bytes), TO_OBJECT) as T;
  } catch (e) {
    fail(`${what} is not a valid ONNX protobuf (${(e as Error).message})`);
  }
}

export const decodeModel = (bytes: Uint8Array, source: string): ModelProto => decode<ModelProto>(ModelType, bytes, source);
export const decodeTensor = (bytes: Uint8Array, source: string): TensorProto => decode<TensorProto>(TensorType, bytes, source);
export const decodeSequence = (bytes: Uint8Array, source: string): SequenceProto => decode<SequenceProto>(SequenceType, bytes, source);
export const decodeOptional = (bytes: Uint8Array, source: string): OptionalProto => decode<OptionalProto>(OptionalType, bytes, source);

/** TensorProto.DataType codes → our dtypes; the others are named in errors. */
const ONNX_DTYPES: Record<number, DType> = { 1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 11: "float64", 12: "uint32", 13: "uint64" };
const ONNX_DTYPE_NAMES: Record<number, string> = { 0: "UNDEFINED", 8: "STRING", 14: "COMPLEX64", 15: "COMPLEX128" };

const FLOAT16 = 10;

/** The dtype a graph value computes in: narrow types in their carrier (float16 as float32; see narrow.ts). */
export function onnxDType(code: number | undefined, what: string): DType {
  const narrow = narrowOfCode(code);
  return narrow ? carrierOf(narrow) : storageDType(code, what);
}

/** The dtype a graph value is stored in (a model input or output): float16 as its bit patterns, the other narrow types in their carrier. */
export function storageDType(code: number | undefined, what: string): DType {
  const narrow = narrowOfCode(code);
  const dtype = code === FLOAT16 ? "float16" : narrow ? carrierOf(narrow) : ONNX_DTYPES[code ?? 0];
  if (!dtype) fail(`${what} has element type ${ONNX_DTYPE_NAMES[code ?? 0] ?? code}, which teenygrad does not support`);
  return dtype;
}

/** Our dtype → ONNX TensorProto.DataType code (for Cast's `to`). */
export const onnxCode = (dtype: DType): number => Number(Object.entries(ONNX_DTYPES).find(([, d]) => d === dtype)![0]);

/** int64 fields arrive as decimal strings; dims beyond 2^53 are nonsense anyway, so Number is exact enough. */
export const toInt = (s: string | number | undefined): number => Number(s ?? 0);

/** A TensorProto's values for the graph, float16 widened to float32 (exact), as onnxDType. `baseDir` resolves external data files, which must stay inside it. */
export function tensorFromProto(t: TensorProto, what: string, baseDir?: string): HostTensor {
  const h = storedTensor(t, what, baseDir);
  return h.dtype === "float16" ? widenHalf(h) : h;
}

/** float16 bit patterns → their float32 values (exact). */
export function widenHalf(h: HostTensor): HostTensor {
  return { shape: h.shape, dtype: "float32", data: Float32Array.from(h.data as Uint16Array, halfToFloat) };
}

/** A TensorProto's values, float16 as its bit patterns (int32_data holds them one per element, as the spec says). */
export function storedTensor(t: TensorProto, what: string, baseDir?: string): HostTensor {
  const label = `${what}${t.name ? ` '${t.name}'` : ""}`;
  const dtype = storageDType(t.data_type, label);
  const shape = (t.dims ?? []).map(toInt);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`${label} has invalid dims ${shapeStr(shape)}`);
  const n = numel(shape);
  const narrow = narrowOfCode(t.data_type);
  if (narrow && narrow !== "float16") return narrowTensor(t, label, narrow, shape, baseDir);
  const info = DTYPES[dtype];
  if (n * info.bytes > 2 ** 31) fail(`${label}: ${shapeStr(shape)} is too large (${n * info.bytes} bytes)`);
  const out = new info.array(n);

  let raw = t.raw_data;
  if (t.data_location === 1) raw = readExternal(t, label, baseDir, n * info.bytes);
  if (raw && raw.byteLength > 0) {
    if (raw.byteLength !== n * info.bytes) fail(`${label}: raw_data has ${raw.byteLength} bytes, ${shapeStr(shape)} ${dtype} needs ${n * info.bytes}`);
    // copy into an aligned buffer: raw_data may sit at any offset of the file
    new Uint8Array(out.buffer).set(raw);
    return { shape, dtype, data: out };
  }
  const field: ArrayLike<number | string> | undefined =
    dtype === "float32" ? t.float_data
    : dtype === "float64" ? t.double_data
    : dtype === "int64" ? t.int64_data
    : dtype === "uint32" || dtype === "uint64" ? t.uint64_data
    : t.int32_data;
  const values = field ?? [];
  if (values.length !== n) fail(`${label}: ${values.length} values for shape ${shapeStr(shape)} (${n} elements)`);
  if (isBigIntArray(out)) for (let i = 0; i < n; i++) out[i] = BigInt(values[i]);
  else for (let i = 0; i < n; i++) out[i] = Number(values[i]);
  return { shape, dtype, data: out };
}

/**
 * A narrow type's tensor decoded into its carrier: 4- and 2-bit elements packed low bits first (raw_data,
 * or int32_data one packed byte each), 8- and 16-bit ones one element each (as float16's).
 */
function narrowTensor(t: TensorProto, label: string, narrow: Narrow, shape: number[], baseDir: string | undefined): HostTensor {
  const n = numel(shape);
  const width = narrow === "bfloat16" ? 16 : narrow === "int4" || narrow === "uint4" || narrow === "float4e2m1" ? 4 : narrow === "int2" || narrow === "uint2" ? 2 : 8;
  const packed = width < 8;
  const bytes = Math.ceil((n * width) / 8);
  if (bytes > 2 ** 31) fail(`${label}: ${shapeStr(shape)} is too large (${bytes} bytes)`);
  let raw = t.raw_data;
  if (t.data_location === 1) raw = readExternal(t, label, baseDir, bytes);
  let element: (i: number) => number;
  if (raw && raw.byteLength > 0) {
    if (raw.byteLength !== bytes) fail(`${label}: raw_data has ${raw.byteLength} bytes, ${shapeStr(shape)} ${narrow} needs ${bytes}`);
    const r = raw;
    element = width === 16 ? (i) => r[2 * i] | (r[2 * i + 1] << 8) : (i) => (r[(i * width) >> 3] >> ((i * width) & 7)) & ((1 << width) - 1);
  } else {
    const values = t.int32_data ?? [];
    if (values.length !== (packed ? bytes : n)) fail(`${label}: ${values.length} int32_data values for shape ${shapeStr(shape)} (${n} ${narrow} elements)`);
    element = packed ? (i) => (values[(i * width) >> 3] >> ((i * width) & 7)) & ((1 << width) - 1) : (i) => values[i] & ((1 << width) - 1);
  }
  const dtype = carrierOf(narrow);
  const data = new DTYPES[dtype].array(n) as Float32Array | Int8Array | Uint8Array;
  const int = NARROW_INTS[narrow];
  for (let i = 0; i < n; i++) {
    const bits = element(i);
    data[i] = int ? (int.signed && bits >> (width - 1) ? bits - (1 << width) : bits) : decodeFloat(narrow, bits);
  }
  return { shape, dtype, data };
}

function readExternal(t: TensorProto, label: string, baseDir: string | undefined, bytes: number): Uint8Array {
  const entries = Object.fromEntries((t.external_data ?? []).map((e) => [e.key, e.value]));
  if (!entries.location) fail(`${label}: external data without a location`);
  if (!baseDir) fail(`${label}: stored in external file '${entries.location}', but the model was not loaded from a file`);
  // node:fs only here, and only in Node: importing a model from bytes needs no file system (browsers)
  const node = globalThis.process?.getBuiltinModule;
  if (!node) fail(`${label}: external data files can only be read in Node`);
  const { existsSync, readFileSync, statSync } = node("node:fs");
  const { resolve, sep } = node("node:path");
  const base = resolve(baseDir);
  const file = resolve(base, entries.location);
  if (!file.startsWith(base + sep)) fail(`${label}: external data location '${entries.location}' points outside the model's directory`);
  if (!existsSync(file)) fail(`${label}: external data file '${entries.location}' not found next to the model`);
  const offset = toInt(entries.offset), length = entries.length !== undefined ? toInt(entries.length) : bytes;
  if (length !== bytes || offset < 0 || offset + length > statSync(file).size) fail(`${label}: external data range ${offset}+${length} does not fit '${entries.location}' or the tensor (${bytes} bytes)`);
  return readFileSync(file).subarray(offset, offset + length);
}
