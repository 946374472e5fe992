import { nn, Tensor } from "../compiler/index.js";

/** A 784-128-64-10 multilayer perceptron for 28x28 digits. */
export default class MLP extends nn.Module {
  net = new nn.Sequential(new nn.Linear(784, 128), new nn.ReLU(), new nn.Linear(128, 64), new nn.ReLU(), new nn.Linear(64, 10));
  forward(x: Tensor): Tensor {
    return this.net.forward(x.flatten(1));
  }
}

export const inputs = { image: [1, 1, 28, 28] };
