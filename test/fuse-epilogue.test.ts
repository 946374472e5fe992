// Epilogue fusion: a residual add (and the activation after it) folded into the conv2d / matmul that produces one
// of its operands. The optimized graph has no add left where it may fuse (and keeps it where it may not), and
// every variant gives what the unoptimized graph gives on the host (each op's reference), compiled for SIMD and
// scalar, through each conv kernel (direct, im2col + GEMM, pointwise GEMM, padded depthwise).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, loadBlob } from "../compiler/index.js";
import { Graph, type Value } from "../compiler/ir/graph.js";
import { inferTypes } from "../compiler/ops/index.js";
import { interpret } from "../compiler/ops/interpret.js";
import { convKernelTile, isPaddedDepthwise } from "../compiler/ops/linalg.js";
import { optimize } from "../compiler/passes/index.js";
import { relError, rng, SEED, TARGET_NAMES } from "./helpers/compiled.js";

const floats = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
const numel = (shape: number[]) => shape.reduce((p, q) => p * q, 1);

interface Conv { C: number; OC: number; K: number; stride: number; pad: number; groups?: number }

interface Variant {
  name: string;
  input: number[];
  /** builds the graph from x; constants are drawn from `weights` in call order, so every build gets the same data */
  build: (g: Graph, x: Value, conv: (x: Value, c: Conv, bias?: boolean) => Value) => Value;
  /** adds the passes must fuse into a kernel call */
  fused: number;
  /** what fusion must leave in the graph */
  adds: number;
  kernel?: "direct" | "im2col" | "depthwise";
}

function buildGraph(v: Variant, weights: Float32Array[]): Graph {
  const g = new Graph(inferTypes);
  const x = g.addInput("x", { shape: v.input, dtype: "float32" });
  let next = 0;
  const constant = (shape: number[]) => {
    weights[next] ??= floats(numel(shape));
    return g.addConstant({ shape, dtype: "float32", data: weights[next++] }, `w${next}`, "weight");
  };
  const conv = (input: Value, c: Conv, bias = true) => {
    const groups = c.groups ?? 1;
    const attrs = { stride: [c.stride, c.stride], pads: [c.pad, c.pad, c.pad, c.pad], dilation: [1, 1], groups };
    const w = constant([c.OC, c.C / groups, c.K, c.K]);
    return g.addNode("conv2d", bias ? [input, w, constant([c.OC])] : [input, w], attrs).outputs[0];
  };
  g.outputs = [v.build(g, x, conv)];
  return g;
}

const add = (g: Graph, a: Value, b: Value) => g.addNode("add", [a, b]).outputs[0];
const relu = (g: Graph, a: Value) => g.addNode("relu", [a]).outputs[0];

const variants: Variant[] = [
  {
    name: "ResNet block, identity shortcut: conv 3x3 + bias + add(x) + relu (im2col + GEMM)",
    input: [1, 16, 8, 8], fused: 1, adds: 0, kernel: "im2col",
    build: (g, x, conv) => relu(g, add(g, conv(relu(g, conv(x, { C: 16, OC: 16, K: 3, stride: 1, pad: 1 })), { C: 16, OC: 16, K: 3, stride: 1, pad: 1 }), x)),
  },
  {
    name: "ResNet block, projection shortcut computed after the main path: fused into the shortcut conv (1x1 stride 2)",
    input: [1, 8, 9, 9], fused: 1, adds: 0,
    build: (g, x, conv) => {
      const main = conv(relu(g, conv(x, { C: 8, OC: 12, K: 3, stride: 2, pad: 1 })), { C: 12, OC: 12, K: 3, stride: 1, pad: 1 });
      return relu(g, add(g, main, conv(x, { C: 8, OC: 12, K: 1, stride: 2, pad: 0 })));
    },
  },
  {
    name: "direct conv (few output channels, wide plane), no bias, residual first operand, clamp",
    input: [2, 3, 7, 19], fused: 1, adds: 0, kernel: "direct",
    build: (g, x, conv) => {
      const y = add(g, x, conv(x, { C: 3, OC: 3, K: 3, stride: 1, pad: 1 }, false));
      return g.addNode("clamp", [y], { min: -0.5, max: 0.75 }).outputs[0];
    },
  },
  {
    name: "pointwise conv (a GEMM) + residual + sigmoid",
    input: [1, 6, 5, 3], fused: 1, adds: 0,
    build: (g, x, conv) => g.addNode("sigmoid", [add(g, conv(x, { C: 6, OC: 6, K: 1, stride: 1, pad: 0 }), x)]).outputs[0],
  },
  {
    name: "depthwise 3x3 (padded plane) + residual + relu, 7 channels on a 5x3 plane",
    input: [1, 7, 5, 3], fused: 1, adds: 0, kernel: "depthwise",
    build: (g, x, conv) => relu(g, add(g, conv(x, { C: 7, OC: 7, K: 3, stride: 1, pad: 1, groups: 7 }), x)),
  },
  {
    name: "not fused: the other operand broadcasts, or is computed after the conv and read elsewhere",
    input: [1, 4, 6, 6], fused: 0, adds: 2,
    build: (g, x, conv) => {
      const y = conv(x, { C: 4, OC: 4, K: 3, stride: 1, pad: 1 });
      const pooled = g.addNode("reduce", [x], { kind: "mean", axes: [2, 3], keepdim: true }).outputs[0];
      const broadcast = add(g, y, pooled); // [1,4,1,1] against [1,4,6,6]
      const z = conv(broadcast, { C: 4, OC: 4, K: 3, stride: 1, pad: 1 });
      const later = relu(g, x); // after z's conv in the node order
      return add(g, z, add(g, later, later));
    },
  },
];

