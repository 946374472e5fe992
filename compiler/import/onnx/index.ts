import { fail } from "../../errors.js";
import { DTYPES, floatToHalf, isBigIntArray, numel, type DType } from "../../ir/dtype.js";
import type { Graph, HostTensor, Value } from "../../ir/graph.js";
import { hostArray, shapeStr } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { Trace, withTrace } from "../../tensor/trace.js";
import { NodeAttrs } from "./attrs.js";
import { checkNode, onnxTypeName } from "./checker.js";
import { HANDLERS, identityCopy, isFloat } from "./ops.js";
import "./ops-rnn.js";
import "./ops-quant.js";
import "./ops-conv.js";
import "./ops-indexing.js";
import "./ops-loss.js";
import "./ops-resize.js";
import "./ops-image.js";
import "./ops-control.js";
import "./ops-attention.js";
import { CONTAINER_OPS, containerOf, describeContainer, optional, sequence } from "./ops-sequence.js";
import "./ops-math.js";
import { fuseQdq, startQuantNotes, takeQuantNotes } from "./qdq.js";
import { FLOAT_FORMATS, markNarrow, narrowOf, narrowOfCode, roundAttrs, type Narrow } from "./narrow.js";
import { decodeModel, storageDType, tensorFromProto, toInt, widenHalf, type GraphProto, type ModelProto, type NodeProto, type TypeProto, type ValueInfoProto } from "./proto.js";

export interface OnnxImportOptions {
  /** shapes for inputs with symbolic (dim_param) or unknown dims, by input name */
  inputShapes?: Record<string, number[]>;
  /** directory that external-data files are relative to (the model's directory) */
  baseDir?: string;
  /** for messages: the model's file name */
  source?: string;
  /**
   * Inputs whose values are fixed at compile time (axes, shapes, pads fed as inputs): they become
   * constants, so everything they determine folds and they leave the compiled model's inputs.
   */
  constantInputs?: Record<string, ConstantInput>;
  /** int8 nodes (QDQ groups, QLinear* ops): on the integer kernels where they can run (default), or all emulated in float32 ("dequantize") */
  quantized?: "integer" | "dequantize";
  /**
   * Sequence-typed inputs (and optional ones holding a sequence): each element's shape, by input name; the
   * compiled model takes the elements as inputs NAME_0, NAME_1, …. "none" leaves an optional input empty.
   */
  inputElements?: Record<string, number[][] | "none">;
}

/** A pinned input's value: a tensor, or numbers in the input's declared dtype (a scalar, or a list laid out in its declared shape). */
export type ConstantInput = HostTensor | number | number[];

export interface ImportedModel {
  graph: Graph;
  /** the model's inputs: name → shape and dtype, in declaration order */
  inputs: Record<string, { shape: number[]; dtype: DType }>;
  opset: number;
  /** how quantized nodes run: on the int8 kernels, or emulated in float32 and why */
  notes: string[];
}

/** The oldest default-domain opset whose semantics the handlers implement (older nodes with legacy broadcast attributes are refused). */
const MIN_OPSET = 1;

