/**
 * NumPy .npy reader/writer (format versions 1.0, 2.0 and 3.0) for the dtypes in DTYPES.
 * Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import { fail } from "../errors.js";
import { DTYPES, numel, type DType, type TypedArray } from "../ir/dtype.js";

export interface NpyArray {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** numpy aligns the data start to 64 bytes so the array can be memory-mapped */
const ALIGN = 64;
/** numpy leaves room in the header so the first axis can grow in place; mirrored so our files equal np.save's */
const GROWTH_AXIS_MAX_DIGITS = 21;

/** numpy type char + size → dtype (byte order handled separately) */
const NPY_KINDS: Record<string, DType> = {
  f2: "float16", f4: "float32", f8: "float64", i1: "int8", u1: "uint8", i2: "int16", u2: "uint16", i4: "int32", u4: "uint32", i8: "int64", u8: "uint64", b1: "bool",
};

export function parseNpy(bytes: Uint8Array, source = "<bytes>"): NpyArray {
  const where = `.npy (${source})`;
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail(`${where}: not a .npy file (missing the \\x93NUMPY magic)`);
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (minor !== 0 || (major !== 1 && major !== 2 && major !== 3)) {
    fail(`${where}: unsupported format version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) fail(`${where}: truncated header length`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = 8 + lengthBytes;
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) {
    fail(`${where}: truncated header (declares ${headerLength} bytes, ${bytes.length - headerStart} present)`);
  }
  let headerText: string;
  try {
    // 1.0 and 2.0 headers are latin1; 3.0 allows utf8
    headerText = new TextDecoder(major === 3 ? "utf-8" : "latin1", { fatal: true })
      .decode(bytes.subarray(headerStart, dataStart));
  } catch {
    fail(`${where}: header is not valid ${major === 3 ? "UTF-8" : "latin1"} text`);
  }
  const header = parseHeader(headerText, where);

  const { dtype, bigEndian } = parseDescr(header.descr, where);
  const shape = header.shape;
  const count = numel(shape);
  const elementBytes = DTYPES[dtype].bytes;
  const dataBytes = count * elementBytes;
  if (!Number.isSafeInteger(dataBytes)) fail(`${where}: shape (${shape.join(", ")}) is too large`);
  const present = bytes.length - dataStart;
  if (present < dataBytes) {
    fail(`${where}: truncated data: ${dtype}[${shape.join(", ")}] needs ${dataBytes} bytes, file has ${present}`);
  }
  if (present > dataBytes) {
    fail(`${where}: ${present - dataBytes} unexpected trailing bytes after the ${dtype}[${shape.join(", ")}] data`);
  }

  // copy into a fresh buffer: the source may be unaligned for the element type
  const raw = Uint8Array.prototype.slice.call(bytes, dataStart, dataStart + dataBytes); // a copy even for a Node Buffer, whose slice() is a view
  if (bigEndian && elementBytes > 1) swapBytes(raw, elementBytes);
  const flat = new DTYPES[dtype].array(raw.buffer, 0, count);
  const data = header.fortranOrder && shape.length > 1 ? fortranToC(flat, shape) : flat;
  return { dtype, shape, data };
}

export function encodeNpy(dtype: DType, shape: readonly number[], data: TypedArray): Uint8Array {
  const info = DTYPES[dtype];
  if (!info) fail(`encodeNpy: unknown dtype "${dtype}"`);
  checkShape(shape, `encodeNpy ${dtype}`);
  const count = numel(shape);
  if (!(data instanceof info.array)) {
    fail(`encodeNpy: ${dtype} data must be a ${info.array.name}, got ${data.constructor.name}`);
  }
  if (data.length !== count) {
    fail(`encodeNpy: shape [${shape.join(", ")}] has ${count} elements but the data has ${data.length}`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let dict = `{'descr': '${info.npy}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  if (shape.length > 0) dict += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  // magic + version + length + dict + "\n" is padded with spaces to a multiple of ALIGN; 2.0 only when 1.0's
  // 16-bit header length overflows (a huge rank)
  const paddedFor = (prefix: number) => Math.ceil((prefix + dict.length + 1) / ALIGN) * ALIGN;
  const major = paddedFor(10) - 10 <= 0xffff ? 1 : 2;
  const prefix = major === 1 ? 10 : 12;
  const padded = paddedFor(prefix);
  const header = dict + " ".repeat(padded - prefix - dict.length - 1) + "\n";

  const out = new Uint8Array(padded + data.byteLength);
  out.set(MAGIC);
  out[6] = major;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i); // ASCII only
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), padded);
  return out;
}

function checkShape(shape: readonly unknown[], where: string): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || (d as number) < 0) fail(`${where}: bad dimension ${String(d)} in shape`);
  }
}

function parseDescr(descr: PyValue, where: string): { dtype: DType; bigEndian: boolean } {
  if (typeof descr !== "string") fail(`${where}: unsupported dtype ${pyRepr(descr)} (structured arrays are not supported)`);
  const order = descr[0];
  const kind = descr.slice(1);
  const dtype = NPY_KINDS[kind];
  const oneByte = dtype !== undefined && DTYPES[dtype].bytes === 1;
  // '=' (native order) never appears in files numpy writes and would be ambiguous, so it is rejected
  const validOrder = order === "<" || order === ">" || (order === "|" && oneByte);
  if (dtype === undefined || !validOrder) {
    const supported = Object.values(DTYPES).map((d) => d.npy).join(", ");
    fail(`${where}: unsupported dtype '${descr}' (supported: ${supported}, or big-endian '>' forms)`);
  }
  return { dtype, bigEndian: order === ">" };
}

