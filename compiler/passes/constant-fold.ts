import { describeNode } from "../codegen/limits.js";
import { fail, TeenygradError } from "../errors.js";
import { numel } from "../ir/dtype.js";
import type { Graph, Node } from "../ir/graph.js";
import { getOp } from "../ops/index.js";

/** A folded tensor may grow at most this much over its inputs (an expand of a scalar should stay a scalar). */
const MAX_GROWTH = 4;

/**
 * Evaluates, at compile time, every node whose inputs are all known, replacing it with a constant.
 * A result derived from one named weight keeps that name with the op appended ("fc.weight:permute"),
 * so the manifest still says where each weight came from.
 */
export function foldConstants(g: Graph): number {
  let folded = 0;
  // folding creates no nodes, so the readers of every value are known from the start
  const uses = g.consumers();
  const removed = new Set<Node>();
  for (const node of [...g.nodes]) {
    if (!node.inputs.length || !node.inputs.every((v) => v.isConstant)) continue;
    const inBytes = node.inputs.reduce((a, v) => a + v.bytes, 0);
    if (node.outputs.some((v) => v.bytes > MAX_GROWTH * inBytes && numel(v.shape) > 16)) continue;
    let results;
    try {
      results = getOp(node.op).reference(node.inputs.map((v) => v.host()), node.attrs);
    } catch (e) {
      // a fault on constants (an integer division by a constant zero) happens on every run: say where
      if (e instanceof TeenygradError) fail(`${describeNode(node)}, on compile-time constants: ${e.message}`);
      throw e;
    }
    const weights = node.inputs.filter((v) => v.kind === "weight");
    node.outputs.forEach((out, i) => {
      const name = weights.length === 1 ? `${weights[0].name}:${node.op}` : out.name;
      const c = g.addConstant(results[i], name, weights.length === 1 ? "weight" : "const");
      g.replaceAllUses(out, c, uses.get(out) ?? []);
    });
    removed.add(node);
    folded++;
  }
  g.removeNodes(removed);
  return folded;
}
