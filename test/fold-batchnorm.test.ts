// Batch norm folded into the conv2d or matmul before it: the optimized graph has no batchnorm left and gives
// what the unoptimized graph gives on the host (each op's reference), compiled for SIMD and scalar.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, loadBlob } from "../compiler/index.js";
import { Graph, type Value } from "../compiler/ir/graph.js";
import { inferTypes } from "../compiler/ops/index.js";
import { interpret } from "../compiler/ops/interpret.js";
import { optimize } from "../compiler/passes/index.js";
import { relError, rng, SEED, TARGET_NAMES } from "./helpers/compiled.js";

const floats = (n: number, low = -1, high = 1) => Float32Array.from({ length: n }, () => low + (high - low) * rng.next());

interface Variant { name: string; transposed: boolean; bias: boolean; relu: boolean; M: number; K: number; N: number }

/** x[M, K] · B (+ bias) → batchnorm (→ relu), B a [K, N] constant or the [1, 0] permute of an [N, K] one (ONNX Gemm). */
function buildGraph(v: Variant, data: Record<string, Float32Array>): Graph {
  const g = new Graph(inferTypes);
  const x = g.addInput("x", { shape: [v.M, v.K], dtype: "float32" });
  const constant = (name: string, shape: number[]) => g.addConstant({ shape, dtype: "float32", data: data[name] }, name, "weight");
  let B: Value = v.transposed ? constant("w", [v.N, v.K]) : constant("w", [v.K, v.N]);
  if (v.transposed) B = g.addNode("permute", [B], { perm: [1, 0] }).outputs[0];
  let y = g.addNode("matmul", [x, B]).outputs[0];
  if (v.bias) y = g.addNode("add", [y, constant("b", [v.N])]).outputs[0];
  const params = ["gamma", "beta", "mean", "var"].map((p) => constant(p, [v.N]));
  y = g.addNode("batchnorm", [y, ...params], { eps: 1e-5 }).outputs[0];
  if (v.relu) y = g.addNode("relu", [y]).outputs[0];
  g.outputs = [y];
  return g;
}

describe(`batch norm folding (seed ${SEED})`, () => {
  const variants: Variant[] = [
    { name: "Gemm (transposed B) + bias + BatchNorm1d + ReLU", transposed: true, bias: true, relu: true, M: 1, K: 37, N: 19 },
    { name: "matmul without bias + BatchNorm1d", transposed: false, bias: false, relu: false, M: 5, K: 8, N: 12 },
  ];
  for (const v of variants) {
    test(v.name, async () => {
      const data: Record<string, Float32Array> = {
        w: floats(v.K * v.N), b: floats(v.N), gamma: floats(v.N, 0.5, 1.5), beta: floats(v.N), mean: floats(v.N), var: floats(v.N, 0.5, 1.5),
      };
      const x = floats(v.M * v.K);
      const reference = Object.values(interpret(buildGraph(v, data), { x: { shape: [v.M, v.K], dtype: "float32", data: x } }))[0].data as Float32Array;
      const optimized = buildGraph(v, data);
      assert.equal(optimize(optimized).batchNormsFolded, 1);
      assert.ok(!optimized.nodes.some((n) => n.op === "batchnorm"), optimized.toString());
      const folded = Object.values(interpret(optimized, { x: { shape: [v.M, v.K], dtype: "float32", data: x } }))[0].data as Float32Array;
      assert.ok(relError(folded, reference) < 1e-5, `host, folded: ${relError(folded, reference)}`);
      for (const target of TARGET_NAMES) {
        const { wasm } = await compile(buildGraph(v, data), {}, { target });
        const out = Object.values((await loadBlob(wasm)).run({ x }))[0] as Float32Array;
        assert.ok(relError(out, reference) < 1e-5, `${target}: ${relError(out, reference)}`);
      }
    });
  }
});