describe(`residual fusion into conv2d and matmul (seed ${SEED})`, () => {
  for (const v of variants) {
    test(v.name, async () => {
      const weights: Float32Array[] = [];
      const x = floats(numel(v.input));
      const feeds = { x: { shape: v.input, dtype: "float32" as const, data: x } };
      const reference = Object.values(interpret(buildGraph(v, weights), feeds))[0].data as Float32Array;
      const optimized = buildGraph(v, weights);
      optimize(optimized);
      const residual = optimized.nodes.filter((n) => n.attrs.residual);
      assert.equal(residual.length, v.fused, optimized.toString());
      assert.equal(optimized.nodes.filter((n) => n.op === "add" || n.op === "fused").length > 0, v.adds > 0, optimized.toString());
      for (const n of residual) {
        if (v.kernel === "depthwise") assert.ok(isPaddedDepthwise(n));
        if (v.kernel === "im2col") assert.ok(convKernelTile(n) > 0);
        if (v.kernel === "direct") assert.ok(!isPaddedDepthwise(n) && convKernelTile(n) === 0);
      }
      const host = Object.values(interpret(optimized, feeds))[0].data as Float32Array;
      assert.ok(relError(host, reference) < 1e-5, `host, fused: ${relError(host, reference)}`);
      for (const target of TARGET_NAMES) {
        const { wasm } = await compile(buildGraph(v, weights), {}, { target });
        const out = Object.values((await loadBlob(wasm)).run({ x }))[0] as Float32Array;
        assert.ok(relError(out, reference) < 1e-5, `${target}: ${relError(out, reference)}`);
      }
    });
  }

  test("matmul + bias + residual + relu (a transformer's projection), batched and not", async () => {
    for (const [batch, M, K, N] of [[1, 5, 7, 9], [3, 4, 6, 5]]) {
      const shape = batch === 1 ? [M, K] : [batch, M, K];
      const outShape = batch === 1 ? [M, N] : [batch, M, N];
      const data = { w: floats(K * N), b: floats(N), r: floats(batch * M * N) };
      const build = () => {
        const g = new Graph(inferTypes);
        const x = g.addInput("x", { shape, dtype: "float32" });
        const r = g.addInput("r", { shape: outShape, dtype: "float32" });
        const w = g.addConstant({ shape: [K, N], dtype: "float32", data: data.w }, "w", "weight");
        const b = g.addConstant({ shape: [N], dtype: "float32", data: data.b }, "b", "weight");
        const y = add(g, g.addNode("matmul", [x, w]).outputs[0], b);
        g.outputs = [relu(g, add(g, r, y))];
        return g;
      };
      const x = floats(numel(shape));
      const feeds = { x: { shape, dtype: "float32" as const, data: x }, r: { shape: outShape, dtype: "float32" as const, data: data.r } };
      const reference = Object.values(interpret(build(), feeds))[0].data as Float32Array;
      const optimized = build();
      optimize(optimized);
      assert.deepEqual(optimized.nodes.map((n) => n.op), ["matmul"], optimized.toString());
      for (const target of TARGET_NAMES) {
        const { wasm } = await compile(build(), {}, { target });
        const out = Object.values((await loadBlob(wasm)).run({ x, r: data.r }))[0] as Float32Array;
        assert.ok(relError(out, reference) < 1e-5, `${target} [${shape}]: ${relError(out, reference)}`);
      }
    }
  });
});
