import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, Tensor } from "../compiler/index.js";
import type { Attrs, HostTensor } from "../compiler/ir/graph.js";
import { packDepthwiseChannels, packPointwiseChannels, requantTable } from "../compiler/ops/quant.js";
import { apply } from "../compiler/tensor/tensor.js";
import { checkCompiled, FnModule, rng, SEED } from "./helpers/compiled.js";

/**
 * The channel-vectorised int8 depthwise kernel (runtime-as/qdepthwise.ts), SIMD and scalar builds, against qconv2d's
 * reference (TFLite's integer depthwise convolution) on fresh random data: outputs must be identical. Planes of 1 to 9
 * pixels a side and wider ones (the SIMD gather's 8-pixel chunks and their tails), channel counts that are not
 * multiples of 4 or 8, strides 1 and 2, padding on any side, dilation, batches, both tie rules.
 */

const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));
const int8s = (shape: number[], lo = -128, hi = 127) => Tensor.from(Int8Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => int(lo, hi)), { shape, dtype: "int8" });
const tensorOf = (t: HostTensor) => Tensor.from(t.data as Int32Array, { shape: t.shape, dtype: t.dtype as "int32" });

interface Case { N: number; C: number; H: number; W: number; K: number[]; stride: number[]; pads: number[]; dilation: number[]; bandRows?: number }
const outRows = (c: Case) => Math.floor((c.H + c.pads[0] + c.pads[2] - c.dilation[0] * (c.K[0] - 1) - 1) / c.stride[0]) + 1;
const CASES: Case[] = [
  { N: 1, C: 13, H: 3, W: 3, K: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1] },
  { N: 1, C: 20, H: 6, W: 6, K: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1] },
  { N: 2, C: 5, H: 1, W: 1, K: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1] },
  { N: 1, C: 17, H: 9, W: 7, K: [3, 3], stride: [2, 2], pads: [0, 0, 1, 1], dilation: [1, 1] },
  { N: 1, C: 3, H: 2, W: 5, K: [2, 3], stride: [1, 2], pads: [1, 0, 0, 2], dilation: [1, 1] },
  { N: 1, C: 9, H: 8, W: 4, K: [3, 3], stride: [1, 1], pads: [2, 2, 2, 2], dilation: [2, 2] },
  { N: 1, C: 11, H: 25, W: 5, K: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1] },
  { N: 2, C: 8, H: 5, W: 19, K: [5, 5], stride: [2, 2], pads: [2, 2, 2, 2], dilation: [1, 1] },
  { N: 1, C: 1, H: 7, W: 9, K: [1, 1], stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1] },
  { N: 1, C: 6, H: 4, W: 11, K: [3, 1], stride: [2, 1], pads: [0, 1, 2, 0], dilation: [1, 1] },
  // in bands of output rows (another output shape): bands of 2 of 9 rows, of 1, and of 3 of 4 with dilation
  { N: 2, C: 10, H: 17, W: 13, K: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1], dilation: [1, 1], bandRows: 2 },
  { N: 1, C: 3, H: 6, W: 9, K: [3, 3], stride: [1, 1], pads: [0, 1, 0, 1], dilation: [1, 1], bandRows: 1 },
  { N: 1, C: 12, H: 9, W: 8, K: [3, 2], stride: [2, 1], pads: [2, 0, 1, 1], dilation: [2, 1], bandRows: 3 },
];

/**
 * per-channel multipliers: most of them keeping the outputs inside int8 (near `typical`, so the rounding's ties occur),
 * every fourth anywhere from a right shift of 22 (the lane table's largest) to none, every tenth a dead channel's
 * (right shifts of 26 to 31: outputs always the zero point, as TFLite's converter leaves them)
 */
function multipliers(n: number, typical: number): HostTensor {
  return requantTable(Array.from({ length: n }, () => {
    const u = rng.next();
    return u < 0.1 ? 2 ** -32 * 64 ** rng.next() : u < 0.35 ? 1.2e-7 * (0.9 / 1.2e-7) ** rng.next() : typical * 4 ** rng.next();
  }), "test");
}
function activation(k: number): Attrs {
  const lo = int(-128, -20);
  return { inZp: int(-128, 127), rounding: k % 2 ? "up" : "away", outZp: int(-30, 30), actMin: lo, actMax: int(lo + 40, 127) };
}

