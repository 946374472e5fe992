import protobuf from "protobufjs";
import schema from "../../compiler/import/onnx/onnx-schema.json" with { type: "json" };

/** Builds small ONNX models for tests, encoded with the same schema the importer decodes. */

const root = protobuf.Root.fromJSON(schema as protobuf.INamespace);
const ModelProto = root.lookupType("onnx.ModelProto");

const ELEM = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 } as const;
type Elem = keyof typeof ELEM;

export interface ValueSpec {
  name: string;
  dtype?: Elem;
  /** a number, or a string for a symbolic (dim_param) dimension */
  shape: (number | string)[];
}
export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attrs?: Record<string, number | number[] | string>;
}
export interface InitSpec {
  name: string;
  dims: number[];
  floats?: number[];
  ints?: number[];
  /** external data: file name relative to the model, with offset */
  external?: { location: string; offset?: number; length?: number };
}

const valueInfo = (v: ValueSpec) => ({
  name: v.name,
  type: { tensor_type: { elem_type: ELEM[v.dtype ?? "float32"], shape: { dim: v.shape.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d })) } } },
});

function attribute(name: string, value: number | number[] | string) {
  if (typeof value === "string") return { name, type: 3, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: 7, ints: value };
  return Number.isInteger(value) ? { name, type: 2, i: value } : { name, type: 1, f: value };
}

export function onnxModel(spec: { inputs: ValueSpec[]; outputs: ValueSpec[]; nodes: NodeSpec[]; initializers?: InitSpec[]; opset?: number }): Uint8Array {
  const model = {
    ir_version: 8,
    opset_import: [{ domain: "", version: spec.opset ?? 17 }],
    producer_name: "teenygrad-tests",
    graph: {
      name: "test",
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
      node: spec.nodes.map((n, i) => ({
        op_type: n.op, name: n.name ?? `${n.op.toLowerCase()}_${i}`, input: n.inputs, output: n.outputs, domain: n.domain ?? "",
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      })),
      initializer: (spec.initializers ?? []).map((t) => t.external
        ? { name: t.name, dims: t.dims, data_type: 1, data_location: 1, external_data: Object.entries({ location: t.external.location, offset: t.external.offset, length: t.external.length }).filter(([, v]) => v !== undefined).map(([key, value]) => ({ key, value: String(value) })) }
        : t.ints ? { name: t.name, dims: t.dims, data_type: 7, int64_data: t.ints } : { name: t.name, dims: t.dims, data_type: 1, float_data: t.floats }),
    },
  };
  const err = ModelProto.verify(model);
  if (err) throw new Error(`bad test model: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}
