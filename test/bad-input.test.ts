import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, loadBlob, Tensor, TeenygradError } from "../compiler/index.js";
import { apply } from "../compiler/tensor/tensor.js";
import { loadTrainingBlob } from "../compiler/training/index.js";
import { FnModule } from "./helpers/compiled.js";
import { assemble, F, manifestFor, manifestSection, slot } from "./helpers/host-models.js";
import { findCorpus, runCase } from "../scripts/fuzz-case.js";
import { build } from "esbuild";
import { createContext, runInContext } from "node:vm";
import { onnxModel } from "./helpers/onnx-model.js";
import { BuiltinOperator } from "../compiler/import/tflite/schema/tflite_generated.js";
import { writeTflite } from "../compiler/import/tflite/writer.js";

/** Data-dependent faults in compiled kernels (run-time statuses) and their host-reference counterparts. */

const int32 = (values: number[]) => Tensor.from(new Int32Array(values), { shape: [values.length], dtype: "int32" });
const int64 = (values: bigint[]) => Tensor.from(new BigInt64Array(values), { shape: [values.length], dtype: "int64" });
const INT32_MIN = -(2 ** 31), INT32_MAX = 2 ** 31 - 1;
const values = (t: Tensor) => Array.from(t.data as Iterable<number | bigint>);

describe("integer division and float → integer casts: the blob and the host reference agree", () => {
  const arithmetic = (a: Tensor, b: Tensor, c: Tensor, d: Tensor, x: Tensor): Record<string, Tensor> => ({
    div: a.div(b), mod: apply("mod", [a, b], { fmod: false }), fmod: apply("mod", [a, b], { fmod: true }), div64: c.div(d),
    ...Object.fromEntries((["int8", "uint8", "int16", "int32", "int64"] as const).map((to) => [to, apply("cast", [x], { to })])),
  });
  const specials = [NaN, Infinity, -Infinity, 1e10, -1e10, 300.7, -300.7, -1.5, 200.5, 40000, -40000, 3e9];
  const inputs = {
    a: int32([7, -7, INT32_MIN, INT32_MIN, 5, INT32_MAX]), b: int32([2, 2, -1, 1, -3, -1]),
    c: int64([-(2n ** 63n), 9n, -9n]), d: int64([-1n, -4n, 4n]),
    x: Tensor.from(new Float32Array(specials), { shape: [specials.length] }),
  };
  // one compile, made by whichever test runs first
  let compiled: ReturnType<typeof loadBlob> | undefined;
  const blob = () => (compiled ??= compile(new FnModule(arithmetic), Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype }])), { target: "wasm-scalar" })
    .then((res) => loadBlob(res.wasm, { source: "arith.wasm" })));
  const data = (values: Record<string, Tensor>) => Object.fromEntries(Object.entries(values).map(([k, t]) => [k, t.data]));

  test("MIN / -1 wraps to MIN in both; casts truncate, saturate at the type's range, NaN gives 0", async () => {
    const model = await blob();
    const got = model.run(data(inputs));
    const expected = arithmetic(...(Object.values(inputs) as [Tensor, Tensor, Tensor, Tensor, Tensor]));
    for (const [name, ref] of Object.entries(expected)) assert.deepEqual(Array.from(got[name], String), Array.from(ref.data, String), name);
    assert.deepEqual(values(expected.div), [3, -3, INT32_MIN, INT32_MIN, -1, -INT32_MAX]);
    assert.deepEqual(values(expected.div64), [-(2n ** 63n), -2n, -2n]);
    assert.deepEqual(values(expected.int32), [0, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, 300, -300, -1, 200, 40000, -40000, INT32_MAX]);
    assert.deepEqual(values(expected.int8), [0, 127, -128, 127, -128, 127, -128, -1, 127, 127, -128, 127]);
    assert.deepEqual(values(expected.uint8), [0, 255, 0, 255, 0, 255, 0, 0, 200, 255, 0, 255]);
    assert.deepEqual(values(expected.int16), [0, 32767, -32768, 32767, -32768, 300, -300, -1, 200, 32767, -32768, 32767]);
    assert.deepEqual(values(expected.int64).slice(0, 5), [0n, 2n ** 63n - 1n, -(2n ** 63n), 10000000000n, -10000000000n]);
  });

  test("an integer division or remainder by zero: run() returns status 5, the host reference refuses it", async () => {
    const model = await blob();
    for (const [name, zeroed] of [["b", { b: int32([2, 2, 0, 1, -3, -1]) }], ["d", { d: int64([-1n, 0n, 4n]) }]] as const) {
      assert.throws(() => model.run(data({ ...inputs, ...zeroed })), (e: Error) => e instanceof TeenygradError && /returned status 5 \(an integer division or remainder by zero\)/.test(e.message), `zero in ${name}`);
    }
    // the blob is usable again after the status
    assert.equal(model.run(data(inputs)).div[0], 3);
    for (const op of [(a: Tensor, b: Tensor) => a.div(b), (a: Tensor, b: Tensor) => apply("mod", [a, b], { fmod: true })]) {
      assert.throws(() => op(int32([1, 2]), int32([1, 0])), (e: Error) => e instanceof TeenygradError && /int32 division by zero/.test(e.message));
    }
    assert.deepEqual(values(Tensor.from([1, -1, 0]).div(Tensor.from([0, 0, 0]))), [Infinity, -Infinity, NaN]);
  });
});

