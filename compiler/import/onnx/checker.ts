import { fail } from "../../errors.js";
import type { DType } from "../../ir/dtype.js";
import type { Tensor } from "../../tensor/tensor.js";
import schemas from "./op-schemas.json" with { type: "json" };
import type { NodeProto } from "./proto.js";

/**
 * The ONNX checker's per-node rules, applied before a node imports (onnxruntime rejects such models too):
 * every attribute is one the operator's schema (at the model's opset) defines, and every input's element
 * type is one its type constraint allows, the same for inputs sharing a type variable. Schemas come from
 * the onnx package (scripts/gen-onnx-op-schemas.py writes op-schemas.json).
 */

interface FormalInput {
  t: string | null;
  allowed: string[] | null;
  variadic: boolean;
}
interface OpSchema {
  since: number;
  attributes: string[];
  inputs: FormalInput[];
}
const SCHEMAS = (schemas as { ops: Record<string, OpSchema[]> }).ops;

const ONNX_TYPE_NAMES: Record<DType, string> = { float16: "float16", float32: "float", float64: "double", int8: "int8", int16: "int16", int32: "int32", int64: "int64", uint8: "uint8", uint16: "uint16", uint32: "uint32", uint64: "uint64", bool: "bool" } as Record<DType, string>;

/** Ops whose variadic inputs may each have their own type (onnx's is_homogeneous false; op-schemas.json does not record it). */
const HETEROGENEOUS = new Set(["Loop", "Scan"]);

/** The schema in force at `opset`: the latest version introduced at or before it. */
function schemaAt(op: string, opset: number): OpSchema | undefined {
  const versions = SCHEMAS[op];
  if (!versions) return undefined;
  let found: OpSchema | undefined;
  for (const v of versions) if (v.since <= opset) found = v;
  return found;
}

export const onnxTypeName = (dtype: DType): string => ONNX_TYPE_NAMES[dtype];

/** `elemType`: an input's ONNX element type name (narrow types compute in a wider carrier, narrow.ts). */
export function checkNode(node: NodeProto, inputs: (Tensor | undefined)[], opset: number, label: string, elemType: (t: Tensor) => string = (t) => onnxTypeName(t.dtype)): void {
  if (node.domain && node.domain !== "ai.onnx") return;
  const schema = schemaAt(node.op_type, opset);
  if (!schema) return;
  for (const a of node.attribute ?? []) {
    if (!schema.attributes.includes(a.name)) {
      fail(`${label}: unknown attribute '${a.name}' (${node.op_type} at opset ${opset} has ${schema.attributes.length ? schema.attributes.map((n) => `'${n}'`).join(", ") : "no attributes"})`);
    }
  }
  const bound = new Map<string, { type: string; input: number }>();
  inputs.forEach((t, i) => {
    if (!t || !schema.inputs.length) return;
    const formal = schema.inputs[Math.min(i, schema.inputs.length - 1)];
    if (i >= schema.inputs.length && !formal.variadic) fail(`${label}: ${inputs.length} inputs, but ${node.op_type} takes at most ${schema.inputs.length}`);
    const type = elemType(t);
    if (formal.allowed && !formal.allowed.includes(type)) fail(`${label}: input ${i} is ${type}, which ${node.op_type} does not accept there (allowed: ${formal.allowed.join(", ")})`);
    if (!formal.t || (formal.variadic && HETEROGENEOUS.has(node.op_type))) return;
    const other = bound.get(formal.t);
    if (other && other.type !== type) fail(`${label}: inputs ${other.input} and ${i} must have the same element type (${formal.t}), but are ${other.type} and ${type}`);
    bound.set(formal.t, { type, input: i });
  });
}
