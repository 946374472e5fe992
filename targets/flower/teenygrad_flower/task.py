"""Data partitions, local training and evaluation of a Teenygrad training blob (shared by ClientApp and ServerApp)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .blob import TRAIN_OK, TRAIN_STATUS, TrainingBlob


@dataclass
class Split:
    images: np.ndarray  # [N, 1, 28, 28] float32
    labels: np.ndarray  # [N] int32


@lru_cache(maxsize=2)
def load_split(data_dir: str, split: str) -> Split:
    """`<split>-images.npy` and `<split>-labels.npy` from the directory targets/flower/mnist-npy.ts writes (read
    once per process: a simulation's ClientApp actors serve many messages; callers index copies out of it)."""
    root = Path(data_dir)
    return Split(np.load(root / f"{split}-images.npy"), np.load(root / f"{split}-labels.npy"))


def partition_indices(labels: np.ndarray, num_partitions: int, partition_id: int, scheme: str, seed: int, alpha: float = 0.5) -> np.ndarray:
    """The examples of one client: `iid` deals a seeded shuffle out evenly; `dirichlet` (label-skewed non-IID)
    gives each class to the clients in proportions drawn from Dirichlet(alpha), as Flower Datasets'
    DirichletPartitioner does. Every partition of the same (labels, num_partitions, scheme, seed) is disjoint."""
    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition-id {partition_id} is outside 0..{num_partitions - 1}")
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        return np.sort(np.array_split(rng.permutation(len(labels)), num_partitions)[partition_id])
    if scheme != "dirichlet":
        raise ValueError(f"unknown partitioning '{scheme}' (iid or dirichlet)")
    mine = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cuts = (np.cumsum(rng.dirichlet([alpha] * num_partitions))[:-1] * len(members)).astype(int)
        mine.append(np.split(members, cuts)[partition_id])
    return np.sort(np.concatenate(mine))


@dataclass
class LocalTraining:
    examples: int
    steps: int
    loss: float
    status: int
    reason: str


def train_locally(blob: TrainingBlob, data: Split, epochs: int, seed: int, proximal_mu: float = 0.0) -> LocalTraining:
    """`epochs` passes of train_step() over the data in seeded shuffled batches (a leftover partial batch is
    skipped: the blob's batch is fixed). With proximal_mu > 0 (FedProx) every step is followed by the proximal
    step w <- w - lr * mu * (w - w_global) on each trainable parameter: the gradient of (mu / 2) ||w - w_global||^2,
    applied outside the blob. Stops at the first non-zero status (the parameters are those from before that step)."""
    rng = np.random.default_rng(seed)
    batch = blob.batch
    steps_per_epoch = len(data.labels) // batch
    anchor = {name: blob.parameters[name].copy() for name in blob.trainable} if proximal_mu > 0 else {}
    losses: list[float] = []
    for _ in range(epochs):
        order = rng.permutation(len(data.labels))
        for s in range(steps_per_epoch):
            rows = order[s * batch:(s + 1) * batch]
            result = blob.train_step({blob.input_name: data.images[rows], blob.target_name: data.labels[rows]})
            if result.status != TRAIN_OK:
                return LocalTraining(len(losses) * batch, len(losses), float(np.mean(losses)) if losses else float("nan"), result.status, TRAIN_STATUS.get(result.status, "unknown status"))
            losses.append(result.loss)
            if anchor:
                pull = blob.learning_rate * proximal_mu
                for name, start in anchor.items():
                    view = blob.parameters[name]
                    view -= pull * (view - start)
    return LocalTraining(steps_per_epoch * batch * epochs, len(losses), float(np.mean(losses)) if losses else float("nan"), TRAIN_OK, "")


def evaluate(blob: TrainingBlob, data: Split) -> tuple[float, float]:
    """Cross-entropy loss and accuracy of run() over every example (the last batch padded with zeros, its padding ignored)."""
    batch = blob.batch
    loss_sum, correct = 0.0, 0
    for start in range(0, len(data.labels), batch):
        images, labels = data.images[start:start + batch], data.labels[start:start + batch]
        padded = np.zeros((batch, *images.shape[1:]), np.float32)
        padded[:len(labels)] = images
        logits = blob.run({blob.input_name: padded})[blob.output_name][:len(labels)].astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss_sum -= log_probs[np.arange(len(labels)), labels].sum()
        correct += int((logits.argmax(axis=1) == labels).sum())
    return loss_sum / len(data.labels), correct / len(data.labels)
