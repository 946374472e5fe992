import * as flatbuffers from "flatbuffers";
import { fail } from "../../errors.js";
import { BuiltinOperator, BuiltinOptions, Model, Operator, TensorType } from "./schema/tflite_generated.js";

/**
 * Reads a .tflite file into plain objects. flatc's generated accessors trust the buffer (an offset past the end
 * reads `undefined` bytes as zeros, a flipped length loops for billions of steps), so every table, vector and
 * string the importer reads is first checked against the file here, by a small verifier driven by the subset of
 * the schema below; only then do the generated accessors read it.
 */

/** What one field of a table holds, for the verifier. Field ids are the schema's declaration order (unions take two). */
type FieldSpec =
  | { scalar: 1 | 2 | 4 | 8 }
  | { string: true }
  | { vector: 1 | 4 | 8 }
  | { table: TableSpec }
  | { tables: TableSpec };
interface TableSpec {
  name: string;
  fields: Record<number, FieldSpec>;
}

const QUANTIZATION: TableSpec = {
  name: "QuantizationParameters",
  fields: { 0: { vector: 4 }, 1: { vector: 4 }, 2: { vector: 4 }, 3: { vector: 8 }, 4: { scalar: 1 }, 6: { scalar: 4 } },
};
const TENSOR: TableSpec = {
  name: "Tensor",
  // shape, type, buffer, name, quantization, is_variable, (sparsity: presence only), shape_signature
  fields: { 0: { vector: 4 }, 1: { scalar: 1 }, 2: { scalar: 4 }, 3: { string: true }, 4: { table: QUANTIZATION }, 5: { scalar: 1 }, 6: { scalar: 4 }, 7: { vector: 4 } },
};
const OPERATOR: TableSpec = {
  name: "Operator",
  // opcode_index, inputs, outputs, builtin_options_type, builtin_options (only its offset: the table is checked by
  // the op that reads it, against that op's options type), custom_options_format, intermediates, builtin_options_2_type
  fields: { 0: { scalar: 4 }, 1: { vector: 4 }, 2: { vector: 4 }, 3: { scalar: 1 }, 4: { scalar: 4 }, 6: { scalar: 1 }, 8: { vector: 4 }, 11: { scalar: 1 } },
};
const SUBGRAPH: TableSpec = {
  name: "SubGraph",
  fields: { 0: { tables: TENSOR }, 1: { vector: 4 }, 2: { vector: 4 }, 3: { tables: OPERATOR }, 4: { string: true } },
};
const OPERATOR_CODE: TableSpec = {
  name: "OperatorCode",
  fields: { 0: { scalar: 1 }, 1: { string: true }, 2: { scalar: 4 }, 3: { scalar: 4 } },
};
const BUFFER: TableSpec = { name: "Buffer", fields: { 0: { vector: 1 }, 1: { scalar: 8 }, 2: { scalar: 8 } } };
const MODEL: TableSpec = {
  name: "Model",
  fields: { 0: { scalar: 4 }, 1: { tables: OPERATOR_CODE }, 2: { tables: SUBGRAPH }, 3: { string: true }, 4: { tables: BUFFER } },
};

