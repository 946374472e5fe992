import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TeenygradError } from "../compiler/errors.js";
import { findWasmtime, runInWasmtime, runWasiCommand } from "../targets/wasmtime/runner.js";
import { availableEngines, runOnEngine } from "../targets/engines.js";
import { addOneModel, int64Model, manifestFor, separateWeightsModel, slot, trappingModel, wasiAddOneCommand } from "./helpers/host-models.js";

const wasmtime = findWasmtime();
// CI must have wasmtime installed (scripts/install-engines.sh); elsewhere the suite is skipped, loudly
if (!wasmtime && process.env.CI) {
  test("wasmtime is installed", () => assert.fail("CI is set but no wasmtime was found: run scripts/install-engines.sh or set TEENYGRAD_WASMTIME"));
}
const skip = wasmtime ? false : "no wasmtime found (run scripts/install-engines.sh, put it on PATH, or set TEENYGRAD_WASMTIME)";

async function rejectsTeenygrad(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof TeenygradError, `expected a TeenygradError, got ${(e as Error)?.stack ?? e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe("wasmtime", { skip }, () => {
  let dir: string;
  const file = (name: string, bytes: Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  before(() => (dir = mkdtempSync(join(tmpdir(), "teenygrad-wasmtime-test-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("is an available engine", () => {
    assert.ok(availableEngines().includes("wasmtime"));
  });

  test("runs an unmodified reactor blob through the adapter", async () => {
    const { bytes, manifest } = addOneModel(5);
    const outputs = await runInWasmtime(file("add1.wasm", bytes), manifest, { x: new Float32Array([1, 2, 3, 4.5, -0]) });
    assert.deepEqual(Object.keys(outputs), ["y"]);
    assert.ok(outputs.y instanceof Float32Array);
    assert.deepEqual([...outputs.y], [2, 3, 4, 5.5, 1]);
  });

  test("streams inputs and outputs larger than the adapter's 64 KiB buffer", async () => {
    const n = 100_000;
    const { bytes, manifest } = addOneModel(n);
    const x = Float32Array.from({ length: n }, (_, i) => i * 0.5);
    const { y } = await runInWasmtime(file("big.wasm", bytes), manifest, { x });
    assert.equal(y.length, n);
    for (let i = 0; i < n; i += 997) assert.equal(y[i], i * 0.5 + 1);
    assert.equal(y[n - 1], (n - 1) * 0.5 + 1);
  });

  test("handles several inputs and outputs of other dtypes", async () => {
    const { bytes, manifest } = int64Model();
    const out = await runInWasmtime(file("i64.wasm", bytes), manifest, { a: [5, -7, 0], b: new BigInt64Array([1n, 2n, 2n ** 60n]) });
    assert.deepEqual([...out.sum], [6n, -5n, 2n ** 60n]);
    assert.deepEqual([...out.sign], [1, -1, 0]);
  });

  test("writes a separate weights file before running", async () => {
    const { bytes, manifest } = separateWeightsModel();
    const path = file("w.wasm", bytes);
    const weights = new Uint8Array(new Float32Array([1, 2, 3, 4, 5]).buffer);
    assert.deepEqual([...(await runInWasmtime(path, manifest, { x: [1, 1, 1, 1, 1] }, { weights })).y], [2, 3, 4, 5, 6]);
    await rejectsTeenygrad(runInWasmtime(path, manifest, { x: [1, 1, 1, 1, 1] }), /weights are in a separate file \(20 bytes\)/);
  });

  test("reports statuses, traps, bad inputs and bad ranges as TeenygradErrors", async () => {
    const { bytes, manifest } = addOneModel(5);
    const path = file("add1.wasm", bytes);
    await rejectsTeenygrad(runInWasmtime(path, manifest, { x: [-1, 0, 0, 0, 0] }), /run\(\) returned status 2 \(an index out of range in a gather\)$/);
    await rejectsTeenygrad(runInWasmtime(path, manifest, { x: [1, 2] }), /input "x" expects float32\[5\] = 5 elements, got 2$/);
    await rejectsTeenygrad(runInWasmtime(path, manifest, {}), /missing input "x"/);
    await rejectsTeenygrad(runInWasmtime(path, manifest, { x: new Float32Array(5), extra: [1] }), /unknown input "extra"/);
    const trap = trappingModel();
    await rejectsTeenygrad(runInWasmtime(file("trap.wasm", trap.bytes), trap.manifest, { x: new Float32Array(5) }),
      /wasmtime failed \(exit code \d+\): wasm trap: wasm `unreachable` instruction executed/);
    // a manifest that points past the blob's memory is caught by the adapter, not silently truncated
    const lying = manifestFor({ inputs: [slot("x", 65532, 5)], outputs: [slot("y", 32, 5)], pages: 1 });
    await rejectsTeenygrad(runInWasmtime(path, lying, { x: new Float32Array(5) }), /a requested range lies outside the model's memory/);
    await rejectsTeenygrad(runInWasmtime(join(dir, "missing.wasm"), manifest, { x: new Float32Array(5) }), /wasmtime failed \(exit code 1\):[\s\S]*missing\.wasm/);
  });

  test("runs a WASI command blob", async () => {
    const { bytes } = wasiAddOneCommand();
    const input = new Uint8Array(new Float32Array([0, 1, 2, 3, 4]).buffer);
    const output = await runWasiCommand(file("cmd.wasm", bytes), input);
    assert.deepEqual([...new Float32Array(output.slice().buffer)], [1, 2, 3, 4, 5]);
    const viaEngine = await runOnEngine("wasmtime", bytes, { x: [9, 8, 7, 6, 5] });
    assert.deepEqual([...viaEngine.y], [10, 9, 8, 7, 6]);
    await rejectsTeenygrad(runOnEngine("node", bytes, { x: [9, 8, 7, 6, 5] }), /a "wasi" blob runs only as a WASI command/);
  });

  test("node and wasmtime agree through runOnEngine", async () => {
    const { bytes } = addOneModel(33);
    const x = Float32Array.from({ length: 33 }, (_, i) => Math.sin(i) * 100 + 50);
    const path = file("agree.wasm", bytes);
    const fromNode = await runOnEngine("node", bytes, { x });
    const fromWasmtime = await runOnEngine("wasmtime", path, { x });
    const fromWasmtimeBytes = await runOnEngine("wasmtime", bytes, { x });
    assert.deepEqual(fromWasmtime, fromNode);
    assert.deepEqual(fromWasmtimeBytes, fromNode);
    // copies, not views into a live memory
    assert.notEqual(fromNode.y.buffer.byteLength, 65536);
    const { bytes: wBytes } = separateWeightsModel();
    const weights = new Uint8Array(new Float32Array([1, 1, 1, 1, 1]).buffer);
    for (const engine of ["node", "wasmtime"] as const) {
      assert.deepEqual([...(await runOnEngine(engine, wBytes, { x: [1, 2, 3, 4, 5] }, { weights })).y], [2, 3, 4, 5, 6], engine);
    }
    await rejectsTeenygrad(runOnEngine("wasmtime", join(dir, "nope.wasm"), { x }), /cannot read .*nope\.wasm/);
  });
});
