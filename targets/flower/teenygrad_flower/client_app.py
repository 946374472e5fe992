"""The ClientApp: a Teenygrad training blob in wasmtime trains on this SuperNode's partition of the digits.

Which blob and data: the node config's `blob` / `data-dir` when given (a SuperNode on an edge board points at
its own files), else the run config's. Which partition: the node config's `partition-id` / `num-partitions`
(the simulation engine sets them for each virtual SuperNode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from .blob import TrainingBlob
from .task import Split, evaluate, load_split, partition_indices, train_locally

app = ClientApp()


def _setting(context: Context, key: str):
    return context.node_config.get(key, context.run_config[key])


def _blob(context: Context, arrays: ArrayRecord) -> TrainingBlob:
    path = str(_setting(context, "blob"))
    blob = TrainingBlob(Path(path).read_bytes(), path)
    blob.set_parameters({name: array.numpy() for name, array in arrays.items()})
    return blob


def _partition(context: Context, split: str) -> tuple[int, Split]:
    partition_id, partitions = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    data = load_split(str(_setting(context, "data-dir")), split)
    rows = partition_indices(data.labels, partitions, partition_id, str(context.run_config["partitioning"]), int(context.run_config["partition-seed"]))
    return partition_id, Split(data.images[rows], data.labels[rows])


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Global parameters in, local epochs of train_step(), updated parameters and the example count out."""
    blob = _blob(context, msg.content["arrays"])
    config = msg.content["config"]
    server_round = int(config["server-round"])
    partition_id, data = _partition(context, "train")
    if partition_id == int(context.run_config["fault-nan-partition"]):
        data.images[:] = np.nan  # fault injection: this client's loss is NaN, train_step() returns 3
    print(f"teenygrad client {partition_id}: round {server_round}: training on {len(data.labels)} examples", flush=True)
    local = train_locally(blob, data, int(context.run_config["local-epochs"]), seed=1000 * server_round + partition_id, proximal_mu=float(config.get("proximal-mu", 0.0)))
    if local.status:
        print(f"teenygrad client {partition_id}: round {server_round}: train_step() returned {local.status} at step {local.steps + 1}: {local.reason}", flush=True)
    arrays = ArrayRecord({name: Array(value) for name, value in blob.get_parameters().items()})
    metrics = MetricRecord({"num-examples": local.examples, "train-loss": local.loss, "train-status": local.status, "partition-id": partition_id})
    return Message(content=RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


@app.evaluate()
def evaluate_global(msg: Message, context: Context) -> Message:
    """run() on this client's share of the held-out digits."""
    blob = _blob(context, msg.content["arrays"])
    partition_id, data = _partition(context, "test")
    loss, accuracy = evaluate(blob, data)
    metrics = MetricRecord({"num-examples": len(data.labels), "eval-loss": loss, "eval-accuracy": accuracy, "partition-id": partition_id})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
