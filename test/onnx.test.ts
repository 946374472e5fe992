import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { compile, encodeNpy, importOnnx, loadBlob, parseNpy, TeenygradError } from "../compiler/index.js";
import { randn, relError, SEED } from "./helpers/compiled.js";
import { onnxModel } from "./helpers/onnx-model.js";

/** ONNX import on hand-built models: numbers against a plain JS reference, and every kind of bad model. */

const W1 = Array.from({ length: 4 * 3 }, (_, i) => ((i * 7) % 5) / 4 - 0.5);
const B1 = [0.1, -0.2, 0.3];

/** x [B, 4] → Gemm(W1ᵀ, B1) → Relu → Softmax over 3 classes; the batch may be symbolic */
const mlp = (batch: number | string = 2) => onnxModel({
  inputs: [{ name: "x", shape: [batch, 4] }],
  outputs: [{ name: "probs", shape: [batch, 3] }],
  initializers: [{ name: "w", dims: [3, 4], floats: W1 }, { name: "b", dims: [3], floats: B1 }],
  nodes: [
    { op: "Gemm", inputs: ["x", "w", "b"], outputs: ["h"], attrs: { transB: 1 } },
    { op: "Relu", inputs: ["h"], outputs: ["r"] },
    { op: "Softmax", inputs: ["r"], outputs: ["probs"], attrs: { axis: 1 } },
  ],
});

function mlpReference(x: Float32Array, batch: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < batch; n++) {
    const h = B1.map((b, j) => Math.max(0, b + [0, 1, 2, 3].reduce((s, k) => s + x[n * 4 + k] * W1[j * 4 + k], 0)));
    const m = Math.max(...h), e = h.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / z));
  }
  return out;
}

const expectError = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: Error) => e instanceof TeenygradError && pattern.test(e.message) ? true : assert.fail(`wrong error: ${e.name}: ${e.message}`));

test("an ONNX MLP compiles and matches a plain JS reference on fresh random inputs", async () => {
  const { graph, inputs } = importOnnx(mlp(), { source: "mlp.onnx" });
  assert.deepEqual(inputs, { x: { shape: [2, 4], dtype: "float32" } });
  const model = await loadBlob((await compile(graph, {}, { name: "mlp" })).wasm);
  const x = randn(2, 4).data as Float32Array;
  const got = model.run({ x }).probs;
  assert.ok(relError(got as Float32Array, mlpReference(x, 2)) < 1e-5, `seed ${SEED}`);
});

test("Shape → Gather → Unsqueeze → Concat → Reshape folds away at import", async () => {
  const bytes = onnxModel({
    inputs: [{ name: "x", shape: [2, 3, 4] }],
    outputs: [{ name: "y", shape: [2, 12] }],
    initializers: [{ name: "zero", dims: [], ints: [0] }, { name: "minus_one", dims: [1], ints: [-1] }],
    nodes: [
      { op: "Shape", inputs: ["x"], outputs: ["s"] },
      { op: "Gather", inputs: ["s", "zero"], outputs: ["n"], attrs: { axis: 0 } },
      { op: "Unsqueeze", inputs: ["n", "axes"], outputs: ["n1"] },
      { op: "Concat", inputs: ["n1", "minus_one"], outputs: ["shape"], attrs: { axis: 0 } },
      { op: "Reshape", inputs: ["x", "shape"], outputs: ["y"] },
    ].map((n) => (n.op === "Unsqueeze" ? { ...n, inputs: ["n"], attrs: { axes: [0] } } : n)),
    opset: 11,
  });
  const { graph } = importOnnx(bytes);
  assert.deepEqual(graph.nodes.map((n) => n.op), ["reshape"], "only the reshape remains");
  const model = await loadBlob((await compile(graph)).wasm);
  const x = randn(2, 3, 4).data as Float32Array;
  assert.deepEqual(Array.from(model.run({ x }).y as Float32Array), Array.from(x));
});

test("every unsupported operator is listed in one error, with counts and first nodes", () => {
  const bytes = onnxModel({
    inputs: [{ name: "x", shape: [1, 4] }],
    outputs: [{ name: "z", shape: [1, 4] }],
    nodes: [
      { op: "FancyOp", inputs: ["x"], outputs: ["a"], name: "fancy_1" },
      { op: "Relu", inputs: ["a"], outputs: ["b"] },
      { op: "FancyOp", inputs: ["b"], outputs: ["c"], name: "fancy_2" },
      { op: "Whatever", inputs: ["c"], outputs: ["z"], name: "w", domain: "com.example" },
    ],
  });
  expectError(() => importOnnx(bytes, { source: "m.onnx" }), /2 unsupported operator types:\n\s+FancyOp ×2 \(first: node fancy_1\)\n\s+com\.example\.Whatever ×1 \(first: node w\)/);
});