describe("sizes a wasm32 blob cannot hold are refused before code generation, naming the op, node and shapes", () => {
  const refused = (fn: (x: Tensor) => Tensor, shape: number[], pattern: RegExp) =>
    assert.rejects(compile(new FnModule(fn), { x: shape }), (e: Error) => e instanceof TeenygradError && pattern.test(e.message), String(pattern));
  test("a 1e15 stride, a 2^32-element input, an expand to 2^33 elements", async () => {
    await refused((x) => x.maxPool2d(2, { stride: 1e15 }), [1, 1, 8, 8], /^node maxpool2d \(maxpool2d: float32\[1, 1, 8, 8\] -> float32\[1, 1, 1, 1\]\): maxpool2d\(\) would take the constant 1000000000000000, which does not fit/);
    await refused((x) => x.relu(), [70000, 70000], /^input 'x' float32\[70000, 70000\] takes 19600000000 bytes, more than the 4 GiB/);
    await refused((x) => x.expand([65536, 65536, 2]).sum(), [1], /^node expand \(expand: float32\[1\] -> float32\[65536, 65536, 2\]\): its output .* more than the 4 GiB/);
  });
});

describe("loadTrainingBlob checks a blob as loadBlob does, and its training manifest too", () => {
  const training = {
    inputs: [slot("x", 0, 4), slot("label", 16, 1, "int32")], outputs: [slot("loss", 32, 1), slot("output", 48, 4)],
    parameters: [{ ...slot("w", 64, 4), trainable: true }], optimizerState: [slot("w.momentum", 80, 4)],
    control: { step: 96, lr: 100 }, optimizer: { kind: "sgd" },
  };
  /** run() and train_step() that return 0 (train_step counts its steps), with the given manifest and extra WAT */
  const trainingBlob = (manifest: object, extra = "", exportsTrainStep = true) => assemble(`(module ${extra}
    (memory (export "memory") 1 1)
    (func (export "run") (result i32) (i32.const 0))
    (func ${exportsTrainStep ? '(export "train_step")' : ""} (result i32)
      (f32.store (i32.const 96) (f32.add (f32.load (i32.const 96)) (f32.const 1))) (i32.const 0)))`, F.MVP, manifestSection(manifest));
  const base = { ...manifestFor({ inputs: [slot("x", 0, 4)], outputs: [slot("output", 48, 4)], pages: 1 }) };
  const refused = (bytes: Uint8Array, pattern: RegExp) =>
    assert.rejects(loadTrainingBlob(bytes, "t.wasm"), (e: Error) => e instanceof TeenygradError && /^t\.wasm: |^bad manifest \(t\.wasm\)/.test(e.message) && pattern.test(e.message), String(pattern));

  test("a well-formed blob loads and steps; corrupt manifests, imports and missing exports are clear errors", async () => {
    const blob = await loadTrainingBlob(trainingBlob({ ...base, training }), "t.wasm");
    blob.trainStep({ x: new Float32Array(4), label: new Int32Array(1) });
    assert.equal(blob.steps, 1);
    await refused(trainingBlob({ ...base, training: [] }), /"training" must be an object/);
    await refused(trainingBlob({ ...base, training: { ...training, parameters: [{ ...slot("w", 65536, 4), trainable: true }] } }), /parameter "w" at \[65536, 65552\) lies outside the 65536-byte memory/);
    await refused(trainingBlob({ ...base, training: { ...training, parameters: [slot("w", 64, 4)] } }), /training\.parameters\[0\] "w": trainable must be true or false/);
    await refused(trainingBlob({ ...base, training: { ...training, outputs: [slot("output", 48, 4)] } }), /no train_step\(\) output "loss"/);
    await refused(trainingBlob({ ...base, training: { ...training, optimizerState: [{ ...slot("m", 8, 4), dtype: "bfloat16" }] } }), /training\.optimizerState\[0\] "m": unknown dtype "bfloat16"/);
    await refused(trainingBlob({ ...base, training: { ...training, control: { step: 96, lr: 102 } } }), /control scalar "lr" at 102 is not an aligned f32/);
    await refused(trainingBlob({ ...base, training: { ...training, control: { step: 96 } } }), /training\.control\.lr must be a non-negative integer/);
    await refused(trainingBlob({ ...base, training }, '(import "env" "log" (func (param i32)))'), /blob imports env\.log \(function\)/);
    await refused(trainingBlob({ ...base, training }, "", false), /does not export a train_step\(\) function/);
    await refused(trainingBlob({ ...base, flavour: "wasi", training }), /runs only as a WASI command/);
  });
});

