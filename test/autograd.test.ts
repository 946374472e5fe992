import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Generator, losses, nn, noGrad, Tensor, TeenygradError, type NestedArray } from "../compiler/index.js";
import { allOps } from "../compiler/ops/index.js";
import { apply } from "../compiler/tensor/tensor.js";
import { SEED } from "./helpers/compiled.js";

/**
 * Every gradient rule against central finite differences of the ops' host references, in float64 on
 * fresh random inputs (the seed is printed; TEST_SEED=… replays), plus hand-computed gradients, the
 * losses, and the errors autograd raises.
 */

const rng = new Generator(SEED + 1);
const f64 = (values: ArrayLike<number>, shape: number[]) => Tensor.from(Float64Array.from(values), { shape, dtype: "float64" });
const randn = (...shape: number[]) => f64(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
const uniform = (shape: number[], low: number, high: number) => f64(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => low + (high - low) * rng.next()), shape);
const int32 = (values: number[]) => Tensor.from(Int32Array.from(values), { dtype: "int32" });

/** every op some gradient check differentiated through: the registry test below asserts it covers every rule */
const checkedOps = new Set<string>();
function collectOps(t: Tensor): void {
  const seen = new Set<Tensor>();
  const stack = [t];
  while (stack.length) {
    const c = stack.pop()!.creator;
    if (!c) continue;
    checkedOps.add(c.op);
    for (const x of c.inputs) if (!seen.has(x)) seen.add(x), stack.push(x);
  }
}

/**
 * Checks d(Σ w·fn(inputs))/d(input) for every float64 input against central differences, with w a
 * fixed random weighting so every output element matters; integer inputs (indices) are passed through.
 */
function gradcheck(name: string, fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], tol = 1e-6): void {
  for (const t of inputs) if (t.dtype === "float64") t.requiresGrad = true;
  const out = fn(...inputs);
  const weight = randn(...out.shape);
  const loss = out.mul(weight).sum();
  collectOps(loss);
  loss.backward();
  const evaluate = () => noGrad(() => fn(...inputs).mul(weight).sum().item());
  const h = 1e-6;
  inputs.forEach((t, k) => {
    if (t.dtype !== "float64") return;
    assert.ok(t.grad, `${name}: input ${k} got no gradient`);
    const x = t.data as Float64Array, analytic = t.grad.data as Float64Array;
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i];
      x[i] = x0 + h;
      const up = evaluate();
      x[i] = x0 - h;
      const down = evaluate();
      x[i] = x0;
      const numeric = (up - down) / (2 * h);
      assert.ok(Math.abs(analytic[i] - numeric) <= tol * (1 + Math.abs(numeric)),
        `${name}: d/d(input ${k})[${i}] is ${analytic[i]}, finite differences give ${numeric} (seed ${SEED})`);
    }
  });
}

