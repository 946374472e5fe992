import type { Graph } from "../ir/graph.js";
import { foldConstants } from "./constant-fold.js";
import { eliminateDeadNodes } from "./dead-code.js";
import { decompose } from "./decompose.js";
import { foldBatchNorm } from "./fold-batchnorm.js";
import { fuseElementwise } from "./fuse-elementwise.js";
import { fuseEpilogues } from "./fuse-epilogue.js";
import { saturateIndexCasts } from "./saturate-indices.js";
import { useWinograd } from "./winograd.js";
import type { LoweringOptions } from "../ops/registry.js";

export interface PassStats {
  batchNormsFolded: number;
  decomposed: number;
  constantsFolded: number;
  deadNodesRemoved: number;
  epiloguesFused: number;
  elementwiseFused: number;
  /** dense 3x3 convolutions turned into Winograd ones (SIMD targets) */
  winogradConvs: number;
}

/** The optimisation pipeline, in order; each pass rewrites the graph in place. */
export function optimize(g: Graph, lowering: LoweringOptions = {}): PassStats {
  saturateIndexCasts(g);
  const batchNormsFolded = foldBatchNorm(g);
  const decomposed = decompose(g, lowering);
  const constantsFolded = foldConstants(g);
  const deadNodesRemoved = eliminateDeadNodes(g);
  const epiloguesFused = fuseEpilogues(g);
  const elementwiseFused = fuseElementwise(g);
  const winogradConvs = lowering.simd === true ? useWinograd(g) : 0;
  if (lowering.simd === false) for (const n of g.nodes) if (n.op === "conv2d") n.attrs = { ...n.attrs, scalarKernels: true };
  return { batchNormsFolded, decomposed, constantsFolded, deadNodesRemoved, epiloguesFused, elementwiseFused, winogradConvs };
}

export { saturateIndexCasts, foldConstants, eliminateDeadNodes, decompose, foldBatchNorm, fuseElementwise, fuseEpilogues, useWinograd };
