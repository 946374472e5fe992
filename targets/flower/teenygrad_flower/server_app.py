"""The ServerApp: FedAvg or FedProx from Flower over Teenygrad blobs, with held-out evaluation each round.

Writes `<out-dir>/history.json` after every round (teenygrad federate and the tests read it): per round the
global held-out loss and accuracy (run() of the same blob on the 2,000 held-out digits), the clients' mean
training loss and federated accuracy, bytes sent each way, the clients whose update was excluded (a non-zero
train_step() status or non-finite parameters) and the nodes that failed or never replied (a SuperNode that
died). With `record-updates`, every client update and the aggregate are also saved as flat float32 .npy.
"""

from __future__ import annotations

import json
import math
import time
from logging import INFO, WARNING
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, FedProx

from .blob import TrainingBlob
from .task import evaluate, load_split

app = ServerApp()


def _json_safe(value):
    """NaN and infinities (a failed client's loss) as null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _flat(arrays: ArrayRecord) -> np.ndarray:
    return np.concatenate([array.numpy().astype(np.float32).reshape(-1) for array in arrays.values()])


class Recorder:
    """Mixed into a Flower strategy: drops failed client updates before aggregation and records each round."""

    def __init__(self, out_dir: Path, record_updates: bool, **strategy_args):
        super().__init__(**strategy_args)
        self.out_dir, self.record_updates = out_dir, record_updates
        self.history: dict = {"rounds": [], "done": False}
        self._round: dict = {}
        self._sent: dict[str, list[Message]] = {}

    def _configure(self, stage: str, messages) -> list[Message]:
        messages = list(messages)
        self._sent[stage] = messages
        self._round["bytes-down"] = self._round.get("bytes-down", 0) + sum(m.content["arrays"].count_bytes() for m in messages)
        return messages

    def _failures(self, stage: str, replies: list[Message]) -> list[Message]:
        """Records replies carrying a Flower error and sampled nodes that never replied (killed, cut off); returns the rest."""
        # the Grid gave each sent message its id; an error reply made by the SuperLink (its source is the
        # SuperLink) names the node through the message it answers
        sent = self._sent.get(stage, [])
        destination = {m.metadata.message_id: m.metadata.dst_node_id for m in sent}
        node_of = lambda reply: destination.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)
        failures = [{"stage": stage, "node": node_of(m), "reason": m.error.reason} for m in replies if m.has_error()]
        answered = {node_of(m) for m in replies}
        failures += [{"stage": stage, "node": m.metadata.dst_node_id, "reason": "no reply before the round's timeout"} for m in sent if m.metadata.dst_node_id not in answered]
        if failures:
            log(WARNING, "%s: %d node(s) failed: %s", stage, len(failures), failures)
        self._round.setdefault("failures", []).extend(failures)
        return [m for m in replies if not m.has_error()]

    def configure_train(self, server_round, arrays, config, grid):
        self._round = {"round": server_round, "started": time.time()}
        return self._configure("train", super().configure_train(server_round, arrays, config, grid))

    def aggregate_train(self, server_round, replies):
        replies = self._failures("train", list(replies))
        kept, clients, excluded = [], [], []
        for m in replies:
            metrics = m.content["metrics"]
            entry = {"node": m.metadata.src_node_id, "partition": int(metrics["partition-id"]), "examples": int(metrics["num-examples"]), "loss": float(metrics["train-loss"]), "status": int(metrics["train-status"])}
            self._round["bytes-up"] = self._round.get("bytes-up", 0) + m.content["arrays"].count_bytes()
            flat = _flat(m.content["arrays"])
            if entry["status"] != 0 or not np.isfinite(flat).all() or entry["examples"] == 0:
                excluded.append(entry)
                continue
            kept.append(m)
            clients.append(entry)
            if self.record_updates:
                np.save(self.out_dir / f"round-{server_round}-node-{entry['node']}.npy", flat)
        if excluded:
            log(WARNING, "aggregate_train: excluded %d client update(s) with a failed train_step(): %s", len(excluded), excluded)
        self._round.update(clients=clients, excluded=excluded)
        arrays, metrics = super().aggregate_train(server_round, kept)
        if arrays is not None and self.record_updates:
            np.save(self.out_dir / f"round-{server_round}-aggregate.npy", _flat(arrays))
        self._round["train-loss"] = float(metrics["train-loss"]) if metrics is not None else None
        return arrays, metrics

    def configure_evaluate(self, server_round, arrays, config, grid):
        return self._configure("evaluate", super().configure_evaluate(server_round, arrays, config, grid))

    def aggregate_evaluate(self, server_round, replies):
        metrics = super().aggregate_evaluate(server_round, self._failures("evaluate", list(replies)))
        self._round["federated-accuracy"] = float(metrics["eval-accuracy"]) if metrics is not None else None
        return metrics

    def finish_round(self, server_round: int, loss: float, accuracy: float) -> None:
        entry = self._round if server_round else {"round": 0}
        entry.update(loss=float(loss), accuracy=float(accuracy))
        if "started" in entry:
            entry["seconds"] = time.time() - entry.pop("started")
        self.history["rounds"].append(entry)
        self.save()

    def save(self) -> None:
        path = self.out_dir / "history.json"
        path.with_suffix(".tmp").write_text(json.dumps(_json_safe(self.history), indent=1, allow_nan=False))
        path.with_suffix(".tmp").replace(path)  # atomic: a reader never sees half a file


class RecordedFedAvg(Recorder, FedAvg):
    pass


class RecordedFedProx(Recorder, FedProx):
    pass


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    out_dir = Path(str(cfg["out-dir"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    blob_path = str(cfg["blob"])
    blob = TrainingBlob(Path(blob_path).read_bytes(), blob_path)
    held_out = load_split(str(cfg["data-dir"]), "test")
    clients, min_nodes = int(cfg["clients"]), int(cfg["min-nodes"])
    common = dict(out_dir=out_dir, record_updates=bool(cfg["record-updates"]), fraction_train=1.0, fraction_evaluate=1.0,
                  min_train_nodes=min_nodes, min_evaluate_nodes=min_nodes, min_available_nodes=min_nodes)
    name = str(cfg["strategy"])
    if name == "fedavg":
        strategy = RecordedFedAvg(**common)
    elif name == "fedprox":
        strategy = RecordedFedProx(proximal_mu=float(cfg["proximal-mu"]), **common)
    else:
        raise ValueError(f"unknown strategy '{name}' (fedavg or fedprox)")
    strategy.history.update(strategy=name, partitioning=str(cfg["partitioning"]), clients=clients, parameters=int(sum(v.size for v in blob.parameters.values())))

    # the first round starts once every expected SuperNode is connected; later rounds go on with min-nodes
    deadline = time.time() + float(cfg["round-timeout"])
    while len(list(grid.get_node_ids())) < clients and time.time() < deadline:
        time.sleep(0.5)
    log(INFO, "teenygrad: %d of %d SuperNodes connected", len(list(grid.get_node_ids())), clients)

    def held_out_evaluation(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        blob.set_parameters({name: array.numpy() for name, array in arrays.items()})
        loss, accuracy = evaluate(blob, held_out)
        strategy.finish_round(server_round, loss, accuracy)
        return MetricRecord({"loss": loss if math.isfinite(loss) else 1e30, "accuracy": accuracy})

    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord({name: Array(value) for name, value in blob.get_parameters().items()}),
        num_rounds=int(cfg["num-server-rounds"]),
        timeout=float(cfg["round-timeout"]),
        evaluate_fn=held_out_evaluation,
    )
    strategy.history["done"] = True
    strategy.save()