/** ONNX model bytes → graph IR with static shapes; Shape/Size/Range/ConstantOfShape chains fold at import. */
export function importOnnx(bytes: Uint8Array, opts: OnnxImportOptions = {}): ImportedModel {
  const source = opts.source ?? "ONNX model";
  const model = decodeModel(bytes, source);
  const graph = model.graph;
  if (!graph) fail(`${source}: the model has no graph`);
  const opset = defaultOpset(model, source);
  startQuantNotes(opts.quantized ?? "integer");
  if (opts.quantized !== "dequantize") fuseQdq(graph, source, opts.baseDir);
  checkSupported(graph, source);

  const initializers = new Map<string, Tensor>();
  const parameters = new Map<Tensor, string>();
  for (const init of graph.initializer ?? []) {
    const h = tensorFromProto(init, `${source}: initializer`, opts.baseDir);
    const t = Tensor.from(h.data, { shape: h.shape, dtype: h.dtype });
    initializers.set(init.name ?? "", t);
    markNarrow(t, narrowOfCode(init.data_type));
    // float initializers are the model's weights; integer ones are shapes, axes and indices
    if (isFloat(h.dtype)) parameters.set(t, init.name ?? `initializer_${parameters.size}`);
  }

  const trace = new Trace(parameters);
  return withTrace(trace, () => {
    const g = trace.graph;
    const env = new Scope();
    for (const [name, t] of initializers) env.set(name, t);
    const inputs: ImportedModel["inputs"] = {};
    const declared = (graph.input ?? []).map((i) => i.name).filter((n) => !initializers.has(n));
    const unknown = [...Object.keys(opts.inputShapes ?? {}), ...Object.keys(opts.constantInputs ?? {}), ...Object.keys(opts.inputElements ?? {})].filter((n) => !declared.includes(n));
    if (unknown.length) fail(`${source}: --input or --const names ${unknown.map((n) => `'${n}'`).join(", ")}, but the model's inputs are ${declared.map((n) => `'${n}'`).join(", ") || "none"}`);
    for (const info of graph.input ?? []) {
      if (initializers.has(info.name)) continue; // an initializer listed as an input: a default value
      if (!info.type?.tensor_type) {
        env.set(info.name, containerInput(info, opts, (flat, type) => {
          if (flat !== info.name && declared.includes(flat)) fail(`${source}: an element of sequence input '${info.name}' would be input '${flat}', but the model has an input of that name`);
          const v = g.addInput(flat, type);
          inputs[flat] = { shape: v.shape, dtype: v.dtype };
          return new Tensor(v.shape, v.dtype, null, v);
        }, source));
        continue;
      }
      const type = info.type.tensor_type;
      if (opts.inputElements?.[info.name] !== undefined) fail(`${source}: input '${info.name}' is a tensor, not a sequence or an optional: give its shape as --input ${info.name}=SHAPE`);
      // float16 inputs arrive as bit patterns and compute as float32; the other narrow types arrive in their carrier
      const dtype = storageDType(type.elem_type, `${source}: input '${info.name}'`);
      const narrow = narrowOfCode(type.elem_type);
      const fixed = opts.constantInputs?.[info.name];
      if (fixed !== undefined) {
        const p = pinnedValue(info.name, fixed, dtype, type.shape?.dim, source);
        const h = dtype === "float16" ? widenHalf(p) : p;
        env.set(info.name, markNarrow(Tensor.from(h.data, { shape: h.shape, dtype: h.dtype }), narrow));
        continue;
      }
      const shape = inputShape(info.name, type.shape?.dim, opts.inputShapes?.[info.name], dtype, source);
      const v = g.addInput(info.name, { shape, dtype });
      const t = new Tensor(v.shape, v.dtype, null, v);
      // a narrow float input's carrier values are rounded to the type, as a Cast to it would
      env.set(info.name, narrow === "float16" ? markNarrow(apply("halfToFloat", [t], {}), narrow) : narrow ? roundToNarrow(t, narrow, "input", 1) : t);
      inputs[info.name] = { shape, dtype };
    }

    checkNodeNames(graph, source);
    try {
      (graph.node ?? []).forEach((node, i) => runNode(node, i, env, opset, source, opts.baseDir));
    } catch (e) {
      const changed = overriddenInputs(graph, opts.inputShapes);
      if (changed.length && e instanceof Error && e.name === "TeenygradError") e.message += ` (--input changed fixed dims: ${changed.join("; ")}; the graph does not allow that shape)`;
      throw e;
    }

    const outputs = (graph.output ?? []).flatMap((info) => {
      const t = env.get(info.name);
      if (!t) fail(`${source}: graph output '${info.name}' is never computed`);
      return flattenOutput(info.name, t, source).map(([name, e]) => [name, narrowOf(e) === "float16" ? apply("floatToHalf", [e], {}) : e] as const);
    });
    if (!outputs.length) fail(`${source}: the graph has no outputs${graph.output?.length ? " (its sequence outputs are empty)" : ""}`);
    const used = new Set<Value>();
    g.outputs = outputs.map(([name, t]) => {
      let v = t.value ?? g.addConstant({ shape: t.shape, dtype: t.dtype, data: t.data.slice() }, name);
      // an output must be its own buffer: not an input, a weight or another output
      if (v.kind === "input" || v.kind === "weight" || used.has(v)) v = identityCopy(new Tensor(v.shape, v.dtype, null, v)).value!;
      used.add(v);
      v.name = name;
      return v;
    });
    return { graph: g, inputs, opset, notes: takeQuantNotes() };
  });
}

