import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { losses, nn, Tensor } from "../compiler/index.js";
import { compileTraining, loadTrainingBlob } from "../compiler/training/index.js";
import { allOps } from "../compiler/ops/index.js";
import { apply } from "../compiler/tensor/tensor.js";
import { checkCompiled, coveredOps, rand, randn, relError, SEED, TARGET_NAMES } from "./helpers/compiled.js";
// registry ops with their own test file: loaded here too, so the coverage check at the end sees their tests
import "./indexing.test.js";
import "./qkernels.test.js";
import "./qdepthwise.test.js";

/**
 * Every registry op, compiled for the SIMD and the scalar target, run in Node and compared with eager
 * mode (the host reference) on fresh random inputs. Sizes are odd on purpose: SIMD tails.
 */

describe(`element-wise ops (seed ${SEED})`, () => {
  test("binary arithmetic with broadcasting", async () => {
    await checkCompiled((a, b, c) => ({
      add: a.add(b), sub: a.sub(c), mul: a.mul(b), div: a.div(c.abs().add(0.5)),
      maximum: a.maximum(b), minimum: a.minimum(c), pow: c.abs().add(0.1).pow(a.clamp(-2, 2)),
    }), { a: randn(3, 7), b: randn(7), c: randn(3, 1) });
  });
  test("unary math", async () => {
    await checkCompiled((x) => ({
      neg: x.neg(), abs: x.abs(), sqrt: x.abs().sqrt(), reciprocal: x.abs().add(0.25).reciprocal(), exp: x.exp(),
      log: x.abs().add(0.01).log(), erf: x.erf(), sin: x.sin(), cos: x.cos(), floor: x.mul(3).floor(),
      ceil: x.mul(3).ceil(), round: x.mul(3).round(), sign: x.sign(), softplus: x.mul(10).softplus(),
    }), { x: randn(5, 9) });
  });
  test("activations", async () => {
    await checkCompiled((x) => ({
      relu: x.relu(), relu6: x.mul(4).relu6(), leaky: x.leakyRelu(0.2), sigmoid: x.mul(4).sigmoid(), tanh: x.mul(3).tanh(),
      gelu: x.mul(2).gelu(), silu: x.mul(3).silu(), hardswish: x.mul(4).hardswish(), hardsigmoid: x.mul(4).hardsigmoid(), elu: x.elu(0.7),
    }), { x: randn(2, 3, 11) });
  });
  test("comparisons and where", async () => {
    await checkCompiled((a, b) => ({
      eq: a.round().eq(b.round()), ne: a.round().ne(b.round()), lt: a.lt(b), le: a.le(b), gt: a.gt(b), ge: a.ge(b),
      where: Tensor.where(a.gt(b), a, b.mul(2)),
    }), { a: randn(13), b: randn(13) });
  });
  test("inverse and hyperbolic trigonometry, mod, fmod, casts", async () => {
    const op = (name: string, x: Tensor, attrs = {}) => apply(name, [x], attrs);
    await checkCompiled((x, y) => ({
      tan: op("tan", x.mul(0.5)), atan: op("atan", x), sinh: op("sinh", x), cosh: op("cosh", x), asinh: op("asinh", x),
      asin: op("asin", x.tanh()), acos: op("acos", x.tanh()), atanh: op("atanh", x.tanh().mul(0.9)), acosh: op("acosh", x.abs().add(1)),
      mod: apply("mod", [x.mul(5), y], { fmod: false }), fmod: apply("mod", [x.mul(5), y], { fmod: true }),
      toInt: op("cast", x.mul(10), { to: "int32" }), toUint8: op("cast", x.abs().mul(10), { to: "uint8" }), toBool: op("cast", x.round(), { to: "bool" }),
    }), { x: randn(5, 9), y: randn(9).abs().add(0.5) });
  });
  // values inside every format's range (relError cannot compare infinities); the overflow rules are checked against onnx.reference in onnx-ops
  test("float16 and narrow float roundings (float8 grids, subnormals, e8m0), copy", async () => {
    const round = (x: Tensor, attrs: Record<string, number>) => apply("roundToFloat", [x], attrs);
    await checkCompiled((x) => ({
      half: apply("floatToHalf", [x], {}), halfBack: apply("halfToFloat", [apply("floatToHalf", [x], {})], {}),
      e4m3fn: round(x, { mantissa: 3, minExponent: -6, max: 448, overflow: 0, flags: 0 }),
      e4m3fnuz: round(x, { mantissa: 3, minExponent: -7, max: 240, overflow: 0, flags: 1 }),
      e5m2: round(x, { mantissa: 2, minExponent: -14, max: 57344, overflow: 1, flags: 0 }),
      e8m0Nearest: apply("roundToE8m0", [x], { mode: 2, saturate: 1 }), e8m0Up: apply("roundToE8m0", [x], { mode: 0, saturate: 0 }),
      copied: apply("copy", [x], {}),
    }), { x: Tensor.cat([randn(40).mul(300), randn(40).mul(1e-3), randn(40).mul(1e4)]) }, { tol: 0 });
  });
  for (const dtype of ["int8", "uint8", "int16", "int32", "int64", "float64"] as const) {
    test(`${dtype}: arithmetic, comparisons, where, reductions, pad and casts compile as generated loops`, async () => {
      const ints = (shape: number[], lo: number, hi: number) => apply("cast", [rand(shape, lo, hi).floor()], { to: dtype });
      const signed = dtype !== "uint8";
      // divisors kept >= 1: a zero divisor makes run() return status 5 (test/bad-input.test.ts)
      await checkCompiled((a, b) => ({
        add: a.add(b), sub: a.sub(b), mul: a.mul(b), div: a.div(b), max: a.maximum(b), min: a.minimum(b), abs: a.abs(), neg: a.neg(),
        mod: apply("mod", [a, b], { fmod: false }), fmod: apply("mod", [a, b], { fmod: true }), sign: a.sign(),
        lt: a.lt(b), eq: a.eq(b), where: Tensor.where(a.gt(b), a, b),
        sum: a.sum(1), rowMax: a.max(0, true), negativeMax: a.abs().add(1).neg().max(1), prod: b.prod(0), padded: a.pad([2, 1], 7),
        toFloat: apply("cast", [a], { to: "float32" }), toBool: apply("cast", [a], { to: "bool" }),
      }), { a: ints([3, 7], signed ? -20 : 0, 20), b: ints([7], 1, 4) });
    });
  }
  test("bitwise ops, unsigned shifts past the width, and bitcasts on 8-, 32- and 64-bit types", async () => {
    const ints = (shape: number[], lo: number, hi: number, dtype: "int8" | "uint8" | "uint32" | "uint64") => apply("cast", [rand(shape, lo, hi).floor()], { to: dtype });
    // one fused chain per dtype keeps the loops few (a compile costs seconds); uint64 results stay below 2^53,
    // where the host reference (through Number) is exact, so no bitwiseNot there and short shifts besides those past 64
    const bits = (a: Tensor, b: Tensor) => apply("bitwiseXor", [apply("bitwiseAnd", [a, b], {}), apply("bitwiseOr", [a, apply("bitwiseNot", [b], {})], {})], {});
    const shifts = (a: Tensor, s: Tensor) => apply("bitwiseXor", [apply("shiftLeft", [a, s], {}), apply("shiftRight", [a, s], {})], {});
    const bitcast = (x: Tensor, to: string) => apply("bitcast", [x], { to });
    await checkCompiled((i8, u32, u64, s8, s32, s64, f) => ({
      fAsI32: bitcast(f, "int32"), i8AsU8: bitcast(i8, "uint8"), u64AsF64: bitcast(u64, "float64"),
      i8: bits(i8, i8.neg()), u32: bits(u32, u32.add(12345)), u64: apply("bitwiseXor", [apply("bitwiseAnd", [u64, u64.mul(3)], {}), apply("bitwiseOr", [u64, u64.add(7)], {})], {}),
      u8Shifts: shifts(s8.add(200), s8), u32Shifts: shifts(u32, s32), u64Shifts: shifts(u64, s64),
    }), {
      i8: ints([3, 5], -128, 127, "int8"), u32: ints([3, 5], 0, 2 ** 32 - 1, "uint32"), u64: ints([3, 5], 0, 2 ** 40, "uint64"),
      s8: ints([5], 0, 12, "uint8"), s32: ints([5], 0, 40, "uint32"), s64: Tensor.from(new BigUint64Array([0n, 5n, 12n, 64n, 70n])), f: randn(3, 5),
    });
  });
  test("a long fused chain stays one loop and matches", async () => {
    const [res] = await checkCompiled((x, y) => x.mul(y).add(1).tanh().mul(x).sub(y.div(3)).sigmoid(), { x: randn(4, 5, 3), y: randn(5, 3) }, { targets: ["wasm-simd"] });
    assert.equal(res.graph.nodes.length, 1, res.graph.toString());
  });
});

