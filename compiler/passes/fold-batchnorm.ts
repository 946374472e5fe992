import type { Graph, Node, Value } from "../ir/graph.js";

/** A batchnorm with constant parameters as y = (x − μ)·scale + β per channel (float64), or null. */
interface Affine { scale: Float64Array; mean: Float64Array; beta: Float64Array }
function affineOf(bn: Node): Affine | null {
  const [, gamma, beta, mean, variance] = bn.inputs;
  if (![gamma, beta, mean, variance].every((v) => v.isConstant)) return null;
  const C = gamma.shape[0], eps = bn.attrs.eps as number;
  const scale = Float64Array.from({ length: C }, (_, c) => Number(gamma.data![c]) / Math.sqrt(Number(variance.data![c]) + eps));
  return { scale, mean: Float64Array.from(mean.data!, Number), beta: Float64Array.from(beta.data!, Number) };
}

const singleUse = (g: Graph, uses: Map<Value, Node[]>, v: Value) => uses.get(v)?.length === 1 && !g.outputs.includes(v);

/**
 * Batch norm with constant parameters folds into the conv2d or matmul (Gemm) that feeds it, so inference pays
 * nothing for it:
 *   conv2d → batchnorm:         w'[oc] = w[oc] · γ/√(σ²+ε),  b'[oc] = (b[oc] − μ) · γ/√(σ²+ε) + β
 *   matmul (+ bias) → batchnorm (BatchNorm1d after Linear, [M, N] with N channels): the same per column of B.
 */
export function foldBatchNorm(g: Graph): number {
  const uses = g.consumers();
  let folded = 0;
  for (const bn of [...g.nodes]) {
    if (bn.op !== "batchnorm") continue;
    const producer = bn.inputs[0].producer;
    if (!producer || !singleUse(g, uses, bn.inputs[0])) continue;
    const affine = affineOf(bn);
    if (!affine) continue;
    const done = producer.op === "conv2d" ? foldIntoConv(g, producer, affine) : foldIntoMatmul(g, uses, bn, producer, affine);
    if (!done) continue;
    g.replaceAllUses(bn.outputs[0], done);
    g.removeNode(bn);
    folded++;
  }
  return folded;
}

function foldIntoConv(g: Graph, conv: Node, { scale, mean, beta }: Affine): Value | null {
  if (!conv.inputs.slice(1).every((v) => v.isConstant)) return null;
  const w = conv.inputs[1], b = conv.inputs[2];
  const OC = w.shape[0], per = w.bytes / 4 / OC;
  const W = new Float32Array(w.data as Float32Array), B = new Float32Array(OC);
  for (let oc = 0; oc < OC; oc++) {
    for (let i = 0; i < per; i++) W[oc * per + i] *= scale[oc];
    B[oc] = ((b ? Number(b.data![oc]) : 0) - mean[oc]) * scale[oc] + beta[oc];
  }
  conv.inputs = [
    conv.inputs[0],
    g.addConstant({ shape: [...w.shape], dtype: w.dtype, data: W }, `${w.name}:bn`, "weight"),
    g.addConstant({ shape: [OC], dtype: w.dtype, data: B }, `${b?.name ?? (w.name.endsWith("weight") ? w.name.replace(/weight$/, "bias") : `${w.name}.bias`)}:bn`, "weight"),
  ];
  return conv.outputs[0];
}

/**
 * batchnorm(matmul(a, B) [+ bias]) on [M, N]: B (a constant [K, N], or its [N, K] transpose as ONNX's Gemm
 * imports it) becomes a new constant with column n scaled, and the bias add gets the folded bias (one is
 * inserted when the matmul had none); epilogue fusion later absorbs that add.
 */
function foldIntoMatmul(g: Graph, uses: Map<Value, Node[]>, bn: Node, producer: Node, { scale, mean, beta }: Affine): Value | null {
  let add: Node | null = null, mm = producer, bias: Value | null = null;
  if (producer.op === "add") {
    const [p, q] = producer.inputs;
    const product = p.producer?.op === "matmul" ? p : q.producer?.op === "matmul" ? q : null;
    if (!product || !singleUse(g, uses, product)) return null;
    bias = product === p ? q : p;
    add = producer;
    mm = product.producer!;
  }
  if (mm.op !== "matmul" || mm.inputs.length !== 2 || mm.outputs[0].shape.length !== 2 || mm.inputs[0].shape.length !== 2) return null;
  const N = mm.outputs[0].shape[1];
  if (bias && !(bias.isConstant && bias.shape[bias.shape.length - 1] === N && bias.bytes === 4 * N && bias.dtype === "float32")) return null;
  const B = constantMatrix(mm.inputs[1]);
  if (!B || mm.inputs[1].dtype !== "float32") return null;
  const K = mm.inputs[1].shape[0];
  const scaled = new Float32Array(K * N), folded = new Float32Array(N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) scaled[k * N + n] = B(k, n) * scale[n];
  for (let n = 0; n < N; n++) folded[n] = ((bias ? Number(bias.data![n]) : 0) - mean[n]) * scale[n] + beta[n];
  const name = mm.inputs[1].producer?.inputs[0].name ?? mm.inputs[1].name;
  mm.inputs = [mm.inputs[0], g.addConstant({ shape: [K, N], dtype: "float32", data: scaled }, `${name}:bn`, "weight")];
  const foldedBias = g.addConstant({ shape: [N], dtype: "float32", data: folded }, `${bias?.name ?? `${name}.bias`}:bn`, "weight");
  if (add) {
    add.inputs = [mm.outputs[0], foldedBias];
    return add.outputs[0];
  }
  return g.insertBefore(bn, "add", [mm.outputs[0], foldedBias], {}, `${bn.name}:bias`).outputs[0];
}

/** Element (k, n) of a [K, N] matmul operand that is a constant, or a [1, 0] permute of one; else null. */
function constantMatrix(v: Value): ((k: number, n: number) => number) | null {
  if (v.shape.length !== 2) return null;
  const N = v.shape[1];
  if (v.isConstant) return (k, n) => Number(v.data![k * N + n]);
  const p = v.producer;
  if (p?.op === "permute" && (p.attrs.perm as number[]).join() === "1,0" && p.inputs[0].isConstant) {
    const K = v.shape[0], data = p.inputs[0].data!;
    return (k, n) => Number(data[n * K + k]);
  }
  return null;
}
