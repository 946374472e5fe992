// Winograd F(2x2, 3x3) (runtime-as/winograd.ts, chosen by compiler/passes/winograd.ts on SIMD targets): compiled
// conv2d layers against the direct sum of conv2d's host reference, on seeded random shapes and data (TEST_SEED=…
// replays). Winograd rounds differently: the input transform adds up to 4 patch values per element, the output
// transform up to 9 products' sums, so the float32 error grows by about that factor over a direct sum of the same
// C·9 products; measured on these inputs max |err| / max |y| is 2.4e-7..3.6e-7 over 7 runs (printed), the bound WINOGRAD_TOL is 2e-6.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, loadBlob } from "../compiler/index.js";
import { Graph, type Value } from "../compiler/ir/graph.js";
import { inferTypes } from "../compiler/ops/index.js";
import { interpret } from "../compiler/ops/interpret.js";
import { winogradFits } from "../compiler/ops/winograd.js";
import { optimize } from "../compiler/passes/index.js";
import { relError, rng, SEED } from "./helpers/compiled.js";

/** max |err| / max |y| of a float32 Winograd layer against the float64 direct sum (measured worst: see the log). */
const WINOGRAD_TOL = 2e-6;

const floats = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);
const numel = (shape: number[]) => shape.reduce((p, q) => p * q, 1);
const randInt = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));

interface Layer {
  C: number; K: number; H: number; W: number; pad: number; N?: number;
  /** [top, left, bottom, right], instead of pad on every side */
  pads?: number[];
  act?: "relu" | "clamp" | "leakyRelu" | "sigmoid" | "hardswish" | "gelu";
  residual?: boolean; bias?: boolean;
}

function buildGraph(l: Layer, data: Float32Array[]): Graph {
  const g = new Graph(inferTypes);
  const x = g.addInput("x", { shape: [l.N ?? 1, l.C, l.H, l.W], dtype: "float32" });
  let next = 0;
  const constant = (shape: number[], scale = 1) => {
    data[next] ??= floats(numel(shape), scale);
    return g.addConstant({ shape, dtype: "float32", data: data[next++] }, `w${next}`, "weight");
  };
  const attrs = { stride: [1, 1], pads: l.pads ?? [l.pad, l.pad, l.pad, l.pad], dilation: [1, 1], groups: 1 };
  // weights at PyTorch's default init scale, so outputs stay near 1 whatever C is
  const w = constant([l.K, l.C, 3, 3], 1 / Math.sqrt(l.C * 9));
  let y: Value = g.addNode("conv2d", l.bias === false ? [x, w] : [x, w, constant([l.K])], attrs).outputs[0];
  if (l.residual) y = g.addNode("add", [y, g.addNode("relu", [constant(y.shape)]).outputs[0]]).outputs[0];
  const actAttrs = { clamp: { min: -0.5, max: 0.75 }, leakyRelu: { alpha: 0.1 } } as Record<string, Record<string, number>>;
  if (l.act) y = g.addNode(l.act, [y], actAttrs[l.act] ?? {}).outputs[0];
  g.outputs = [y];
  return g;
}

async function checkLayer(l: Layer): Promise<number> {
  const data: Float32Array[] = [];
  const x = floats((l.N ?? 1) * l.C * l.H * l.W);
  const feeds = { x: { shape: [l.N ?? 1, l.C, l.H, l.W], dtype: "float32" as const, data: x } };
  const reference = Object.values(interpret(buildGraph(l, data), feeds))[0].data as Float32Array;
  // the rewritten graph on the host: conv2dWinograd's float64 reference of the transform's arithmetic
  const rewritten = buildGraph(l, data);
  optimize(rewritten, { simd: true });
  const winograd = rewritten.nodes.filter((n) => n.op === "conv2dWinograd");
  assert.equal(winograd.length, 1, rewritten.toString());
  assert.equal(Boolean(winograd[0].attrs.residual), Boolean(l.residual), "the residual is fused before the rewrite");
  const host = Object.values(interpret(rewritten, feeds))[0].data as Float32Array;
  assert.ok(relError(host, reference) < 1e-6, `host conv2dWinograd: ${relError(host, reference)} (seed ${SEED})`);
  const res = await compile(buildGraph(l, data), {}, { target: "wasm-simd" });
  assert.ok(res.graph.nodes.some((n) => n.op === "conv2dWinograd"), "wasm-simd chooses Winograd");
  const out = Object.values((await loadBlob(res.wasm)).run({ x }))[0] as Float32Array;
  const err = relError(out, reference);
  assert.ok(err <= WINOGRAD_TOL, `wasm-simd ${JSON.stringify(l)}: relative error ${err} (seed ${SEED})`);
  return err;
}

