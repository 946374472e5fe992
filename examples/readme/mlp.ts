import { nn, type Tensor } from "teenygrad";

/** A 784-128-10 perceptron for 28x28 digits; `inputs` gives `teenygrad compile` the input's name and shape. */
export default class MLP extends nn.Module {
  fc1 = new nn.Linear(784, 128);
  fc2 = new nn.Linear(128, 10);
  forward(image: Tensor) { return this.fc2.forward(this.fc1.forward(image.flatten(1)).relu()); }
}
export const inputs = { image: [1, 1, 28, 28] };
