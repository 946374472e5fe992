import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Generator, losses, nn, noGrad, optim, Tensor, TeenygradError } from "../compiler/index.js";
import { SEED } from "./helpers/compiled.js";

/** Single optimizer steps against values worked out with PyTorch's formulas, and a small model trained eagerly. */

const G1 = [0.5, -1], G2 = [-0.25, 2];

/** a parameter [1, -2] and a runner that sets the given gradient before each step, returning the weights after each */
function stepThrough(make: (p: nn.Parameter) => { step(): void }, grads: number[][]): number[][] {
  const p = new nn.Parameter(Tensor.from([1, -2]));
  const opt = make(p);
  return grads.map((g) => {
    p.grad = Tensor.from(g);
    opt.step();
    return Array.from(p.data as Float32Array);
  });
}

function assertClose(got: number[][], want: number[][], what: string): void {
  got.forEach((row, s) => row.forEach((v, i) => {
    assert.ok(Math.abs(v - want[s][i]) <= 1e-6 * (1 + Math.abs(want[s][i])), `${what}: step ${s + 1}, weight ${i}: ${v} != ${want[s][i]}`);
  }));
}

describe("optimizers against PyTorch's formulas", () => {
  test("SGD: plain, then momentum with weight decay", () => {
    assertClose(stepThrough((p) => new optim.SGD([p], { lr: 0.1 }), [G1]), [[0.95, -1.9]], "sgd");
    // d = g + 0.1·w; step 1: b = d = [0.6, -1.2], w = [0.94, -1.88];
    // step 2: d = [0.594, -1.188], b = 0.9·b + d = [1.134, -2.268], w = [0.8266, -1.6532]
    assertClose(stepThrough((p) => new optim.SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 }), [G1, G1]), [[0.94, -1.88], [0.8266, -1.6532]], "sgd momentum");
  });
  test("Adam: bias-corrected moments; weight decay as an L2 term", () => {
    // step 1 moves each weight by lr·g/(|g| + eps); step 2 (g = [-0.25, 2]): m = [0.02, 0.11], v = [3.1225e-4, 4.999e-3]
    assertClose(stepThrough((p) => new optim.Adam([p], { lr: 0.1 }), [G1, G2]), [[0.900000002, -1.900000001], [0.8733662987, -1.9366103535]], "adam");
    assertClose(stepThrough((p) => new optim.Adam([p], { lr: 0.1, weightDecay: 0.1 }), [G1, G2]), [[0.9000000017, -1.9000000008], [0.8544413675, -1.9250178785]], "adam L2");
  });
  test("AdamW: decoupled weight decay shrinks the weights before the Adam step", () => {
    assertClose(stepThrough((p) => new optim.AdamW([p], { lr: 0.1, weightDecay: 0.1 }), [G1, G2]), [[0.890000002, -1.880000001], [0.8544662987, -1.8978103535]], "adamw");
    const p = new nn.Parameter(Tensor.from([1]));
    assert.equal(new optim.AdamW([p]).weightDecay, 0.01, "PyTorch's default");
  });
  test("step skips parameters without a gradient; zeroGrad drops gradients; state is per parameter", () => {
    const [a, b] = [new nn.Parameter(Tensor.from([1, 2])), new nn.Parameter(Tensor.from([3]))];
    const opt = new optim.Adam([a, b], { lr: 0.5 });
    a.grad = Tensor.from([1, 1]);
    opt.step();
    assert.deepEqual(Array.from(b.data as Float32Array), [3]);
    assert.deepEqual([...opt.state.keys()], [a]);
    assert.equal(opt.state.get(a)!.step, 1);
    opt.zeroGrad();
    assert.equal(a.grad, null);
  });
  test("bad parameters and settings are named", () => {
    assert.throws(() => new optim.SGD([], { lr: 0.1 }), /empty parameter list/);
    assert.throws(() => new optim.Adam([Tensor.from([1], { dtype: "float64" })]), (e: Error) => e instanceof TeenygradError && /float64 tensor of shape \[1\]/.test(e.message));
    assert.throws(() => new optim.SGD([new nn.Parameter(Tensor.from([1]))], { lr: -1 }), /invalid learning rate -1/);
    assert.throws(() => new optim.Adam([new nn.Parameter(Tensor.from([1]))], { betas: [0.9, 1] }), /betas/);
  });
});

describe(`eager training (seed ${SEED})`, () => {
  test("an MLP learns to separate points inside a circle from points outside it", () => {
    const rng = new Generator(SEED);
    const N = 64;
    const points: number[] = [], labels: number[] = [];
    while (labels.length < N) {
      const [x, y] = [rng.next() * 4 - 2, rng.next() * 4 - 2];
      const r = Math.hypot(x, y);
      if (Math.abs(r - 1.2) < 0.2) continue; // a margin between the classes
      points.push(x, y);
      labels.push(r < 1.2 ? 1 : 0);
    }
    const X = Tensor.from(Float32Array.from(points), { shape: [N, 2] });
    const Y = Tensor.from(Int32Array.from(labels), { dtype: "int32" });

    const model = new nn.Sequential(new nn.Linear(2, 16), new nn.Tanh(), new nn.Linear(16, 2));
    const opt = new optim.Adam(model.parameters(), { lr: 0.05 });
    const lossAt = () => noGrad(() => losses.crossEntropy(model.forward(X), Y).item());
    const initial = lossAt();
    for (let step = 0; step < 300; step++) {
      opt.zeroGrad();
      losses.crossEntropy(model.forward(X), Y).backward();
      opt.step();
    }
    const final = lossAt();
    assert.ok(final < 0.1 && final < initial / 5, `loss went from ${initial} to ${final}`);
    const predicted = noGrad(() => model.forward(X).argmax(1)).data as Int32Array;
    const correct = labels.filter((l, i) => predicted[i] === l).length;
    assert.ok(correct >= N - 1, `${correct}/${N} points classified correctly`);
  });
});