test("dynamic dims need --input; given, the model compiles for that shape", async () => {
  expectError(() => importOnnx(mlp("batch")), /input 'x' has dynamic dims \[batchx4\]; fix them with --input x=SHAPE/);
  expectError(() => importOnnx(mlp("batch"), { inputShapes: { x: [3, 5] } }), /Gemm node .*--input changed fixed dims: 'x' declared \[\?x4\], given \[3, 5\]; the graph does not allow that shape/);
  expectError(() => importOnnx(mlp("batch"), { inputShapes: { y: [3, 4] } }), /--input or --const names 'y', but the model's inputs are 'x'/);
  const { graph } = importOnnx(mlp("batch"), { inputShapes: { x: [5, 4] } });
  const model = await loadBlob((await compile(graph)).wasm);
  const x = randn(5, 4).data as Float32Array;
  assert.ok(relError(model.run({ x }).probs as Float32Array, mlpReference(x, 5)) < 1e-5);
});

test("external-data weights load from beside the model, and may not leave its directory", async () => {
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-onnx-"));
  const weights = new Float32Array([...new Array(8).fill(9), ...W1]); // 32 bytes of padding first
  writeFileSync(join(dir, "weights.bin"), new Uint8Array(weights.buffer));
  const model = (location: string) => onnxModel({
    inputs: [{ name: "x", shape: [2, 4] }],
    outputs: [{ name: "y", shape: [2, 3] }],
    initializers: [{ name: "w", dims: [3, 4], external: { location, offset: 32, length: 48 } }],
    nodes: [{ op: "Gemm", inputs: ["x", "w"], outputs: ["y"], attrs: { transB: 1 } }],
  });
  const { graph } = importOnnx(model("weights.bin"), { baseDir: dir });
  const blob = await loadBlob((await compile(graph)).wasm);
  const x = randn(2, 4).data as Float32Array;
  const want = [0, 1].flatMap((n) => [0, 1, 2].map((j) => [0, 1, 2, 3].reduce((s, k) => s + x[n * 4 + k] * W1[j * 4 + k], 0)));
  assert.ok(relError(blob.run({ x }).y as Float32Array, want) < 1e-6);
  expectError(() => importOnnx(model("../weights.bin"), { baseDir: dir }), /points outside the model's directory/);
  expectError(() => importOnnx(model("missing.bin"), { baseDir: dir }), /external data file 'missing.bin' not found/);
  expectError(() => importOnnx(model("weights.bin")), /was not loaded from a file/);
});

test("malformed models get clear errors", () => {
  const good = mlp();
  expectError(() => importOnnx(good.subarray(0, good.length - 7), { source: "cut.onnx" }), /cut\.onnx is not a valid ONNX protobuf/);
  expectError(() => importOnnx(new Uint8Array(0)), /has no graph/);
  const undefinedInput = onnxModel({ inputs: [{ name: "x", shape: [1] }], outputs: [{ name: "y", shape: [1] }], nodes: [{ op: "Add", inputs: ["x", "nope"], outputs: ["y"] }] });
  expectError(() => importOnnx(undefinedInput), /Add node 'add_0'.*input 'nope' is not defined before this node/);
  const missingOutput = onnxModel({ inputs: [{ name: "x", shape: [1] }], outputs: [{ name: "q", shape: [1] }], nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"] }] });
  expectError(() => importOnnx(missingOutput), /graph output 'q' is never computed/);
  const badShape = onnxModel({ inputs: [{ name: "x", shape: [2, 3] }, { name: "y", shape: [4, 5] }], outputs: [{ name: "z", shape: [2, 3] }], nodes: [{ op: "Add", inputs: ["x", "y"], outputs: ["z"] }] });
  expectError(() => importOnnx(badShape), /Add node 'add_0'.*\[2, 3\] and \[4, 5\] cannot be broadcast/);
});

test("teenygrad compile model.onnx --input, then run", { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-onnx-cli-"));
  writeFileSync(join(dir, "mlp.onnx"), mlp("batch"));
  const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "compiler/cli/bin.ts", ...args], { encoding: "utf8" });
  const missing = cli("compile", join(dir, "mlp.onnx"), "-o", join(dir, "mlp.wasm"));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /dynamic dims \[batchx4\]; fix them with --input x=SHAPE/);
  assert.doesNotMatch(missing.stderr, /\n\s+at /, "no stack trace");
  const ok = cli("compile", join(dir, "mlp.onnx"), "-o", join(dir, "mlp.wasm"), "--input", "x=3x4");
  assert.equal(ok.status, 0, ok.stderr);
  const x = randn(3, 4).data as Float32Array;
  writeFileSync(join(dir, "x.npy"), encodeNpy("float32", [3, 4], x));
  const run = cli("run", join(dir, "mlp.wasm"), "--input", `x=${join(dir, "x.npy")}`, "--out", dir);
  assert.equal(run.status, 0, run.stderr);
  const probs = parseNpy(readFileSync(join(dir, "probs.npy")));
  assert.deepEqual(probs.shape, [3, 3]);
  assert.ok(relError(probs.data as Float32Array, mlpReference(x, 3)) < 1e-5);
});
