import { Graph, type Node, type Value } from "../ir/graph.js";
import { getOp } from "../ops/index.js";
import type { FusedStep } from "../ops/fused.js";

/**
 * Merges chains of element-wise ops into single "fused" nodes, each one generated loop. A producer
 * joins its consumer's group when the consumer is its only reader and its result is not a graph output.
 * A producer of a smaller (broadcast) shape is then recomputed per output element: cheaper than a
 * loop and a buffer of its own on the devices we target.
 */
export function fuseElementwise(g: Graph): number {
  const uses = g.consumers();
  const groups = new Map<Node, Node[]>();
  for (const n of g.nodes) {
    if (!getOp(n.op).elementwise) continue;
    const members: Node[] = [];
    for (const v of n.inputs) {
      const p = v.producer;
      // a guarded node joins only a group that runs under the same conditions: skipped code stays skipped
      if (!p || !groups.has(p) || uses.get(v)!.length !== 1 || g.outputs.includes(v) || !Graph.sameGuard(p, n)) continue;
      members.push(...groups.get(p)!);
      groups.delete(p);
    }
    groups.set(n, [...members, n]);
  }
  let fused = 0;
  const order = new Map(g.nodes.map((n, i) => [n, i]));
  const merged = new Set<Node>();
  for (const [head, group] of groups) {
    if (group.length === 1) continue;
    group.sort((a, b) => order.get(a)! - order.get(b)!);
    const produced = new Map<Value, number>(group.map((m, i) => [m.outputs[0], i]));
    const external: Value[] = [];
    for (const m of group) for (const v of m.inputs) if (!produced.has(v) && !external.includes(v)) external.push(v);
    const steps: FusedStep[] = group.map((m) => ({
      op: m.op,
      args: m.inputs.map((v) => (produced.has(v) ? external.length + produced.get(v)! : external.indexOf(v))),
      attrs: m.attrs,
      dtype: m.outputs[0].dtype,
    }));
    const node = g.insertBefore(head, "fused", external, { steps, out: head.outputs[0].type }, head.name);
    node.guard = head.guard;
    // groups come in their heads' order, so a head's readers are still the nodes consumers() found
    g.replaceAllUses(head.outputs[0], node.outputs[0], uses.get(head.outputs[0]) ?? []);
    for (const m of group) merged.add(m);
    fused += group.length;
  }
  g.removeNodes(merged);
  return fused;
}