describe("a fixed-seed slice of `npm run fuzz`", () => {
  const corpus = findCorpus();
  const absent = corpus.onnx.length + corpus.tflite.length === 0 && "no model files in $TEENYGRAD_DATA or ../shared/data";
  test("150 mutated real .onnx/.tflite files: each plans or ends in a TeenygradError", { skip: absent }, () => {
    const results = Array.from({ length: 150 }, (_, i) => runCase(corpus, 14, i));
    const bad = results.filter((r) => r.outcome !== "planned" && r.outcome !== "TeenygradError");
    assert.deepEqual(bad, []);
    // most mutations must be refused, not silently imported
    assert.ok(results.filter((r) => r.outcome === "TeenygradError").length > results.length / 2);
  });
});

test("ONNX and TFLite import from bytes need no Node built-ins: bundled for the browser, run where there is no process or require", async () => {
  const bundle = await build({
    stdin: { contents: "export { importOnnx } from './compiler/import/onnx/index.js'; export { importTfliteModel } from './compiler/import/tflite/index.js';", resolveDir: new URL("..", import.meta.url).pathname, loader: "ts" },
    bundle: true, platform: "browser", format: "iife", globalName: "teenygrad", write: false, logLevel: "silent",
  });
  const page = createContext({ TextDecoder, TextEncoder });
  runInContext(`${bundle.outputFiles[0].text}; globalThis.teenygrad = teenygrad;`, page);
  // the bytes as the page's own Uint8Array, as a browser's fetch() would give them
  const inPage = (bytes: Uint8Array): Uint8Array => {
    const copy = runInContext(`new Uint8Array(${bytes.length})`, page) as Uint8Array;
    copy.set(bytes);
    return copy;
  };
  const onnx = onnxModel({ inputs: [{ name: "x", shape: [2, 3] }], outputs: [{ name: "y", shape: [2, 3] }], nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"] }] });
  const tflite = writeTflite({ tensors: [{ name: "x", shape: [1, 4] }, { name: "y", shape: [1, 4] }], operators: [{ op: BuiltinOperator.RELU, inputs: [0], outputs: [1] }], inputs: [0], outputs: [1] });
  assert.equal(runInContext("typeof process + typeof require", page), "undefinedundefined");
  const fromOnnx = page.teenygrad.importOnnx(inPage(onnx), { source: "relu.onnx" });
  assert.equal(fromOnnx.graph.nodes.map((n: { op: string }) => n.op).join(), "relu");
  const fromTflite = page.teenygrad.importTfliteModel(inPage(tflite), { source: "relu.tflite" });
  assert.equal(fromTflite.graph.nodes.map((n: { op: string }) => n.op).join(), "relu");
});
