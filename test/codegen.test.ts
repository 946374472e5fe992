import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, loadBlob, manualSeed, nn, Tensor } from "../compiler/index.js";
import type { CompileResult } from "../compiler/compile.js";
import KWS, { inputs as kwsInputs } from "../examples/kws-dscnn.js";
import { FnModule, randn, SEED } from "./helpers/compiled.js";

/**
 * The kernel-library path (entry built directly as WebAssembly, linked with the kernels compiled once per
 * target) must make blobs that compute exactly what the asc path's blobs compute: same output bytes on fresh
 * random inputs, for kernel calls and for generated element-wise loops, SIMD and scalar.
 */

const bytesOf = (x: ArrayBufferView) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

async function outputs(res: CompileResult, feeds: Record<string, Float32Array>): Promise<Uint8Array[]> {
  const run = (await loadBlob(res.wasm)).run(feeds);
  return res.manifest.outputs.map((s) => bytesOf(run[s.name] as ArrayBufferView).slice());
}

/** kernels (conv, gemm, pooling) and fused element-wise chains with broadcasting, activations, vmath calls and a float comparison feeding where */
class Mixed extends nn.Module {
  conv = new nn.Conv2d(3, 5, 3, { padding: 1 });
  fc = new nn.Linear(5 * 3 * 3, 7);
  forward(x: Tensor, y: Tensor) {
    const h = this.conv.forward(x).maxPool2d(2).relu();
    const z = this.fc.forward(h.reshape([2, 5 * 3 * 3]));
    return z.add(y).sigmoid().mul(z).sub(y.exp()).div(z.abs().add(1)).maximum(y).tanh().sqrt().mul(9).round().add(z.floor()).sub(y.ceil()).add(Tensor.where(z.gt(y), z, y));
  }
}

describe(`code generation paths (seed ${SEED})`, () => {
  for (const target of ["wasm-simd", "wasm-scalar"]) {
    test(`${target}: kernel-library blobs give the asc blobs' output bytes`, async () => {
      manualSeed(SEED);
      const models = [
        { model: new KWS(), inputs: kwsInputs as Record<string, number[]> },
        { model: new Mixed(), inputs: { x: [2, 3, 6, 6], y: [1, 7] } },
      ];
      for (const { model, inputs } of models) {
        const linked = await compile(model, inputs, { target });
        const asc = await compile(model, inputs, { target, codegen: "asc" });
        assert.equal(linked.report.codegen.path, "kernel-library", `${model.constructor.name}: ${linked.report.codegen.reason}`);
        assert.equal(asc.report.codegen.path, "asc");
        assert.deepEqual(linked.manifest.memory, asc.manifest.memory, "same memory layout");
        const feeds = Object.fromEntries(Object.entries(inputs).map(([k, shape]) => [k, randn(...shape).data as Float32Array]));
        const [got, want] = [await outputs(linked, feeds), await outputs(asc, feeds)];
        assert.equal(got.length, want.length);
        got.forEach((g, i) => assert.ok(Buffer.from(g).equals(Buffer.from(want[i])), `${target} ${model.constructor.name}: output ${i} differs`));
      }
    });
  }

  // integers wrap to their type after every step (i8 and u8 overflow here), comparisons are signed or not by type
  const integerChain = (a: Tensor, b: Tensor) => Tensor.where(a.gt(b), a.mul(b).add(a), a.minimum(b).sub(b)).maximum(a.neg());
  for (const [dtype, Typed, span] of [["int32", Int32Array, 2 ** 32], ["int8", Int8Array, 256], ["uint8", Uint8Array, 256]] as const) {
    test(`wasm-scalar: ${dtype} element-wise loops are built directly and give the asc blob's bytes`, async () => {
      manualSeed(SEED);
      const inputs = { a: { shape: [3, 7], dtype }, b: { shape: [3, 7], dtype } };
      const linked = await compile(new FnModule(integerChain), inputs, { target: "wasm-scalar" });
      const asc = await compile(new FnModule(integerChain), inputs, { target: "wasm-scalar", codegen: "asc" });
      assert.equal(linked.report.codegen.path, "kernel-library", linked.report.codegen.reason);
      const random = () => Array.from(randn(3, 7).data as Float32Array, (v) => Math.floor(((v + 4) / 8) * span) - (dtype === "uint8" ? 0 : span / 2));
      const feeds = { a: Typed.from(random()), b: Typed.from(random()) };
      const [got, want] = [await outputs(linked, feeds as never), await outputs(asc, feeds as never)];
      assert.ok(Buffer.from(got[0]).equals(Buffer.from(want[0])), `${dtype}: output differs`);
    });
  }

  test("an entry the direct builder does not cover compiles with asc, and the report says why", async () => {
    manualSeed(SEED);
    const a = Int32Array.from({ length: 36 }, (_, i) => i * 7919 - 100000), b = Int32Array.from({ length: 36 }, (_, i) => (i % 5) - 7);
    const res = await compile(new FnModule((x: Tensor, y: Tensor) => x.div(y)), { a: { shape: [4, 9], dtype: "int32" }, b: { shape: [4, 9], dtype: "int32" } });
    assert.equal(res.report.codegen.path, "asc");
    assert.match(res.report.codegen.reason ?? "", /element-wise div over i32 is not built directly yet/);
    const got = (await loadBlob(res.wasm)).run({ a, b }).output as Int32Array;
    assert.deepEqual([...got], [...a].map((v, i) => Math.trunc(v / b[i])));
  });
});
