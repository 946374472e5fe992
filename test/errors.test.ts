import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { compile, encodeNpy, loadBlob, parseNpy, Tensor, TeenygradError } from "../compiler/index.js";
import { Graph } from "../compiler/ir/graph.js";
import { inferTypes } from "../compiler/ops/index.js";
import { parseSize } from "../compiler/budget.js";
import { FnModule, randn } from "./helpers/compiled.js";

/** Bad input gets a TeenygradError naming what is wrong; the CLI prints it without a stack trace. */

const rejects = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: Error) => e instanceof TeenygradError && pattern.test(e.message), `expected a TeenygradError matching ${pattern}`);

describe("clear errors", () => {
  test("a shape mismatch names both shapes", () => {
    rejects(() => randn(2, 3).add(randn(4)), /\[2, 3\] and \[4\]/);
    rejects(() => randn(2, 3).matmul(randn(4, 5)), /\[2, 3\] @ \[4, 5\]/);
    rejects(() => randn(1, 3, 8, 8).conv2d(randn(4, 2, 3, 3)), /3 channels.*\[4, 2, 3, 3\]/);
    rejects(() => randn(6).reshape(4), /cannot reshape \[6\].*\[4\]/);
  });
  test("a shape mismatch while tracing names the node", async () => {
    await assert.rejects(compile(new FnModule((x) => x.add(Tensor.ones([5]))), { x: [2, 3] }), (e: Error) => /add/.test(e.message) && /\[2, 3\] and \[5\]/.test(e.message));
  });
  test("an unsupported op or attribute names the op and the node", async () => {
    const g = new Graph(inferTypes);
    const x = g.addInput("x", { shape: [2], dtype: "float32" });
    rejects(() => g.addNode("Frobnicate", [x], {}, "layer7"), /unsupported op 'Frobnicate' \(node layer7\)/);
    rejects(() => g.addNode("slice", [x], { starts: [0], ends: [2], steps: [0] }, "cut"), /slice \(node cut\).*steps/);
    const ints = new FnModule((i) => i.exp());
    await assert.rejects(compile(ints, { i: { shape: [3], dtype: "int32" } }), /op 'exp' \(node exp\) is not compiled for dtypes int32/);
  });
  test("run with a missing, extra or wrongly shaped input says which", async () => {
    const { wasm } = await compile(new FnModule((a, b) => a.mul(b)), { a: [3], b: [3] });
    const m = await loadBlob(wasm);
    const f = (n: number) => new Float32Array(n);
    await assert.rejects(async () => m.run({ a: f(3) }), /missing input "b"/);
    await assert.rejects(async () => m.run({ a: f(3), b: f(3), c: f(3) }), /"c"/);
    await assert.rejects(async () => m.run({ a: f(3), b: f(4) }), /"b".*(3.*4|4.*3)/);
  });
  test("corrupt .wasm and .npy are rejected with a message", async () => {
    const { wasm } = await compile(new FnModule((a) => a.relu()), { a: [5] });
    await assert.rejects(loadBlob(wasm.slice(0, wasm.length - 7)), TeenygradError);
    await assert.rejects(loadBlob(new Uint8Array([1, 2, 3])), TeenygradError);
    const npy = encodeNpy("float32", [2, 2], new Float32Array(4));
    rejects(() => parseNpy(npy.slice(0, npy.length - 3), "x.npy"), /x\.npy/);
    rejects(() => parseNpy(new Uint8Array(20), "zeros.npy"), /zeros\.npy/);
  });
});

describe("RAM and flash budgets", () => {
  test("sizes parse like datasheets, and an exceeded budget names what is over and by how much", async () => {
    assert.equal(parseSize("256K"), 262144);
    assert.equal(parseSize("1.5MiB"), 1572864);
    assert.equal(parseSize("300000"), 300000);
    rejects(() => parseSize("lots"), /bad size 'lots'/);
    const model = new FnModule((x) => x.linear(randn(64, 256)).relu());
    const { report } = await compile(model, { x: [1, 256] });
    assert.equal(report.footprint.ram.bytes, report.memory.pages * 65536);
    assert.ok(report.footprint.ram.weights === 65536 && report.footprint.flash.bytes === report.wasmBytes);
    await assert.rejects(compile(model, { x: [1, 256] }, { budget: { ram: 64 * 1024 } }), /over budget: RAM needs 128\.0 KiB .* budget is 64\.0 KiB: 64\.0 KiB over/);
    await assert.rejects(compile(model, { x: [1, 256] }, { budget: { flash: 1000, ram: 1 << 20 } }), (e: Error) => /flash needs/.test(e.message) && !/RAM needs/.test(e.message));
    await compile(model, { x: [1, 256] }, { budget: { ram: 1 << 20, flash: 1 << 20 } });
  });
});

describe("CLI errors carry no stack trace", () => {
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-cli-"));
  const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "compiler/cli/bin.ts", ...args], { encoding: "utf8" });
  const expectError = (r: ReturnType<typeof cli>, pattern: RegExp) => {
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  };
  test("missing model file, corrupt blob, bad npy, wrong input", () => {
    expectError(cli("compile", join(dir, "nope.ts"), "-o", join(dir, "x.wasm")), /error: model file not found/);
    writeFileSync(join(dir, "bad.wasm"), "not wasm at all");
    expectError(cli("inspect", join(dir, "bad.wasm")), /error: .*bad\.wasm/);
    writeFileSync(join(dir, "bad.npy"), "\x93NUMPY garbage");
    expectError(cli("run", "--input", `x=${join(dir, "bad.npy")}`, join(dir, "bad.wasm")), /error: /);
  });
});
