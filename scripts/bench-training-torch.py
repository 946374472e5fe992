"""PyTorch's side of npm run bench:training: the same training steps as bench/training.ts, on one CPU thread.

Reads a JSON list of workloads on stdin ({"model", "batch", "steps", "warmup"}), prints one JSON object:
the torch version and, per workload, the median milliseconds of one step (zero_grad, forward,
cross-entropy, backward, Adam step) after the warm-up. Random data: the timing does not depend on it.
"""
import json
import sys
import time

import torch
from torch import nn

torch.set_num_threads(1)
torch.manual_seed(0)


def mnist_cnn():
    # examples/mnist-cnn.ts
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def small_cnn_bn():
    # examples/cnn.ts, BatchNorm in training mode
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10), nn.LogSoftmax(-1))


MODELS = {"mnist-cnn": mnist_cnn, "small-cnn-bn": small_cnn_bn}


def median_step_ms(workload):
    net = MODELS[workload["model"]]().train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(workload["batch"], 1, 28, 28)
    y = torch.randint(0, 10, (workload["batch"],))
    times = []
    for s in range(workload["warmup"] + workload["steps"]):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        if s >= workload["warmup"]:
            times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)[len(times) // 2]


workloads = json.load(sys.stdin)
print(json.dumps({"version": torch.__version__, "millis": [median_step_ms(w) for w in workloads]}))