/** Builtin options tables the importer reads, by the union tag the operator carries. */
const OPTIONS: Partial<Record<BuiltinOptions, TableSpec>> = {
  [BuiltinOptions.Conv2DOptions]: { name: "Conv2DOptions", fields: { 0: { scalar: 1 }, 1: { scalar: 4 }, 2: { scalar: 4 }, 3: { scalar: 1 }, 4: { scalar: 4 }, 5: { scalar: 4 } } },
  [BuiltinOptions.DepthwiseConv2DOptions]: {
    name: "DepthwiseConv2DOptions",
    fields: { 0: { scalar: 1 }, 1: { scalar: 4 }, 2: { scalar: 4 }, 3: { scalar: 4 }, 4: { scalar: 1 }, 5: { scalar: 4 }, 6: { scalar: 4 } },
  },
  [BuiltinOptions.Pool2DOptions]: { name: "Pool2DOptions", fields: { 0: { scalar: 1 }, 1: { scalar: 4 }, 2: { scalar: 4 }, 3: { scalar: 4 }, 4: { scalar: 4 }, 5: { scalar: 1 } } },
  [BuiltinOptions.FullyConnectedOptions]: { name: "FullyConnectedOptions", fields: { 0: { scalar: 1 }, 1: { scalar: 1 }, 2: { scalar: 1 }, 3: { scalar: 1 }, 4: { scalar: 1 } } },
  [BuiltinOptions.SoftmaxOptions]: { name: "SoftmaxOptions", fields: { 0: { scalar: 4 } } },
  [BuiltinOptions.ConcatenationOptions]: { name: "ConcatenationOptions", fields: { 0: { scalar: 4 }, 1: { scalar: 1 } } },
  [BuiltinOptions.AddOptions]: { name: "AddOptions", fields: { 0: { scalar: 1 }, 1: { scalar: 1 } } },
  [BuiltinOptions.SubOptions]: { name: "SubOptions", fields: { 0: { scalar: 1 }, 1: { scalar: 1 } } },
  [BuiltinOptions.MulOptions]: { name: "MulOptions", fields: { 0: { scalar: 1 } } },
  [BuiltinOptions.DivOptions]: { name: "DivOptions", fields: { 0: { scalar: 1 } } },
  [BuiltinOptions.ReshapeOptions]: { name: "ReshapeOptions", fields: { 0: { vector: 4 } } },
  [BuiltinOptions.SqueezeOptions]: { name: "SqueezeOptions", fields: { 0: { vector: 4 } } },
  [BuiltinOptions.ReducerOptions]: { name: "ReducerOptions", fields: { 0: { scalar: 1 } } },
  [BuiltinOptions.LeakyReluOptions]: { name: "LeakyReluOptions", fields: { 0: { scalar: 4 } } },
  [BuiltinOptions.StridedSliceOptions]: {
    name: "StridedSliceOptions",
    fields: { 0: { scalar: 4 }, 1: { scalar: 4 }, 2: { scalar: 4 }, 3: { scalar: 4 }, 4: { scalar: 4 }, 5: { scalar: 1 } },
  },
};

/** Bounds checks over the file; every failure names the table and field it was reading. */
class Verifier {
  constructor(private readonly bytes: Uint8Array, private readonly source: string) {}

  private malformed(what: string): never {
    fail(`${this.source}: not a valid .tflite file: ${what} lies outside the file (${this.bytes.length} bytes); it is truncated or corrupt`);
  }
  private check(pos: number, size: number, what: string): void {
    if (!Number.isInteger(pos) || pos < 0 || pos + size > this.bytes.length) this.malformed(what);
  }
  private u16(pos: number): number {
    return this.bytes[pos] | (this.bytes[pos + 1] << 8);
  }
  i32(pos: number, what: string): number {
    this.check(pos, 4, what);
    return this.bytes[pos] | (this.bytes[pos + 1] << 8) | (this.bytes[pos + 2] << 16) | (this.bytes[pos + 3] << 24);
  }
  /** the position a uoffset stored at `pos` points to */
  private follow(pos: number, what: string): number {
    const target = pos + (this.i32(pos, what) >>> 0);
    this.check(target, 4, what);
    return target;
  }

  /** Checks the table at `pos`, its vtable, and every field of `spec` it has (recursively). */
  table(pos: number, spec: TableSpec, path: string): void {
    this.check(pos, 4, `${path} (${spec.name})`);
    const vtable = pos - this.i32(pos, path);
    this.check(vtable, 4, `the vtable of ${path}`);
    const vtableBytes = this.u16(vtable), tableBytes = this.u16(vtable + 2);
    if (vtableBytes < 4 || vtableBytes % 2) this.malformed(`the vtable of ${path} (size ${vtableBytes})`);
    this.check(vtable, vtableBytes, `the vtable of ${path}`);
    this.check(pos, Math.max(tableBytes, 4), `${path} (${tableBytes} bytes)`);
    for (const [id, field] of Object.entries(spec.fields)) {
      const slot = 4 + 2 * Number(id);
      if (slot >= vtableBytes) continue;
      const offset = this.u16(vtable + slot);
      if (offset === 0) continue;
      const where = `${path}.field${id}`;
      const size = "scalar" in field ? field.scalar : 4;
      if (offset + size > tableBytes) this.malformed(`${where} (offset ${offset} in a table of ${tableBytes} bytes)`);
      const at = pos + offset;
      if ("scalar" in field) continue;
      const target = this.follow(at, where);
      if ("table" in field) this.table(target, field.table, where);
      else {
        const length = this.i32(target, where) >>> 0;
        const elem = "string" in field ? 1 : "vector" in field ? field.vector : 4;
        // strings end with a NUL that the length does not count
        this.check(target + 4, length * elem + ("string" in field ? 1 : 0), `${where} (${length} elements)`);
        if ("tables" in field) for (let i = 0; i < length; i++) this.table(this.follow(target + 4 + 4 * i, `${where}[${i}]`), field.tables, `${where}[${i}]`);
      }
    }
  }

