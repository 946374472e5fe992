import { mkdirSync, writeFileSync } from "node:fs";
import { nn, type Tensor } from "../compiler/index.js";
import { compileTraining, formatTrainingReport, loadMnist, loadTrainingBlob, lossCurveSvg, trainLoop, type OptimizerSpec, type TrainingOptions } from "../compiler/training/index.js";

/**
 * Trains a model inside its own blob on the `mnist` package's real digits (8,000 to train, 2,000 held
 * out), prints the memory report, the per-epoch loss and accuracy, and writes the trained weights and the
 * loss curve to out/.
 */
export async function trainOnMnist(name: string, model: nn.Module, opts: { optimizer: OptimizerSpec; epochs: number; batch?: number; lrDecay?: number; extra?: Partial<TrainingOptions> }): Promise<number> {
  const batch = opts.batch ?? 32;
  const { wasm, report } = await compileTraining(model, { inputs: { image: [batch, 1, 28, 28] }, loss: "crossEntropy", optimizer: opts.optimizer, name, ...opts.extra });
  console.log(formatTrainingReport(report));
  const data = loadMnist({ train: 8000, test: 2000, seed: 1 });
  const blob = await loadTrainingBlob(wasm, name);
  const result = trainLoop(blob, data.train, {
    epochs: opts.epochs,
    seed: 1,
    validation: data.test,
    progress: true,
    onEpoch: (e) => {
      // the learning rate lives in the blob's memory: the host lowers it between epochs
      blob.learningRate *= opts.lrDecay ?? 1;
      console.log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, train accuracy ${(100 * e.accuracy!).toFixed(2)}%, held-out accuracy ${(100 * e.validationAccuracy!).toFixed(2)}% (${(e.millis / 1000).toFixed(1)} s)`);
    },
  });
  if (result.stopped) throw new Error(result.stopped.reason);
  const accuracy = result.epochs[result.epochs.length - 1].validationAccuracy!;
  console.log(`${name}: held-out accuracy ${(100 * accuracy).toFixed(2)}% on 2,000 digits; ${result.stepMillis.toFixed(2)} ms per train_step (batch ${batch})`);
  mkdirSync("out", { recursive: true });
  writeFileSync(`out/${name}.safetensors`, nn.saveSafetensors(blob.stateDict() as Record<string, Tensor>));
  writeFileSync(`out/${name}-loss.svg`, lossCurveSvg(result.losses, { title: `${name}: training loss`, epochs: result.epochs }));
  console.log(`wrote out/${name}.safetensors and out/${name}-loss.svg`);
  return accuracy;
}
