import { fail } from "../errors.js";
import type { Graph, HostTensor, Value } from "../ir/graph.js";
import { shapeStr } from "../ir/shape.js";
import { getOp } from "./registry.js";

/** Runs a graph on the host with each op's reference implementation: the oracle for passes and codegen. */
export function interpret(g: Graph, inputs: Record<string, HostTensor>): Record<string, HostTensor> {
  const env = new Map<Value, HostTensor>();
  for (const v of g.inputs) {
    const t = inputs[v.name];
    if (!t) fail(`missing input '${v.name}'`);
    if (t.shape.join() !== v.shape.join()) fail(`input '${v.name}' has shape ${shapeStr(t.shape)}, expected ${shapeStr(v.shape)}`);
    env.set(v, t);
  }
  const read = (v: Value): HostTensor => env.get(v) ?? (v.isConstant ? v.host() : fail(`value ${v.name} read before it was computed`));
  for (const n of g.nodes) {
    const outs = getOp(n.op, n.name).reference(n.inputs.map(read), n.attrs);
    n.outputs.forEach((v, i) => env.set(v, outs[i]));
  }
  return Object.fromEntries(g.outputs.map((v) => [v.name, read(v)]));
}
