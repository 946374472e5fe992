import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { main } from "../compiler/cli/main.js";
import { compile, importOnnx, loadBlob, parseNpy } from "../compiler/index.js";
import { relError, SEED } from "./helpers/compiled.js";
import { findOnnxPython, NO_ONNX_PYTHON, runOnnxPython } from "./helpers/onnx-reference.js";

/**
 * Control flow, pinned inputs and dynamic dims through `teenygrad compile`, against onnxruntime on models
 * built with onnx.helper (test/helpers/onnx_control_flow_models.py, seeded inputs).
 */

const python = findOnnxPython();
const dir = mkdtempSync(join(tmpdir(), "teenygrad-onnx-cf-"));
const skip = python ? false : NO_ONNX_PYTHON;
before(() => {
  if (python) runOnnxPython(python, "onnx_control_flow_models.py", [dir, String(SEED)]);
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

async function compileAndRun(model: string, args: string[], inputs: Record<string, string>): Promise<Record<string, Float32Array>> {
  const wasm = join(dir, `${model}-${args.join("_").replace(/\W/g, "")}.wasm`);
  const r = await teenygrad("compile", join(dir, `${model}.onnx`), "-o", wasm, ...args);
  assert.equal(r.status, 0, r.stderr);
  const blob = await loadBlob(readFileSync(wasm));
  return blob.run(Object.fromEntries(Object.entries(inputs).map(([k, f]) => [k, npy(f).data]))) as Record<string, Float32Array>;
}

test("compile --const decides nested Ifs over a pinned sample rate (outer-scope names, shape conditions)", { skip, timeout: 120_000 }, async () => {
  const unpinned = await teenygrad("compile", join(dir, "nested_if.onnx"), "-o", join(dir, "x.wasm"));
  assert.equal(unpinned.status, 1);
  assert.match(unpinned.stderr, /If node .* output 0 differs between the branches \(then float32 \[1, 8\], else float32 \[1, 4\]\).*pin it with --const sr=FILE\.npy\|VALUE/);
  for (const sr of ["16000", "8000"]) {
    const out = await compileAndRun("nested_if", ["--const", `sr=${sr}`], { x: `nested_if.sr${sr}.x.npy` });
    const want = npy(`nested_if.sr${sr}.y.npy`);
    assert.equal(out.y.length, want.data.length, `sr=${sr}: ${out.y.length} outputs`);
    assert.ok(relError(out.y, want.data as Float32Array) < 1e-5, `sr=${sr}, seed ${SEED}`);
  }
  // a .npy file pins it the same way
  const out = await compileAndRun("nested_if", ["--const", `sr=${join(dir, "nested_if.sr8000.sr.npy")}`], { x: "nested_if.sr8000.x.npy" });
  assert.ok(relError(out.y, npy("nested_if.sr8000.y.npy").data as Float32Array) < 1e-5);
});

test("an If on data computes both branches and selects at run time", { skip, timeout: 120_000 }, async () => {
  const wasm = join(dir, "data_if.wasm");
  assert.equal((await teenygrad("compile", join(dir, "data_if.onnx"), "-o", wasm)).status, 0);
  const blob = await loadBlob(readFileSync(wasm));
  for (const c of ["low", "high"]) {
    const got = blob.run({ x: npy(`data_if.${c}.x.npy`).data }).y as Float32Array;
    assert.ok(relError(got, npy(`data_if.${c}.y.npy`).data as Float32Array) < 1e-5, `${c}, seed ${SEED}`);
  }
});

test("an If on data with a costly branch is real control flow: run() skips the branch not taken", { skip, timeout: 300_000 }, async () => {
  // the second stage gathers its bias row out of range unless it is taken: run on an idle frame, it would fault
  // (the expected score is float64's sigmoid: onnxruntime's is 1e-7 accurate in absolute terms only, see the helper)
  for (const codegen of ["kernel-library", "asc"] as const) {
    const { wasm, source, report } = await compile(importOnnx(readFileSync(join(dir, "wake_word.onnx"))).graph, {}, { codegen, optimizeLevel: 1 });
    assert.equal(report.codegen.path, codegen);
    assert.match(source, /if \(load<u8>\(\d+\) != 0\) \{\n(.*\n)*?.*gatherRows\((.*\n)*?.*gemm\(/, "the second stage sits in the guarded block");
    const blob = await loadBlob(wasm);
    for (const c of ["fire", "idle"]) {
      const out = blob.run({ x: npy(`wake_word.${c}.x.npy`).data });
      for (const name of ["score", "y"]) assert.ok(relError(out[name] as Float32Array, npy(`wake_word.${c}.${name}.npy`).data as Float32Array) < 1e-5, `${codegen}: ${c} ${name}, seed ${SEED}`);
    }
  }
});

test("a Paddle-style -1 batch is dynamic: --input fixes it", { skip, timeout: 120_000 }, async () => {
  const missing = await teenygrad("compile", join(dir, "paddle.onnx"), "-o", join(dir, "p.wasm"));
  assert.match(missing.stderr, /input 'x' has dynamic dims \[\?x3x8x8\]; fix them with --input x=SHAPE/);
  const out = await compileAndRun("paddle", ["--input", "x=3x3x8x8"], { x: "paddle.b3.x.npy" });
  assert.ok(relError(out.y, npy("paddle.b3.y.npy").data as Float32Array) < 1e-5, `seed ${SEED}`);
});

test("Loop with a static trip count and Scan are unrolled", { skip, timeout: 120_000 }, async () => {
  const out = await compileAndRun("loops", [], { x: "loops.a.x.npy", rows: "loops.a.rows.npy" });
  for (const name of ["final", "steps", "total", "cumsum"]) assert.ok(relError(out[name], npy(`loops.a.${name}.npy`).data as Float32Array) < 1e-5, `${name}, seed ${SEED}`);
});