function defaultOpset(model: ModelProto, source: string): number {
  const entry = (model.opset_import ?? []).find((o) => !o.domain || o.domain === "ai.onnx");
  const version = entry ? toInt(entry.version) : 1;
  if (version < MIN_OPSET) fail(`${source}: opset ${version} is older than ${MIN_OPSET}, the oldest supported`);
  return version;
}

/** One error naming every unsupported op (in the graph and its subgraphs), with its count and first node. */
function checkSupported(graph: GraphProto, source: string): void {
  const missing = new Map<string, { count: number; first: string }>();
  const visit = (g: GraphProto) => (g.node ?? []).forEach((n, i) => {
    for (const a of n.attribute ?? []) for (const sub of [a.g, ...(a.graphs ?? [])]) if (sub) visit(sub);
    const op = n.op_type || "(node without op_type)";
    const key = n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${op}` : op;
    if (Object.hasOwn(HANDLERS, key)) return;
    const seen = missing.get(key);
    if (seen) seen.count++;
    else missing.set(key, { count: 1, first: n.name || `#${i}` });
  });
  visit(graph);
  if (missing.size) {
    const list = [...missing].map(([op, m]) => `  ${op} ×${m.count} (first: node ${m.first})`).join("\n");
    fail(`${source}: ${missing.size} unsupported operator type${missing.size > 1 ? "s" : ""}:\n${list}`);
  }
}

/** The ONNX checker's rule: node names, where given, are unique within a graph. */
function checkNodeNames(graph: GraphProto, source: string): void {
  const seen = new Set<string>();
  for (const n of graph.node ?? []) {
    if (!n.name) continue;
    if (seen.has(n.name)) fail(`${source}: two nodes are named '${n.name}' (${n.op_type}); node names must be unique, as the ONNX checker requires`);
    seen.add(n.name);
  }
}

/** A 32-bit WebAssembly memory holds at most 4 GiB: larger tensors are refused here, not deep in code generation. */
const MAX_TENSOR_BYTES = 2 ** 32;

/** A --const value as a tensor of the input's declared dtype and shape. */
function pinnedValue(name: string, given: ConstantInput, dtype: DType, dims: Dim[] | undefined, source: string): HostTensor {
  const what = `${source}: --const ${name}`;
  if (typeof given === "object" && !Array.isArray(given)) {
    if (given.dtype !== dtype) fail(`${what}: the value is ${given.dtype}, but input '${name}' is ${dtype}`);
    checkDeclaredShape(what, name, given.shape, dims);
    return given;
  }
  const values = typeof given === "number" ? [given] : given;
  if (values.some((v) => typeof v !== "number" || Number.isNaN(v) && !isFloat(dtype) && dtype !== "float16")) fail(`${what}: expected numbers, got ${JSON.stringify(given)}`);
  // a single number for a rank-0 (or undeclared) input is a scalar; a list fills the declared shape when it is static
  const declared = dims?.map((d) => (d.dim_value !== undefined && toInt(d.dim_value) >= 0 ? toInt(d.dim_value) : NaN));
  const shape = declared && declared.every(Number.isFinite) && numel(declared) === values.length ? declared : typeof given === "number" && (!dims || dims.length === 0) ? [] : [values.length];
  checkDeclaredShape(what, name, shape, dims);
  const data = hostArray(shape, dtype);
  values.forEach((v, i) => {
    if (isBigIntArray(data)) {
      if (!Number.isInteger(v)) fail(`${what}: ${v} is not an integer, but input '${name}' is ${dtype}`);
      data[i] = BigInt(v);
    } else data[i] = dtype === "float16" ? floatToHalf(v) : v;
  });
  return { shape, dtype, data };
}