describe(`conv2d through Winograd F(2x2, 3x3) (seed ${SEED})`, () => {
  const errors: number[] = [];

  test("ResNet-8's layers: 16, 32, 64 channels on 32x32, 16x16, 8x8, bias + relu and bias + residual + relu", async () => {
    for (const [C, H] of [[16, 32], [32, 16], [64, 8]]) {
      errors.push(await checkLayer({ C, K: C, H, W: H, pad: 1, act: "relu" }));
      errors.push(await checkLayer({ C, K: C, H, W: H, pad: 1, act: "relu", residual: true }));
    }
  });

  test("ragged last tiles: odd and small planes (output 8..17 wide, the tiles' 1..9 columns past 8), padding 0 and 1", async () => {
    for (const OW of [8, 9, 10, 11, 12, 13, 14, 15, 17]) {
      const pad = randInt(0, 1);
      const OH = randInt(8, 17);
      errors.push(await checkLayer({ C: 16, K: 16, H: OH + 2 - 2 * pad, W: OW + 2 - 2 * pad, pad }));
    }
  });

  test("channels not a multiple of 4, no bias, padding 2 and asymmetric, batch 2, every activation kind", async () => {
    errors.push(await checkLayer({ C: 17, K: 19, H: 9, W: 11, pad: 1, bias: false }));
    // padding 2, and asymmetric padding (TensorFlow's SAME on even sizes pads after more than before)
    errors.push(await checkLayer({ C: 16, K: 16, H: 8, W: 9, pad: 2, act: "relu" }));
    errors.push(await checkLayer({ C: 18, K: 16, H: 10, W: 9, pad: 0, pads: [0, 1, 2, 1], residual: true }));
    errors.push(await checkLayer({ C: 23, K: 18, H: 13, W: 10, pad: 0, N: 2, residual: true }));
    for (const act of ["clamp", "leakyRelu", "sigmoid", "hardswish", "gelu"] as const) {
      errors.push(await checkLayer({ C: randInt(16, 21), K: randInt(16, 21), H: randInt(8, 12), W: randInt(8, 12), pad: 1, act, residual: rng.next() < 0.5 }));
    }
  });

  test("random layers, several blocks of tiles", async () => {
    for (let i = 0; i < 4; i++) {
      const pad = randInt(0, 1);
      errors.push(await checkLayer({ C: randInt(16, 40), K: randInt(16, 40), H: randInt(8, 40) + 2 - 2 * pad, W: randInt(8, 40) + 2 - 2 * pad, pad, act: "relu", residual: rng.next() < 0.5 }));
    }
    console.log(`Winograd max |err| / max |y| over ${errors.length} layers: ${Math.max(...errors).toExponential(2)} (seed ${SEED})`);
  });

  test("scalar targets, fewer than 16 channels, stride 2 and depthwise layers keep their kernels", () => {
    const conv = (C: number, K: number, H: number, stride = 1, groups = 1) => {
      const g = new Graph(inferTypes);
      const x = g.addInput("x", { shape: [1, C, H, H], dtype: "float32" });
      const w = g.addConstant({ shape: [K, C / groups, 3, 3], dtype: "float32", data: floats(K * (C / groups) * 9) }, "w", "weight");
      g.outputs = g.addNode("conv2d", [x, w], { stride: [stride, stride], pads: [1, 1, 1, 1], dilation: [1, 1], groups }).outputs;
      return g;
    };
    assert.ok(winogradFits(conv(16, 16, 8).nodes[0]));
    for (const g of [conv(8, 16, 32), conv(16, 8, 32), conv(16, 16, 6), conv(16, 32, 16, 2), conv(16, 16, 16, 1, 16)]) {
      assert.ok(!winogradFits(g.nodes[0]), g.toString());
    }
    const scalar = conv(16, 16, 8);
    optimize(scalar, { simd: false });
    assert.deepEqual(scalar.nodes.map((n) => n.op), ["conv2d"]);
  });
});