describe(`gradients against finite differences in float64 (seed ${SEED})`, () => {
  test("binary arithmetic, with broadcasting both ways", () => {
    const [a, b, c] = [randn(3, 4), randn(4), randn(3, 1)];
    gradcheck("add/sub/mul", (a, b, c) => a.add(b).mul(c).sub(b.mul(a)), [a, b, c]);
    gradcheck("div", (a, c) => a.div(c.abs().add(0.5)), [randn(3, 4), randn(3, 1)]);
    gradcheck("row x column", (r, col) => r.mul(col).add(col.sub(r)), [randn(1, 5), randn(4, 1)]);
    gradcheck("pow", (base, e) => base.abs().add(0.2).pow(e), [randn(3, 4), randn(4)]);
    gradcheck("maximum/minimum", (a, b) => a.maximum(b).add(a.minimum(b.mul(2))), [randn(3, 4), randn(4)]);
  });
  test("unary math", () => {
    gradcheck("unary", (x) => Tensor.cat([
      x.neg(), x.abs(), x.abs().add(0.1).sqrt(), x.abs().add(0.5).reciprocal(), x.exp(), x.abs().add(0.1).log(),
      x.sin(), x.cos(), x.mul(12).softplus(),
    ]), [randn(2, 5)]);
    gradcheck("trigonometric and hyperbolic", (x) => {
      const inside = x.tanh().mul(0.9); // (-0.9, 0.9): inside asin/acos/atanh's domain
      return Tensor.cat(["tan", "atan", "sinh", "cosh", "asinh"].map((op) => apply(op, [x.mul(0.5)], {}))
        .concat(["asin", "acos", "atanh"].map((op) => apply(op, [inside], {})), [apply("acosh", [x.abs().add(1.5)], {})]));
    }, [randn(2, 5)]);
    // quotients kept away from integers, where the remainder jumps
    gradcheck("mod and fmod", (a, b) => Tensor.cat([apply("mod", [a, b], { fmod: false }), apply("mod", [a.neg(), b], { fmod: true }), apply("mod", [a.neg(), b], { fmod: false })]),
      [uniform([6], 2.2, 2.8), uniform([6], 0.95, 1.05)]);
    gradcheck("cast", (x) => apply("cast", [x.mul(3)], { to: "float64" }), [randn(2, 3)]);
    gradcheck("copy", (x) => apply("copy", [x.mul(3)], {}), [randn(2, 3)]);
    // the reference erf is a 1.2e-7 approximation whose slope strays from the exact one by up to 3.3e-6
    gradcheck("erf", (x) => x.erf(), [randn(3, 5)], 1e-5);
  });
  test("activations", () => {
    gradcheck("activations", (x) => Tensor.cat([
      x.relu(), x.clamp(-0.5, 0.7), x.leakyRelu(0.2), x.sigmoid(), x.tanh(), x.silu(), x.mul(4).hardswish(),
      x.mul(4).hardsigmoid(), x.elu(0.7),
    ]), [randn(3, 7)]);
    gradcheck("gelu", (x) => x.mul(2).gelu(), [randn(3, 7)], 1e-5);
  });
  test("where", () => {
    const cond = randn(3, 4).gt(0);
    gradcheck("where", (a, b) => Tensor.where(cond, a, b.mul(3)), [randn(3, 4), randn(4)]);
  });
  test("matmul: 2-D, 1-D on either side, batched, broadcast batches, bias", () => {
    gradcheck("2-D", (a, b) => a.matmul(b), [randn(3, 4), randn(4, 5)]);
    gradcheck("vector @ matrix", (v, b) => v.matmul(b), [randn(4), randn(4, 5)]);
    gradcheck("matrix @ vector", (a, v) => a.matmul(v), [randn(3, 4), randn(4)]);
    gradcheck("dot", (u, v) => u.matmul(v), [randn(4), randn(4)]);
    gradcheck("batched", (a, b) => a.matmul(b), [randn(2, 3, 4), randn(2, 4, 5)]);
    gradcheck("broadcast batch", (a, b) => a.matmul(b), [randn(2, 1, 3, 4), randn(3, 4, 2)]);
    gradcheck("batched @ vector", (a, v) => a.matmul(v), [randn(2, 3, 4), randn(4)]);
    gradcheck("bias", (a, b, bias) => apply("matmul", [a, b, bias], {}), [randn(3, 4), randn(4, 5), randn(5)]);
  });
  test("conv2d: stride, padding, dilation, groups, depthwise, asymmetric padding, unused rows", () => {
    const x = randn(2, 4, 7, 6);
    gradcheck("plain + bias", (x, w, b) => x.conv2d(w, b), [x, randn(3, 4, 3, 3), randn(3)]);
    gradcheck("stride 2, padding 1", (x, w) => x.conv2d(w, undefined, { stride: 2, padding: 1 }), [randn(2, 4, 7, 6), randn(3, 4, 3, 2)]);
    gradcheck("dilation", (x, w) => x.conv2d(w, undefined, { dilation: [2, 1], padding: [2, 0] }), [randn(1, 4, 7, 6), randn(2, 4, 3, 3)]);
    gradcheck("groups", (x, w, b) => x.conv2d(w, b, { groups: 2, stride: [1, 2], padding: [0, 1] }), [randn(2, 4, 5, 6), randn(6, 2, 3, 2), randn(6)]);
    gradcheck("depthwise x2", (x, w) => x.conv2d(w, undefined, { groups: 4, padding: 1 }), [randn(1, 4, 5, 5), randn(8, 1, 3, 3)]);
    gradcheck("stride 3, rows left over", (x, w) => x.conv2d(w, undefined, { stride: 3 }), [randn(1, 2, 8, 7), randn(2, 2, 2, 2)]);
    gradcheck("padding beyond the kernel's reach", (x, w) => x.conv2d(w, undefined, { padding: 2 }), [randn(1, 2, 3, 4), randn(3, 2, 1, 2)]);
    gradcheck("asymmetric pads", (x, w) => apply("conv2d", [x, w], { stride: [2, 2], pads: [0, 1, 2, 0], dilation: [1, 1], groups: 1 }), [randn(1, 2, 6, 5), randn(2, 2, 3, 3)]);
    gradcheck("conv1d", (x, w, b) => x.conv1d(w, b, { stride: 2, padding: 1 }), [randn(2, 2, 9), randn(3, 2, 3), randn(3)]);
  });
  test("pooling", () => {
    for (const [label, opts] of [
      ["2x2", { k: 2, o: {} }], ["3x3 stride 2 pad 1", { k: 3, o: { stride: 2, padding: 1 } }],
      ["ceil mode", { k: 2, o: { ceilMode: true } }], ["dilated", { k: 2, o: { dilation: 2 } }],
      ["ceil mode with padding", { k: 3, o: { stride: 2, padding: 1, ceilMode: true } }],
    ] as const) {
      gradcheck(`maxpool ${label}`, (x) => x.maxPool2d(opts.k, opts.o), [randn(2, 2, 7, 6)]);
      gradcheck(`avgpool ${label}`, (x) => x.avgPool2d(opts.k, opts.o), [randn(2, 2, 7, 6)]);
    }
    gradcheck("avgpool without padded count", (x) => x.avgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }), [randn(1, 2, 6, 7)]);
    gradcheck("global average", (x) => x.globalAvgPool2d(), [randn(2, 3, 4, 5)]);
  });
  test("reductions over single, several, non-contiguous and all axes", () => {
    gradcheck("sum/mean/max/min", (x) => Tensor.cat([
      x.sum(1).reshape(-1), x.mean(-1, true).reshape(-1), x.max(0).reshape(-1), x.min([0, 2]).reshape(-1),
      x.sum().reshape(1), x.mean([0, 2]).reshape(-1), x.max().reshape(1),
    ]), [randn(3, 4, 5)]);
    for (const kind of ["prod", "sumSquares", "l1", "logSumExp"]) {
      gradcheck(kind, (x) => apply("reduce", [x], { kind, axes: [0, 2], keepdim: false }), [randn(3, 2, 4)]);
    }
    // prod through exact zeros: one zero in the first row, two in the second
    gradcheck("prod with zeros", (x) => x.prod(1), [f64([0, 2, -1.5, 0, 0, 3, 0.5, 1.5, 2], [3, 3])]);
  });
  test("softmax, logSoftmax, layer norm, batch norm", () => {
    gradcheck("softmax", (x) => Tensor.cat([x.softmax(0), x.softmax(1), x.logSoftmax(-1), x.logSoftmax(0)]), [randn(3, 4, 2)]);
    gradcheck("layer norm, affine", (x, g, b) => x.layerNorm([3, 4], g, b), [randn(2, 3, 4), randn(3, 4), randn(3, 4)]);
    gradcheck("layer norm, flat weight", (x, g) => apply("layernorm", [x, g], { axis: 1, eps: 1e-5 }), [randn(2, 3, 4), randn(12)]);
    gradcheck("layer norm, plain", (x) => x.layerNorm([5]), [randn(3, 5)]);
    gradcheck("batch norm", (x, mean, variance, g, b) => x.batchNorm(mean, variance, g, b, 1e-3), [randn(2, 3, 2, 3), randn(3), uniform([3], 0.5, 2), randn(3), randn(3)]);
    gradcheck("batch norm on [N, C]", (x, mean, variance, g, b) => x.batchNorm(mean, variance, g, b), [randn(4, 3), randn(3), uniform([3], 0.5, 2), randn(3), randn(3)]);
  });
  test("data movement", () => {
    gradcheck("reshape/permute/transpose", (x) => x.reshape(4, 6).transpose().permute(1, 0).reshape(2, 12), [randn(2, 3, 4)]);
    gradcheck("slice with steps", (x) => x.slice(1, 1, 4).slice(2, 0, 5, 2), [randn(2, 5, 6)]);
    gradcheck("negative steps", (x) => apply("slice", [x], { starts: [1, 5, 4], ends: [2, -1, 0], steps: [1, -2, -3] }), [randn(2, 6, 5)]);
    gradcheck("flip", (x) => x.flip(0, 2), [randn(2, 3, 4)]);
    gradcheck("concat", (a, b) => Tensor.cat([a, b, a], 1), [randn(2, 3, 2), randn(2, 1, 2)]);
    gradcheck("pad", (x) => x.pad([1, 2, 0, 3], -1.5), [randn(2, 3, 4)]);
    gradcheck("expand", (x) => x.expand(2, 3, 4), [randn(3, 1)]);
    gradcheck("embedding, repeated and negative indices", (table, idx) => table.embedding(idx), [randn(5, 3), Tensor.from([[4, 0, 4], [-1, 2, 0]], { dtype: "int32" })]);
    gradcheck("gather on axis 1", (x, idx) => apply("gather", [x, idx], { axis: 1 }), [randn(2, 4, 3), int32([3, 3, 0])]);
    gradcheck("scatterAdd", (u, idx) => apply("scatterAdd", [u, idx], { axis: 1, size: 4 }), [randn(2, 3, 2), int32([1, 3, 1])]);
    const picks = Tensor.from([[[2, 0], [2, -1], [1, 1]], [[0, 0], [3, 2], [-4, 1]]], { dtype: "int32" });
    gradcheck("gatherElements, repeated and negative indices", (x, idx) => apply("gatherElements", [x, idx], { axis: 1 }), [randn(2, 4, 2), picks]);
    gradcheck("scatterElementsAdd", (u, idx) => apply("scatterElementsAdd", [u, idx], { axis: 1, shape: [2, 4, 2] }), [randn(2, 3, 2), picks]);
  });
  test("losses", () => {
    gradcheck("crossEntropy", (logits) => losses.crossEntropy(logits, int32([2, 0, 1, 2])), [randn(4, 3)]);
    gradcheck("mse", (p, t) => losses.mse(p, t), [randn(3, 2), randn(3, 2)]);
    gradcheck("bceWithLogits", (x, y) => losses.bceWithLogits(x.mul(4), y), [randn(5), uniform([5], 0, 1)]);
  });
});

