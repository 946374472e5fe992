import { manualSeed } from "../compiler/index.js";
import type { TypedArray } from "../compiler/ir/dtype.js";
import { compileTraining, evaluate, formatTrainingReport, loadMnist, loadTrainingBlob, trainLoop, type Dataset } from "../compiler/training/index.js";
import SmallCNN from "./cnn.js";

/**
 * Fine-tuning on the device (npm run train:finetune): a CNN pre-trained on the digits 0-7 only (every layer,
 * BatchNorm in training mode) learns the two digits it has never seen, 8 and 9, by training its
 * classifier alone — the backbone frozen, BatchNorm back on its running statistics (eval mode) — in a blob
 * whose compile report shows what training the classifier costs beside training everything.
 */
const PRETRAIN_EPOCHS = Number(process.env.EPOCHS ?? 2);
const FINETUNE_EXAMPLES = 400, FINETUNE_BATCH = 8, FINETUNE_EPOCHS = 4;

/** the examples whose label passes `keep` */
function subset(data: Dataset, keep: (label: number) => boolean, limit = Infinity): Dataset {
  const image = data.tensors.image as Float32Array, target = data.tensors.target as Int32Array;
  const picked = [...target.keys()].filter((i) => keep(target[i])).slice(0, limit);
  const images = new Float32Array(picked.length * 784), targets = new Int32Array(picked.length);
  picked.forEach((i, k) => {
    images.set(image.subarray(i * 784, (i + 1) * 784), k * 784);
    targets[k] = target[i];
  });
  return { count: picked.length, tensors: { image: images, target: targets } as Record<string, TypedArray> };
}

manualSeed(1);
const { train, test } = loadMnist({ train: 8000, test: 2000, seed: 1 });
const isOld = (d: number) => d < 8;
const heldOut = { "0-7": subset(test, isOld), "8-9": subset(test, (d) => !isOld(d)), all: test };
const accuracies = (blob: Parameters<typeof evaluate>[0]) =>
  Object.entries(heldOut).map(([name, d]) => `${name}: ${(100 * evaluate(blob, d)).toFixed(1)}%`).join(", ");

// 1. pre-training on 0-7, every layer, BatchNorm on batch statistics
const model = new SmallCNN().train();
const pre = await compileTraining(model, { inputs: { image: [32, 1, 28, 28] }, loss: "crossEntropy", optimizer: { type: "adam", lr: 2e-3 }, name: "pretrain", optimizeLevel: 1 });
const preBlob = await loadTrainingBlob(pre.wasm, "pretrain");
trainLoop(preBlob, subset(train, isOld), { epochs: PRETRAIN_EPOCHS, seed: 1 });
console.log(`pre-trained on 0-7 (${PRETRAIN_EPOCHS} epochs): held-out accuracy ${accuracies(preBlob)}`);

// 2. fine-tuning on a few examples of every digit: only the classifier trains
model.loadStateDict(preBlob.stateDict());
model.eval();
const tune = await compileTraining(model, {
  inputs: { image: [FINETUNE_BATCH, 1, 28, 28] }, loss: "crossEntropy", optimizer: { type: "sgd", lr: 0.05, momentum: 0.9 },
  trainLastN: 1, name: "finetune-classifier", optimizeLevel: 1,
});
console.log(formatTrainingReport(tune.report));
const tuneBlob = await loadTrainingBlob(tune.wasm, "finetune");
console.log(`before fine-tuning: ${accuracies(tuneBlob)}`);
const tuned = trainLoop(tuneBlob, subset(train, () => true, FINETUNE_EXAMPLES), { epochs: FINETUNE_EPOCHS, seed: 2 });
if (tuned.stopped) throw new Error(tuned.stopped.reason);
console.log(`after fine-tuning the classifier on ${FINETUNE_EXAMPLES} examples (${FINETUNE_EPOCHS} epochs, batch ${FINETUNE_BATCH}, ${tuned.stepMillis.toFixed(2)} ms per step): ${accuracies(tuneBlob)}`);
const m = tune.report.memory;
const region = (name: string) => m.regions.filter((r) => r.name === name).reduce((a, r) => a + r.bytes, 0);
console.log(`fine-tuning memory: ${(m.totalBytes / 1024).toFixed(1)} KiB in all, of which frozen weights ${(region("parameters (frozen)") / 1024).toFixed(1)} KiB ` +
  `(read-only: flash, once frozen layers can live there), trained ${(region("parameters (trained)") / 1024).toFixed(1)} KiB, ` +
  `optimizer state ${(region("optimizer state") / 1024).toFixed(1)} KiB, arena ${(m.arena.bytes / 1024).toFixed(1)} KiB` +
  (m.frozen ? `; training every layer would need ${(m.frozen.bytesSaved.total / 1024).toFixed(1)} KiB more` : ""));
