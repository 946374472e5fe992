import type { Graph } from "../ir/graph.js";

/**
 * conv2d → batchnorm with constant weights becomes one conv2d:
 *   w'[oc] = w[oc] · γ/√(σ²+ε),   b'[oc] = (b[oc] − μ) · γ/√(σ²+ε) + β
 * so inference pays nothing for batch norm.
 */
export function foldBatchNorm(g: Graph): number {
  const uses = g.consumers();
  let folded = 0;
  for (const bn of [...g.nodes]) {
    if (bn.op !== "batchnorm") continue;
    const conv = bn.inputs[0].producer;
    const [, gamma, beta, mean, variance] = bn.inputs;
    if (!conv || conv.op !== "conv2d" || uses.get(conv.outputs[0])?.length !== 1 || g.outputs.includes(conv.outputs[0])) continue;
    if (!conv.inputs.slice(1).every((v) => v.isConstant) || ![gamma, beta, mean, variance].every((v) => v.isConstant)) continue;
    const w = conv.inputs[1], b = conv.inputs[2];
    const OC = w.shape[0], per = w.bytes / 4 / OC;
    const eps = bn.attrs.eps as number;
    const W = new Float32Array(w.data as Float32Array), B = new Float32Array(OC);
    for (let oc = 0; oc < OC; oc++) {
      const scale = Number(gamma.data![oc]) / Math.sqrt(Number(variance.data![oc]) + eps);
      for (let i = 0; i < per; i++) W[oc * per + i] *= scale;
      B[oc] = ((b ? Number(b.data![oc]) : 0) - Number(mean.data![oc])) * scale + Number(beta.data![oc]);
    }
    conv.inputs = [
      conv.inputs[0],
      g.addConstant({ shape: [...w.shape], dtype: w.dtype, data: W }, `${w.name}:bn`, "weight"),
      g.addConstant({ shape: [OC], dtype: w.dtype, data: B }, `${b?.name ?? (w.name.endsWith("weight") ? w.name.replace(/weight$/, "bias") : `${w.name}.bias`)}:bn`, "weight"),
    ];
    g.replaceAllUses(bn.outputs[0], conv.outputs[0]);
    g.removeNode(bn);
    folded++;
  }
  return folded;
}
