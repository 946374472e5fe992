import { nn, Tensor } from "../compiler/index.js";

/**
 * MobileNetV1 at width 0.25 on 96x96 RGB, the MLPerf Tiny visual-wake-words network: a 3x3 stride-2
 * convolution, thirteen depthwise-separable blocks (depthwise 3x3 + pointwise 1x1, each with BatchNorm and
 * ReLU6), global average pooling and a linear layer to 2 classes.
 */
class Separable extends nn.Module {
  depthwise: nn.Conv2d;
  depthwiseBn: nn.BatchNorm2d;
  pointwise: nn.Conv2d;
  pointwiseBn: nn.BatchNorm2d;
  constructor(inChannels: number, outChannels: number, stride: number) {
    super();
    this.depthwise = new nn.Conv2d(inChannels, inChannels, 3, { stride, padding: 1, groups: inChannels, bias: false });
    this.depthwiseBn = new nn.BatchNorm2d(inChannels);
    this.pointwise = new nn.Conv2d(inChannels, outChannels, 1, { bias: false });
    this.pointwiseBn = new nn.BatchNorm2d(outChannels);
  }
  forward(x: Tensor): Tensor {
    const y = this.depthwiseBn.forward(this.depthwise.forward(x)).relu6();
    return this.pointwiseBn.forward(this.pointwise.forward(y)).relu6();
  }
}

/** [output channels, stride] of the thirteen blocks at width 1.0 */
const BLOCKS: [number, number][] = [[64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2], [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1]];

export default class MobileNetV1 extends nn.Module {
  stem: nn.Sequential;
  blocks: nn.Sequential;
  classifier: nn.Linear;
  constructor(width = 0.25, classes = 2) {
    super();
    const first = 32 * width;
    this.stem = new nn.Sequential(new nn.Conv2d(3, first, 3, { stride: 2, padding: 1, bias: false }), new nn.BatchNorm2d(first), new nn.ReLU6());
    let channels = first;
    this.blocks = new nn.Sequential(...BLOCKS.map(([out, stride]) => {
      const block = new Separable(channels, out * width, stride);
      channels = out * width;
      return block;
    }));
    this.classifier = new nn.Linear(channels, classes);
  }
  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.blocks.forward(this.stem.forward(x)).globalAvgPool2d().flatten(1));
  }
}

export const inputs = { image: [1, 3, 96, 96] };
