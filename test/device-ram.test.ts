import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { compile } from "../compiler/index.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { findMlperfDir, MLPERF_MODELS, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";
import { runOnEngine } from "../targets/engines.js";
import { bytesOf } from "../targets/protocol.js";
import { findWamrSources } from "../targets/wamr/build.js";
import { buildMeasuringEmbedding, randomInputs } from "../targets/wamr/device-ram.js";
import { FnModule, randn, SEED } from "./helpers/compiled.js";

/**
 * Weights in flash, RAM as the compiler says: every MLPerf Tiny int8 model compiled for wamr-flash runs in the C
 * embedding (targets/wamr/main.c, WAMR's pool allocator reporting its high-water mark) with its blob and weights in
 * read-only data, gives the same bytes as Node running the self-contained wasm-scalar build, and uses no more RAM
 * (linear memory + pool, stack included) than the compile report's device RAM, which stays close to it.
 * Compiled at optimizeLevel 1 to keep the test short; the report's model bounds both levels.
 */

const CI = Boolean(process.env.CI);
const dir = findMlperfDir();
const wamr = findWamrSources();
const skip = (!dir && !CI && `MLPerf Tiny models not found (${MLPERF_WHERE})`) || (!wamr && !CI && "WAMR's C sources not in the cargo registry: npm run engines");
/** the report may exceed the measurement by this much: the calibrated model's slack (README, "Device RAM") */
const CLOSE = { bytes: 6 * 1024, fraction: 0.1 };

describe("the wamr-flash layout", () => {
  test("weights at the top of the address space, the arena after the reserved bytes, linear memory exact", async () => {
    const model = new FnModule((x) => x.linear(randn(64, 256)).relu());
    const { wasm, manifest, weights, report } = await compile(model, { x: [1, 256] }, { target: "wamr-flash", optimizeLevel: 1 });
    const region = manifest.weights.sharedHeap!;
    assert.ok(region && region.bytes % 4096 === 0 && region.bytes >= manifest.weights.tensors.reduce((n, t) => n + t.bytes, 0) + 16);
    assert.equal(manifest.weights.offset, 2 ** 32 - region.bytes);
    assert.equal(weights!.byteLength, region.bytes);
    assert.equal(manifest.arena.offset, 16);
    assert.equal(report.footprint.ram.weights, 0);
    assert.equal(report.footprint.ram.linearMemory, 4096, "the arena and the reserved bytes fit one WAMR page");
    assert.equal(report.footprint.flash.weights, region.bytes);
    await assert.rejects(runOnEngine("node", wasm, { x: new Float32Array(256) }), /wamr-flash blob reads its weights from WAMR's shared heap/);
  });
});

describe(`device RAM of wamr-flash blobs in the C embedding (seed ${SEED})`, () => {
  test("models and WAMR's sources are present (required under CI)", { skip }, () => {
    assert.ok(dir, `CI needs ${MLPERF_WHERE}`);
    assert.ok(wamr, "CI needs WAMR's C sources: npm run engines");
  });
  for (const m of MLPERF_MODELS.filter((model) => model.quantized)) {
    test(m.file, { skip, timeout: 600_000 }, async () => {
      const bytes = new Uint8Array(readFileSync(join(dir!, m.file)));
      const build = (target: string) => compile(importTfliteModel(bytes, { source: m.file }).graph, {}, { target, name: m.file, optimizeLevel: 1 });
      const flash = await build("wamr-flash");
      const scalar = await build("wasm-scalar");
      assert.equal(flash.manifest.weights.embedded, false);
      assert.ok(flash.manifest.weights.sharedHeap, "the weights live in the shared heap");
      assert.equal(flash.report.footprint.ram.weights, 0, "no weight byte in linear memory");

      const { stdin, values } = randomInputs(flash.manifest, SEED);
      const node = await runOnEngine("node", scalar.wasm, values);
      const expected = Buffer.concat(scalar.manifest.outputs.map((s) => Buffer.from(bytesOf(node[s.name]))));

      const embedding = await buildMeasuringEmbedding(wamr!, flash.wasm, flash.weights);
      try {
        // the blob and the weights are const: in .rodata, which Linux maps read-only, so a write would fault
        const symbols = spawnSync("nm", [embedding.executable], { encoding: "utf8" });
        assert.equal(symbols.status, 0, symbols.stderr);
        for (const name of ["model_wasm", "model_weights"]) assert.match(symbols.stdout, new RegExp(`^[0-9a-f]+ r ${name}$`, "m"), `${name} in read-only data`);

        const run = embedding.run(stdin);
        assert.ok(run.ok, run.stderr);
        assert.equal(run.stdout.toString("hex"), expected.toString("hex"), "the C embedding differs from Node");
        const ram = run.ram!;
        const fp = flash.report.footprint.ram;
        assert.equal(ram.stack, fp.stack, "the embedding runs with the stack the compiler budgets");
        assert.equal(ram.linearMemory, fp.linearMemory, "linear memory as WAMR allocates it");
        assert.ok(ram.total <= fp.bytes, `measured ${ram.total} B > the report's ${fp.bytes} B`);
        const slack = fp.bytes - ram.total;
        assert.ok(slack <= Math.max(CLOSE.bytes, CLOSE.fraction * ram.total), `the report's ${fp.bytes} B is ${slack} B above the measured ${ram.total} B`);
      } finally {
        embedding.dispose();
      }
    });
  }
});