describe("hand-computed gradients", () => {
  const param = (values: NestedArray) => {
    const t = Tensor.from(values);
    t.requiresGrad = true;
    return t;
  };
  const close = (t: Tensor | null, want: number[], msg = "") => {
    assert.ok(t, `${msg}: no gradient`);
    const got = Array.from(t.data as Float32Array);
    assert.equal(got.length, want.length, msg);
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `${msg} element ${i}: ${v} != ${want[i]}`));
  };
  test("products, broadcasting and a tensor used twice", () => {
    const x = param([1, 2, 3]), w = param([4, 5, 6]);
    x.mul(w).sum().backward();
    close(w.grad, [1, 2, 3], "d/dw Σ x·w");
    close(x.grad, [4, 5, 6], "d/dx Σ x·w");
    const a = param([[1, 2, 3], [4, 5, 6]]), b = param([10, 20, 30]);
    a.add(b).mul(a).sum().backward(); // Σ (a + b)·a: d/da = 2a + b, d/db = column sums of a
    close(a.grad, [12, 24, 36, 18, 30, 42], "d/da");
    close(b.grad, [5, 7, 9], "d/db");
  });
  test("matmul: d/dA Σ A·B = row sums of B, d/dB = column sums of A", () => {
    const A = param([[1, 2], [3, 4]]), B = param([[5, 6], [7, 8]]);
    A.matmul(B).sum().backward();
    close(A.grad, [11, 15, 11, 15], "dA");
    close(B.grad, [4, 4, 6, 6], "dB");
  });
  test("kinks and ties follow PyTorch", () => {
    const x = param([-1, 0, 2]);
    x.relu().sum().backward();
    close(x.grad, [0, 0, 1], "relu at 0 passes nothing");
    const a = param([1, 2]), b = param([1, 3]);
    a.maximum(b).sum().backward();
    close(a.grad, [0.5, 0], "maximum tie splits");
    close(b.grad, [0.5, 1], "maximum tie splits");
    const img = param([[[[1, 5, 5, 0], [3, 4, 8, 8], [0, 0, 1, 1], [9, 0, 1, 7]]]]);
    img.maxPool2d(2).sum().backward();
    close(img.grad, [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1], "maxpool: the first maximum of each window");
    const m = param([[3, 1, 3], [2, 2, 0]]);
    m.max(1).sum().backward();
    close(m.grad, [0.5, 0, 0.5, 0.5, 0.5, 0], "max over ties splits evenly");
  });
  test("gradients accumulate across backward calls; zeroGrad drops them", () => {
    const lin = new nn.Linear(2, 1);
    const x = Tensor.from([[1, 2]]);
    lin.forward(x).sum().backward();
    lin.forward(x).sum().backward();
    close(lin.weight.grad, [2, 4], "accumulated twice");
    close(lin.bias!.grad, [2], "bias");
    lin.zeroGrad();
    assert.equal(lin.weight.grad, null);
    assert.equal(lin.bias!.grad, null);
  });
  test("detach and noGrad cut the graph; nothing is recorded when nothing requires grad", () => {
    const w = param([2, 3]);
    const y = w.mul(w);
    assert.ok(y.requiresGrad && y.creator?.op === "mul");
    y.detach().mul(w).sum().backward();
    close(w.grad, [4, 9], "the detached factor is a constant");
    const z = noGrad(() => w.mul(2));
    assert.equal(z.requiresGrad, false);
    assert.equal(z.creator, null);
    const plain = Tensor.from([1, 2]).mul(3);
    assert.equal(plain.creator, null);
    assert.equal(w.gt(0).creator, null, "bool results carry no gradient");
  });
  test("losses: values and gradients", () => {
    const logits = param([[0, Math.log(2)], [Math.log(3), 0]]);
    const ce = losses.crossEntropy(logits, int32([1, 0]));
    assert.ok(Math.abs(ce.item() - Math.log(2) / 2) < 1e-6, `crossEntropy ${ce.item()}`); // (-ln ⅔ - ln ¾) / 2
    ce.backward();
    close(logits.grad, [1 / 6, -1 / 6, -1 / 8, 1 / 8], "(softmax - onehot) / N");
    assert.ok(Math.abs(losses.crossEntropy(Tensor.from([[1000, 0]]), int32([0])).item()) < 1e-6, "large logits stay finite");

    const pred = param([1, 2, 3]);
    const l2 = losses.mse(pred, Tensor.from([1, 0, 0]));
    assert.ok(Math.abs(l2.item() - 13 / 3) < 1e-6);
    l2.backward();
    close(pred.grad, [0, 4 / 3, 2], "2(p - t)/n");

    const x = param([0, Math.log(3)]);
    const bce = losses.bceWithLogits(x, Tensor.from([1, 0]));
    assert.ok(Math.abs(bce.item() - 1.5 * Math.log(2)) < 1e-6, `bce ${bce.item()}`); // (ln 2 + ln 4) / 2
    bce.backward();
    close(x.grad, [-0.25, 0.375], "(σ(x) - y) / n");
    const saturated = losses.bceWithLogits(Tensor.from([100, -100, 100]), Tensor.from([1, 0, 0])).item();
    assert.ok(Math.abs(saturated - 100 / 3) < 1e-5, `large logits stay finite: ${saturated}`);
  });
});

