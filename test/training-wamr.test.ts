import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { Generator } from "../compiler/index.js";
import { compileTraining, int8FineTuning, loadTrainingBlob } from "../compiler/training/index.js";
import { findWamrSources } from "../targets/wamr/build.js";
import { trainInWamr } from "../targets/wamr/training.js";
import { SEED } from "./helpers/compiled.js";

/**
 * train_step() in the real WAMR embedding (targets/wamr/train.c): the KWS int8 backbone with its float32 classifier,
 * compiled for wamr-flash (frozen int8 weights attached from const memory as WAMR's shared heap), trains three steps
 * in WAMR's fast interpreter; the same model compiled for wasm-scalar trains the same batches in Node. Losses and
 * updated weights must be bit-identical, and WAMR's measured RAM must stay within the compile report's figure.
 */
const wamr = findWamrSources();
const kwsFile = new URL("../../shared/data/mlperf-tiny/kws_ref_model.tflite", import.meta.url);
const skip = (!wamr && "WAMR's C sources are not in the cargo registry (npm run engines fetches them)") || (!existsSync(kwsFile) && `no ${kwsFile.pathname}`);

describe("train_step in WAMR from C", { skip }, () => {
  test(`KWS int8 backbone, classifier, SGD: three steps in WAMR give Node's losses and weights bit for bit (seed ${SEED})`, async () => {
    const bytes = new Uint8Array(readFileSync(kwsFile));
    const opts = (target: string) => ({ inputs: int8FineTuning(bytes, { floatLayers: 1 }).inputs, loss: "crossEntropy" as const, optimizer: { type: "sgd" as const, lr: 0.05 }, target, optimizeLevel: 1 as const });
    const device = await compileTraining(int8FineTuning(bytes, { floatLayers: 1 }).model, opts("wamr-flash"));
    const node = await compileTraining(int8FineTuning(bytes, { floatLayers: 1 }).model, opts("wasm-scalar"));
    const rng = new Generator(SEED + 21);
    const batches = Array.from({ length: 3 }, () => ({
      input_1: Int8Array.from({ length: 490 }, () => Math.floor(rng.next() * 256) - 128),
      target: Int32Array.of(Math.floor(rng.next() * 12)),
    }));
    const inWamr = await trainInWamr(wamr!, device.wasm, device.manifest, device.weights, batches);
    const blob = await loadTrainingBlob(node.wasm);
    const nodeLosses = batches.map((b) => blob.trainStep(b).loss);
    assert.deepEqual(inWamr.status, [0, 0, 0]);
    assert.deepEqual(inWamr.losses, nodeLosses.map(Math.fround));
    const state = blob.stateDict();
    for (const [name, got] of Object.entries(inWamr.parameters)) {
      const want = state[name].data as Float32Array;
      assert.deepEqual(new Float32Array(got.buffer, got.byteOffset, got.byteLength / 4), want, `${name} after three steps`);
    }
    assert.deepEqual(Object.keys(inWamr.parameters), device.report.trainable);
    const figure = device.report.footprint.ram.bytes;
    assert.ok(inWamr.ram, "train.c reported no RAM");
    assert.ok(inWamr.ram!.total <= figure, `WAMR measured ${inWamr.ram!.total} B of RAM, more than the compile report's ${figure} B`);
  });
});
