import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { Generator } from "../compiler/index.js";
import { compileTraining, int8FineTuning, loadTrainingBlob } from "../compiler/training/index.js";
import { findWamrSources } from "../targets/wamr/build.js";
import { trainInWamr } from "../targets/wamr/training.js";
import { SEED } from "./helpers/compiled.js";
import { dataSegments } from "./helpers/data-segments.js";

/**
 * train_step() in the real WAMR embedding (targets/wamr/train.c): the KWS int8 backbone with its float32 classifier,
 * compiled for wamr-flash (frozen int8 weights attached from const memory as WAMR's shared heap), trains three steps
 * in WAMR's fast interpreter; the same model compiled for wasm-scalar trains the same batches in Node. Losses and
 * updated weights must be bit-identical, and WAMR's measured RAM must stay within the compile report's figure. The
 * wamr-flash blob has no data segment: the classifier's initial weights come from flash through its init() export.
 */
const wamr = findWamrSources();
const kwsFile = new URL("../../shared/data/mlperf-tiny/kws_ref_model.tflite", import.meta.url);
const skip = (!wamr && "WAMR's C sources are not in the cargo registry (npm run engines fetches them)") || (!existsSync(kwsFile) && `no ${kwsFile.pathname}`);

describe("train_step in WAMR from C", { skip }, () => {
  test(`KWS int8 backbone, classifier, SGD: three steps in WAMR give Node's losses and weights bit for bit, and init() starts over (seed ${SEED})`, async () => {
    const bytes = new Uint8Array(readFileSync(kwsFile));
    const opts = (target: string) => ({ inputs: int8FineTuning(bytes, { floatLayers: 1 }).inputs, loss: "crossEntropy" as const, optimizer: { type: "sgd" as const, lr: 0.05 }, target, optimizeLevel: 1 as const });
    const device = await compileTraining(int8FineTuning(bytes, { floatLayers: 1 }).model, opts("wamr-flash"));
    const node = await compileTraining(int8FineTuning(bytes, { floatLayers: 1 }).model, opts("wasm-scalar"));
    const rng = new Generator(SEED + 21);
    const batches = Array.from({ length: 3 }, () => ({
      input_1: Int8Array.from({ length: 490 }, () => Math.floor(rng.next() * 256) - 128),
      target: Int32Array.of(Math.floor(rng.next() * 12)),
    }));
    const trained = device.manifest.training!.parameters.filter((p) => p.trainable);
    for (const [from, to] of dataSegments(device.wasm)) for (const p of trained) assert.ok(to <= p.offset || from >= p.offset + p.bytes, `a data segment [${from}, ${to}) initialises ${p.name}`);
    const inWamr = await trainInWamr(wamr!, device.wasm, device.manifest, device.weights, batches);
    const blob = await loadTrainingBlob(node.wasm);
    const nodeLosses = batches.map((b) => blob.trainStep(b).loss);
    assert.deepEqual(inWamr.status, [0, 0, 0]);
    assert.deepEqual(inWamr.losses, nodeLosses.map(Math.fround));
    const assertWeights = (got: Record<string, Uint8Array>, state: ReturnType<typeof blob.stateDict>, what: string) => {
      assert.deepEqual(Object.keys(got), device.report.trainable);
      for (const [name, bytes] of Object.entries(got)) assert.deepEqual(new Float32Array(bytes.slice().buffer), state[name].data as Float32Array, `${name} ${what}`);
    };
    assertWeights(inWamr.parameters, blob.stateDict(), "after three steps");
    // init() before a fourth step restores the initial weights: that step is a fresh blob's first
    const restarted = await trainInWamr(wamr!, device.wasm, device.manifest, device.weights, [...batches, batches[1]], { restartAt: 3 });
    const fresh = await loadTrainingBlob(node.wasm);
    assert.deepEqual(restarted.losses, [...nodeLosses, fresh.trainStep(batches[1]).loss].map(Math.fround));
    assertWeights(restarted.parameters, fresh.stateDict(), "after init() and one step");
    const figure = device.report.footprint.ram.bytes;
    assert.ok(inWamr.ram, "train.c reported no RAM");
    assert.ok(inWamr.ram!.total <= figure, `WAMR measured ${inWamr.ram!.total} B of RAM, more than the compile report's ${figure} B`);
  });
});
