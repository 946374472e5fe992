import { nn, Tensor } from "../compiler/index.js";

/**
 * MLPerf Tiny keyword spotting DS-CNN: 49x10 MFCC input; conv 64 filters 10x4 stride 2; four
 * depthwise-separable blocks (depthwise 3x3 + pointwise 64, each with BatchNorm and ReLU);
 * global average pool; linear to 12 classes.
 */
function separable(channels: number): nn.Module[] {
  return [
    new nn.Conv2d(channels, channels, 3, { padding: 1, groups: channels, bias: false }), new nn.BatchNorm2d(channels), new nn.ReLU(),
    new nn.Conv2d(channels, channels, 1, { bias: false }), new nn.BatchNorm2d(channels), new nn.ReLU(),
  ];
}

export default class KwsDsCnn extends nn.Module {
  features = new nn.Sequential(
    new nn.Conv2d(1, 64, [10, 4], { stride: 2, padding: [5, 1], bias: false }), new nn.BatchNorm2d(64), new nn.ReLU(),
    ...separable(64), ...separable(64), ...separable(64), ...separable(64),
    new nn.GlobalAvgPool2d(),
  );
  classifier = new nn.Linear(64, 12);
  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.features.forward(x).flatten(1));
  }
}

export const inputs = { mfcc: [1, 1, 49, 10] };