function depthwise(c: Case, k: number) {
  const w = int8s([c.C, 1, ...c.K], -127, 127);
  const bias = Tensor.from(Int32Array.from({ length: c.C }, () => int(-5000, 5000)), { shape: [c.C], dtype: "int32" });
  const rqHost = multipliers(c.C, 0.0015), rq = tensorOf(rqHost);
  const attrs: Attrs = { stride: c.stride, pads: c.pads, dilation: c.dilation, groups: c.C, ...activation(k) };
  const packed = packDepthwiseChannels(w.host(), bias.host(), rqHost, attrs.inZp as number);
  const channels = (x: Tensor) => apply("qdepthwiseChannels", [x, tensorOf(packed.w), tensorOf(packed.bias), rq, tensorOf(packed.lanes)], { ...attrs, kernel: c.K, laneShift: packed.laneShift, bandRows: c.bandRows ?? outRows(c) });
  return { conv: (x: Tensor) => apply("qconv2d", [x, w, bias, rq], attrs), channels };
}

describe(`qdepthwiseChannels against qconv2d's reference (seed ${SEED})`, () => {
  const inputs: Record<string, Tensor> = {};
  const kernels = CASES.map((c, k) => {
    inputs[`x${k}`] = int8s([c.N, c.C, c.H, c.W]);
    return depthwise(c, k);
  });

  test("the packed op's reference is qconv2d's", () => {
    kernels.forEach((f, k) => assert.deepEqual(Array.from(f.channels(inputs[`x${k}`]).data as Int8Array), Array.from(f.conv(inputs[`x${k}`]).data as Int8Array), `case ${k}`));
  });

  test("the kernel, SIMD and scalar builds, in place (stride 1) and not", async () => {
    await checkCompiled((...xs) => Object.fromEntries(xs.map((x, k) => [`y${k}`, kernels[k].channels(x)])), inputs);
  });

  test("ties of the lane requantization: away from zero or up, as TFLite's two kernels round them (hand-computed)", async () => {
    // a 1x1 depthwise of weight 5 on 9 channels, M = 2035274920·2^(−8−31): 5·(−27) = −135 gives the high multiply
    // −128 = −0.5·2^8, a tie: −1 away from zero, 0 up; 5·27 = 135 gives +1 either way, ±130 0 and ±140 ±1
    const C = 9;
    const rq: HostTensor = { shape: [C, 2], dtype: "int32", data: Int32Array.from({ length: 2 * C }, (_, i) => (i % 2 ? -8 : 2035274920)) };
    const packed = packDepthwiseChannels({ shape: [C, 1, 1, 1], dtype: "int8", data: new Int8Array(C).fill(5) }, { shape: [C], dtype: "int32", data: new Int32Array(C) }, rq, 0);
    const conv = (rounding: string) => (x: Tensor) => apply("qdepthwiseChannels", [x, tensorOf(packed.w), tensorOf(packed.bias), tensorOf(rq), tensorOf(packed.lanes)], {
      stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1], groups: C, inZp: 0, outZp: 0, actMin: -128, actMax: 127, rounding, kernel: [1, 1], laneShift: packed.laneShift, bandRows: 1,
    });
    const x = Tensor.from(Int8Array.of(-27, 27, -26, 26, -28, 28, 0, -1, -27), { shape: [1, C, 1, 1], dtype: "int8" });
    assert.deepEqual(Array.from(conv("away")(x).data as Int8Array), [-1, 1, 0, 0, -1, 1, 0, 0, -1]);
    assert.deepEqual(Array.from(conv("up")(x).data as Int8Array), [0, 1, 0, 0, -1, 1, 0, 0, 0]);
    await checkCompiled((t) => ({ away: conv("away")(t), up: conv("up")(t) }), { x });
  });

  test("wasm-simd lowers depthwise qconv2d on small planes to it, wasm-scalar and wamr-flash keep qconv2d", async () => {
    const specs = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype }]));
    const fn = new FnModule((...xs) => Object.fromEntries(xs.map((x, k) => [`y${k}`, kernels[k].conv(x)])));
    const counts = await Promise.all(["wasm-simd", "wasm-scalar", "wamr-flash"].map(async (target) => (await compile(fn, specs, { target })).graph.nodes.filter((n) => n.op === "qdepthwiseChannels").length));
    assert.deepEqual(counts, [CASES.length, 0, 0]);
    // VWW's 48x48x16 at stride 2: a plane over the scratch budget, so in bands
    const big = depthwise({ N: 1, C: 16, H: 48, W: 48, K: [3, 3], stride: [2, 2], pads: [0, 0, 1, 1], dilation: [1, 1] }, 0).conv;
    const x = int8s([1, 16, 48, 48]);
    const [lowered] = await checkCompiled((t) => big(t), { x }, { targets: ["wasm-simd"] });
    const node = lowered.graph.nodes.find((n) => n.op === "qdepthwiseChannels");
    assert.ok(node && (node.attrs.bandRows as number) < 24, `bands: ${String(node?.attrs.bandRows)}`);
    await checkCompiled((...xs) => Object.fromEntries(xs.map((x, k) => [`y${k}`, kernels[k].conv(x)])), inputs, { targets: ["wasm-simd"] });
  });
});

