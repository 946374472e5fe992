import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { compile, inspectWasm, loadBlob, manualSeed, TARGETS, type Tensor } from "../compiler/index.js";
import { availableEngines, runOnEngine } from "../targets/engines.js";
import KWS, { inputs as kwsInputs } from "../examples/kws-dscnn.js";
import { randn, relError, SEED } from "./helpers/compiled.js";

/** Each target's module uses only the features the target allows; the relaxed build agrees with the SIMD one. */

describe(`targets (seed ${SEED})`, () => {
  for (const target of Object.values(TARGETS)) {
    test(`${target.name}: the module uses only features the target allows`, async () => {
      const { wasm } = await compile(new KWS(), kwsInputs, { target: target.name });
      const info = inspectWasm(wasm);
      const forbidden = info.features.filter((f) => !target.features.includes(f));
      assert.deepEqual(forbidden, [], `features outside ${target.name}: ${forbidden}`);
      assert.equal(info.features.includes("simd128"), target.simd);
      assert.equal(info.features.includes("relaxed-simd"), target.relaxedSimd);
    });
  }

  test("the scalar build stays within 1e-6 of the SIMD build", async () => {
    manualSeed(SEED);
    const model = new KWS();
    const x = randn(1, 1, 49, 10);
    const run = async (target: string) => (await loadBlob((await compile(model, kwsInputs, { target })).wasm)).run({ mfcc: x.data }).output as Float32Array;
    const err = relError(await run("wasm-scalar"), await run("wasm-simd"));
    assert.ok(err <= 1e-6, `scalar vs simd: ${err}`);
  });

  test("a lower optimisation level compiles the same model to the same results", async () => {
    manualSeed(SEED);
    const model = new KWS();
    const x = randn(1, 1, 49, 10);
    const o1 = await compile(model, kwsInputs, { optimizeLevel: 1 });
    const o3 = await compile(model, kwsInputs);
    const run = async (wasm: Uint8Array) => (await loadBlob(wasm)).run({ mfcc: x.data }).output as Float32Array;
    assert.ok(relError(await run(o1.wasm), await run(o3.wasm)) <= 1e-6);
    assert.ok(o1.report.codeBytes !== o3.report.codeBytes, "the level reached the optimiser");
  });

  test("wasm-relaxed (fused multiply-add) stays within 1e-5 of wasm-simd", async () => {
    manualSeed(SEED);
    const model = new KWS();
    const x = randn(1, 1, 49, 10);
    const eager = model.forward(x) as Tensor;
    const simd = (await loadBlob((await compile(model, kwsInputs)).wasm)).run({ mfcc: x.data }).output as Float32Array;
    const relaxed = await compile(model, kwsInputs, { target: "wasm-relaxed" });
    // Node 20 runs relaxed SIMD only behind a flag: a child process has it
    const dir = mkdtempSync(join(tmpdir(), "teenygrad-relaxed-"));
    writeFileSync(join(dir, "blob.wasm"), relaxed.wasm);
    writeFileSync(join(dir, "x.bin"), x.data as Float32Array);
    const script = `import { readFileSync } from "node:fs"; import { loadBlob } from "${new URL("../compiler/host/loader.ts", import.meta.url).href}";
      const m = await loadBlob(readFileSync("${join(dir, "blob.wasm")}")); const x = new Float32Array(Uint8Array.from(readFileSync("${join(dir, "x.bin")}")).buffer);
      process.stdout.write(JSON.stringify(Array.from(m.run({ mfcc: x }).output)));`;
    const r = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", "--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const outputs: Float32Array[] = [Float32Array.from(JSON.parse(r.stdout))];
    if (availableEngines().includes("wasmtime")) outputs.push((await runOnEngine("wasmtime", relaxed.wasm, { mfcc: x.data })).output as Float32Array);
    for (const out of outputs) {
      assert.ok(relError(out, simd) <= 1e-5, `relaxed vs simd: ${relError(out, simd)}`);
      assert.ok(relError(out, eager.data as Float32Array) <= 1e-5);
    }
  });
});
