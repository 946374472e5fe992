import { manualSeed, nn, Tensor } from "../compiler/index.js";
import { trainOnMnist } from "./mnist-common.js";

/** A small CNN trained inside its blob with Adam (npm run train:mnist-cnn); FREEZE=1 trains only the classifier. */
export class MnistCNN extends nn.Module {
  features = new nn.Sequential(
    new nn.Conv2d(1, 16, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Conv2d(16, 32, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2),
  );
  classifier = new nn.Linear(32 * 7 * 7, 10);
  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.features.forward(x).flatten(1));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  manualSeed(1);
  const accuracy = await trainOnMnist("mnist-cnn", new MnistCNN(), {
    optimizer: { type: "adam", lr: 2e-3 },
    epochs: Number(process.env.EPOCHS ?? 8),
    lrDecay: 0.7,
    // the memory report then shows what freezing all but the last layer saves
    extra: process.env.FREEZE ? { trainLastN: 1 } : {},
  });
  if (accuracy < 0.97) process.exitCode = 1;
}
