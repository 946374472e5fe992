import assert from "node:assert/strict";
import { test } from "node:test";
import { compile, importOnnx, loadBlob, TeenygradError } from "../compiler/index.js";
import { onnxModel, type NodeSpec, type ValueSpec } from "./helpers/onnx-model.js";

/** Models the ONNX checker or onnxruntime rejects get clear errors naming the node; a few onnxruntime semantics. */

const expectError = (bytes: Uint8Array, pattern: RegExp) =>
  assert.throws(() => importOnnx(bytes, { source: "bad.onnx" }), (e: Error) => e instanceof TeenygradError && pattern.test(e.message) ? true : assert.fail(`wrong error: ${e.name}: ${e.message}`));

const oneNode = (node: NodeSpec, inputs: ValueSpec[] = [{ name: "x", shape: [1, 1, 4, 4] }], initializers: Parameters<typeof onnxModel>[0]["initializers"] = []) =>
  onnxModel({ inputs, outputs: [{ name: node.outputs[0], shape: [1] }], nodes: [node], initializers });

test("the ONNX checker's rules: unique node names, known attributes, element types", () => {
  expectError(onnxModel({
    inputs: [{ name: "x", shape: [2] }], outputs: [{ name: "z", shape: [2] }],
    nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"], name: "n" }, { op: "Neg", inputs: ["y"], outputs: ["z"], name: "n" }],
  }), /two nodes are named 'n' \(Neg\); node names must be unique/);
  expectError(oneNode({ op: "Relu", inputs: ["x"], outputs: ["y"], name: "r", attrs: { alpha: 2 } }), /Relu node 'r': unknown attribute 'alpha' \(Relu at opset 17 has no attributes\)/);
  expectError(oneNode({ op: "Add", inputs: ["x", "i"], outputs: ["y"], name: "a" }, [{ name: "x", shape: [2] }, { name: "i", shape: [2], dtype: "int64" }]),
    /Add node 'a': inputs 0 and 1 must have the same element type \(T\), but are float and int64/);
  expectError(oneNode({ op: "Sqrt", inputs: ["i"], outputs: ["y"], name: "s" }, [{ name: "i", shape: [2], dtype: "int32" }]), /Sqrt node 's': input 0 is int32, which Sqrt does not accept there/);
});

test("window attributes: zero kernels and absurd strides are refused at import", () => {
  expectError(oneNode({ op: "MaxPool", inputs: ["x"], outputs: ["y"], name: "p", attrs: { kernel_shape: [0, 0] } }), /MaxPool node 'p': kernel_shape \[0,0\] must hold integers from 1/);
  expectError(oneNode({ op: "MaxPool", inputs: ["x"], outputs: ["y"], name: "p", attrs: { kernel_shape: [2, 2], strides: [1e15, 1] } }), /MaxPool node 'p': strides \[1000000000000000,1\]/);
  expectError(oneNode({ op: "ConvTranspose", inputs: ["x", "w"], outputs: ["y"], name: "ct", attrs: { kernel_shape: [0, 3] } }, undefined, [{ name: "w", dims: [1, 1, 3, 3], floats: new Array(9).fill(1) }]),
    /ConvTranspose node 'ct': kernel_shape \[0,3\] must hold integers from 1/);
});

test("constant folding reports arithmetic JavaScript refuses as the node's error, not a RangeError", () => {
  const ints = (name: string, values: number[]) => ({ name, dims: [values.length], ints: values });
  expectError(oneNode({ op: "Div", inputs: ["a", "zero"], outputs: ["y"], name: "d" }, [], [ints("a", [7, 8]), ints("zero", [0, 0])]),
    /Div node 'd': div: int64 division by zero/);
  expectError(oneNode({ op: "Log", inputs: ["a"], outputs: ["y"], name: "l" }, [], [ints("a", [0, 8])]), /Log node 'l': input 0 is int64, which Log does not accept/);
  expectError(oneNode({ op: "Sinh", inputs: ["a"], outputs: ["y"], name: "s" }, [], [ints("a", [1000])]), /Sinh node 's': input 0 is int64/);
  expectError(oneNode({ op: "ConstantOfShape", inputs: ["shape"], outputs: ["y"], name: "c" }, [], [ints("shape", [2, -1])]), /ConstantOfShape node 'c': shape \[2,-1\] has a negative dim/);
});

test("inputs too large for a 32-bit memory are refused at import, naming the input", () => {
  const bytes = onnxModel({ inputs: [{ name: "x", shape: ["n", "m"] }], outputs: [{ name: "y", shape: ["n", "m"] }], nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"] }] });
  assert.throws(() => importOnnx(bytes, { inputShapes: { x: [70000, 70000] } }), /input 'x' of shape \[70000, 70000\] float32 needs 1\.96e\+10 bytes, more than a 32-bit WebAssembly memory \(4 GiB\) holds/);
});

test("onnxruntime's semantics: nearest round_prefer_ceil at scale 0.4 in float32, Trilu upper=16, Tile with a zero repeat", async () => {
  const bytes = onnxModel({
    inputs: [{ name: "x", shape: [1, 1, 1, 10] }, { name: "m", shape: [3, 3] }],
    outputs: [{ name: "resized", shape: [1, 1, 1, 4] }, { name: "upper", shape: [3, 3] }, { name: "tiled", shape: [0, 3] }, { name: "kept", shape: [3, 3] }],
    initializers: [{ name: "scales", dims: [4], floats: [1, 1, 1, 0.4] }, { name: "reps", dims: [2], ints: [0, 1] }],
    nodes: [
      { op: "Resize", inputs: ["x", "", "scales"], outputs: ["resized"], attrs: { mode: "nearest", coordinate_transformation_mode: "asymmetric", nearest_mode: "round_prefer_ceil" } },
      { op: "Trilu", inputs: ["m"], outputs: ["upper"], attrs: { upper: 16 } },
      { op: "Tile", inputs: ["m", "reps"], outputs: ["tiled"] },
      { op: "Identity", inputs: ["m"], outputs: ["kept"] },
    ],
    opset: 19,
  });
  const { graph } = importOnnx(bytes);
  const model = await loadBlob((await compile(graph)).wasm);
  const out = model.run({ x: Float32Array.from({ length: 10 }, (_, i) => i), m: Float32Array.from({ length: 9 }, (_, i) => i + 1) });
  // onnxruntime 1.24: o / 0.4 is exactly 2.5 and 7.5 in float32, and ties round up
  assert.deepEqual(Array.from(out.resized as Float32Array), [0, 3, 5, 8]);
  assert.deepEqual(Array.from(out.upper as Float32Array), [1, 2, 3, 0, 5, 6, 0, 0, 9]);
  assert.deepEqual(model.manifest.outputs.find((o) => o.name === "tiled")!.shape, [0, 3]);
  assert.equal(out.tiled.length, 0);
});
