import type { DType } from "../ir/dtype.js";
import type { Attrs, HostTensor, TensorType } from "../ir/graph.js";
import { defineOp, getOp } from "./registry.js";

/**
 * A chain of element-wise ops fused by passes/fuse-elementwise into one generated loop.
 * Step args index the node's inputs first, then earlier steps' results; the last step is the output.
 */
export interface FusedStep {
  op: string;
  args: number[];
  attrs: Attrs;
  /** the step's result type */
  dtype: DType;
}

export const fusedSteps = (attrs: Attrs): FusedStep[] => attrs.steps as FusedStep[];

defineOp({
  name: "fused",
  infer: (_inputs, attrs) => [attrs.out as TensorType],
  reference(inputs, attrs) {
    const vals: HostTensor[] = [...inputs];
    for (const s of fusedSteps(attrs)) vals.push(getOp(s.op).reference(s.args.map((a) => vals[a]), s.attrs)[0]);
    return [vals[vals.length - 1]];
  },
  lower: (ctx, node) => ctx.elementwise(node.inputs, fusedSteps(node.attrs), node.outputs[0]),
  inPlace: true,
  compiledDTypes: () => true,
  notDifferentiable: "it is a fused element-wise group made by compile passes; gradients are taken on the graph before fusion",
});
