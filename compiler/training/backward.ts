import { fail } from "../errors.js";
import type { Graph, Node, Value } from "../ir/graph.js";
import { shapeStr } from "../ir/shape.js";
import { getOp } from "../ops/index.js";
import { Tensor } from "../tensor/tensor.js";

/** A graph value as a tensor the active trace records ops on. */
export const symbolic = (v: Value): Tensor => new Tensor(v.shape, v.dtype, null, v);

const isFloat = (v: Value): boolean => v.dtype === "float32" || v.dtype === "float64";

/**
 * Reverse mode on a traced graph: walks the nodes that exist now from last to first and calls each op's
 * gradient rule (from the registry, written with the Tensor API) on symbolic tensors, so the active
 * trace — which must record into `g` — appends the backward nodes. Only what flows into `wrt` is built:
 * a rule is told which inputs need a gradient, and nodes no trainable value reaches are skipped, so a
 * frozen parameter costs no backward work. Returns dL/dw per `wrt` value (null where none flows).
 */
export function traceBackward(g: Graph, loss: Value, wrt: Value[]): (Tensor | null)[] {
  const forward = [...g.nodes];
  // values that depend on a trainable one through float ops (detach() cuts, as in eager mode)
  const requires = new Set<Value>(wrt);
  for (const n of forward) {
    if (n.op === "stopGradient" || !n.inputs.some((v) => requires.has(v))) continue;
    for (const o of n.outputs) if (isFloat(o)) requires.add(o);
  }
  if (!requires.has(loss)) fail("the loss does not depend on any trainable parameter (all frozen, or detached?)");

  const grads = new Map<Value, Tensor>([[loss, Tensor.ones(loss.shape, loss.dtype)]]);
  for (let i = forward.length - 1; i >= 0; i--) {
    const n = forward[i];
    const gy = grads.get(n.outputs[0]);
    if (!gy || !n.inputs.some((v) => requires.has(v))) continue;
    const def = getOp(n.op, n.name);
    if (!def.grad) {
      fail(`cannot backpropagate through '${n.op}' (node ${n.name}, output ${shapeStr(n.outputs[0].shape)}): ${def.notDifferentiable ?? "it has no gradient rule"}. ` +
        `It lies between the loss and the trainable parameter(s) ${upstreamParameters(n, wrt).join(", ")}; freeze them (freeze / trainLastN) or detach() the op's input`);
    }
    const needs = n.inputs.map((v) => requires.has(v));
    const inputGrads = def.grad({ inputs: n.inputs.map(symbolic), output: symbolic(n.outputs[0]), attrs: n.attrs, grad: gy, needs });
    n.inputs.forEach((v, k) => {
      const gk = inputGrads[k];
      if (!needs[k] || !gk) return;
      if (gk.shape.join() !== v.shape.join()) fail(`internal: the ${n.op} gradient rule (node ${n.name}) returned ${shapeStr(gk.shape)} for input ${k} of shape ${shapeStr(v.shape)}`);
      const prev = grads.get(v);
      grads.set(v, prev ? prev.add(gk) : gk);
    });
  }
  return wrt.map((w) => grads.get(w) ?? null);
}

/** The trainable values a node's inputs are computed from, by name (for error messages). */
function upstreamParameters(node: Node, wrt: Value[]): string[] {
  const found = new Set<string>();
  const seen = new Set<Value>();
  const stack = [...node.inputs];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (wrt.includes(v)) found.add(v.name);
    if (v.producer) stack.push(...v.producer.inputs);
  }
  return [...found];
}