function checkDeclaredShape(what: string, name: string, shape: number[], dims: Dim[] | undefined): void {
  const ok = !dims || (dims.length === shape.length && dims.every((d, i) => d.dim_value === undefined || toInt(d.dim_value) < 0 || toInt(d.dim_value) === shape[i]));
  if (!ok) fail(`${what}: a value of shape ${shapeStr(shape)} does not fit input '${name}', declared [${dims!.map((d) => d.dim_value ?? d.dim_param ?? "?").join("x")}]`);
}

type Dim = { dim_value?: string; dim_param?: string };

/**
 * An input's static shape. Symbolic dims (dim_param), unknown ones and dim_value -1 (what Paddle2ONNX writes
 * for the batch) are dynamic: --input fixes them. --input may also change a fixed dim; the graph's shapes
 * then decide whether the model allows it.
 */
function inputShape(name: string, dims: Dim[] | undefined, given: number[] | undefined, dtype: DType, source: string): number[] {
  const declared = dims?.map((d) => (d.dim_value !== undefined && toInt(d.dim_value) >= 0 ? toInt(d.dim_value) : NaN));
  const describe = () => dims!.map((d) => (d.dim_value !== undefined && toInt(d.dim_value) >= 0 ? d.dim_value : d.dim_param || "?")).join("x");
  let shape: number[];
  if (given) {
    if (!given.every((d) => Number.isInteger(d) && d > 0)) fail(`${source}: --input ${name}=${given.join("x")}: dims must be positive integers`);
    if (dims && dims.length !== given.length) fail(`${source}: input '${name}' has rank ${dims.length} [${describe()}], but --input gives ${shapeStr(given)}`);
    shape = given;
  } else {
    if (!declared) fail(`${source}: input '${name}' has no shape; give one with --input ${name}=SHAPE (e.g. 1x3x224x224)`);
    if (declared.some((d) => !Number.isFinite(d))) fail(`${source}: input '${name}' has dynamic dims [${describe()}]; fix them with --input ${name}=SHAPE`);
    shape = declared;
  }
  const bytes = numel(shape) * DTYPES[dtype].bytes;
  if (bytes >= MAX_TENSOR_BYTES) fail(`${source}: input '${name}' of shape ${shapeStr(shape)} ${dtype} needs ${bytes.toExponential(2)} bytes, more than a 32-bit WebAssembly memory (4 GiB) holds`);
  return shape;
}

/** Inputs whose fixed dims --input changed, described for an error the change may have caused. */
function overriddenInputs(graph: GraphProto, given: Record<string, number[]> | undefined): string[] {
  return (graph.input ?? []).flatMap((info) => {
    const shape = given?.[info.name], dims = info.type?.tensor_type?.shape?.dim;
    if (!shape || !dims) return [];
    const fixed = dims.map((d) => (d.dim_value !== undefined && toInt(d.dim_value) >= 0 ? toInt(d.dim_value) : undefined));
    return fixed.some((d, i) => d !== undefined && d !== shape[i]) ? [`'${info.name}' declared [${fixed.map((d) => d ?? "?").join("x")}], given ${shapeStr(shape)}`] : [];
  });
}

/**
 * A sequence- or optional-typed graph input as a container of tensor inputs: a sequence's elements come from
 * inputElements (the blob's inputs NAME_0, NAME_1, …); an optional holds its tensor (or sequence) unless
 * inputElements gives "none".
 */
