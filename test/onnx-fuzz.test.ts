import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { importOnnx, TeenygradError } from "../compiler/index.js";
import { SEED } from "./helpers/compiled.js";
import { onnxModel } from "./helpers/onnx-model.js";
import { findOnnxBackendSuite } from "../compiler/import/onnx/backend-test.js";

/**
 * Robustness: truncated, bit-flipped, spliced and random-byte .onnx files either import or fail with a
 * TeenygradError — never another exception, a hang or an out-of-memory crash.
 */

const builtModels = [
  onnxModel({
    inputs: [{ name: "x", shape: [2, 4] }],
    outputs: [{ name: "y", shape: [2, 3] }],
    initializers: [{ name: "w", dims: [3, 4], floats: Array.from({ length: 12 }, (_, i) => i / 10) }, { name: "shape", dims: [2], ints: [2, -1] }],
    nodes: [
      { op: "Gemm", inputs: ["x", "w"], outputs: ["h"], attrs: { transB: 1, alpha: 0.5 } },
      { op: "Shape", inputs: ["h"], outputs: ["s"] },
      { op: "ConstantOfShape", inputs: ["s"], outputs: ["z"] },
      { op: "Add", inputs: ["h", "z"], outputs: ["a"] },
      { op: "Reshape", inputs: ["a", "shape"], outputs: ["r"] },
      { op: "Softmax", inputs: ["r"], outputs: ["y"], attrs: { axis: -1 } },
    ],
  }),
  onnxModel({
    inputs: [{ name: "img", shape: [1, 2, 6, 6] }],
    outputs: [{ name: "out", shape: [1, 3, 3, 3] }],
    initializers: [{ name: "k", dims: [3, 2, 3, 3], floats: Array.from({ length: 54 }, (_, i) => Math.sin(i)) }],
    nodes: [
      { op: "Conv", inputs: ["img", "k"], outputs: ["c"], attrs: { pads: [1, 1, 1, 1], strides: [1, 1], kernel_shape: [3, 3] } },
      { op: "MaxPool", inputs: ["c"], outputs: ["p"], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: "Transpose", inputs: ["p"], outputs: ["t"], attrs: { perm: [0, 1, 3, 2] } },
      { op: "Pad", inputs: ["t"], outputs: ["out"], attrs: { mode: "constant", pads: [0, 0, 0, 0, 0, 0, 0, 0] } },
    ],
    opset: 9,
  }),
];

/** A few real models from the ONNX backend suite when it is present: more op and attribute variety. */
const SUITE_MODELS = ["test_lstm_defaults", "test_resize_upsample_scales_linear", "test_slice_neg_steps", "test_gathernd_example_int32", "test_layer_normalization_3d_axis1_epsilon_expanded", "test_convtranspose_pads"];
const suite = findOnnxBackendSuite();
const seeds = [
  ...builtModels,
  ...(suite ? SUITE_MODELS.map((n) => join(suite, "node", n, "model.onnx")).filter(existsSync).map((f) => new Uint8Array(readFileSync(f))) : []),
];

function importsOrFailsClearly(bytes: Uint8Array): void {
  try {
    importOnnx(bytes, { source: "fuzzed.onnx" });
  } catch (e) {
    if (e instanceof TeenygradError) return;
    assert.fail(`not a TeenygradError: ${(e as Error).name}: ${(e as Error).message}\n${(e as Error).stack}`);
  }
}

const seedModel = fc.integer({ min: 0, max: seeds.length - 1 }).map((i) => seeds[i]);
const params = { seed: SEED, numRuns: 1000 };

test(`fuzzed .onnx files end in a clear error (${seeds.length} seed models, seed ${SEED})`, { timeout: 300_000 }, () => {
  fc.assert(fc.property(seedModel, fc.double({ min: 0, max: 1, noNaN: true }), (model, at) => {
    importsOrFailsClearly(model.subarray(0, Math.floor(at * model.length)));
  }), params);
  fc.assert(fc.property(seedModel, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }), (model, flips) => {
    const bytes = model.slice();
    for (const [pos, bit] of flips) bytes[pos % bytes.length] ^= 1 << bit;
    importsOrFailsClearly(bytes);
  }), params);
  fc.assert(fc.property(seedModel, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 }), (model, pos, junk) => {
    const at = pos % model.length;
    importsOrFailsClearly(new Uint8Array([...model.subarray(0, at), ...junk, ...model.subarray(at)]));
  }), params);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), importsOrFailsClearly), params);
});
