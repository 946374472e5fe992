import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { main } from "../compiler/cli/main.js";
import { exportC } from "../compiler/codegen/export-c.js";
import { compile, importOnnx, loadBlob, parseNpy } from "../compiler/index.js";
import { loadBlobInWorker } from "../compiler/host/worker.js";
import { buildEmbedding, buildWamrLibrary, findWamrSources } from "../targets/wamr/build.js";
import { relError, rng, SEED } from "./helpers/compiled.js";
import { onnxModel } from "./helpers/onnx-model.js";
import { findOnnxPython, NO_ONNX_PYTHON, runOnnxPython } from "./helpers/onnx-reference.js";

/**
 * Streaming state kept in the blob (compile's streamState, `--stream-state`): a streaming LSTM built with
 * onnx.helper (test/helpers/onnx_streaming_models.py), run frame by frame with its state in the blob, against
 * onnxruntime's one run over all the frames; in Node and in the C embedding.
 */

const python = findOnnxPython();
const dir = mkdtempSync(join(tmpdir(), "teenygrad-streaming-"));
const skip = python ? false : NO_ONNX_PYTHON;
const wamrSources = findWamrSources();
const skipC = skip || (!wamrSources && !process.env.CI && "WAMR's C sources not in the cargo registry: npm run engines");
const T = 10, FEATURES = 8, HIDDEN = 16;
const STATE_FLAGS = ["--stream-state", "h_in=h_out", "--stream-state", "c_in=c_out"];

before(() => {
  if (python) runOnnxPython(python, "onnx_streaming_models.py", [dir, String(SEED)]);
});

const npy = (file: string) => parseNpy(readFileSync(join(dir, file)), file).data as Float32Array;
const frame = (x: Float32Array, t: number) => x.subarray(t * FEATURES, (t + 1) * FEATURES);

