import { manualSeed, nn, Tensor } from "../compiler/index.js";
import { trainOnMnist } from "./mnist-common.js";

/** The 784-128-64-10 MLP trained inside its blob with Adam (npm run train:mnist-mlp). */
export class MnistMLP extends nn.Module {
  net = new nn.Sequential(new nn.Linear(784, 128), new nn.ReLU(), new nn.Linear(128, 64), new nn.ReLU(), new nn.Linear(64, 10));
  forward(x: Tensor): Tensor {
    return this.net.forward(x.flatten(1));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  manualSeed(1);
  const accuracy = await trainOnMnist("mnist-mlp", new MnistMLP(), { optimizer: { type: "adam", lr: 1e-3 }, epochs: Number(process.env.EPOCHS ?? 15) });
  if (accuracy < 0.95) process.exitCode = 1;
}
