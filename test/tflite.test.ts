import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type * as flatbuffers from "flatbuffers";
import { compile, Generator, loadBlob, TeenygradError } from "../compiler/index.js";
import { importTfliteModel, quantize, type TfliteImport } from "../compiler/import/tflite/index.js";
import { findLitertPython, randomTfliteInputs, runLitert, runLitertMany } from "../compiler/import/tflite/litert.js";
import { findMlperfDir, MLPERF_MODELS, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";
import {
  ActivationFunctionType, AddOptions, BuiltinOperator, BuiltinOptions, ConcatenationOptions, Conv2DOptions, DepthwiseConv2DOptions,
  FullyConnectedOptions, FullyConnectedOptionsWeightsFormat, MulOptions, Padding, Pool2DOptions, ReducerOptions, SoftmaxOptions,
  StridedSliceOptions, TensorType,
} from "../compiler/import/tflite/schema/tflite_generated.js";
import { float32Bytes, int32Bytes, writeTflite, type ModelSpec } from "../compiler/import/tflite/writer.js";
import { relError, SEED } from "./helpers/compiled.js";

/**
 * The TFLite importer against the TFLite interpreter (ai-edge-litert's builtin kernels): every MLPerf Tiny
 * reference model compiles and gives the interpreter's outputs on seeded random inputs (float32: 1e-4 relative;
 * int8: the same integers, on integer kernels, over 20 seeds), and synthetic models cover the NHWC ops the MLPerf
 * models do not use.
 * The models and the interpreter are found outside the repository; missing ones skip with a message, or fail
 * under CI.
 */

const CI = Boolean(process.env.CI);
const INT8_RUNS = 20;
const dataDir = findMlperfDir();
const python = findLitertPython();
const skipData = !dataDir && !CI && `MLPerf Tiny models not found (${MLPERF_WHERE})`;
const skipLitert = !python && !CI && "TFLite interpreter not installed: npm run litert";

/** Compiles the import, runs it in Node and in the interpreter; returns the worst float error and int8 step. */
async function compareWithInterpreter(path: string, imp: TfliteImport, seed: number) {
  const { wasm, report } = await compile(imp.graph, {}, { name: path });
  const { blob, reference } = randomTfliteInputs(imp, seed);
  const ours = (await loadBlob(wasm)).run(blob);
  const theirs = runLitert(path, reference);
  assert.deepEqual(theirs.inputs.map((t) => t.name), imp.inputs.map((t) => t.name), "input order");
  let floatError = 0, steps = 0;
  imp.outputs.forEach((io, k) => {
    const got = ours[io.name] as Float32Array;
    assert.ok(got, `output ${io.name} missing`);
    assert.deepEqual(theirs.values[k].shape, io.shape, `${io.name}: shape`);
    const ref = theirs.values[k].data;
    if (io.dtype === "int8") {
      for (let i = 0; i < got.length; i++) steps = Math.max(steps, Math.abs(got[i] - Number(ref[i])));
    } else if (io.quantization) {
      const q = quantize(io, got);
      for (let i = 0; i < q.length; i++) steps = Math.max(steps, Math.abs(q[i] - Number(ref[i])));
    } else floatError = Math.max(floatError, relError(got, ref as Float32Array));
  });
  return { floatError, steps, report };
}

describe(`TFLite import: MLPerf Tiny models against the TFLite interpreter (seed ${SEED})`, () => {
  test("models and interpreter are present (required under CI)", { skip: skipData || skipLitert }, () => {
    assert.ok(dataDir, `CI needs the MLPerf Tiny models in ${MLPERF_WHERE}`);
    assert.ok(python, "CI needs the TFLite interpreter: npm run litert");
  });

  for (const m of MLPERF_MODELS.filter((m) => m.quantized)) {
    test(`${m.file} (${m.about}, int8): integer kernels, bit-exact over ${INT8_RUNS} seeds`, { skip: skipData || skipLitert }, async () => {
      const path = join(dataDir!, m.file);
      const imp = importTfliteModel(new Uint8Array(readFileSync(path)), { source: m.file });
      assert.equal(imp.quantized, true);
      assert.match(imp.notes.join("\n"), /on int8 integer kernels/);
      assert.doesNotMatch(imp.notes.join("\n"), /emulated/, "every operator runs on an integer kernel");
      assert.ok([...imp.inputs, ...imp.outputs].every((io) => io.dtype === "int8"), "the blob's interface is int8");
      const { wasm } = await compile(imp.graph, {}, { name: m.file });
      const model = await loadBlob(wasm);
      const sets = Array.from({ length: INT8_RUNS }, (_, r) => randomTfliteInputs(imp, SEED + r));
      const theirs = runLitertMany(path, sets.map((s) => s.reference));
      sets.forEach((set, r) => {
        const ours = model.run(set.blob);
        imp.outputs.forEach((io, k) => {
          assert.deepEqual(Array.from(ours[io.name] as Int8Array), Array.from(theirs.runs[r][k].data as Int8Array), `${m.file} ${io.name}, seed ${SEED + r}`);
        });
      });
    });
  }
  for (const m of MLPERF_MODELS) {
    test(`${m.file} (${m.about}${m.quantized ? ", int8 emulated in float32" : ""})`, { skip: skipData || skipLitert }, async () => {
      const path = join(dataDir!, m.file);
      const imp = importTfliteModel(new Uint8Array(readFileSync(path)), { source: m.file, quantized: "dequantize" });
      assert.equal(imp.quantized, m.quantized);
      if (m.quantized) assert.match(imp.notes.join("\n"), /emulated in float32 as requested/);
      const { floatError, steps, report } = await compareWithInterpreter(path, imp, SEED);
      if (m.quantized) assert.ok(steps <= 1, `${m.file}: ${steps} quantization steps from the int8 interpreter (seed ${SEED})`);
      else {
        // hybrid ops re-quantize their float input at run time: a last-bit difference from the interpreter's summation
        // order can round one element to the next int8 step (seen: 1.5e-4 for seed 644893088; usually ~1e-7)
        const hybrid = imp.notes.some((n) => /hybrid operator/.test(n));
        assert.ok(floatError <= (hybrid ? 1e-3 : 1e-4), `${m.file}: relative error ${floatError} (seed ${SEED})`);
      }
      assert.ok(report.arena.bytes > 0 && report.weightsBytes > 0 && report.codeBytes > 0);
    });
  }
});

// --- synthetic models ---------------------------------------------------------------------------------
const rng = new Generator(20240611);
const weights = (n: number) => float32Bytes(Array.from({ length: n }, () => rng.next() - 0.5));
const options = <T>(type: BuiltinOptions, build: (b: flatbuffers.Builder) => T) => (b: flatbuffers.Builder): [BuiltinOptions, number] => [type, build(b) as number];

/**
 * NHWC semantics the MLPerf models do not exercise: conv + depthwise with SAME padding and strides, a per-channel
 * constant broadcast, a residual add, max pooling, PAD, channel CONCAT, MEAN over H and W, STRIDED_SLICE with a
 * step along channels, TRANSPOSE to a non-NHWC rank-4 output, FULLY_CONNECTED and SOFTMAX.
 */
function nhwcOpsModel(): ModelSpec {
  const t = (name: string, shape: number[], data?: Uint8Array, type?: TensorType) => ({ name, shape, data, type });
  return {
    tensors: [
      t("x", [1, 8, 7, 3]), // 0
      t("conv/w", [4, 3, 3, 3], weights(108)), t("conv/b", [4], weights(4)), t("conv", [1, 4, 4, 4]), // 1-3
      t("dw/w", [1, 3, 3, 4], weights(36)), t("dw/b", [4], weights(4)), t("dw", [1, 4, 4, 4]), // 4-6
      t("scale", [4], weights(4)), t("scaled", [1, 4, 4, 4]), t("residual", [1, 4, 4, 4]), // 7-9
      t("pool", [1, 2, 2, 4]), t("paddings", [4, 2], int32Bytes([0, 0, 1, 0, 0, 1, 0, 0]), TensorType.INT32), t("padded", [1, 3, 3, 4]), // 10-12
      t("concat", [1, 3, 3, 8]), t("axes", [2], int32Bytes([1, 2]), TensorType.INT32), t("mean", [1, 8]), // 13-15
      t("begin", [4], int32Bytes([0, 0, 1, 0]), TensorType.INT32), t("end", [4], int32Bytes([1, 3, 3, 8]), TensorType.INT32),
      t("strides", [4], int32Bytes([1, 2, 1, 3]), TensorType.INT32), t("sliced", [1, 2, 2, 3]), // 16-19
      t("perm", [4], int32Bytes([0, 3, 1, 2]), TensorType.INT32), t("transposed", [1, 3, 2, 2]), // 20-21
      t("flat", [1, 12]), t("features", [1, 20]), t("fc/w", [5, 20], weights(100)), t("fc/b", [5], weights(5)), // 22-25
      t("logits", [1, 5]), t("probs", [1, 5]), t("flat/shape", [2], int32Bytes([1, 12]), TensorType.INT32), // 26-28
    ],
    operators: [
      { op: BuiltinOperator.CONV_2D, inputs: [0, 1, 2], outputs: [3], options: options(BuiltinOptions.Conv2DOptions, (b) => Conv2DOptions.createConv2DOptions(b, Padding.SAME, 2, 2, ActivationFunctionType.RELU6, 1, 1, TensorType.FLOAT32)) },
      { op: BuiltinOperator.DEPTHWISE_CONV_2D, inputs: [3, 4, 5], outputs: [6], options: options(BuiltinOptions.DepthwiseConv2DOptions, (b) => DepthwiseConv2DOptions.createDepthwiseConv2DOptions(b, Padding.SAME, 1, 1, 1, ActivationFunctionType.RELU, 1, 1)) },
      { op: BuiltinOperator.MUL, inputs: [6, 7], outputs: [8], options: options(BuiltinOptions.MulOptions, (b) => MulOptions.createMulOptions(b, ActivationFunctionType.NONE)) },
      { op: BuiltinOperator.ADD, inputs: [8, 3], outputs: [9], options: options(BuiltinOptions.AddOptions, (b) => AddOptions.createAddOptions(b, ActivationFunctionType.NONE, true)) },
      { op: BuiltinOperator.MAX_POOL_2D, inputs: [9], outputs: [10], options: options(BuiltinOptions.Pool2DOptions, (b) => Pool2DOptions.createPool2DOptions(b, Padding.VALID, 2, 2, 2, 2, ActivationFunctionType.NONE)) },
      { op: BuiltinOperator.PAD, inputs: [10, 11], outputs: [12] },
      { op: BuiltinOperator.CONCATENATION, inputs: [12, 12], outputs: [13], options: options(BuiltinOptions.ConcatenationOptions, (b) => ConcatenationOptions.createConcatenationOptions(b, 3, ActivationFunctionType.NONE)) },
      { op: BuiltinOperator.MEAN, inputs: [13, 14], outputs: [15], options: options(BuiltinOptions.ReducerOptions, (b) => ReducerOptions.createReducerOptions(b, false)) },
      { op: BuiltinOperator.STRIDED_SLICE, inputs: [13, 16, 17, 18], outputs: [19], options: options(BuiltinOptions.StridedSliceOptions, (b) => StridedSliceOptions.createStridedSliceOptions(b, 0, 0, 0, 0, 0, false)) },
      { op: BuiltinOperator.TRANSPOSE, inputs: [19, 20], outputs: [21] },
      { op: BuiltinOperator.RESHAPE, inputs: [21, 28], outputs: [22] },
      { op: BuiltinOperator.CONCATENATION, inputs: [15, 22], outputs: [23], options: options(BuiltinOptions.ConcatenationOptions, (b) => ConcatenationOptions.createConcatenationOptions(b, 1, ActivationFunctionType.NONE)) },
      { op: BuiltinOperator.FULLY_CONNECTED, inputs: [23, 24, 25], outputs: [26], options: options(BuiltinOptions.FullyConnectedOptions, (b) => FullyConnectedOptions.createFullyConnectedOptions(b, ActivationFunctionType.NONE, FullyConnectedOptionsWeightsFormat.DEFAULT, false, false, TensorType.FLOAT32)) },
      { op: BuiltinOperator.SOFTMAX, inputs: [26], outputs: [27], options: options(BuiltinOptions.SoftmaxOptions, (b) => SoftmaxOptions.createSoftmaxOptions(b, 1)) },
    ],
    inputs: [0],
    outputs: [27, 21],
  };
}

/**
 * int8 ops that had no integer kernel at first: LOGISTIC and TANH (tables), MUL of two activations and of an
 * activation by a per-channel constant, MEAN over H and W (of an NHWC input, and of a conv's NCHW output) and over
 * channels. Every output is int8.
 */
function int8ElementwiseModel(): ModelSpec {
  const q = (scale: number, zeroPoint: number) => ({ scale: [scale], zeroPoint: [zeroPoint] });
  const int8 = (name: string, shape: number[], quantization: { scale: number[]; zeroPoint: number[] }, data?: Uint8Array) => ({ name, shape, type: TensorType.INT8, quantization, data });
  const bytes = (n: number, lo: number, hi: number) => Uint8Array.from({ length: n }, () => (lo + Math.floor(rng.next() * (hi - lo + 1))) & 255);
  const axes = (name: string, values: number[]) => ({ name, shape: [values.length], type: TensorType.INT32, data: int32Bytes(values) });
  const reducer = (keep: boolean) => options(BuiltinOptions.ReducerOptions, (b) => ReducerOptions.createReducerOptions(b, keep));
  const mul = options(BuiltinOptions.MulOptions, (b) => MulOptions.createMulOptions(b, ActivationFunctionType.NONE));
  return {
    tensors: [
      int8("x", [1, 5, 7, 16], q(0.0731, 5)), // 0
      int8("sigmoid", [1, 5, 7, 16], q(1 / 256, -128)), int8("tanh", [1, 5, 7, 16], q(1 / 128, 0)), int8("product", [1, 5, 7, 16], q(0.0042, -9)), // 1-3
      int8("channel_scale", [16], q(0.013, 2), bytes(16, -128, 127)), int8("scaled", [1, 5, 7, 16], q(0.061, 4)), // 4-5
      axes("hw", [1, 2]), int8("mean_hw", [1, 16], q(0.0031, -3)), int8("mean_flat", [1, 16], q(0.027, 11)), // 6-8
      axes("c", [3]), int8("mean_c", [1, 5, 7], q(0.05, -2)), // 9-10
      int8("conv/w", [8, 1, 1, 16], { scale: [0.011], zeroPoint: [0] }, bytes(128, -127, 127)),
      { name: "conv/b", shape: [8], type: TensorType.INT32, data: int32Bytes(Array.from({ length: 8 }, () => Math.floor(rng.next() * 2000) - 1000)) },
      int8("conv", [1, 5, 7, 8], q(0.093, -7)), int8("conv_mean", [1, 8], q(0.041, 6)), int8("conv_sigmoid", [1, 5, 7, 8], q(1 / 256, -128)), // 11-15
    ],
    operators: [
      { op: BuiltinOperator.LOGISTIC, inputs: [0], outputs: [1] },
      { op: BuiltinOperator.TANH, inputs: [0], outputs: [2] },
      { op: BuiltinOperator.MUL, inputs: [1, 2], outputs: [3], options: mul },
      { op: BuiltinOperator.MUL, inputs: [4, 0], outputs: [5], options: mul },
      { op: BuiltinOperator.MEAN, inputs: [3, 6], outputs: [7], options: reducer(false) },
      { op: BuiltinOperator.MEAN, inputs: [5, 6], outputs: [8], options: reducer(false) },
      { op: BuiltinOperator.MEAN, inputs: [0, 9], outputs: [10], options: reducer(false) },
      { op: BuiltinOperator.CONV_2D, inputs: [0, 11, 12], outputs: [13], options: options(BuiltinOptions.Conv2DOptions, (b) => Conv2DOptions.createConv2DOptions(b, Padding.VALID, 1, 1, ActivationFunctionType.NONE, 1, 1, TensorType.INT8)) },
      { op: BuiltinOperator.MEAN, inputs: [13, 6], outputs: [14], options: reducer(false) },
      { op: BuiltinOperator.LOGISTIC, inputs: [13], outputs: [15] },
    ],
    inputs: [0],
    outputs: [3, 7, 8, 10, 14, 15],
  };
}

describe("TFLite import: synthetic models", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "teenygrad-tflite-test-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("NHWC semantics of conv, depthwise, broadcast, pool, pad, concat, mean, strided slice, transpose, FC, softmax match the interpreter", { skip: skipLitert }, async () => {
    const bytes = writeTflite(nhwcOpsModel());
    const path = join(dir, "nhwc-ops.tflite");
    writeFileSync(path, bytes);
    const imp = importTfliteModel(bytes, { source: path });
    assert.deepEqual(imp.outputs.map((o) => [o.name, o.shape]), [["probs", [1, 5]], ["transposed", [1, 3, 2, 2]]]);
    for (const seed of [SEED, SEED + 1]) {
      const { floatError } = await compareWithInterpreter(path, imp, seed);
      assert.ok(floatError <= 1e-5, `relative error ${floatError} (seed ${seed})`);
    }
  });

  test("one error lists every unsupported operator with its type, count and output names", () => {
    const model = nhwcOpsModel();
    const t = model.tensors.length;
    model.tensors.push({ name: "lstm_a", shape: [1, 5] }, { name: "lstm_b", shape: [1, 5] }, { name: "custom_out", shape: [1, 5] }, { name: "signbit", shape: [1, 4, 4, 4] });
    model.operators.push(
      { op: BuiltinOperator.LSTM, inputs: [27], outputs: [t] },
      { op: BuiltinOperator.LSTM, inputs: [t], outputs: [t + 1] },
      { op: BuiltinOperator.CUSTOM, customCode: "MyDetector", inputs: [t + 1], outputs: [t + 2] },
      { op: BuiltinOperator.CONV_2D, inputs: [3, 1, 2], outputs: [t + 3], options: options(BuiltinOptions.Conv2DOptions, (b) => Conv2DOptions.createConv2DOptions(b, Padding.SAME, 1, 1, ActivationFunctionType.SIGN_BIT, 1, 1, TensorType.FLOAT32)) },
    );
    assert.throws(() => importTfliteModel(writeTflite(model), { source: "bad.tflite" }), (e: unknown) => {
      assert.ok(e instanceof TeenygradError, String(e));
      assert.match(e.message, /^bad\.tflite: cannot import 4 operators \(3 kinds\)/);
      assert.match(e.message, /LSTM ×2: operators #14 \('lstm_a'\), #15 \('lstm_b'\)/);
      assert.match(e.message, /CUSTOM:MyDetector ×1: operator #16 \('custom_out'\)/);
      assert.match(e.message, /CONV_2D with fused activation SIGN_BIT ×1: operator #17 \('signbit'\)/);
      return true;
    });
  });

  test("a quantized model runs on integer kernels with an int8 interface (hand-computed), emulated in float32 on request, or is refused", async () => {
    const q = { scale: [0.05], zeroPoint: [3] };
    const bytes = writeTflite({
      tensors: [
        { name: "in", shape: [1, 4], type: TensorType.INT8, quantization: q },
        { name: "w", shape: [2, 4], type: TensorType.INT8, data: new Uint8Array([1, 2, 3, 4, 255, 254, 253, 252]), quantization: { scale: [0.1, 0.2], zeroPoint: [0, 0], axis: 0 } },
        { name: "out", shape: [1, 2], type: TensorType.INT8, quantization: { scale: [0.25], zeroPoint: [-1] } },
      ],
      operators: [{ op: BuiltinOperator.FULLY_CONNECTED, inputs: [0, 1, -1], outputs: [2] }],
      inputs: [0],
      outputs: [2],
    });
    const imp = importTfliteModel(bytes);
    assert.equal(imp.quantized, true);
    assert.match(imp.notes[0], /quantized model \(INT8\): on int8 integer kernels: FULLY_CONNECTED ×1/);
    assert.deepEqual(imp.inputs[0], { name: "in", shape: [1, 4], dtype: "int8", tfliteType: "INT8", quantization: { scale: Math.fround(0.05), zeroPoint: 3, min: -128, max: 127 } });
    assert.equal(imp.outputs[0].dtype, "int8");
    // int8 weights as stored; q − 3 = [10, 0, 20, −10]: accumulators 30 and −30, multipliers 0.05·0.1/0.25 = 0.02 and 0.04,
    // so 0.6 → 1 and −1.2 → −1, plus the output zero point −1
    assert.deepEqual(Array.from(imp.graph.constants().find((v) => v.name === "w")!.data as Int8Array), [1, 2, 3, 4, -1, -2, -3, -4]);
    const { wasm, manifest } = await compile(imp.graph, {}, { name: "q.tflite" });
    const model = await loadBlob(wasm);
    assert.deepEqual(Array.from(model.run({ in: Int8Array.from([13, 3, 23, -7]) }).out as Int8Array), [0, -2]);
    // the manifest carries the int8 grids; runReal quantizes real inputs and dequantizes the outputs on the host
    assert.deepEqual([manifest.inputs[0].quantization, manifest.outputs[0].quantization], [{ scale: Math.fround(0.05), zeroPoint: 3 }, { scale: 0.25, zeroPoint: -1 }]);
    assert.deepEqual(Array.from(model.runReal({ in: [0.5, 0.01, 1.0, -0.5] }).out as Float32Array), [0.25, -0.25]);
    // emulated: float32 real-valued inputs and outputs, the weights centered (and transposed for the matmul)
    const emulated = importTfliteModel(bytes, { quantized: "dequantize" });
    assert.match(emulated.notes[0], /emulated in float32 as requested/);
    assert.equal(emulated.inputs[0].dtype, "float32");
    assert.deepEqual(Array.from(emulated.graph.constants().find((v) => v.name === "w")!.data as Float32Array), [1, -1, 2, -2, 3, -3, 4, -4]);
    assert.throws(() => importTfliteModel(bytes, { quantized: "refuse", source: "q.tflite" }), /q\.tflite: the model is quantized .*refused/);
  });

  test("int8 LOGISTIC, TANH, MUL (same shape, broadcast constant) and MEAN (NHWC and NCHW) on integer kernels, bit-exact with the interpreter", { skip: skipLitert }, async () => {
    const bytes = writeTflite(int8ElementwiseModel());
    const path = join(dir, "int8-elementwise.tflite");
    writeFileSync(path, bytes);
    const imp = importTfliteModel(bytes, { source: path });
    const notes = imp.notes.join("\n");
    assert.match(notes, /on int8 integer kernels: .*LOGISTIC ×2.*/);
    assert.match(notes, /TANH ×1/);
    assert.match(notes, /MUL ×2/);
    assert.match(notes, /MEAN ×4/);
    assert.doesNotMatch(notes, /emulated/);
    const { wasm } = await compile(imp.graph, {}, { name: path });
    const model = await loadBlob(wasm);
    const sets = Array.from({ length: 4 }, (_, r) => randomTfliteInputs(imp, SEED + r));
    const theirs = runLitertMany(path, sets.map((s) => s.reference));
    sets.forEach((set, r) => {
      const ours = model.run(set.blob);
      imp.outputs.forEach((io, k) => assert.deepEqual(Array.from(ours[io.name] as Int8Array), Array.from(theirs.runs[r][k].data as Int8Array), `${io.name}, seed ${SEED + r}`));
    });
  });

  test("an absent (-1) input where the operator requires one is named, not a crash", () => {
    const tensors = [{ name: "in", shape: [1, 4] }, { name: "out", shape: [1, 4] }];
    for (const inputs of [[0, -1], [-1, 0]]) {
      const bytes = writeTflite({ tensors, operators: [{ op: BuiltinOperator.ADD, inputs, outputs: [1] }], inputs: [0], outputs: [1] });
      assert.throws(() => importTfliteModel(bytes, { source: "absent.tflite" }), (e: unknown) => {
        assert.ok(e instanceof TeenygradError, String(e));
        assert.equal(e.message, "absent.tflite: operator #0 ADD ('out'): an input the operator requires is absent (tensor index -1)");
        return true;
      });
    }
  });

  test("int8: an operator with no integer kernel is named and emulated; bad scales and zero points are errors naming tensor and operator", async () => {
    const grid = (scale: number, zeroPoint: number) => ({ scale: [scale], zeroPoint: [zeroPoint] });
    const model = (inScale: number, inZp: number) => writeTflite({
      tensors: [
        { name: "in", shape: [1, 4], type: TensorType.INT8, quantization: grid(inScale, inZp) },
        { name: "w", shape: [2, 4], type: TensorType.INT8, data: new Uint8Array([1, 2, 3, 4, 255, 254, 253, 252]), quantization: grid(0.1, 0) },
        { name: "fc", shape: [1, 2], type: TensorType.INT8, quantization: grid(0.25, -1) },
        { name: "out", shape: [1, 2], type: TensorType.INT8, quantization: grid(1 / 256, 0) },
      ],
      operators: [{ op: BuiltinOperator.FULLY_CONNECTED, inputs: [0, 1, -1], outputs: [2] }, { op: BuiltinOperator.HARD_SWISH, inputs: [2], outputs: [3] }],
      inputs: [0],
      outputs: [3],
    });
    const imp = importTfliteModel(model(0.05, 3));
    assert.match(imp.notes.join("\n"), /on int8 integer kernels: FULLY_CONNECTED ×1/);
    assert.match(imp.notes.join("\n"), /no integer kernel yet, emulated in float32 .*: HARD_SWISH ×1/);
    // the FC gives the integers [0, −2] (see above), real ±0.25; hardswish(±0.25)·256 = 0.25·3.25/6·256 = 34.7 → 35, −29.3 → −29
    const { wasm } = await compile(imp.graph, {}, { name: "hardswish.tflite" });
    assert.deepEqual(Array.from((await loadBlob(wasm)).run({ in: Int8Array.from([13, 3, 23, -7]) }).out as Int8Array), [35, -29]);
    const cases: [number, number, RegExp][] = [
      [0, 3, /tensor 'in' has scale 0 \(scales must be positive and finite\)/],
      [-0.5, 3, /tensor 'in' has scale -0\.5/],
      [Infinity, 3, /tensor 'in' has scale Infinity/],
      [0.05, 200, /tensor 'in' has zero point 200, outside INT8's range \[-128, 127\]/],
    ];
    for (const [scale, zeroPoint, why] of cases) {
      assert.throws(() => importTfliteModel(model(scale, zeroPoint), { source: "bad.tflite" }), (e: Error) => {
        assert.ok(e instanceof TeenygradError, String(e));
        assert.match(e.message, /^bad\.tflite: cannot import 1 operator/);
        assert.match(e.message, /FULLY_CONNECTED: /);
        assert.match(e.message, why);
        assert.match(e.message, /operator #0 \('fc'\)/);
        return true;
      });
    }
  });

  test("a file that is not a TFLite flatbuffer is named as such", () => {
    assert.throws(() => importTfliteModel(new Uint8Array(4), { source: "x.tflite" }), /x\.tflite: not a \.tflite file: 4 bytes is too short/);
    const onnxLike = new Uint8Array(64).fill(8);
    assert.throws(() => importTfliteModel(onnxLike, { source: "m.onnx" }), /m\.onnx: not a \.tflite file: file identifier is .*expected "TFL3"/);
    const truncated = writeTflite(nhwcOpsModel()).subarray(0, 900);
    assert.throws(() => importTfliteModel(truncated, { source: "t.tflite" }), /t\.tflite: not a valid \.tflite file: .* lies outside the file \(900 bytes\); it is truncated or corrupt/);
  });
});
