/**
 * safetensors reader/writer. Layout: u64 LE header length N, N bytes of JSON header, then the data buffer;
 * each tensor's data_offsets are [begin, end) relative to the data buffer start.
 * Spec: https://github.com/huggingface/safetensors#format
 */
import { fail } from "../errors.js";
import { DTYPES, numel, type DType, type TypedArray } from "../ir/dtype.js";

export interface SafetensorsTensor {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

export interface SafetensorsFile {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** the reference implementation refuses headers above 100 MB */
const MAX_HEADER_BYTES = 100_000_000;

const DTYPE_BY_NAME = new Map<string, DType>(
  (Object.keys(DTYPES) as DType[]).map((d) => [DTYPES[d].safetensors, d]),
);

/**
 * The reference writer orders tensors by dtype, widest first (its Dtype enum order, descending), then by
 * name; this keeps every tensor aligned to its element size without padding.
 */
const WRITE_ORDER: Record<DType, number> = {
  uint64: 0, int64: 1, float64: 2, float32: 3, uint32: 4, int32: 5, float16: 6, uint16: 7, int16: 8, int8: 9, uint8: 10, bool: 11,
};

export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === "__metadata__") fail(`encodeSafetensors: "__metadata__" is reserved and cannot name a tensor`);
    const { dtype, shape, data } = tensors[name];
    const info = DTYPES[dtype];
    if (!info) fail(`encodeSafetensors: tensor "${name}" has unknown dtype "${dtype}"`);
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) fail(`encodeSafetensors: tensor "${name}" has bad dimension ${d}`);
    }
    if (!(data instanceof info.array)) {
      fail(`encodeSafetensors: tensor "${name}" (${dtype}) needs a ${info.array.name}, got ${data.constructor.name}`);
    }
    if (data.length !== numel(shape)) {
      fail(`encodeSafetensors: tensor "${name}" shape [${shape.join(", ")}] has ${numel(shape)} elements, data has ${data.length}`);
    }
  }
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (typeof value !== "string") fail(`encodeSafetensors: metadata "${key}" must be a string, got ${typeof value}`);
  }
  names.sort((a, b) => WRITE_ORDER[tensors[a].dtype] - WRITE_ORDER[tensors[b].dtype] || (a < b ? -1 : a > b ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const { dtype, shape, data } = tensors[name];
    setOwn(header, name, { dtype: DTYPES[dtype].safetensors, shape, data_offsets: [offset, offset + data.byteLength] });
    offset += data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // pad the header with spaces so the data buffer starts 8-byte aligned, as the reference writer does
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const grown = new Uint8Array(padded).fill(0x20);
    grown.set(json);
    json = grown;
  }

  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const { data } = tensors[name];
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

export function parseSafetensors(bytes: Uint8Array, source = "<bytes>"): SafetensorsFile {
  const where = `.safetensors (${source})`;
  if (bytes.length < 8) fail(`${where}: truncated: ${bytes.length} bytes, the header length alone needs 8`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`${where}: header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const dataStart = 8 + Number(headerLength);
  if (dataStart > bytes.length) {
    fail(`${where}: truncated header: declares ${headerLength} bytes, ${bytes.length - 8} present`);
  }
  if (headerLength < 2n || bytes[8] !== 0x7b /* { */) fail(`${where}: header must be a JSON object starting with "{"`);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    fail(`${where}: header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) fail(`${where}: header is not a JSON object`);

  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry)) fail(`${where}: __metadata__ must be an object of strings`);
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== "string") fail(`${where}: __metadata__ "${key}" must be a string, got ${JSON.stringify(value)}`);
        setOwn(metadata, key, value);
      }
      continue;
    }
    entries.push(parseEntry(name, entry, where));
  }

  // the reference validator demands the entries tile the data buffer exactly: no gaps, overlaps or leftovers
  const dataBytes = bytes.length - dataStart;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const e of entries) {
    if (e.begin !== covered) {
      fail(e.begin < covered
        ? `${where}: tensor "${e.name}" bytes [${e.begin}, ${e.end}) overlap the previous tensor (which ends at ${covered})`
        : `${where}: gap in the data buffer: bytes [${covered}, ${e.begin}) before tensor "${e.name}" belong to no tensor`);
    }
    if (e.end > dataBytes) fail(`${where}: tensor "${e.name}" bytes [${e.begin}, ${e.end}) run past the ${dataBytes}-byte data buffer (truncated file?)`);
    covered = e.end;
  }
  if (covered !== dataBytes) fail(`${where}: ${dataBytes - covered} trailing bytes after the last tensor belong to no tensor`);

  const tensors: Record<string, SafetensorsTensor> = {};
  for (const { name, dtype, shape, begin, end } of entries) {
    // copy: the data buffer need not be aligned for the element type
    const raw = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end); // a copy even for a Node Buffer
    setOwn(tensors, name, { dtype, shape, data: new DTYPES[dtype].array(raw.buffer, 0, numel(shape)) });
  }
  return { tensors, metadata };
}

/** plain assignment would treat a tensor named "__proto__" as the prototype */
function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

function parseEntry(name: string, entry: unknown, where: string) {
  const at = `${where}: tensor "${name}"`;
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) fail(`${at}: entry must be an object`);
  const { dtype: dtypeName, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  const dtype = typeof dtypeName === "string" ? DTYPE_BY_NAME.get(dtypeName) : undefined;
  if (dtype === undefined) {
    fail(`${at}: unsupported dtype ${JSON.stringify(dtypeName)} (supported: ${[...DTYPE_BY_NAME.keys()].join(", ")})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`${at}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    fail(`${at}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`${at}: data_offsets [${begin}, ${end}] end before they begin`);
  const expected = numel(shape) * DTYPES[dtype].bytes;
  if (!Number.isSafeInteger(expected)) fail(`${at}: shape [${shape.join(", ")}] is too large`);
  if (end - begin !== expected) {
    fail(`${at}: ${dtype}[${shape.join(", ")}] needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}
