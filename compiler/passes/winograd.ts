import type { Graph } from "../ir/graph.js";
import { winogradFits, winogradWeights } from "../ops/winograd.js";

/**
 * SIMD targets only: a dense 3x3 stride-1 conv2d that winogradFits becomes conv2dWinograd, its weights replaced by
 * the transformed constant U. Runs after epilogue fusion, so bias, residual and activation come along in attrs.
 */
export function useWinograd(g: Graph): number {
  let count = 0;
  for (const node of g.nodes) {
    if (!winogradFits(node)) continue;
    const w = node.inputs[1];
    node.op = "conv2dWinograd";
    node.inputs = [node.inputs[0], g.addConstant(winogradWeights(w.host()), `${w.name}/winograd`), ...node.inputs.slice(2)];
    count++;
  }
  return count;
}