/** 1x1 convolutions on planes of 1 to 12 pixels: odd input channel counts, output channels not a multiple of 4 or 8, batches. */
const POINTWISE = [
  { N: 1, C: 13, OC: 17, H: 3, W: 3 },
  { N: 2, C: 20, OC: 5, H: 1, W: 1 },
  { N: 1, C: 1, OC: 9, H: 2, W: 5 },
  { N: 1, C: 7, OC: 12, H: 1, W: 7 },
  { N: 1, C: 64, OC: 8, H: 3, W: 4 },
  { N: 2, C: 3, OC: 3, H: 2, W: 3 },
  { N: 1, C: 33, OC: 21, H: 3, W: 4 },
  { N: 1, C: 5, OC: 6, H: 2, W: 2 },
];

describe(`qpointwiseChannels against qconv2d's reference (seed ${SEED})`, () => {
  const inputs: Record<string, Tensor> = {};
  const kernels = POINTWISE.map((c, k) => {
    inputs[`x${k}`] = int8s([c.N, c.C, c.H, c.W]);
    const w = int8s([c.OC, c.C, 1, 1], -127, 127);
    const bias = Tensor.from(Int32Array.from({ length: c.OC }, () => int(-5000, 5000)), { shape: [c.OC], dtype: "int32" });
    // the last case with multipliers above 1 (left shifts), which qcommon's requantization takes
    const rq = tensorOf(k === POINTWISE.length - 1 ? requantTable(Array.from({ length: c.OC }, () => 1.1 + rng.next()), "test") : multipliers(c.OC, 0.003 / Math.sqrt(c.C)));
    const attrs: Attrs = { stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1], groups: 1, ...activation(k) };
    const packed = packPointwiseChannels(w.host(), bias.host(), attrs.inZp as number);
    return {
      conv: (x: Tensor) => apply("qconv2d", [x, w, bias, rq], attrs),
      channels: (x: Tensor) => apply("qpointwiseChannels", [x, tensorOf(packed.w), tensorOf(packed.bias), rq], attrs),
    };
  });

  test("the packed op's reference is qconv2d's", () => {
    kernels.forEach((f, k) => assert.deepEqual(Array.from(f.channels(inputs[`x${k}`]).data as Int8Array), Array.from(f.conv(inputs[`x${k}`]).data as Int8Array), `case ${k}`));
  });

  test("the kernel, SIMD and scalar builds", async () => {
    await checkCompiled((...xs) => Object.fromEntries(xs.map((x, k) => [`y${k}`, kernels[k].channels(x)])), inputs);
  });

  test("wasm-simd lowers 1x1 qconv2d on planes of up to 12 pixels to it, wasm-scalar keeps the packed kernel", async () => {
    const specs = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype }]));
    const fn = new FnModule((...xs) => Object.fromEntries(xs.map((x, k) => [`y${k}`, kernels[k].conv(x)])));
    const counts = await Promise.all(["wasm-simd", "wasm-scalar"].map(async (target) => (await compile(fn, specs, { target })).graph.nodes.filter((n) => n.op === "qpointwiseChannels").length));
    assert.deepEqual(counts, [POINTWISE.length, 0]);
    await checkCompiled((...xs) => Object.fromEntries(xs.map((x, k) => [`y${k}`, kernels[k].conv(x)])), inputs, { targets: ["wasm-simd"] });
  });
});
