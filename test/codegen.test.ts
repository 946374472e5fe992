import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, loadBlob, manualSeed, nn, Tensor } from "../compiler/index.js";
import type { CompileResult } from "../compiler/compile.js";
import KWS, { inputs as kwsInputs } from "../examples/kws-dscnn.js";
import { apply } from "../compiler/tensor/tensor.js";
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

  // division and remainder (MIN / -1 included), abs, sign, bits and shifts: every integer type of the direct loops
  const integerOps = (a: Tensor, b: Tensor, dtype: string) => ({
    quotient: a.div(b),
    floorMod: apply("mod", [a, b], { fmod: false }),
    fmod: apply("mod", [a, b], { fmod: true }),
    abs: a.abs(),
    sign: b.sign(),
    bits: apply("bitwiseXor", [apply("bitwiseAnd", [a, b], {}), apply("bitwiseNot", [apply("bitwiseOr", [a, b], {})], {})], {}),
    ...(dtype.startsWith("uint") ? { shifted: apply("shiftLeft", [apply("shiftRight", [a, b], {}), b], {}) } : {}),
  });
  const ranges = { int8: [Int8Array, -128, 256], uint8: [Uint8Array, 0, 256], int16: [Int16Array, -32768, 65536], uint16: [Uint16Array, 0, 65536], int32: [Int32Array, -(2 ** 31), 2 ** 32], uint32: [Uint32Array, 0, 2 ** 32] } as const;
  for (const [dtype, [Typed, min, span]] of Object.entries(ranges)) {
    test(`wasm-scalar: ${dtype} division, remainder, abs, sign, bits and shifts are built directly and give the asc blob's bytes; a zero divisor is status 5 on both`, async () => {
      manualSeed(SEED);
      const inputs = { a: { shape: [4, 9], dtype }, b: { shape: [4, 9], dtype } } as never;
      const fn = (a: Tensor, b: Tensor) => integerOps(a, b, dtype);
      const linked = await compile(new FnModule(fn), inputs, { target: "wasm-scalar" });
      const asc = await compile(new FnModule(fn), inputs, { target: "wasm-scalar", codegen: "asc" });
      assert.equal(linked.report.codegen.path, "kernel-library", linked.report.codegen.reason);
      const random = () => Array.from(randn(4, 9).data as Float32Array, (v) => Math.floor(((v + 4) / 8) * span) + min);
      // the extremes and -1 (MIN / -1 wraps), small shift amounts beside too large ones; no zero divisor
      const a = Typed.from([min, min + span - 1, ...random().slice(2)]), b = Typed.from([-1, -1, 1, 3, 7, 40, ...random().slice(6)].map((v) => v || 1));
      const [got, want] = [await outputs(linked, { a, b } as never), await outputs(asc, { a, b } as never)];
      got.forEach((g, i) => assert.ok(Buffer.from(g).equals(Buffer.from(want[i])), `${dtype}: output ${linked.manifest.outputs[i].name} differs`));
      b[5] = 0;
      for (const res of [linked, asc]) {
        const blob = await loadBlob(res.wasm);
        assert.throws(() => blob.run({ a, b } as never), /status 5/, `${res.report.codegen.path}: a zero divisor`);
      }
    });
  }

  test("float32 to integer casts saturate alike on both paths (NaN, infinities, out of range)", async () => {
    const special = [NaN, Infinity, -Infinity, 1e10, -1e10, 127.9, -128.5, 255.5, 300, -0.7, 0.7, 32767.5, -32769, 2 ** 31, -(2 ** 31) - 1e3, 0];
    const fn = (x: Tensor) => Object.fromEntries(["int8", "uint8", "int16", "int32", "bool"].map((to) => [to, apply("cast", [x], { to })]));
    const inputs = { x: [special.length] };
    const linked = await compile(new FnModule(fn), inputs, { target: "wasm-scalar" });
    const asc = await compile(new FnModule(fn), inputs, { target: "wasm-scalar", codegen: "asc" });
    assert.equal(linked.report.codegen.path, "kernel-library", linked.report.codegen.reason);
    const feeds = { x: Float32Array.from(special) };
    const [got, want] = [await outputs(linked, feeds), await outputs(asc, feeds)];
    got.forEach((g, i) => assert.ok(Buffer.from(g).equals(Buffer.from(want[i])), `cast to ${linked.manifest.outputs[i].name} differs`));
  });

  test("an entry the direct builder does not cover compiles with asc, and the report says why", async () => {
    manualSeed(SEED);
    const a = Float64Array.from({ length: 36 }, (_, i) => i * 7919.5 - 100000), b = Float64Array.from({ length: 36 }, (_, i) => (i % 5) - 7.25);
    const res = await compile(new FnModule((x: Tensor, y: Tensor) => x.div(y)), { a: { shape: [4, 9], dtype: "float64" }, b: { shape: [4, 9], dtype: "float64" } });
    assert.equal(res.report.codegen.path, "asc");
    assert.match(res.report.codegen.reason ?? "", /an element-wise loop over float64/);
    const got = (await loadBlob(res.wasm)).run({ a, b }).output as Float64Array;
    assert.deepEqual([...got], [...a].map((v, i) => v / b[i]));
  });
});
