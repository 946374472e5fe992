import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, inspectWasm, loadBlob, manualSeed, Tensor, type nn } from "../compiler/index.js";
import { availableEngines, runOnEngine } from "../targets/engines.js";
import CNN, { inputs as cnnInputs } from "../examples/cnn.js";
import KWS, { inputs as kwsInputs } from "../examples/kws-dscnn.js";
import MLP, { inputs as mlpInputs } from "../examples/mlp.js";
import { rand, randn, relError, SEED } from "./helpers/compiled.js";

/** The examples, compiled for both targets, against eager mode in every engine that can run them (bit-identical across engines); and the blob invariants. */

/** BatchNorm statistics and affine parameters set to non-trivial values, so folding is really exercised. */
function randomizeBatchNorms(model: nn.Module): void {
  for (const [name, t] of Object.entries(model.stateDict())) {
    if (/runningVar$/.test(name)) t.copy_(rand(t.shape, 0.5, 2));
    else if (/(runningMean|bias)$/.test(name) && t.shape.length === 1) t.copy_(randn(...t.shape).mul(0.1));
  }
}

const examples: [string, () => nn.Module, Record<string, number[]>][] = [
  ["mlp", () => new MLP(), mlpInputs],
  ["cnn", () => new CNN(), cnnInputs],
  ["kws-dscnn", () => new KWS(), kwsInputs],
];
const CI = Boolean(process.env.CI);

describe(`examples (seed ${SEED})`, () => {
  test("wasmtime is available (required under CI)", { skip: !CI && !availableEngines().includes("wasmtime") && "wasmtime not installed: npm run engines" }, () => {
    assert.ok(availableEngines().includes("wasmtime"), "CI must have wasmtime: npm run engines");
  });

  for (const [name, make, inputs] of examples) {
    for (const target of ["wasm-simd", "wasm-scalar"]) {
      test(`${name} (${target}) matches eager mode in every engine; blob invariants hold`, async () => {
        manualSeed(SEED);
        const model = make();
        randomizeBatchNorms(model);
        const [inputName, shape] = Object.entries(inputs)[0];
        const x = randn(...shape);
        const eager = model.forward(x) as Tensor;
        const res = await compile(model, inputs, { target, name });

        const info = inspectWasm(res.wasm);
        assert.deepEqual(info.imports, [], "no imports");
        assert.equal(info.memory!.initial, info.memory!.maximum, "initial == maximum memory");
        assert.equal(info.usesMemoryGrow, false, "no memory.grow");
        if (target === "wasm-scalar") {
          assert.equal(info.instructionCounts.simd128, 0, "scalar build has no v128 instruction");
          assert.ok(!info.features.includes("simd128"));
        } else assert.ok(info.features.includes("simd128"), "SIMD build uses SIMD");
        const r = res.report;
        assert.ok(r.arena.bytes <= r.arena.greedyBaseline, `arena ${r.arena.bytes} exceeds the greedy baseline ${r.arena.greedyBaseline}`);
        assert.ok(r.arena.bytes >= r.arena.lowerBound);

        let nodeOut: Float32Array | null = null;
        for (const engine of availableEngines(info.features)) {
          const out = (await runOnEngine(engine, res.wasm, { [inputName]: x.data }))[res.manifest.outputs[0].name] as Float32Array;
          const err = relError(out, eager.data as Float32Array);
          assert.ok(err <= 1e-5, `${engine}: relative error ${err} (seed ${SEED})`);
          nodeOut ??= out;
          assert.deepEqual(new Uint32Array(out.buffer, out.byteOffset, out.length), new Uint32Array(nodeOut.buffer, nodeOut.byteOffset, nodeOut.length), `${engine} is bit-identical to node for the same blob`);
        }
      });
    }
  }

  test("kws-dscnn as a WASI command in wasmtime, and with weights in a separate file in Node", { skip: !availableEngines().includes("wasmtime") && "wasmtime not installed" }, async () => {
    manualSeed(SEED);
    const model = new KWS();
    randomizeBatchNorms(model);
    const x = randn(1, 1, 49, 10);
    const eager = model.forward(x) as Tensor;
    const wasi = await compile(model, kwsInputs, { wasi: true });
    assert.deepEqual(inspectWasm(wasi.wasm).imports.map((i) => i.module), ["wasi_snapshot_preview1", "wasi_snapshot_preview1", "wasi_snapshot_preview1"]);
    const viaStdin = await runOnEngine("wasmtime", wasi.wasm, { mfcc: x.data });
    assert.ok(relError(viaStdin.output as Float32Array, eager.data as Float32Array) <= 1e-5);

    const split = await compile(model, kwsInputs, { separateWeights: true });
    assert.ok(split.wasm.byteLength < split.report.weightsBytes, "the blob no longer carries the weights");
    await assert.rejects(loadBlob(split.wasm), /weights/);
    const loaded = await loadBlob(split.wasm, { weights: split.weights! });
    assert.ok(relError(loaded.run({ mfcc: x.data }).output as Float32Array, eager.data as Float32Array) <= 1e-5);
  });
});