function containerInput(info: ValueInfoProto, opts: OnnxImportOptions, addInput: (name: string, type: { shape: number[]; dtype: DType }) => Tensor, source: string): Tensor {
  const given = opts.inputElements?.[info.name];
  const what = `${source}: input '${info.name}'`;
  const sequenceOf = (elem: TypeProto | undefined): Tensor => {
    const tensor = elem?.tensor_type;
    if (!tensor) fail(`${what} is a sequence of ${elem ? Object.keys(elem).join("/") : "an undeclared type"}; only sequences of tensors are supported`);
    if (opts.constantInputs?.[info.name] !== undefined) fail(`${source}: --const ${info.name}: pinning a sequence input is not supported; pin tensor inputs`);
    if (!Array.isArray(given)) fail(`${what} is a sequence, whose length and element shapes the compiled model fixes: give them with --input ${info.name}=[SHAPE,SHAPE,…] (e.g. [2x3,2x3]; [] for an empty sequence); the blob takes the elements as inputs ${info.name}_0, ${info.name}_1, …`);
    const dtype = storageDType(tensor.elem_type, what);
    if (dtype === "float16" || narrowOfCode(tensor.elem_type)) fail(`${what}: sequences of ${onnxTypeName(dtype) ?? "narrow"} elements are not supported`);
    return sequence(given.map((shape, i) => addInput(`${info.name}_${i}`, { shape: inputShape(`${info.name}_${i}`, tensor.shape?.dim, shape, dtype, source), dtype })), dtype);
  };
  const type = info.type;
  if (type?.sequence_type) return sequenceOf(type.sequence_type.elem_type);
  if (type?.optional_type) {
    if (given === "none") return optional(undefined);
    const elem = type.optional_type.elem_type;
    if (elem?.sequence_type) return optional(sequenceOf(elem.sequence_type.elem_type));
    const tensor = elem?.tensor_type;
    if (!tensor) fail(`${what} is an optional of ${elem ? Object.keys(elem).join("/") : "an undeclared type"}; only optional tensors and sequences are supported`);
    if (given) fail(`${what} is an optional tensor: give its shape with --input ${info.name}=SHAPE, or --input ${info.name}=none for an empty one`);
    const dtype = storageDType(tensor.elem_type, what);
    if (dtype === "float16" || narrowOfCode(tensor.elem_type)) fail(`${what}: optionals of narrow element types are not supported`);
    const shape = inputShape(info.name, tensor.shape?.dim, opts.inputShapes?.[info.name], dtype, source);
    return optional(addInput(info.name, { shape, dtype }));
  }
  fail(`${what} is not a tensor, a sequence or an optional (${type ? Object.keys(type).join("/") : "no type"})`);
}

/** A graph output as the blob's outputs: a tensor is itself, a sequence its elements NAME_0, NAME_1, …, an optional what it holds. */
function flattenOutput(name: string, t: Tensor, source: string): (readonly [string, Tensor])[] {
  const c = containerOf(t);
  if (!c) return [[name, t]];
  if (c.kind === "sequence") return c.items.flatMap((e, i) => flattenOutput(`${name}_${i}`, e, source));
  if (!c.item) fail(`${source}: graph output '${name}' is an empty optional, which a compiled model cannot return`);
  return flattenOutput(name, c.item, source);
}

/** Names in scope while importing a graph; a subgraph (If branch, Loop body) sees its enclosing graphs' names. */
class Scope {
  private readonly own = new Map<string, Tensor>();
  constructor(private readonly parent?: Scope) {}
  get(name: string): Tensor | undefined {
    return this.own.get(name) ?? this.parent?.get(name);
  }
  set(name: string, t: Tensor): void {
    this.own.set(name, t);
  }
}

