import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, loadBlob, Tensor } from "../compiler/index.js";
import { apply } from "../compiler/tensor/tensor.js";
import { checkCompiled, FnModule, randn, SEED } from "./helpers/compiled.js";

/** gatherElements, its adjoint scatterElementsAdd and topK: compiled for both targets against eager mode. */

const ints = (values: number[], shape: number[]) => Tensor.from(new Int32Array(values), { shape, dtype: "int32" });

describe(`indexing ops (seed ${SEED})`, () => {
  test("gatherElements along each axis, negative indices, indices smaller than data, int32 data", async () => {
    const rows = ints([0, 2, -1, 1, 0, -3, 2, 2], [2, 4]);
    const cols = ints([3, 0, 1, -1, 2, 2], [3, 2]);
    await checkCompiled((x, r, c, n) => ({
      axis0: apply("gatherElements", [x, r], { axis: 0 }),
      axis1: apply("gatherElements", [x.relu(), c], { axis: -1 }),
      ints: apply("gatherElements", [n, c], { axis: 1 }),
    }), { x: randn(3, 4), r: rows, c: cols, n: ints([5, -6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [3, 4]) });
  });

  test("scatterElementsAdd accumulates repeated indices (gatherElements' gradient)", async () => {
    const idx = ints([1, 1, 0, 2, -1, 2], [2, 3]);
    await checkCompiled((u, i) => apply("scatterElementsAdd", [u, i], { axis: 1, shape: [2, 5] }), { u: randn(2, 3), i: idx });
    const x = randn(2, 5);
    x.requiresGrad = true;
    apply("gatherElements", [x, idx], { axis: 1 }).sum().backward();
    assert.deepEqual(Array.from(x.grad!.data, Number), [1, 2, 0, 0, 0, 0, 0, 2, 0, 1]);
  });

  test("topK largest and smallest, ties to the lower position, NaN last, values through gatherElements", async () => {
    const x = Tensor.from([[3, 1, 3, NaN, 2], [0, 5, 5, -1, 5]]);
    await checkCompiled((x) => {
      const top = apply("topK", [x], { k: 3, axis: 1, largest: true });
      const low = apply("topK", [x], { k: 4, axis: -1, largest: false });
      return { top, low, values: apply("gatherElements", [x, top], { axis: 1 }) };
    }, { x });
    const top = apply("topK", [x], { k: 3, axis: 1, largest: true });
    assert.deepEqual(Array.from(top.data, Number), [0, 2, 4, 1, 2, 4]);
    await checkCompiled((x) => apply("topK", [x], { k: 2, axis: 0, largest: true }), { x: randn(5, 3, 2) });
    await checkCompiled((n) => apply("topK", [n], { k: 2, axis: 0, largest: false }), { n: ints([4, -2, 9, 4, 0, 1], [3, 2]) });
  });

  test("gather along a late axis runs its row copies in a loop; out-of-range still reports", async () => {
    const idx = ints([4, 0, -1, 2, 2], [5]);
    await checkCompiled((x, i) => apply("gather", [x, i], { axis: 2 }), { x: randn(2, 3, 5, 2), i: idx });
  });

  test("an index out of range makes run() return status 2", async () => {
    const fn = (x: Tensor, i: Tensor) => apply("gatherElements", [x, i], { axis: 1 });
    const { wasm } = await compile(new FnModule(fn), { x: { shape: [2, 3], dtype: "float32" }, i: { shape: [2, 2], dtype: "int32" } });
    const model = await loadBlob(wasm);
    assert.throws(() => model.run({ x: new Float32Array(6), i: new Int32Array([0, 1, 3, 0]) }), /status 2/);
  });
});

test("int64 indices beyond int32's range are out of range, not wrapped: run() returns status 2", async () => {
  // what the ONNX importer builds for a Gather with int64 indices from a model input
  const model = new FnModule((data, idx) => ({ rows: apply("gather", [data, apply("cast", [idx], { to: "int32" })], { axis: 0 }), cols: apply("gatherElements", [data, apply("cast", [idx.reshape([1, 2])], { to: "int32" })], { axis: 1 }) }));
  const { wasm } = await compile(model, { data: [4, 3], idx: { shape: [2], dtype: "int64" } });
  const blob = await loadBlob(wasm, { source: "gather64.wasm" });
  const data = Float32Array.from({ length: 12 }, (_, i) => i);
  const good = blob.run({ data, idx: new BigInt64Array([1n, -1n]) });
  assert.deepEqual([...good.rows], [3, 4, 5, 9, 10, 11]);
  assert.deepEqual([...good.cols], [1, 2]);
  for (const bad of [2n ** 32n + 1n, 2n ** 62n, -(2n ** 32n), 2n ** 31n, -(2n ** 31n) - 1n]) {
    assert.throws(() => blob.run({ data, idx: new BigInt64Array([0n, bad]) }), /^Error: gather64\.wasm: run\(\) returned status 2 \(an index out of range in a gather\)$|status 2/, `index ${bad}`);
  }
});
