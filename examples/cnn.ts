import { nn, Tensor } from "../compiler/index.js";

/** A small CNN for 28x28 digits: two conv-BN-ReLU-pool stages and a linear classifier. */
export default class SmallCNN extends nn.Module {
  features = new nn.Sequential(
    new nn.Conv2d(1, 8, 3, { padding: 1 }), new nn.BatchNorm2d(8), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Conv2d(8, 16, 3, { padding: 1 }), new nn.BatchNorm2d(16), new nn.ReLU(), new nn.MaxPool2d(2),
  );
  classifier = new nn.Linear(16 * 7 * 7, 10);
  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.features.forward(x).flatten(1)).logSoftmax(-1);
  }
}

export const inputs = { image: [1, 1, 28, 28] };