function runNode(node: NodeProto, index: number, env: Scope, opset: number, source: string, baseDir: string | undefined): void {
  const label = `${source}: ${node.op_type} node '${node.name || `#${index}`}'`;
  const inputs = (node.input ?? []).map((name) => {
    if (!name) return undefined; // an omitted optional input
    const t = env.get(name);
    if (!t) fail(`${label}: input '${name}' is not defined before this node`);
    const c = containerOf(t);
    if (c && !CONTAINER_OPS.has(node.op_type)) fail(`${label}: input '${name}' is ${describeContainer(c)}, which ${node.op_type} does not take`);
    return t;
  });
  // the schemas constrain tensor element types; sequences and optionals are checked by their handlers
  checkNode(node, inputs.map((t) => (containerOf(t) ? undefined : t)), opset, label, (t) => narrowOf(t) ?? onnxTypeName(t.dtype));
  const outputNames = node.output ?? [];
  const attrs = new NodeAttrs(node, label);
  // before opset 7, binary ops broadcast only when asked, aligning the second input at `axis`
  if (opset < 7 && attrs.int("broadcast", 0) === 1 && attrs.has("axis") && inputs[0] && inputs[1]) {
    const [a, b] = inputs;
    const axis = attrs.int("axis") < 0 ? attrs.int("axis") + a.ndim : attrs.int("axis");
    const trailing = a.ndim - axis - b.ndim;
    if (trailing < 0) fail(`${label}: cannot align a rank-${b.ndim} input at axis ${axis} of a rank-${a.ndim} one`);
    inputs[1] = b.reshape([...b.shape, ...new Array(trailing).fill(1)]);
  }
  // a subgraph runs in a scope of its own that sees this graph's names (the spec's outer-scope rule)
  const subgraph = (attr: string, args: Tensor[]): Tensor[] => {
    const body = attrs.graph(attr);
    const where = `${label} ${attr}`;
    const formal = body.input ?? [];
    if (formal.length !== args.length) fail(`${where}: the subgraph takes ${formal.length} inputs, the node gives it ${args.length}`);
    const scope = new Scope(env);
    for (const init of body.initializer ?? []) {
      const h = tensorFromProto(init, `${where}: initializer`, baseDir);
      scope.set(init.name ?? "", markNarrow(Tensor.from(h.data, { shape: h.shape, dtype: h.dtype }), narrowOfCode(init.data_type)));
    }
    // Loop's and Scan's body inputs match the node's inputs one to one (slices of them, for scanned inputs), where their types are left out
    const like = (i: number) => (node.op_type === "Loop" || node.op_type === "Scan") && inputs[i] ? narrowOf(inputs[i]) : undefined;
    formal.forEach((info, i) => scope.set(info.name, markNarrow(args[i], narrowOfCode(info.type?.tensor_type?.elem_type) ?? like(i))));
    checkNodeNames(body, where);
    (body.node ?? []).forEach((n, i) => runNode(n, i, scope, opset, where, baseDir));
    const results = (body.output ?? []).map((info) => scope.get(info.name) ?? fail(`${where}: subgraph output '${info.name}' is never computed`));
    // the element types of a subgraph's outputs, where its declarations leave them out
    subgraphNarrow = results.map((t, i) => narrowOfCode(body.output![i].type?.tensor_type?.elem_type) ?? narrowOf(t));
    return results;
  };
  let subgraphNarrow: (Narrow | undefined)[] = [];
  let result;
  try {
    const key = node.domain && node.domain !== "ai.onnx" ? `${node.domain}.${node.op_type}` : node.op_type;
    result = HANDLERS[key](inputs, { attrs, opset, label, outputs: outputNames.length, subgraph });
  } catch (e) {
    // arithmetic on compile-time constants that JavaScript refuses (a BigInt division by zero, Infinity as an int64, a negative length)
    if (e instanceof RangeError) fail(`${label}: cannot compute this node on its compile-time constant inputs: ${e.message}`);
    if (e instanceof Error && e.name === "TeenygradError" && !e.message.includes(label)) e.message = `${label}: ${e.message}`;
    throw e;
  }
  const outs = Array.isArray(result) ? result : [result];
  const narrow = narrowOutputs(node, inputs, outs.length, subgraphNarrow);
  outputNames.forEach((name, i) => {
    if (!name) return;
    const t = outs[i];
    if (!t) fail(`${label}: output ${i} ('${name}') is not supported`);
    env.set(name, narrow[i] ? roundToNarrow(t, narrow[i]!, node.op_type, code(node, "saturate") ?? 1, roundMode(node)) : t);
  });
}