describe(`linear algebra and NN ops (seed ${SEED})`, () => {
  test("matmul: 1-D, 2-D, batched and broadcast operands, tails", async () => {
    await checkCompiled((a, b, v, bb, w) => ({
      mm: a.matmul(b), vec: v.matmul(b), matvec: a.matmul(b.slice(1, 0, 1).reshape(9)),
      batched: bb.matmul(w), broadcast: bb.matmul(b.slice(0, 0, 5)),
    }), { a: randn(7, 9), b: randn(9, 13), v: randn(9), bb: randn(3, 6, 5), w: randn(3, 5, 11) });
  });
  test("linear layer with fused bias and activation", async () => {
    const w = randn(13, 21), bias = randn(13);
    const [res] = await checkCompiled((x) => x.linear(w, bias).relu6(), { x: randn(5, 21) });
    assert.equal(res.graph.nodes.length, 1, "matmul + bias + relu6 fuse into one kernel call");
  });
  test("conv2d: stride, padding, dilation, groups, depthwise, pointwise, fused bias+activation", async () => {
    const x = randn(2, 6, 11, 9);
    const w = randn(10, 6, 3, 3), wg = randn(8, 3, 3, 2), dw = randn(6, 1, 3, 3), dw2 = randn(12, 1, 5, 3), pw = randn(7, 6, 1, 1), b = randn(10);
    await checkCompiled((x) => ({
      plain: x.conv2d(w, b),
      strided: x.conv2d(w, undefined, { stride: 2, padding: 1 }).relu(),
      dilated: x.conv2d(w, b, { dilation: [2, 1], padding: [2, 0] }),
      grouped: x.conv2d(wg, undefined, { groups: 2, stride: [1, 2], padding: [0, 1] }),
      depthwise: x.conv2d(dw, undefined, { groups: 6, padding: 1 }).hardswish(),
      depthwiseMult: x.conv2d(dw2, undefined, { groups: 6, stride: 2, padding: [2, 1] }),
      pointwise: x.conv2d(pw).sigmoid(),
    }), { x });
  });
  test("conv2d 3x3 with 16+ channels: Winograd on SIMD targets (test/winograd.test.ts has the shapes and the error bound)", async () => {
    const w = randn(17, 16, 3, 3).mul(0.1), b = randn(17);
    const [simd] = await checkCompiled((x) => x.conv2d(w, b, { padding: 1 }).relu(), { x: randn(1, 16, 9, 10) }, { tol: 2e-6 });
    assert.ok(simd.graph.nodes.some((n) => n.op === "conv2dWinograd"), simd.graph.toString());
  });
  test("conv2d backward kernels: strided, dilated, grouped, depthwise, pointwise, asymmetric pads", async () => {
    const geometries: [number[], { stride: number[]; pads: number[]; dilation: number[]; groups: number }][] = [
      [[10, 6, 3, 3], { stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 1 }],
      [[10, 6, 3, 3], { stride: [2, 2], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 1 }],
      [[8, 3, 3, 2], { stride: [1, 2], pads: [0, 1, 0, 1], dilation: [1, 1], groups: 2 }],
      [[6, 6, 3, 3], { stride: [1, 3], pads: [2, 0, 2, 0], dilation: [2, 1], groups: 1 }],
      [[6, 1, 3, 3], { stride: [2, 2], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 6 }],
      [[12, 1, 5, 3], { stride: [1, 1], pads: [2, 1, 2, 1], dilation: [1, 1], groups: 6 }],
      [[7, 6, 1, 1], { stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1], groups: 1 }],
      [[4, 6, 3, 3], { stride: [2, 2], pads: [0, 1, 2, 0], dilation: [1, 1], groups: 1 }],
      // stride 1 with asymmetric pads: the input gradient as a transposed convolution on im2col + GEMM
      [[5, 6, 3, 2], { stride: [1, 1], pads: [0, 1, 2, 0], dilation: [1, 1], groups: 1 }],
      // and an output as wide as the input: the weight gradient's patch rows as shifted copies of the plane
      [[8, 6, 3, 3], { stride: [1, 1], pads: [0, 2, 2, 0], dilation: [1, 1], groups: 1 }],
      // blocks of four output channels (the SIMD weight gradient), stride 1
      [[8, 6, 3, 3], { stride: [1, 1], pads: [1, 2, 1, 2], dilation: [1, 2], groups: 1 }],
    ];
    // groups of 4 input channels, rows as wide as the input's: the input gradient as shifted rows of wᵀ·dL/dy per group
    const grouped: typeof geometries = [
      [[6, 4, 3, 3], { stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 2 }],
      [[8, 4, 2, 3], { stride: [1, 1], pads: [0, 2, 1, 0], dilation: [1, 1], groups: 2 }],
    ];
    const ws = geometries.map(([shape]) => randn(...shape)), wsGrouped = grouped.map(([shape]) => randn(...shape));
    await checkCompiled((x, u, x8) => Object.fromEntries([
      ...geometries.flatMap(([shape, attrs], i) => {
        const gy = apply("conv2d", [x, ws[i]], attrs).mul(u);
        return [
          [`dx${i}`, apply("conv2dInputGrad", [gy, ws[i]], { ...attrs, inputShape: x.shape })],
          [`dw${i}`, apply("conv2dWeightGrad", [x, gy], { ...attrs, weightShape: shape })],
        ];
      }),
      ...grouped.map(([, attrs], i) => [`dxGrouped${i}`, apply("conv2dInputGrad", [apply("conv2d", [x8, wsGrouped[i]], attrs).mul(u), wsGrouped[i]], { ...attrs, inputShape: x8.shape })]),
    ]), { x: randn(2, 6, 11, 21), u: randn(1), x8: randn(2, 8, 9, 13) });
  });
  test("conv2d with asymmetric padding (graph level)", async () => {
    const w = randn(4, 3, 3, 3);
    await checkCompiled((x) => x.pad([0, 1, 2, 0]).conv2d(w, undefined, { stride: 2 }), { x: randn(1, 3, 8, 7) });
  });
  test("conv1d", async () => {
    const w = randn(5, 2, 3), b = randn(5);
    await checkCompiled((x) => x.conv1d(w, b, { stride: 2, padding: 1, groups: 1 }), { x: randn(2, 2, 17) });
  });
  test("pooling", async () => {
    await checkCompiled((x) => ({
      max: x.maxPool2d(2), max3: x.maxPool2d(3, { stride: 2, padding: 1 }), maxCeil: x.maxPool2d(2, { ceilMode: true }),
      maxDilated: x.maxPool2d(2, { dilation: 2 }),
      avg: x.avgPool2d(2), avgPad: x.avgPool2d(3, { stride: 2, padding: 1 }), avgNoPad: x.avgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }),
      avgCeil: x.avgPool2d(2, { ceilMode: true }), global: x.globalAvgPool2d(),
    }), { x: randn(2, 3, 9, 7) });
  });
  test("pooling backward kernels: interior (SIMD) and clipped windows, overlaps, ceil mode, dilation", async () => {
    const geometries: [number, { stride?: number; padding?: number; ceilMode?: boolean }][] = [
      [2, {}], [3, { stride: 2, padding: 1 }], [3, { stride: 1, padding: 1 }], [2, { ceilMode: true }], [3, { stride: 2, padding: 1, ceilMode: true }],
    ];
    await checkCompiled((x, u) => Object.fromEntries(geometries.flatMap(([k, o], i) => {
      const attrs = { kernel: [k, k], stride: [o.stride ?? k, o.stride ?? k], pads: Array(4).fill(o.padding ?? 0), ceilMode: Boolean(o.ceilMode), countIncludePad: i % 2 === 0 };
      const gy = x.maxPool2d(k, o).mul(u);
      return [
        [`max${i}`, apply("maxpool2dGrad", [x, gy], attrs)],
        [`avg${i}`, apply("avgpool2dGrad", [gy], { ...attrs, inputShape: x.shape })],
      ];
    }).concat([["maxDilated", apply("maxpool2dGrad", [x, x.maxPool2d(2, { dilation: 2 })], { kernel: [2, 2], stride: [2, 2], pads: [0, 0, 0, 0], dilation: [2, 2] })]])), { x: randn(2, 3, 11, 21), u: randn(1) });
  });
  test("batch norm: folded into conv, and standalone", async () => {
    const w = randn(4, 3, 3, 3), mean = randn(4), variance = rand([4], 0.5, 2), gamma = randn(4), beta = randn(4);
    const [res] = await checkCompiled((x) => x.conv2d(w).batchNorm(mean, variance, gamma, beta).relu(), { x: randn(1, 3, 6, 5) });
    assert.equal(res.graph.nodes.length, 1, "conv + bn + relu become one conv call");
    await checkCompiled((x) => x.batchNorm(mean, variance, gamma, beta, 1e-3), { x: randn(2, 4, 3, 5) });
  });
  test("softmax and logSoftmax along every axis", async () => {
    await checkCompiled((x) => ({ s0: x.softmax(0), s1: x.softmax(1), s2: x.softmax(-1), l1: x.logSoftmax(1), l2: x.logSoftmax(-1) }), { x: randn(3, 5, 7).mul(3) });
  });
  test("layer norm with and without affine", async () => {
    const g = randn(5, 7), b = randn(5, 7);
    await checkCompiled((x) => ({ affine: x.layerNorm([5, 7], g, b), plain: x.layerNorm([7]) }), { x: randn(3, 5, 7).mul(2).add(1) });
  });
  test("embedding (gather) with int32 indices", async () => {
    const table = randn(11, 6);
    await checkCompiled((idx) => table.embedding(idx), { idx: Tensor.from([[3, 0, 10], [-1, 5, 5]], { dtype: "int32" }) });
  });
  test("scatterAdd (gather's gradient): repeated indices accumulate, negative indices count from the end", async () => {
    const idx = Tensor.from([[3, 0, 6], [-1, 3, 3]], { dtype: "int32" });
    await checkCompiled((u) => ({
      rows: apply("scatterAdd", [u, idx], { axis: 0, size: 7 }),
      inner: apply("scatterAdd", [u.reshape(5, 2, 3), idx], { axis: 1, size: 7 }).mul(2),
    }), { u: randn(2, 3, 5) });
  });
});