  /** Checks the file header: the root offset and the "TFL3" identifier. */
  root(): number {
    if (this.bytes.length < 8) fail(`${this.source}: not a .tflite file: ${this.bytes.length} bytes is too short for a flatbuffer header`);
    const ident = String.fromCharCode(...this.bytes.subarray(4, 8));
    if (ident !== "TFL3") fail(`${this.source}: not a .tflite file: file identifier is ${JSON.stringify(ident)}, expected "TFL3"`);
    return this.follow(0, "the root table");
  }
}

export interface Quantization {
  /** one per channel along `axis`, or a single per-tensor entry */
  scale: number[];
  zeroPoint: number[];
  axis: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  type: TensorType;
  shape: number[];
  /** constant data (little-endian, as stored), or null for activations */
  data: Uint8Array | null;
  quantization: Quantization | null;
  isVariable: boolean;
  isSparse: boolean;
}

export interface TfliteOperator {
  index: number;
  /** BuiltinOperator name, or "CUSTOM:<code>" */
  type: string;
  builtin: BuiltinOperator;
  version: number;
  inputs: number[];
  outputs: number[];
  /** byte position of the builtin_options field (0: absent); read through TfliteModel.options, which checks it */
  optionsPos: number;
  optionsType: BuiltinOptions;
}

export interface TfliteModel {
  source: string;
  version: number;
  description: string;
  subgraphs: number;
  tensors: TfliteTensor[];
  operators: TfliteOperator[];
  inputs: number[];
  outputs: number[];
  /** checks and returns the options table of an operator as the given type */
  options<T>(op: TfliteOperator, type: BuiltinOptions, make: () => { __init(i: number, bb: flatbuffers.ByteBuffer): T }): T | null;
}

const SIZE_LIMITS = { tensors: 1 << 20, operators: 1 << 20, rank: 8, operands: 1 << 16 };

