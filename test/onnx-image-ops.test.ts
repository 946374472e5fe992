import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { compile, importOnnx, loadBlob, parseNpy } from "../compiler/index.js";
import type { ConstantInput } from "../compiler/import/onnx/index.js";
import { relError, SEED } from "./helpers/compiled.js";
import { onnxModel } from "./helpers/onnx-model.js";
import { findOnnxPython, NO_ONNX_PYTHON, runOnnxPython } from "./helpers/onnx-reference.js";

/**
 * AffineGrid, GridSample, DFT, STFT and NonMaxSuppression imported from models built with onnx.helper
 * (test/helpers/onnx_image_models.py), compiled, run in Node and compared with onnxruntime (onnx.reference
 * where onnxruntime lacks the case) on seeded random inputs.
 */

const python = findOnnxPython();
const dir = mkdtempSync(join(tmpdir(), "teenygrad-onnx-image-"));
const skip = python ? false : NO_ONNX_PYTHON;
before(() => {
  if (python) runOnnxPython(python, "onnx_image_models.py", [dir, String(SEED)]);
});

const npy = (file: string) => parseNpy(readFileSync(join(dir, file)), file);

/** Compiles DIR/model.onnx (with `pinned` inputs fixed), runs it on the other `inputs` and returns every output. */
async function run(model: string, inputs: string[], pinned: string[] = []): Promise<Record<string, ArrayLike<number | bigint>>> {
  const constantInputs: Record<string, ConstantInput> = Object.fromEntries(pinned.map((n) => [n, npy(`${model}.${n}.npy`)]));
  const { graph } = importOnnx(readFileSync(join(dir, `${model}.onnx`)), { constantInputs });
  const { wasm, report } = await compile(graph, {}, { optimizeLevel: 1 });
  // composed of ops the kernel library has: the entry links without asc
  assert.equal(report.codegen.path, "kernel-library", `${model}: ${report.codegen.reason}`);
  const blob = await loadBlob(wasm);
  return blob.run(Object.fromEntries(inputs.map((n) => [n, npy(`${model}.${n}.npy`).data]))) as Record<string, ArrayLike<number | bigint>>;
}

function assertClose(out: Record<string, ArrayLike<number | bigint>>, model: string, names: string[], tolerance: number): void {
  for (const name of names) {
    const want = npy(`${model}.${name}.npy`).data as Float32Array;
    assert.equal(out[name].length, want.length, `${model} ${name}: ${out[name].length} values, expected ${want.length}`);
    const err = relError(out[name] as Float32Array, want);
    assert.ok(err < tolerance, `${model} ${name}: relative error ${err}, seed ${SEED}`);
  }
}

const GRID_OUTPUTS = ["nearest", "bilinear", "bicubic"].flatMap((m) => ["zeros", "border", "reflection"].flatMap((p) => [0, 1].map((a) => `${m}_${p}_${a}`)));

test("GridSample: every mode, padding mode and align_corners on a run-time grid (4-d, opset 16)", { skip, timeout: 120_000 }, async () => {
  assertClose(await run("gridsample", ["x", "grid"]), "gridsample", GRID_OUTPUTS, 1e-5);
});

test("GridSample: 5-d linear and nearest (opset 20)", { skip, timeout: 120_000 }, async () => {
  assertClose(await run("gridsample5d", ["x", "grid"]), "gridsample5d", ["linear_zeros", "linear_reflection", "nearest_border"], 1e-5);
});

test("AffineGrid: 2-d and 3-d, with and without align_corners", { skip, timeout: 120_000 }, async () => {
  assertClose(await run("affine2", ["theta"]), "affine2", ["grid"], 1e-5);
  assertClose(await run("affine3", ["theta"]), "affine3", ["grid"], 1e-5);
});

test("DFT: forward real and complex, onesided, inverse, dft_length padding and cutting, irfft, opset 17's axis", { skip, timeout: 120_000 }, async () => {
  assertClose(await run("dft", ["real", "cplx"]), "dft", ["forward", "complex", "onesided", "inverse"], 1e-5);
  assertClose(await run("irfft", ["cplx"]), "irfft", ["y"], 1e-5);
  assertClose(await run("dft17", ["cplx"]), "dft17", ["y"], 1e-5);
});

test("STFT: a windowed real signal (onesided) and a complex one with frame_length", { skip, timeout: 120_000 }, async () => {
  assertClose(await run("stft", ["signal"]), "stft", ["spectrum"], 1e-5);
  assertClose(await run("cstft", ["csignal"]), "cstft", ["spectrum"], 1e-5);
});

test("NonMaxSuppression on pinned boxes and scores, corner and centre boxes; unpinned, the error names them", { skip, timeout: 120_000 }, async () => {
  for (const model of ["nms0", "nms1"]) {
    const out = await run(model, [], ["boxes", "scores"]);
    assert.deepEqual([...(out.selected as BigInt64Array)], [...(npy(`${model}.selected.npy`).data as BigInt64Array)], `${model}, seed ${SEED}`);
  }
  assert.throws(() => importOnnx(readFileSync(join(dir, "nms0.onnx"))), /NonMaxSuppression's output shape \[selected, 3\] depends on .*pin --const boxes=FILE\.npy\|VALUE --const scores=FILE\.npy\|VALUE/);
});

test("bad GridSample, DFT and STFT nodes fail naming the node and the shapes", () => {
  const importOne = (op: string, inputs: { name: string; shape: number[] }[], attrs: Record<string, number | string> = {}, opset = 20, initializers: { name: string; dims: number[]; ints: number[] }[] = [], nodeInputs = inputs.map((i) => i.name)) =>
    importOnnx(onnxModel({ inputs, outputs: [{ name: "y", shape: [1] }], nodes: [{ op, name: "n0", inputs: nodeInputs, outputs: ["y"], attrs }], initializers, opset }));
  assert.throws(() => importOne("GridSample", [{ name: "x", shape: [1, 2, 4, 4] }, { name: "grid", shape: [1, 3, 3, 3] }]), /GridSample.*n0.*grid \[1, 3, 3, 3\] does not fit input \[1, 2, 4, 4\]/);
  assert.throws(() => importOne("GridSample", [{ name: "x", shape: [1, 2, 4, 4] }, { name: "grid", shape: [1, 3, 3, 2] }], { mode: "area" }), /n0.*unknown mode 'area'/);
  assert.throws(() => importOne("DFT", [{ name: "x", shape: [2, 8, 2] }], { onesided: 1 }, 17), /n0.*onesided needs a real input/);
  assert.throws(() => importOne("DFT", [{ name: "x", shape: [2, 8, 3] }], {}, 17), /n0.*last dim of \[2, 8, 3\] must be 1 \(real\) or 2 \(complex\)/);
  assert.throws(() => importOne("STFT", [{ name: "x", shape: [1, 8, 1] }], {}, 17, [{ name: "step", dims: [], ints: [2] }, { name: "len", dims: [], ints: [16] }], ["x", "step", "", "len"]),
    /n0.*frame_step 2 and frame_length 16 do not fit a signal of 8/);
});