/** Ops whose float16 results are float16 inputs moved, selected or compared: already exact, no rounding needed. */
const EXACT_ON_NARROW = new Set([
  "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Slice", "Gather", "GatherElements", "GatherND", "Concat", "Split",
  "Expand", "Tile", "Where", "Relu", "Neg", "Abs", "Max", "Min", "MaxPool", "ReduceMax", "ReduceMin", "Dropout", "DepthToSpace", "SpaceToDepth",
  "Pad", "Compress", "ReverseSequence", "TopK", "Sign", "Floor", "Ceil", "Round", "Clip", "Constant", "ConstantOfShape", "If", "Loop", "Scan",
]);

/** A result of a narrow type (in its carrier) rounded to it: float16 through its bit patterns, the other floats with roundToFloat. */
function roundToNarrow(t: Tensor, narrow: Narrow, op: string, saturate: number, mode = 0): Tensor {
  const format = FLOAT_FORMATS[narrow];
  if (t.dtype !== "float32" || EXACT_ON_NARROW.has(op) || (narrow !== "float16" && narrow !== "float8e8m0" && !format)) return markNarrow(t, narrow);
  const rounded = narrow === "float16" ? apply("halfToFloat", [apply("floatToHalf", [t], {})], {})
    : narrow === "float8e8m0" ? apply("roundToE8m0", [t], { mode, saturate: saturate !== 0 ? 1 : 0 })
    : apply("roundToFloat", [t], { ...roundAttrs(format!, saturate !== 0) });
  return markNarrow(rounded, narrow);
}

/** Cast's round_mode (opset 25, float8e8m0 only): 0 up (the default), 1 down, 2 nearest. */
function roundMode(node: NodeProto): number {
  const a = (node.attribute ?? []).find((x) => x.name === "round_mode");
  const mode = a ? new TextDecoder().decode(a.s) : "up";
  const index = ["up", "down", "nearest"].indexOf(mode);
  if (index < 0) fail(`${node.op_type} node '${node.name ?? ""}': round_mode '${mode}' is not one of up, down, nearest`);
  return index;
}

const code = (node: NodeProto, name: string): number | undefined => {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  return a?.i !== undefined ? toInt(a.i) : undefined;
};

/** Which of a node's outputs are float16 in ONNX: by its target type, its subgraph's outputs (the last one it imported), or else its first float input's. */
function narrowOutputs(node: NodeProto, inputs: (Tensor | undefined)[], count: number, subgraph: (Narrow | undefined)[]): (Narrow | undefined)[] {
  const attr = (name: string) => (node.attribute ?? []).find((a) => a.name === name);
  const all = (n: Narrow | undefined) => new Array<Narrow | undefined>(count).fill(n);
  const first = inputs.find((t) => t?.dtype === "float32" || t?.dtype === "float64");
  const zeroPoint = narrowOf(inputs[2]);
  const fromInputs = first ? narrowOf(first) : undefined;
  switch (node.op_type) {
    // QuantizeLinear gives its zero point's type (or output_dtype); DequantizeLinear its scale's
    case "QuantizeLinear": return all(zeroPoint ?? narrowOfCode(code(node, "output_dtype")));
    case "DequantizeLinear": return all(narrowOf(inputs[1]));
    case "Cast": return all(narrowOfCode(code(node, "to")));
    case "CastLike": return all(inputs[1] && narrowOf(inputs[1]));
    case "Constant": case "ConstantOfShape": return all(narrowOfCode(attr("value")?.t?.data_type));
    case "EyeLike": case "RandomNormal": case "RandomUniform": case "RandomNormalLike": case "RandomUniformLike": case "Bernoulli":
      return all(attr("dtype") ? narrowOfCode(code(node, "dtype")) : fromInputs);
    // a Loop body's first output is its condition
    case "If": case "Scan": return subgraph;
    case "Loop": return subgraph.slice(1);
    // Mean and InvStdDev are of the stash type (float32 by default)
    case "LayerNormalization": return [fromInputs, ...all(code(node, "stash_type") === 10 ? "float16" : undefined).slice(1)];
    default: return all(fromInputs);
  }
}