describe(`reductions (seed ${SEED})`, () => {
  test("sum/mean/max/min/prod over single, contiguous, non-contiguous and all axes", async () => {
    await checkCompiled((x) => ({
      sum1: x.sum(1), mean2: x.mean(-1, true), max0: x.max(0), min12: x.min([1, 2]), prodAll: x.mul(0.3).add(1).prod(),
      sum02: x.sum([0, 2], true), mean02: x.mean([0, 2]), all: x.sum(),
    }), { x: randn(3, 5, 7) });
  });
  test("argmax / argmin", async () => {
    await checkCompiled((x) => ({ amax1: x.argmax(1), amin0: x.argmin(0, true), flat: x.argmax() }), { x: randn(4, 9, 3) });
  });
});

describe(`data movement (seed ${SEED})`, () => {
  test("reshape, permute, transpose, slice, concat, pad, expand", async () => {
    await checkCompiled((x, y) => ({
      permute: x.permute(2, 0, 1), transpose: x.transpose(0, 2).add(1), sliced: x.slice(1, 1, 4).slice(2, 0, 7, 3),
      negative: x.slice(1, -2), concat: Tensor.cat([x, y], 1), pad: x.pad([1, 2, 0, 3], -1.5),
      expand: y.slice(1, 0, 1).expand(3, 4, 7), flat: x.flatten(1).mul(2), unsq: x.unsqueeze(0).squeeze(0).relu(),
    }), { x: randn(3, 5, 7), y: randn(3, 2, 7) });
  });
});

