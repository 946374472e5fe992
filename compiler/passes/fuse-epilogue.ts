import { numel } from "../ir/dtype.js";
import { Graph, type Node, type Value } from "../ir/graph.js";
import { getOp } from "../ops/index.js";
import { epilogueOf } from "../ops/linalg.js";

/**
 * Folds what follows a matmul/conv2d into its kernel call: a constant bias add (per output column of
 * matmul, per channel of conv2d), a residual add of a same-shaped tensor computed before the node (ResNet's
 * shortcut), then one activation applied at store time. conv+bias+add+relu is one call.
 */
export function fuseEpilogues(g: Graph): number {
  let fused = 0;
  const uses = g.consumers();
  const absorbed = new Set<Node>();
  const position = new Map(g.nodes.map((n, i) => [n, i]));
  for (const node of [...g.nodes]) {
    if (node.op !== "matmul" && node.op !== "conv2d") continue;
    for (;;) {
      const out = node.outputs[0];
      const users = uses.get(out) ?? [];
      if (users.length !== 1 || g.outputs.includes(out)) break;
      const next = users[0];
      if (next.outputs[0].shape.join() !== out.shape.join() || !Graph.sameGuard(node, next)) break;
      if (!absorbBias(g, node, next) && !absorbResidual(node, next, position, uses) && !absorbActivation(node, next)) break;
      // the node's output now has the absorbed node's readers
      const readers = uses.get(next.outputs[0]) ?? [];
      g.replaceAllUses(next.outputs[0], out, readers);
      uses.set(out, readers);
      absorbed.add(next);
      fused++;
    }
  }
  g.removeNodes(absorbed);
  return fused;
}

function absorbBias(g: Graph, node: Node, add: Node): boolean {
  if (add.op !== "add" || node.inputs.length > 2 || node.attrs.residual || epilogueOf(node.attrs).act !== 0) return false;
  const out = node.outputs[0];
  const other = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
  if (other === out || !other.isConstant || !isPerChannel(node, other)) return false;
  const n = numel(other.shape);
  node.inputs = [...node.inputs, g.addConstant({ shape: [n], dtype: other.dtype, data: other.data! }, other.name, other.kind as "weight")];
  return true;
}

/** other broadcasts along every dim except matmul's last / conv2d's channel dim, which it fills. */
function isPerChannel(node: Node, other: Value): boolean {
  const out = node.outputs[0].shape;
  if (node.op === "matmul") {
    if (node.inputs[1].shape.length < 2) return false;
    const N = out[out.length - 1];
    return other.shape.length <= out.length && numel(other.shape) === N && other.shape[other.shape.length - 1] === N;
  }
  const s = other.shape;
  return s.length >= 3 && s.length <= 4 && s[s.length - 3] === out[1] && numel(s) === out[1];
}

/**
 * add(node's output, r) with r of the output's shape and dtype, already computed when the node runs: the
 * kernel adds r before the activation; r becomes the node's last input (attrs.residual).
 */
function absorbResidual(node: Node, add: Node, position: Map<Node, number>, uses: Map<Value, Node[]>): boolean {
  if (add.op !== "add" || node.attrs.residual || epilogueOf(node.attrs).act !== 0) return false;
  const out = node.outputs[0];
  const other = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
  if (other === out || other.dtype !== "float32" || out.dtype !== "float32" || other.shape.join() !== out.shape.join()) return false;
  if (other.producer && !((position.get(other.producer) ?? Infinity) < position.get(node)!)) return false;
  node.inputs = [...node.inputs, other];
  uses.set(other, [...(uses.get(other) ?? []).filter((n) => n !== add), node]);
  node.attrs = { ...node.attrs, residual: true };
  return true;
}

function absorbActivation(node: Node, act: Node): boolean {
  const epilogue = getOp(act.op).epilogue?.(act.attrs);
  if (!epilogue || epilogueOf(node.attrs).act !== 0) return false;
  node.attrs = { ...node.attrs, epilogue };
  return true;
}
