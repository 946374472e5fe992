import type { Graph } from "../ir/graph.js";
import { getOp } from "../ops/index.js";
import type { LoweringOptions } from "../ops/registry.js";

/** Rewrites ops that have no kernel of their own (batchnorm…) into primitive ops. */
export function decompose(g: Graph, opts: LoweringOptions = {}): number {
  let count = 0;
  for (const node of [...g.nodes]) {
    const def = getOp(node.op, node.name);
    if (!def.decompose) continue;
    const outs = def.decompose(g, node, opts);
    node.outputs.forEach((v, i) => g.replaceAllUses(v, outs[i]));
    g.removeNode(node);
    count++;
  }
  return count;
}