describe(`training-step ops (seed ${SEED})`, () => {
  test("oneHot, stepGuard, and detach() as a stopGradient view", async () => {
    const classes = Tensor.from([[3, 0], [4, 3]], { dtype: "int32" });
    await checkCompiled((c, loss, step, x) => ({
      oneHot: apply("oneHot", [c], { classes: 5 }),
      step: apply("stepGuard", [loss, step], {}),
      detached: x.detach().mul(2),
    }), { c: classes, loss: randn(1), step: Tensor.from([7]), x: randn(3, 5) });
  });
});

describe(`training-step rewrites (seed ${SEED})`, () => {
  // maxpool2dArgmax / maxpool2dScatter exist only in training graphs: one SGD step (w - grad) against eager backward
  class PoolNet extends nn.Module {
    conv = new nn.Conv2d(3, 4, 3, { padding: 1 });
    fc = new nn.Linear(2 * 4 * 4 * 6 + 4 * 5 * 7, 3);
    forward(x: Tensor): Tensor {
      const masked = this.conv.forward(x).relu().maxPool2d(2);
      const plain = this.conv.forward(x).maxPool2d(3, { stride: 2, padding: 1 });
      // 2×2 at stride 2 unmasked: every choice gets its gradient (SIMD: 6 windows a row, the last four rewritten)
      const twoByTwo = this.conv.forward(x).mul(-1).maxPool2d(2);
      return this.fc.forward(Tensor.cat([masked.flatten(1), plain.flatten(1), twoByTwo.flatten(1)], 1));
    }
  }
  for (const target of TARGET_NAMES) {
    test(`max pooling's saved choices and folded ReLU mask (${target}) give eager's gradients`, async () => {
      const model = new PoolNet(), eager = new PoolNet();
      eager.loadStateDict(model.stateDict());
      const { wasm, graphs } = await compileTraining(model, { inputs: { x: [2, 3, 9, 13] }, loss: "crossEntropy", optimizer: { type: "sgd", lr: 1 }, target, optimizeLevel: 1 });
      for (const n of graphs.trainStep.nodes) coveredOps.add(n.op);
      assert.ok(graphs.trainStep.nodes.some((n) => n.op === "maxpool2dScatter" && n.inputs.length === 3), "the ReLU mask is folded into one scatter");
      const x = randn(2, 3, 9, 13), y = Tensor.from(Int32Array.from([2, 0]));
      losses.crossEntropy(eager.forward(x), y).backward();
      const blob = await loadTrainingBlob(wasm);
      blob.trainStep({ x: x.data, target: y.data });
      for (const [name, p] of eager.namedParameters()) {
        const want = (p.data as Float32Array).map((w, i) => w - (p.grad!.data as Float32Array)[i]);
        const err = relError(blob.stateDict()[name].data as Float32Array, want);
        assert.ok(err <= 1e-5, `${target} ${name}: ${err} relative from eager (seed ${SEED})`);
      }
    });
  }
});

