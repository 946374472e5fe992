import type { Graph, Node } from "../ir/graph.js";

/** Removes nodes none of whose outputs reach a graph output. */
export function eliminateDeadNodes(g: Graph): number {
  const live = new Set(g.outputs);
  const kept: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (n.outputs.some((v) => live.has(v))) {
      kept.push(n);
      for (const v of n.inputs) live.add(v);
      for (const g of n.guard) live.add(g.cond);
    }
  }
  const removed = g.nodes.length - kept.length;
  g.nodes = kept.reverse();
  return removed;
}
