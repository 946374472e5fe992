import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Tensor } from "../compiler/index.js";
import type { Attrs } from "../compiler/ir/graph.js";
import { addParameters, lookupTable, meanParameters, multiplyByQuantizedMultiplier, quantizeMultiplier, requantTable, sigmoidF32, softmaxTable } from "../compiler/ops/quant.js";
import { apply } from "../compiler/tensor/tensor.js";
import { checkCompiled, rng, SEED, TARGET_NAMES } from "./helpers/compiled.js";

/**
 * The int8 kernels (runtime-as/q*.ts), SIMD and scalar builds (and wamr-flash's compact convolutions), against the registry's JS references (TFLite's
 * integer algorithms) on fresh random data: outputs must be identical. Sizes are odd on purpose (SIMD tails,
 * borders); the MLPerf Tiny tests check the references against TFLite itself.
 */

/** the SIMD and scalar builds, and wamr-flash's compact scalar kernels (what the microcontroller firmware runs) */
const COMPACT = { targets: [...TARGET_NAMES, "wamr-flash"] };
const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));
const int8s = (shape: number[], lo = -128, hi = 127) => Tensor.from(Int8Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => int(lo, hi)), { shape, dtype: "int8" });
const int32s = (n: number, lo: number, hi: number) => Tensor.from(Int32Array.from({ length: n }, () => int(lo, hi)), { shape: [n], dtype: "int32" });
/** per-channel multipliers as TFLite convolutions have them (input·filter / output scale, well below 1) */
const requant = (n: number, lo = 1e-4, hi = 0.05) => {
  const t = requantTable(Array.from({ length: n }, () => lo * (hi / lo) ** rng.next()), "test");
  return Tensor.from(t.data, { shape: t.shape, dtype: "int32" });
};
const activation = (): Attrs => {
  const lo = int(-128, -20);
  return { outZp: int(-30, 30), actMin: lo, actMax: int(lo + 40, 127) };
};

describe(`TFLite fixed-point requantization (hand-computed)`, () => {
  test("QuantizeMultiplier and MultiplyByQuantizedMultiplier's double rounding", () => {
    assert.deepEqual(quantizeMultiplier(0.25), { q: 2 ** 30, shift: -1 });
    assert.deepEqual(quantizeMultiplier(1.5), { q: 3 * 2 ** 29, shift: 1 });
    // 3·0.5 = 1.5 → 2, −3·0.5 = −1.5 → −1 (the high multiply's nudge rounds ties up)
    assert.equal(multiplyByQuantizedMultiplier(3, 2 ** 30, 0), 2);
    assert.equal(multiplyByQuantizedMultiplier(-3, 2 ** 30, 0), -1);
    // 5·0.25 = 1.25: the high multiply gives 3 (2.5 up), the shift 1.5 → 2
    assert.equal(multiplyByQuantizedMultiplier(5, 2 ** 30, -1), 2);
    assert.equal(multiplyByQuantizedMultiplier(-5, 2 ** 30, -1), -1);
    // 7·1.5 = 10.5 → 11; the saturating case
    assert.equal(multiplyByQuantizedMultiplier(7, 3 * 2 ** 29, 1), 11);
    assert.equal(multiplyByQuantizedMultiplier(-(2 ** 31), -(2 ** 31), 0), 2 ** 31 - 1);
    // −6283·M(1137482404, −9): the high multiply gives −3328 = −6.5·2^9, a tie: away from zero −7, ruy's shift −6
    assert.equal(multiplyByQuantizedMultiplier(-6283, 1137482404, -9), -7);
    assert.equal(multiplyByQuantizedMultiplier(-6283, 1137482404, -9, "up"), -6);
    assert.equal(multiplyByQuantizedMultiplier(5, 2 ** 30, -1, "up"), 2);
  });
});