/** `teenygrad ARGS…` in-process: its exit code and what it printed. */
async function teenygrad(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const [log, error] = [console.log, console.error];
  let stdout = "", stderr = "";
  console.log = (...m: unknown[]) => void (stdout += m.join(" ") + "\n");
  console.error = (...m: unknown[]) => void (stderr += m.join(" ") + "\n");
  try {
    return { status: await main(["node", "teenygrad", ...args]), stdout, stderr };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

test("a streaming LSTM: 10 calls with the state kept in the blob equal onnxruntime's unrolled run, and reset() starts again", { skip, timeout: 180_000 }, async () => {
  const model = join(dir, "lstm_step.onnx"), wasm = join(dir, "lstm_step.wasm");
  // without the flag, the compiler only suggests the pairs
  const suggested = await teenygrad("compile", model, "-o", join(dir, "plain.wasm"));
  assert.equal(suggested.status, 0, suggested.stderr);
  assert.match(suggested.stdout, /note: input 'h_in' looks like state carried from output 'h_out'; input 'c_in' looks like state carried from output 'c_out': .*compile with --stream-state h_in=h_out --stream-state c_in=c_out/);
  assert.deepEqual((await loadBlob(readFileSync(join(dir, "plain.wasm")))).manifest.inputs.map((s) => s.name), ["x", "h_in", "c_in"]);

  const compiled = await teenygrad("compile", model, "-o", wasm, ...STATE_FLAGS);
  assert.equal(compiled.status, 0, compiled.stderr);
  assert.match(compiled.stdout, /state +h_in +float32 \[1, 1, 16\] +@\d+, kept between runs, the next value from output h_out/);
  const blob = await loadBlob(readFileSync(wasm));
  const state = blob.state as Record<string, Float32Array>;
  assert.deepEqual(blob.manifest.inputs.map((s) => s.name), ["x"], "the host feeds only the frame");
  assert.deepEqual(blob.manifest.state?.map((s) => [s.name, s.output]), [["h_in", "h_out"], ["c_in", "c_out"]]);

  const x = npy("stream.x.npy"), scores = npy("stream.scores.npy");
  const streamed = new Float32Array(T);
  for (let t = 0; t < T; t++) streamed[t] = (blob.run({ x: frame(x, t) }).score as Float32Array)[0];
  assert.ok(relError(streamed, scores) < 1e-5, `scores ${streamed} vs onnxruntime's ${scores} (seed ${SEED})`);
  for (const [name, last] of [["h_in", "h_last"], ["c_in", "c_last"]]) {
    assert.ok(relError(state[name], npy(`stream.${last}.npy`)) < 1e-5, `${name} after ${T} frames (seed ${SEED})`);
  }
  assert.deepEqual(Array.from(blob.outputs.h_out as Float32Array), Array.from(state.h_in), "the state holds the last h_out");

  blob.reset();
  assert.ok(state.h_in.every((v) => v === 0) && state.c_in.every((v) => v === 0));
  assert.equal((blob.run({ x: frame(x, 0) }).score as Float32Array)[0], streamed[0], "after reset() the first frame gives the first call's score");
  assert.equal((blob.run({ x: frame(x, 1) }).score as Float32Array)[0], streamed[1]);
});

test("the C embedding keeps the state between the records it reads from stdin", { skip: skipC, timeout: 300_000 }, async () => {
  const { wasm } = await compile(importOnnx(readFileSync(join(dir, "lstm_step.onnx"))).graph, {}, { target: "wasm-scalar", streamState: { h_in: "h_out", c_in: "c_out" } });
  const header = exportC(wasm, { source: "lstm_step.wasm" });
  assert.match(header, /#define MODEL_STATE_COUNT 2u\n/);
  assert.match(header, /\/\* state "h_in": float32 \[1, 1, 16\], the next value from output "h_out" \*\//);
  writeFileSync(join(dir, "model.h"), header);
  const executable = join(dir, "run-lstm");
  await buildEmbedding(wamrSources!, await buildWamrLibrary(wamrSources!), dir, executable);

  const x = npy("stream.x.npy");
  const run = spawnSync(executable, [], { input: Buffer.from(x.buffer, x.byteOffset, x.byteLength) });
  assert.equal(run.status, 0, run.stderr.toString());
  // per frame: score [1, 1], h_out, c_out
  const record = 1 + 2 * HIDDEN, out = new Float32Array(new Uint8Array(run.stdout).buffer);
  assert.equal(out.length, T * record);
  const blob = await loadBlob(wasm);
  for (let t = 0; t < T; t++) {
    const node = blob.run({ x: frame(x, t) });
    assert.deepEqual(Array.from(out.subarray(t * record, (t + 1) * record)), [...node.score, ...node.h_out, ...node.c_out].map(Number), `frame ${t}: WAMR and Node differ`);
  }
  assert.ok(relError(Float32Array.from({ length: T }, (_, t) => out[t * record]), npy("stream.scores.npy")) < 1e-5, `against onnxruntime (seed ${SEED})`);

  const short = spawnSync(executable, [], { input: Buffer.from(x.buffer, x.byteOffset, FEATURES * 4 * 2 - 1) });
  assert.equal(short.status, 1);
  assert.match(short.stderr.toString(), /run-model: stdin ended before this input's bytes: x/);
});

/** y = a + x, with the state (a, b) swapped on every call through reshapes (the outputs view the states' bytes). */
const swapModel = () => importOnnx(onnxModel({
  inputs: [{ name: "x", shape: [4] }, { name: "a", shape: [4] }, { name: "b", shape: [4] }],
  outputs: [{ name: "y", shape: [4] }, { name: "a_next", shape: [4] }, { name: "b_next", shape: [4] }],
  initializers: [{ name: "square", dims: [2], ints: [2, 2] }, { name: "flat", dims: [1], ints: [4] }],
  nodes: [
    { op: "Add", inputs: ["a", "x"], outputs: ["y"] },
    { op: "Reshape", inputs: ["b", "square"], outputs: ["b_square"] },
    { op: "Reshape", inputs: ["b_square", "flat"], outputs: ["a_next"] },
    { op: "Reshape", inputs: ["a", "square"], outputs: ["a_square"] },
    { op: "Reshape", inputs: ["a_square", "flat"], outputs: ["b_next"] },
  ],
})).graph;

test("states that pass on other states' bytes (a swap through views) and a starting state written by the host", async () => {
  const blob = await loadBlob((await compile(swapModel(), {}, { streamState: { a: "a_next", b: "b_next" } })).wasm);
  const state = blob.state as Record<string, Float32Array>;
  state.a.set([1, 2, 3, 4]);
  state.b.set([10, 20, 30, 40]);
  const x = [0.5, 0.5, 0.5, 0.5];
  const y = () => Array.from(blob.run({ x }).y as Float32Array);
  assert.deepEqual(y(), [1.5, 2.5, 3.5, 4.5]);
  // outputs that view a state's bytes show this run's values, not what the state copies wrote after them
  assert.deepEqual([...blob.outputs.a_next, ...blob.outputs.b_next].map(Number), [10, 20, 30, 40, 1, 2, 3, 4]);
  assert.deepEqual(y(), [10.5, 20.5, 30.5, 40.5]);
  assert.deepEqual(y(), [1.5, 2.5, 3.5, 4.5]);
  blob.reset();
  assert.deepEqual(y(), x);
});

test("--stream-state pairs the model does not have are errors naming them", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ c: "a_next" }, /streaming state c=a_next: the model has no input 'c' \(inputs: x, a, b\)/],
    [{ a: "h" }, /streaming state a=h: the model has no output 'h' \(outputs: y, a_next, b_next\)/],
  ];
  for (const [streamState, message] of cases) await assert.rejects(compile(swapModel(), {}, { streamState }), message);
  const shapes = importOnnx(onnxModel({
    inputs: [{ name: "x", shape: [4] }, { name: "s", shape: [2] }],
    outputs: [{ name: "y", shape: [4] }],
    nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"] }],
  })).graph;
  await assert.rejects(compile(shapes, {}, { streamState: { s: "y" } }), /streaming state s=y: input 's' is float32 \[2\] but output 'y' is float32 \[4\]; a state must keep its shape and dtype/);
});

/** s_next = tanh(x·W + s·U), y = s_next·V: a recurrent cell whose state s the blob keeps, with seeded random weights. */
function recurrentCell(): Uint8Array {
  const weights = (name: string, dims: number[]) => ({ name, dims, floats: Array.from({ length: dims[0] * dims[1] }, () => rng.next() - 0.5) });
  return onnxModel({
    inputs: [{ name: "x", shape: [1, 4] }, { name: "s", shape: [1, 8] }],
    outputs: [{ name: "y", shape: [1, 3] }, { name: "s_next", shape: [1, 8] }],
    initializers: [weights("W", [4, 8]), weights("U", [8, 8]), weights("V", [8, 3])],
    nodes: [
      { op: "MatMul", inputs: ["x", "W"], outputs: ["xw"] },
      { op: "MatMul", inputs: ["s", "U"], outputs: ["su"] },
      { op: "Add", inputs: ["xw", "su"], outputs: ["pre"] },
      { op: "Tanh", inputs: ["pre"], outputs: ["s_next"] },
      { op: "MatMul", inputs: ["s_next", "V"], outputs: ["y"] },
    ],
  });
}

test("loadBlobInWorker keeps a streaming blob's state: the same outputs and state as in-process over several calls, after writeState() and after reset()", { timeout: 120_000 }, async () => {
  const { wasm } = await compile(importOnnx(recurrentCell()).graph, {}, { streamState: { s: "s_next" } });
  const local = await loadBlob(wasm, { source: "cell.wasm" });
  const worker = await loadBlobInWorker(wasm, { source: "cell.wasm" });
  try {
    assert.deepEqual(worker.manifest.state?.map((s) => [s.name, s.output]), [["s", "s_next"]]);
    const frames = Array.from({ length: 6 }, () => Float32Array.from({ length: 4 }, () => rng.next() * 2 - 1));
    const step = async (x: Float32Array, label: string) => {
      const here = Array.from(local.run({ x }).y as Float32Array);
      const there = Array.from((await worker.run({ x })).y.data as Float32Array);
      assert.deepEqual(there, here, `${label}: y (seed ${SEED})`);
      const state = await worker.readState();
      assert.deepEqual(Object.keys(state), ["s"]);
      assert.deepEqual({ ...state.s, data: Array.from(state.s.data as Float32Array) }, { name: "s", dtype: "float32", shape: [1, 8], data: Array.from(local.state.s as Float32Array) }, `${label}: state (seed ${SEED})`);
      return here;
    };
    const first: number[][] = [];
    for (let t = 0; t < frames.length; t++) first.push(await step(frames[t], `call ${t}`));
    // the state carries: the same frame gives another answer once the stream has moved on
    assert.notDeepEqual(first[frames.length - 1], await step(frames[frames.length - 1], "a repeated frame"));

    local.reset();
    await worker.reset();
    assert.ok(Array.from((await worker.readState()).s.data as Float32Array).every((v) => v === 0), "reset() zeroes the state");
    for (let t = 0; t < 3; t++) assert.deepEqual(await step(frames[t], `after reset, call ${t}`), first[t], "after reset() the stream starts again");

    const start = Float32Array.from({ length: 8 }, (_, i) => i / 8 - 0.5);
    (local.state.s as Float32Array).set(start);
    await worker.writeState({ s: start });
    await step(frames[0], "from a written state");
    await rejectsTeenygrad(worker.writeState({ h: [0] }), /^cell\.wasm: unknown state "h" \(the model's states: s\)$/);
    await rejectsTeenygrad(worker.writeState({ s: [1, 2] }), /^cell\.wasm: state "s" expects float32\[1, 8\] = 8 elements, got 2$/);
  } finally {
    await worker.terminate();
  }
});

async function rejectsTeenygrad(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof Error && e.name === "TeenygradError", `expected a TeenygradError, got ${(e as Error)?.stack ?? e}`);
    assert.match(e.message, pattern);
    return true;
  });
}