describe("errors", () => {
  const throwsNaming = (fn: () => unknown, ...parts: RegExp[]) =>
    assert.throws(fn, (e: Error) => e instanceof TeenygradError && parts.every((p) => p.test(e.message)) || assert.fail(e.message));
  test("a non-differentiable op between the loss and a parameter names the op and the node", () => {
    const lin = new nn.Linear(3, 2);
    const loss = lin.forward(Tensor.from([[1, 2, 3]])).mul(4).floor().sum();
    throwsNaming(() => loss.backward(), /'floor'/, /node floor_\d+/, /piecewise constant/, /detach\(\)/);
    // comparisons and argmax feed no gradient; used only as a mask or index they are fine
    const w = lin.weight;
    Tensor.where(w.gt(0), w, w.mul(0.1)).sum().backward();
    assert.ok(w.grad);
  });
  test("a fused activation epilogue (made by compile passes) has no gradient", () => {
    const a = Tensor.from([[1, 2]]), b = Tensor.from([[3], [4]]);
    a.requiresGrad = true;
    const fused = apply("matmul", [a, b], { epilogue: { act: 1, p0: 0, p1: 0 } });
    throwsNaming(() => fused.sum().backward(), /matmul/, /fused activation epilogue/);
  });
  test("backward needs a scalar loss that depends on something requiring grad", () => {
    const w = new nn.Linear(2, 3);
    throwsNaming(() => w.forward(Tensor.from([[1, 2]])).backward(), /scalar loss/, /\[1, 3\]/);
    throwsNaming(() => Tensor.from([1, 2]).sum().backward(), /does not depend on any tensor that requires grad/);
  });
  test("loss shape mismatches name both shapes", () => {
    throwsNaming(() => losses.mse(Tensor.zeros([3, 2]), Tensor.zeros([3])), /\[3, 2\]/, /\[3\]/);
    throwsNaming(() => losses.bceWithLogits(Tensor.zeros([4]), Tensor.zeros([2, 2])), /\[4\]/, /\[2, 2\]/);
    throwsNaming(() => losses.crossEntropy(Tensor.zeros([4, 3]), int32([0, 1, 2])), /\[4, 3\]/, /\[3\]/);
    throwsNaming(() => losses.crossEntropy(Tensor.zeros([2, 3]), int32([0, 3])), /target 3 is out of range for 3 classes/);
    throwsNaming(() => losses.crossEntropy(Tensor.zeros([2, 3]), Tensor.from([0, 1])), /int32/);
  });
});

describe("the registry", () => {
  test("every op has a gradient rule or says why it has none", () => {
    const undeclared = allOps().filter((o) => !o.grad === !o.notDifferentiable).map((o) => o.name);
    assert.deepEqual(undeclared, [], `ops with neither (or both) a grad rule and a notDifferentiable reason: ${undeclared.join(", ")}`);
  });
});

after(() => {
  const unchecked = allOps().filter((o) => o.grad && !checkedOps.has(o.name)).map((o) => o.name);
  assert.deepEqual(unchecked, [], `gradient rules no finite-difference test exercised: ${unchecked.join(", ")}`);
});
