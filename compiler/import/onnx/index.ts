import { fail } from "../../errors.js";
import type { DType } from "../../ir/dtype.js";
import type { Graph, HostTensor, Value } from "../../ir/graph.js";
import { shapeStr } from "../../ir/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { Trace, withTrace } from "../../tensor/trace.js";
import { NodeAttrs } from "./attrs.js";
import { HANDLERS, identityCopy, isFloat } from "./ops.js";
import "./ops-rnn.js";
import "./ops-quant.js";
import "./ops-conv.js";
import "./ops-indexing.js";
import "./ops-loss.js";
import "./ops-resize.js";
import { decodeModel, onnxDType, tensorFromProto, toInt, type GraphProto, type ModelProto, type NodeProto } from "./proto.js";

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
  constantInputs?: Record<string, HostTensor>;
}

export interface ImportedModel {
  graph: Graph;
  /** the model's inputs: name → shape and dtype, in declaration order */
  inputs: Record<string, { shape: number[]; dtype: DType }>;
  opset: number;
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
  checkSupported(graph, source);

  const initializers = new Map<string, Tensor>();
  const parameters = new Map<Tensor, string>();
  for (const init of graph.initializer ?? []) {
    const h = tensorFromProto(init, `${source}: initializer`, opts.baseDir);
    const t = Tensor.from(h.data, { shape: h.shape, dtype: h.dtype });
    initializers.set(init.name ?? "", t);
    // float initializers are the model's weights; integer ones are shapes, axes and indices
    if (isFloat(h.dtype)) parameters.set(t, init.name ?? `initializer_${parameters.size}`);
  }

  const trace = new Trace(parameters);
  return withTrace(trace, () => {
    const g = trace.graph;
    const env = new Map<string, Tensor>(initializers);
    const inputs: ImportedModel["inputs"] = {};
    const declared = (graph.input ?? []).map((i) => i.name).filter((n) => !initializers.has(n));
    const unknown = [...Object.keys(opts.inputShapes ?? {}), ...Object.keys(opts.constantInputs ?? {})].filter((n) => !declared.includes(n));
    if (unknown.length) fail(`${source}: --input names ${unknown.map((n) => `'${n}'`).join(", ")}, but the model's inputs are ${declared.map((n) => `'${n}'`).join(", ") || "none"}`);
    for (const info of graph.input ?? []) {
      if (initializers.has(info.name)) continue; // an initializer listed as an input: a default value
      const fixed = opts.constantInputs?.[info.name];
      if (fixed) {
        env.set(info.name, Tensor.from(fixed.data, { shape: fixed.shape, dtype: fixed.dtype }));
        continue;
      }
      const type = info.type?.tensor_type;
      if (!type) fail(`${source}: input '${info.name}' is not a tensor`);
      const dtype = onnxDType(type.elem_type, `${source}: input '${info.name}'`);
      const shape = inputShape(info.name, type.shape?.dim, opts.inputShapes?.[info.name], source);
      const v = g.addInput(info.name, { shape, dtype });
      env.set(info.name, new Tensor(v.shape, v.dtype, null, v));
      inputs[info.name] = { shape, dtype };
    }

    (graph.node ?? []).forEach((node, i) => runNode(node, i, env, opset, source));

    const outputs = (graph.output ?? []).map((info) => {
      const t = env.get(info.name);
      if (!t) fail(`${source}: graph output '${info.name}' is never computed`);
      return [info.name, t] as const;
    });
    if (!outputs.length) fail(`${source}: the graph has no outputs`);
    const used = new Set<Value>();
    g.outputs = outputs.map(([name, t]) => {
      let v = t.value ?? g.addConstant({ shape: t.shape, dtype: t.dtype, data: t.data.slice() }, name);
      // an output must be its own buffer: not an input, a weight or another output
      if (v.kind === "input" || v.kind === "weight" || used.has(v)) v = identityCopy(new Tensor(v.shape, v.dtype, null, v)).value!;
      used.add(v);
      v.name = name;
      return v;
    });
    return { graph: g, inputs, opset };
  });
}