describe(`int8 kernels against their references (seed ${SEED})`, () => {
  test("qconv2d: im2col tiles (strided, dilated, grouped), direct, depthwise and pointwise", async () => {
    // im2col: cases 0-2 (4+ output channels per group, a window of at most 128 taps); direct: 3 (180 taps), 7;
    // depthwise planes (direct in the scalar build): 4-6, 3x3 (its own tiles) plain and dilated, 2x3, 9 (3x3 on a 2x2 plane)
    const cases = [
      { C: 3, OC: 5, H: 11, W: 19, K: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 1 },
      { C: 2, OC: 6, H: 13, W: 9, K: [10, 4], stride: [2, 2], pads: [4, 1, 5, 2], dilation: [1, 1], groups: 1 },
      { C: 4, OC: 8, H: 9, W: 21, K: [3, 2], stride: [1, 1], pads: [2, 0, 1, 1], dilation: [2, 3], groups: 2 },
      { C: 20, OC: 4, H: 6, W: 19, K: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 1 },
      { C: 7, OC: 7, H: 25, W: 5, K: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 7 },
      { C: 3, OC: 3, H: 14, W: 11, K: [3, 3], stride: [1, 1], pads: [3, 0, 1, 2], dilation: [2, 1], groups: 3 },
      { C: 4, OC: 4, H: 10, W: 6, K: [2, 3], stride: [1, 1], pads: [1, 1, 0, 1], dilation: [1, 1], groups: 4 },
      { C: 5, OC: 10, H: 12, W: 17, K: [3, 3], stride: [2, 2], pads: [0, 0, 1, 1], dilation: [1, 1], groups: 5 },
      { C: 9, OC: 7, H: 5, W: 7, K: [1, 1], stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1], groups: 1 },
      // 3x3 depthwise on a plane narrower than the window, rows and columns with no tap inside the input
      { C: 2, OC: 2, H: 2, W: 2, K: [3, 3], stride: [1, 1], pads: [3, 2, 1, 3], dilation: [1, 1], groups: 2 },
    ];
    const inputs: Record<string, Tensor> = {};
    const convs: ((x: Tensor) => Tensor)[] = [];
    cases.forEach((c, k) => {
      inputs[`x${k}`] = int8s([k === 0 ? 2 : 1, c.C, c.H, c.W]);
      const w = int8s([c.OC, c.C / c.groups, ...c.K], -127, 127);
      const bias = int32s(c.OC, -5000, 5000), rq = requant(c.OC);
      const attrs = { stride: c.stride, pads: c.pads, dilation: c.dilation, groups: c.groups, inZp: int(-128, 127), rounding: k % 2 ? "up" : "away", ...activation() };
      convs.push((x) => apply("qconv2d", [x, w, bias, rq], attrs));
    });
    await checkCompiled((...xs) => Object.fromEntries(xs.map((x, k) => [`y${k}`, convs[k](x)])), inputs, COMPACT);
  });

  test("qconv2d on packed weights (groups 1): odd and tail channel counts, row tails, stride 2, dilation, padding, batches, im2col", async () => {
    // every case runs on qconv2dPacked (asserted below): tiles of 4 output channels (OC 5, 7, 9: tails), input
    // channel pairs (C 3, 5, 7, 1: odd), 8-pixel rows (OW 9, 11, 13: overlapping tails; 1x1 stride 1: the plane
    // as one row), stride 2 (16-byte loads), padding on every side (clamped loads at the buffer's two ends)
    const cases = [
      { N: 1, C: 3, OC: 5, H: 12, W: 9, K: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1] },
      { N: 2, C: 5, OC: 9, H: 9, W: 20, K: [3, 3], stride: [2, 2], pads: [0, 0, 1, 1], dilation: [1, 1] },
      { N: 1, C: 7, OC: 4, H: 10, W: 11, K: [3, 2], stride: [1, 1], pads: [2, 1, 2, 2], dilation: [2, 2] },
      { N: 1, C: 6, OC: 7, H: 5, W: 3, K: [1, 1], stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1] },
      { N: 1, C: 4, OC: 8, H: 9, W: 27, K: [1, 1], stride: [2, 2], pads: [0, 0, 0, 0], dilation: [1, 1] },
      { N: 1, C: 1, OC: 6, H: 6, W: 16, K: [2, 5], stride: [1, 2], pads: [1, 2, 0, 2], dilation: [1, 1] },
      { N: 1, C: 2, OC: 3, H: 3, W: 8, K: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1] },
      // rows under 8 outputs or stride 3: im2col tiles on the weights packed over the taps (KWS's first layer)
      { N: 1, C: 1, OC: 6, H: 21, W: 10, K: [10, 4], stride: [2, 2], pads: [4, 1, 5, 1], dilation: [1, 1] },
      { N: 2, C: 3, OC: 5, H: 11, W: 12, K: [3, 3], stride: [3, 3], pads: [1, 1, 1, 1], dilation: [1, 1] },
    ];
    const inputs: Record<string, Tensor> = {};
    const convs: ((x: Tensor) => Tensor)[] = [];
    cases.forEach((c, k) => {
      inputs[`x${k}`] = int8s([c.N, c.C, c.H, c.W]);
      const w = int8s([c.OC, c.C, ...c.K], -127, 127);
      const bias = int32s(c.OC, -5000, 5000), rq = requant(c.OC);
      const attrs = { stride: c.stride, pads: c.pads, dilation: c.dilation, groups: 1, inZp: int(-128, 127), rounding: k % 2 ? "up" : "away", ...activation() };
      convs.push((x) => apply("qconv2d", [x, w, bias, rq], attrs));
    });
    const results = await checkCompiled((...xs) => Object.fromEntries(xs.map((x, k) => [`y${k}`, convs[k](x)])), inputs, COMPACT);
    for (const r of results) assert.equal(r.graph.nodes.filter((n) => n.op === "qconv2dPacked").length, r.report.target === "wamr-flash" ? 0 : cases.length, r.report.target);
  });

  test("qconv2d depthwise at stride 2 across: row tiles (MobileNet's downsampling), row tails, padding, dilation, batches", async () => {
    const cases = [
      { N: 1, C: 3, H: 17, W: 20, K: [3, 3], stride: [2, 2], pads: [0, 0, 1, 1], dilation: [1, 1] },
      { N: 2, C: 2, H: 9, W: 16, K: [3, 2], stride: [1, 2], pads: [1, 1, 1, 0], dilation: [2, 1] },
      { N: 1, C: 4, H: 8, W: 17, K: [5, 5], stride: [2, 2], pads: [2, 2, 2, 2], dilation: [1, 1] },
    ];
    const inputs: Record<string, Tensor> = {};
    const convs: ((x: Tensor) => Tensor)[] = [];
    cases.forEach((c, k) => {
      inputs[`x${k}`] = int8s([c.N, c.C, c.H, c.W]);
      const w = int8s([c.C, 1, ...c.K], -127, 127), bias = int32s(c.C, -5000, 5000), rq = requant(c.C);
      const attrs = { stride: c.stride, pads: c.pads, dilation: c.dilation, groups: c.C, inZp: int(-128, 127), rounding: k % 2 ? "up" : "away", ...activation() };
      convs.push((x) => apply("qconv2d", [x, w, bias, rq], attrs));
    });
    await checkCompiled((...xs) => Object.fromEntries(xs.map((x, k) => [`y${k}`, convs[k](x)])), inputs, COMPACT);
  });

  test("qconv2d's vector requantization rounds a product just below zero as a negative one (hand-computed)", async () => {
    // four channels (the pointwise kernel's vector tile), accumulators 5·x against M = 2035274920·2^(−8−31): 5·(−27) = −135 gives the high multiply −128 = −0.5·2^8,
    // a tie, so −1 away from zero (the shift's nudge must not flip the sign first) and 0 up; 5·27 = 135 gives +1
    const x = [-27, 27, -26, 26, -28, 28, 0, -1, 1, -27, 27, -128, 127, -54, 54, -27];
    const conv = (rounding: string) => (t: Tensor) => apply("qconv2d", [t, Tensor.from(Int8Array.of(5, 5, 5, 5), { shape: [4, 1, 1, 1], dtype: "int8" }), Tensor.from(Int32Array.of(0, 0, 0, 0), { shape: [4], dtype: "int32" }), Tensor.from(Int32Array.from({ length: 8 }, (_, i) => (i % 2 ? -8 : 2035274920)), { shape: [4, 2], dtype: "int32" })], {
      stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1], groups: 1, inZp: 0, outZp: 0, actMin: -128, actMax: 127, rounding,
    });
    const input = { x: Tensor.from(Int8Array.from(x), { shape: [1, 1, 1, 16], dtype: "int8" }) };
    assert.deepEqual(Array.from(conv("away")(input.x).data as Int8Array).slice(0, 2), [-1, 1]);
    assert.deepEqual(Array.from(conv("up")(input.x).data as Int8Array).slice(0, 2), [0, 1]);
    await checkCompiled((t) => ({ away: conv("away")(t), up: conv("up")(t) }), input, COMPACT);
  });

  test("qfullyConnected: tails of the 4-unit and 8-input tiles, multipliers above 1", async () => {
    const fcs = [[3, 37, 11], [1, 640, 128], [2, 5, 3]].map(([M, K, N], k) => {
      const w = int8s([N, K], -127, 127), bias = int32s(N, -20000, 20000);
      const rq = k === 2 ? requant(N, 1.2, 3) : requant(N, 1e-4, 0.02);
      const attrs = { inZp: int(-128, 127), rounding: k === 1 ? "away" : "up", ...activation() };
      return { x: int8s([M, K]), f: (x: Tensor) => apply("qfullyConnected", [x, w, bias, rq], attrs) };
    });
    await checkCompiled((a, b, c) => ({ a: fcs[0].f(a), b: fcs[1].f(b), c: fcs[2].f(c) }), { a: fcs[0].x, b: fcs[1].x, c: fcs[2].x }, COMPACT);
  });

  test("qavgpool2d and qmaxpool2d: global, strided, padded (cells outside the input not counted)", async () => {
    const pools = [
      { kernel: [25, 5], stride: [1, 1], pads: [0, 0, 0, 0] },
      { kernel: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1] },
      { kernel: [2, 3], stride: [1, 2], pads: [0, 1, 1, 0] },
    ].map((p) => ({ ...p, actMin: int(-128, -60), actMax: int(60, 127) }));
    await checkCompiled((x) => Object.fromEntries(pools.flatMap((p, k) => [
      [`avg${k}`, apply("qavgpool2d", [x], p)], [`max${k}`, apply("qmaxpool2d", [x], p)],
    ])), { x: int8s([1, 3, 25, 5]) });
  });

  test("qadd, qmul, qsoftmax, qlookup, qmean, quantize and dequantize", async () => {
    const add = { aZp: int(-128, 127), bZp: int(-128, 127), ...addParameters(0.02 + rng.next() * 0.1, 0.01 + rng.next() * 0.2, 0.05 + rng.next() * 0.2), ...activation() };
    const product = quantizeMultiplier(1e-4 + rng.next() * 0.01);
    const mul = { aZp: int(-128, 127), bZp: int(-128, 127), multiplier: product.q, shift: product.shift, ...activation() };
    const table = Tensor.from(softmaxTable(0.1 + rng.next() * 0.3, 1).data, { shape: [256] });
    const sigmoid = Tensor.from(lookupTable(0.02 + rng.next() * 0.1, int(-20, 20), 1 / 256, -128, sigmoidF32).data, { shape: [256], dtype: "int8" });
    const grid = { scale: 0.01 + rng.next() * 0.1, zeroPoint: int(-20, 20) };
    const spatial = meanParameters(0.05, int(-128, 127), 0.02, int(-20, 20), 39);
    const columns = meanParameters(0.05, int(-128, 127), 0.03, int(-20, 20), 13);
    await checkCompiled((a, b, row, f) => ({
      sum: apply("qadd", [a, b], add),
      product: apply("qmul", [a, b], mul),
      rowProduct: apply("qmul", [a, row], mul),
      probabilities: apply("qsoftmax", [a, table], { outScale: 1 / 256, outZp: -128 }),
      sigmoid: apply("qlookup", [a, sigmoid], {}),
      spatialMean: apply("qmean", [a.reshape([1, 3, 13, 1])], { axes: [1, 2], keepdim: false, ...spatial }),
      columnMean: apply("qmean", [b], { axes: [1], keepdim: false, ...columns }),
      quantized: apply("quantize", [f], grid),
      dequantized: apply("dequantize", [a], grid),
    }), { a: int8s([3, 13]), b: int8s([3, 13]), row: int8s([13]), f: Tensor.from(Float32Array.from({ length: 29 }, () => (rng.next() - 0.5) * 4)) });
  });
});