/** Parses and validates a .tflite file; every problem is a TeenygradError naming the file and what is wrong. */
export function readTflite(input: Uint8Array, source = "<tflite>"): TfliteModel {
  // a private copy at byte offset 0: views into it are aligned and callers' buffers are never aliased
  const bytes = new Uint8Array(input);
  const verifier = new Verifier(bytes, source);
  const rootPos = verifier.root();
  verifier.table(rootPos, MODEL, "Model");
  const bb = new flatbuffers.ByteBuffer(bytes);
  const model = Model.getRootAsModel(bb);
  if (model.version() !== 3) fail(`${source}: TFLite schema version ${model.version()} is not supported (expected 3)`);
  if (model.subgraphsLength() === 0) fail(`${source}: the model has no subgraph`);
  const sg = model.subgraphs(0)!;
  const nTensors = sg.tensorsLength(), nOps = sg.operatorsLength();
  if (nTensors > SIZE_LIMITS.tensors || nOps > SIZE_LIMITS.operators) fail(`${source}: ${nTensors} tensors and ${nOps} operators exceed the importer's limits`);

  const buffers = model.buffersLength();
  const tensorIndex = (i: number, what: string): number => {
    if (!Number.isInteger(i) || i < 0 || i >= nTensors) fail(`${source}: ${what} refers to tensor ${i}, but the subgraph has ${nTensors} tensors`);
    return i;
  };

  const tensors: TfliteTensor[] = [];
  for (let i = 0; i < nTensors; i++) {
    const t = sg.tensors(i)!;
    const name = t.name() ?? `tensor_${i}`;
    const rank = t.shapeLength();
    if (rank > SIZE_LIMITS.rank) fail(`${source}: tensor '${name}' has rank ${rank}; at most ${SIZE_LIMITS.rank} is supported`);
    const shape = Array.from({ length: rank }, (_, d) => t.shape(d)!);
    if (shape.some((d) => d < 0)) fail(`${source}: tensor '${name}' has a negative dimension in shape [${shape}]`);
    let data: Uint8Array | null = null;
    const b = t.buffer();
    if (b !== 0) {
      if (b >= buffers) fail(`${source}: tensor '${name}' refers to buffer ${b}, but the model has ${buffers} buffers`);
      const buf = model.buffers(b)!;
      const offset = Number(buf.offset()), size = Number(buf.size());
      if (offset > 1) {
        // large models keep buffers after the flatbuffer, at a file offset
        if (offset + size > bytes.length) fail(`${source}: buffer ${b} of tensor '${name}' (bytes ${offset}..${offset + size}) lies outside the file (${bytes.length} bytes)`);
        data = bytes.subarray(offset, offset + size);
      } else {
        const array = buf.dataArray();
        data = array && array.length ? array : null;
      }
    }
    const q = t.quantization();
    let quantization: Quantization | null = null;
    if (q && q.scaleLength() > 0) {
      const scale = Array.from({ length: q.scaleLength() }, (_, k) => q.scale(k)!);
      const zeroPoint = Array.from({ length: q.zeroPointLength() }, (_, k) => Number(q.zeroPoint(k)!));
      if (zeroPoint.length !== scale.length) fail(`${source}: tensor '${name}' has ${scale.length} quantization scales but ${zeroPoint.length} zero points`);
      const axis = q.quantizedDimension();
      if (scale.length > 1 && (axis < 0 || axis >= rank || shape[axis] !== scale.length)) {
        fail(`${source}: tensor '${name}' [${shape}] has ${scale.length} per-channel scales along dimension ${axis}, which does not match its shape`);
      }
      quantization = { scale, zeroPoint, axis };
    }
    tensors.push({ index: i, name, type: t.type(), shape, data, quantization, isVariable: t.isVariable(), isSparse: t.sparsity() !== null });
  }

  const codes = model.operatorCodesLength();
  const operators: TfliteOperator[] = [];
  for (let i = 0; i < nOps; i++) {
    const op = sg.operators(i)!;
    const codeIndex = op.opcodeIndex();
    if (codeIndex >= codes) fail(`${source}: operator #${i} uses operator code ${codeIndex}, but the model has ${codes}`);
    const code = model.operatorCodes(codeIndex)!;
    // builtin codes above 127 live only in builtin_code; older files only fill the byte-sized deprecated field
    const builtin: BuiltinOperator = Math.max(code.builtinCode(), code.deprecatedBuiltinCode());
    const known = BuiltinOperator[builtin] !== undefined;
    const type = builtin === BuiltinOperator.CUSTOM ? `CUSTOM:${code.customCode() ?? "?"}` : known ? BuiltinOperator[builtin] : `unknown builtin operator ${builtin}`;
    const nIn = op.inputsLength(), nOut = op.outputsLength();
    if (nIn > SIZE_LIMITS.operands || nOut > SIZE_LIMITS.operands) fail(`${source}: operator #${i} (${type}) has ${nIn} inputs and ${nOut} outputs, more than the importer's limit`);
    // -1 marks an omitted optional input
    const inputs = Array.from({ length: nIn }, (_, k) => op.inputs(k)!).map((t) => (t === -1 ? -1 : tensorIndex(t, `operator #${i} (${type}) input ${t}`)));
    const outputs = Array.from({ length: nOut }, (_, k) => tensorIndex(op.outputs(k)!, `operator #${i} (${type}) output`));
    const optionsField = optionsFieldPos(op);
    operators.push({ index: i, type, builtin, version: code.version(), inputs, outputs, optionsPos: optionsField, optionsType: op.builtinOptionsType() });
  }

  const io = (n: number, get: (k: number) => number | null, what: string) => Array.from({ length: n }, (_, k) => tensorIndex(get(k)!, `subgraph ${what} ${k}`));
  return {
    source,
    version: model.version(),
    description: model.description() ?? "",
    subgraphs: model.subgraphsLength(),
    tensors,
    operators,
    inputs: io(sg.inputsLength(), (k) => sg.inputs(k), "input"),
    outputs: io(sg.outputsLength(), (k) => sg.outputs(k), "output"),
    options(op, type, make) {
      if (op.optionsPos === 0) return null;
      if (op.optionsType !== type) {
        fail(`${source}: operator #${op.index} (${op.type}) carries ${BuiltinOptions[op.optionsType] ?? `options type ${op.optionsType}`}, expected ${BuiltinOptions[type]}`);
      }
      const spec = OPTIONS[type];
      if (!spec) throw new Error(`no verifier spec for ${BuiltinOptions[type]}`);
      const target = op.optionsPos + (verifier.i32(op.optionsPos, `operator #${op.index} options`) >>> 0);
      verifier.table(target, spec, `operator #${op.index} (${op.type}) ${spec.name}`);
      return make().__init(target, bb);
    },
  };
}

/** Byte position of the operator's builtin_options field (a uoffset to the options table), 0 when absent. */
function optionsFieldPos(op: Operator): number {
  const bb = (op as unknown as { bb: flatbuffers.ByteBuffer }).bb;
  const offset = bb.__offset(op.bb_pos, 12);
  return offset ? op.bb_pos + offset : 0;
}