function defaultOpset(model: ModelProto, source: string): number {
  const entry = (model.opset_import ?? []).find((o) => !o.domain || o.domain === "ai.onnx");
  const version = entry ? toInt(entry.version) : 1;
  if (version < MIN_OPSET) fail(`${source}: opset ${version} is older than ${MIN_OPSET}, the oldest supported`);
  return version;
}

/** One error naming every unsupported op, with its count and first node. */
function checkSupported(graph: GraphProto, source: string): void {
  const missing = new Map<string, { count: number; first: string }>();
  (graph.node ?? []).forEach((n, i) => {
    const op = n.op_type || "(node without op_type)";
    const key = n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${op}` : op;
    if (Object.hasOwn(HANDLERS, key)) return;
    const seen = missing.get(key);
    if (seen) seen.count++;
    else missing.set(key, { count: 1, first: n.name || `#${i}` });
  });
  if (missing.size) {
    const list = [...missing].map(([op, m]) => `  ${op} ×${m.count} (first: node ${m.first})`).join("\n");
    fail(`${source}: ${missing.size} unsupported operator type${missing.size > 1 ? "s" : ""}:\n${list}`);
  }
}

function inputShape(name: string, dims: { dim_value?: string; dim_param?: string }[] | undefined, given: number[] | undefined, source: string): number[] {
  if (given) {
    if (!given.every((d) => Number.isInteger(d) && d > 0)) fail(`${source}: --input ${name}=${given.join("x")}: dims must be positive integers`);
    if (dims && dims.length !== given.length) fail(`${source}: input '${name}' has rank ${dims.length}, but --input gives ${shapeStr(given)}`);
    dims?.forEach((d, i) => {
      if (d.dim_value !== undefined && toInt(d.dim_value) !== given[i]) fail(`${source}: input '${name}' has dim ${i} = ${d.dim_value}, but --input gives ${given[i]}`);
    });
    return given;
  }
  if (!dims) fail(`${source}: input '${name}' has no shape; give one with --input ${name}=SHAPE (e.g. 1x3x224x224)`);
  const shape = dims.map((d) => (d.dim_value !== undefined ? toInt(d.dim_value) : NaN));
  if (shape.some((d) => !Number.isFinite(d))) {
    const symbolic = dims.map((d) => d.dim_value ?? d.dim_param ?? "?").join("x");
    fail(`${source}: input '${name}' has dynamic dims [${symbolic}]; fix them with --input ${name}=SHAPE`);
  }
  return shape;
}

function runNode(node: NodeProto, index: number, env: Map<string, Tensor>, opset: number, source: string): void {
  const label = `${source}: ${node.op_type} node '${node.name || `#${index}`}'`;
  const inputs = (node.input ?? []).map((name) => {
    if (!name) return undefined; // an omitted optional input
    const t = env.get(name);
    if (!t) fail(`${label}: input '${name}' is not defined before this node`);
    return t;
  });
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
  let result;
  try {
    result = HANDLERS[node.op_type](inputs, { attrs, opset, label, outputs: outputNames.length });
  } catch (e) {
    if (e instanceof Error && e.name === "TeenygradError" && !e.message.includes(label)) e.message = `${label}: ${e.message}`;
    throw e;
  }
  const outs = Array.isArray(result) ? result : [result];
  outputNames.forEach((name, i) => {
    if (!name) return;
    const t = outs[i];
    if (!t) fail(`${label}: output ${i} ('${name}') is not supported`);
    env.set(name, t);
  });
}

/** The model's real inputs (graph inputs that are not initializers), in order. */
export function onnxInputNames(bytes: Uint8Array, source = "ONNX model"): string[] {
  const graph = decodeModel(bytes, source).graph;
  const inits = new Set((graph?.initializer ?? []).map((t) => t.name));
  return (graph?.input ?? []).map((i) => i.name).filter((n) => !inits.has(n));
}