describe("hand-computed values", () => {
  const close = (t: Tensor, want: number[]) => Array.from(t.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `element ${i}: ${v} != ${want[i]}`));
  test("conv2d 3x3 input, 2x2 kernel, bias, relu", async () => {
    const w = Tensor.from([[[[1, 0], [0, -1]]]]), b = Tensor.from([0.5]);
    const x = Tensor.from([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]]);
    close(x.conv2d(w, b), [-3.5, -3.5, -3.5, -3.5]);
    close(x.conv2d(w.neg(), b).relu(), [4.5, 4.5, 4.5, 4.5]);
    await checkCompiled((x) => x.conv2d(w.neg(), b).relu(), { x });
  });
  test("matmul, softmax, maxpool, mean", async () => {
    const a = Tensor.from([[1, 2], [3, 4]]), b = Tensor.from([[5, 6], [7, 8]]);
    close(a.matmul(b), [19, 22, 43, 50]);
    close(Tensor.from([0, Math.log(2)]).softmax(), [1 / 3, 2 / 3]);
    const img = Tensor.from([[[[1, 5, 2, 0], [3, 4, 8, 1], [0, 0, 1, 1], [9, 0, 1, 7]]]]);
    close(img.maxPool2d(2), [5, 8, 9, 7]);
    close(img.mean([2, 3]), [43 / 16]);
    await checkCompiled((a, b) => ({ mm: a.matmul(b), sm: a.softmax(-1) }), { a, b });
    await checkCompiled((img) => ({ pool: img.maxPool2d(2), mean: img.mean([2, 3]) }), { img });
  });
});

after(() => {
  const missing = allOps().map((o) => o.name).filter((n) => !coveredOps.has(n));
  assert.deepEqual(missing, [], `registry ops with no compiled test: ${missing.join(", ")}`);
});
