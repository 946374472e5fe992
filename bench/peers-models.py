# The benchmark models of bench/peers.ts, defined in PyTorch with seeded random weights and exported to ONNX
# (opset 13). Usage: python3 bench/peers-models.py OUT_DIR. Architectures follow the MLPerf Tiny reference
# models (KWS DS-CNN, ResNet-8, MobileNetV1-0.25 VWW, the FC autoencoder) plus an MNIST MLP and LeNet-5;
# BatchNorm layers get random running statistics so folding them is not a no-op.
import os
import sys

import torch
from torch import nn


def bn2d(c):
    return nn.BatchNorm2d(c)


def separable(c_in, c_out, stride, act):
    return [
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), bn2d(c_in), act(),
        nn.Conv2d(c_in, c_out, 1, bias=False), bn2d(c_out), act(),
    ]


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )

    def forward(self, x):
        return self.net(x)


class KwsDsCnn(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Conv2d(1, 64, (10, 4), (2, 2), (5, 1), bias=False), bn2d(64), nn.ReLU()]
        for _ in range(4):
            layers += separable(64, 64, 1, nn.ReLU)
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(64, 12)

    def forward(self, x):
        return self.classifier(self.features(x))


class ResidualBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1), bn2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1), bn2d(c_out),
        )
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride)

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet8(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), bn2d(16), nn.ReLU())
        self.stacks = nn.Sequential(ResidualBlock(16, 16, 1), ResidualBlock(16, 32, 2), ResidualBlock(32, 64, 2))
        self.head = nn.Sequential(nn.AvgPool2d(8), nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(self.stacks(self.stem(x)))


class MobileNetV1Vww(nn.Module):
    BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, width=0.25):
        super().__init__()
        c = int(32 * width)
        layers = [nn.Conv2d(3, c, 3, 2, 1, bias=False), bn2d(c), nn.ReLU6()]
        for out, stride in self.BLOCKS:
            layers += separable(c, int(out * width), stride, nn.ReLU6)
            c = int(out * width)
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c, 2)

    def forward(self, x):
        return self.classifier(self.features(x))


class AdAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        sizes = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]
        layers = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(128, 640))

    def forward(self, x):
        return self.net(x)


MODELS = {
    "mlp": (Mlp, [1, 1, 28, 28]),
    "lenet": (LeNet, [1, 1, 28, 28]),
    "kws_dscnn": (KwsDsCnn, [1, 1, 49, 10]),
    "ic_resnet8": (ResNet8, [1, 3, 32, 32]),
    "vww_mobilenet": (MobileNetV1Vww, [1, 3, 96, 96]),
    "ad_autoencoder": (AdAutoencoder, [1, 640]),
}


def randomize_batchnorm(model):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name, (cls, shape) in MODELS.items():
        torch.manual_seed(0)
        model = cls().eval()
        with torch.no_grad():
            randomize_batchnorm(model)
        torch.onnx.export(model, torch.randn(*shape), os.path.join(out_dir, f"{name}.onnx"), opset_version=13,
                          input_names=["input"], output_names=["output"], do_constant_folding=True)


if __name__ == "__main__":
    main(sys.argv[1])