function swapBytes(raw: Uint8Array, size: number): void {
  for (let i = 0; i < raw.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = raw[a];
      raw[a] = raw[b];
      raw[b] = t;
    }
  }
}

/** Reorders a column-major array into row-major order. */
function fortranToC(src: TypedArray, shape: number[]): TypedArray {
  const rank = shape.length;
  const count = src.length;
  const dst = new (src.constructor as new (n: number) => TypedArray)(count);
  if (count === 0) return dst;
  const fortranStrides = new Array<number>(rank);
  for (let k = 0, s = 1; k < rank; k++) {
    fortranStrides[k] = s;
    s *= shape[k];
  }
  // walk the C-order index like an odometer, keeping the matching Fortran offset up to date
  const index = new Array<number>(rank).fill(0);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    dst[i] = src[offset];
    for (let k = rank - 1; k >= 0; k--) {
      if (++index[k] < shape[k]) {
        offset += fortranStrides[k];
        break;
      }
      offset -= (shape[k] - 1) * fortranStrides[k];
      index[k] = 0;
    }
  }
  return dst;
}

// ---- the header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (3,), }

type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

function parseHeader(text: string, where: string): { descr: PyValue; fortranOrder: boolean; shape: number[] } {
  const parser = new PyLiteralParser(text, where);
  const value = parser.parseValue();
  parser.expectEnd();
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail(`${where}: header is not a dict: ${text.trim().slice(0, 80)}`);
  }
  for (const key of ["descr", "fortran_order", "shape"]) {
    if (!Object.hasOwn(value, key)) fail(`${where}: header has no '${key}' key`);
  }
  const extra = Object.keys(value).filter((k) => !["descr", "fortran_order", "shape"].includes(k));
  if (extra.length > 0) fail(`${where}: unexpected header keys ${extra.map((k) => `'${k}'`).join(", ")}`);
  const fortranOrder = value.fortran_order;
  if (typeof fortranOrder !== "boolean") fail(`${where}: 'fortran_order' must be True or False, got ${pyRepr(fortranOrder)}`);
  const shape = value.shape;
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)) {
    fail(`${where}: 'shape' must be a tuple of non-negative integers, got ${pyRepr(shape)}`);
  }
  return { descr: value.descr, fortranOrder, shape: shape as number[] };
}

function pyRepr(v: PyValue): string {
  return JSON.stringify(v) ?? String(v);
}

/** Just enough of Python's literal syntax for .npy headers: dicts, tuples, lists, str, int, True/False/None. */
class PyLiteralParser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly text: string, private readonly where: string) {}

  parseValue(): PyValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === "{" || c === "(" || c === "[") {
      // bound the nesting so a hostile header cannot overflow the stack
      if (++this.depth > 32) this.error("nested too deeply");
      const value = c === "{" ? this.parseDict() : this.parseSequence(c === "(" ? ")" : "]");
      this.depth--;
      return value;
    }
    if (c === "'" || c === '"') return this.parseString();
    const word = /^(?:[-+]?\d+|True|False|None)/.exec(this.text.slice(this.pos, this.pos + 40));
    if (!word) this.error(c === undefined ? "ends too early" : `unexpected ${JSON.stringify(c)}`);
    this.pos += word[0].length;
    if (word[0] === "True") return true;
    if (word[0] === "False") return false;
    if (word[0] === "None") return null;
    const n = Number(word[0]);
    if (!Number.isSafeInteger(n)) this.error(`integer ${word[0]} is too large`);
    return n;
  }

  expectEnd(): void {
    this.skipSpace();
    if (this.pos !== this.text.length) this.error(`unexpected ${JSON.stringify(this.text[this.pos])} after the dict`);
  }

  private parseDict(): { [key: string]: PyValue } {
    this.pos++; // {
    const dict: { [key: string]: PyValue } = Object.create(null);
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === "}") break;
      const key = this.parseValue();
      if (typeof key !== "string") this.error("dict keys must be strings");
      if (Object.hasOwn(dict, key)) this.error(`duplicate key '${key}'`);
      this.expect(":");
      dict[key] = this.parseValue();
      if (!this.separator("}")) break;
    }
    this.expect("}");
    return dict;
  }

  private parseSequence(close: string): PyValue[] {
    this.pos++; // ( or [
    const items: PyValue[] = [];
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) break;
      items.push(this.parseValue());
      if (!this.separator(close)) break;
    }
    this.expect(close);
    return items;
  }

  /** consumes a "," (returning true) or stops before the closing bracket (returning false) */
  private separator(close: string): boolean {
    this.skipSpace();
    if (this.text[this.pos] === ",") {
      this.pos++;
      return true;
    }
    if (this.text[this.pos] !== close) this.error(`expected "," or "${close}"`);
    return false;
  }

  private parseString(): string {
    const quote = this.text[this.pos++];
    let out = "";
    for (;;) {
      const c = this.text[this.pos++];
      if (c === undefined || c === "\n") this.error("unterminated string");
      if (c === quote) return out;
      if (c === "\\") {
        const next = this.text[this.pos++];
        if (next !== "\\" && next !== "'" && next !== '"') this.error(`unsupported escape \\${next ?? ""}`);
        out += next;
      } else {
        out += c;
      }
    }
  }

  private expect(c: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== c) this.error(`expected "${c}"`);
    this.pos++;
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  private error(what: string): never {
    fail(`${this.where}: malformed header at character ${this.pos}: ${what}`);
  }
}
