import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { main } from "../compiler/cli/main.js";
import { loadBlob, parseNpy } from "../compiler/index.js";
import { relError, SEED } from "./helpers/compiled.js";
import { findOnnxPython, NO_ONNX_PYTHON, runOnnxPython } from "./helpers/onnx-reference.js";

/**
 * ONNX sequences and optionals, resolved at import, through `teenygrad compile` against onnxruntime on
 * models built with onnx.helper (test/helpers/onnx_sequence_models.py, seeded inputs).
 */

const python = findOnnxPython();
const dir = mkdtempSync(join(tmpdir(), "teenygrad-onnx-seq-"));
const skip = python ? false : NO_ONNX_PYTHON;
before(() => {
  if (python) runOnnxPython(python, "onnx_sequence_models.py", [dir, String(SEED)]);
});

const npy = (file: string) => parseNpy(readFileSync(join(dir, file)), file);

/** `teenygrad ARGS…` in-process: its exit code and what it printed to stderr. */
async function teenygrad(...args: string[]): Promise<{ status: number; stderr: string }> {
  const [log, error] = [console.log, console.error];
  let stderr = "";
  console.log = () => {};
  console.error = (...m: unknown[]) => void (stderr += m.join(" ") + "\n");
  try {
    return { status: await main(["node", "teenygrad", ...args]), stderr };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

async function compileBlob(model: string, ...args: string[]) {
  const wasm = join(dir, `${model}-${args.join("_").replace(/\W/g, "")}.wasm`);
  const r = await teenygrad("compile", join(dir, `${model}.onnx`), "-o", wasm, ...args);
  assert.equal(r.status, 0, r.stderr);
  return loadBlob(readFileSync(wasm));
}

test("split, insert, erase, at, map, concat, stack, length and optionals fold into plain tensors", { skip, timeout: 120_000 }, async () => {
  const unpinned = await teenygrad("compile", join(dir, "seq_ops.onnx"), "-o", join(dir, "x.wasm"));
  assert.equal(unpinned.status, 1);
  assert.match(unpinned.stderr, /SequenceAt node .*the sequence position must be known at compile time.*--const pos=FILE\.npy\|VALUE/);
  for (const [c, pos] of [["pos0", "0"], ["posm1", "-1"]]) {
    const blob = await compileBlob("seq_ops", "--const", `pos=${pos}`);
    assert.deepEqual(blob.manifest.inputs.map((i) => i.name), ["x"]);
    const out = blob.run({ x: npy(`seq_ops.${c}.x.npy`).data });
    for (const name of ["picked", "cat", "stacked", "got"]) {
      const want = npy(`seq_ops.${c}.${name}.npy`);
      assert.deepEqual(blob.manifest.outputs.find((o) => o.name === name)!.shape, want.shape, `${c} ${name} shape`);
      assert.ok(relError(out[name] as Float32Array, want.data as Float32Array) < 1e-5, `${c} ${name}, seed ${SEED}`);
    }
    assert.equal(out.count[0], 3n);
    assert.equal(out.has[0], 1);
  }
});

test("a sequence input and output are flattened into NAME_0, NAME_1, … of the shapes --input gives", { skip, timeout: 120_000 }, async () => {
  const missing = await teenygrad("compile", join(dir, "seq_io.onnx"), "-o", join(dir, "y.wasm"));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /input 's' is a sequence.*--input s=\[SHAPE,SHAPE,…\].*inputs s_0, s_1/);
  const asTensor = await teenygrad("compile", join(dir, "seq_io.onnx"), "-o", join(dir, "y.wasm"), "--input", "s=[2x3]", "--input", "t=[1x3]");
  assert.match(asTensor.stderr, /input 't' is a tensor, not a sequence or an optional: give its shape as --input t=SHAPE/);
  const blob = await compileBlob("seq_io", "--input", "s=[2x3,4x3]");
  assert.deepEqual(blob.manifest.inputs.map((i) => `${i.name}:${i.shape.join("x")}`), ["s_0:2x3", "s_1:4x3", "t:1x3"]);
  assert.deepEqual(blob.manifest.outputs.map((o) => `${o.name}:${o.shape.join("x")}`), ["y_0:2x3", "y_1:4x3", "y_2:1x3"]);
  const out = blob.run({ s_0: npy("seq_io.two.s_0.npy").data, s_1: npy("seq_io.two.s_1.npy").data, t: npy("seq_io.two.t.npy").data });
  for (const k of [0, 1, 2]) assert.ok(relError(out[`y_${k}`] as Float32Array, npy(`seq_io.two.y_${k}.npy`).data as Float32Array) < 1e-6, `y_${k}, seed ${SEED}`);
  // an empty sequence: the inserted tensor is the only element
  const empty = await compileBlob("seq_io", "--input", "s=[]");
  assert.deepEqual(empty.manifest.inputs.map((i) => i.name), ["t"]);
  const y = empty.run({ t: npy("seq_io.empty.t.npy").data }).y_0 as Float32Array;
  assert.ok(relError(y, npy("seq_io.empty.y_0.npy").data as Float32Array) < 1e-6);
});

test("a sequence given to an op that takes tensors is refused by node and input name", { skip }, async () => {
  const r = await teenygrad("compile", join(dir, "seq_misuse.onnx"), "-o", join(dir, "z.wasm"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /Relu node 'relu_of_sequence': input 's' is a sequence of 1, which Relu does not take/);
});
