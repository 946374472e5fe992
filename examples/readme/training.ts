import { writeFileSync } from "node:fs";
import { compileTraining, loadMnist, loadTrainingBlob, nn, trainLoop, type Tensor } from "teenygrad";

class Net extends nn.Module {
  fc1 = new nn.Linear(784, 64);
  fc2 = new nn.Linear(64, 10);
  forward(image: Tensor) { return this.fc2.forward(this.fc1.forward(image.flatten(1)).relu()); }
}
const { wasm } = await compileTraining(new Net(), { inputs: { image: [32, 1, 28, 28] }, loss: "crossEntropy", optimizer: { type: "adam", lr: 2e-3 } });
const blob = await loadTrainingBlob(wasm);
const { train, test } = loadMnist({ train: 2000, test: 500 });   // images [N, 1, 28, 28] float32, targets [N] int32

const first = { image: train.tensors.image.subarray(0, 32 * 784), target: train.tensors.target.subarray(0, 32) };
console.log("first step's loss", blob.trainStep(first).loss);       // one train_step() on 32 digits
const { epochs } = trainLoop(blob, train, { epochs: 2, validation: test, onEpoch: () => (blob.learningRate *= 0.7) });
console.log("held-out accuracy", epochs.at(-1)!.validationAccuracy);
writeFileSync("net.safetensors", nn.saveSafetensors(blob.stateDict()));   // a checkpoint: `teenygrad compile --state` takes it
