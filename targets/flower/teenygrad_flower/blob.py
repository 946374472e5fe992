"""A Teenygrad training blob in the wasmtime Python package: every buffer found through its manifest.

The blob imports nothing and exports `memory`, `run() -> i32` and `train_step() -> i32`. Its
`teenygrad.manifest` custom section (JSON, compiler/codegen/manifest.ts) gives each tensor's absolute byte
offset in linear memory, so parameters, batches and outputs are numpy views over that memory (zero-copy;
the memory has a fixed size, so the views stay valid).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import wasmtime

MANIFEST_SECTION = "teenygrad.manifest"
DTYPES = {"float32": np.float32, "float64": np.float64, "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "int64": np.int64, "bool": np.bool_}
# train_step() statuses (README "Training"); on 3 and 4 no parameter has changed
TRAIN_OK, TRAIN_GATHER_OUT_OF_RANGE, TRAIN_LOSS_NOT_FINITE, TRAIN_TARGET_OUT_OF_RANGE = 0, 2, 3, 4
TRAIN_STATUS = {
    2: "an index out of range in a gather",
    3: "the loss is not finite (NaN or infinity); no parameter was updated",
    4: "a class target is out of range for the model's classes; no parameter was updated",
}


class BlobError(Exception):
    """The file is not a Teenygrad training blob, or data does not fit its buffers."""


def _leb128(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def read_manifest(wasm: bytes, source: str = "<blob>") -> dict:
    """The JSON of the `teenygrad.manifest` custom section (section id 0, named)."""
    if wasm[:4] != b"\0asm":
        raise BlobError(f"{source}: not a WebAssembly module")
    at = 8
    while at < len(wasm):
        section_id = wasm[at]
        size, body = _leb128(wasm, at + 1)
        if section_id == 0:
            name_length, name_at = _leb128(wasm, body)
            if wasm[name_at:name_at + name_length].decode() == MANIFEST_SECTION:
                return json.loads(wasm[name_at + name_length:body + size])
        at = body + size
    raise BlobError(f"{source}: no {MANIFEST_SECTION} custom section: not a teenygrad blob")


@dataclass
class StepResult:
    status: int
    loss: float


class TrainingBlob:
    """One instance of a training blob: parameters, train_step() batches and run() inputs as numpy views."""

    def __init__(self, wasm: bytes, source: str = "<blob>"):
        self.source = source
        self.manifest = read_manifest(wasm, source)
        self.training = self.manifest.get("training")
        if self.training is None:
            raise BlobError(f"{source}: not a training blob (compile it with teenygrad compile --train)")
        engine = wasmtime.Engine()
        self._store = wasmtime.Store(engine)
        instance = wasmtime.Instance(self._store, wasmtime.Module(engine, wasm), [])
        exports = instance.exports(self._store)
        try:
            memory, self._run, self._train_step = exports["memory"], exports["run"], exports["train_step"]
        except KeyError as missing:
            raise BlobError(f"{source}: a training blob exports memory, run() and train_step(); {missing} is missing") from None
        length = memory.data_len(self._store)
        self._bytes = np.ctypeslib.as_array(memory.data_ptr(self._store), shape=(length,))
        views = lambda slots: {s["name"]: self._view(s) for s in slots}
        self.parameters = views(self.training["parameters"])
        self.trainable = [p["name"] for p in self.training["parameters"] if p["trainable"]]
        self.step_inputs = views(self.training["inputs"])
        self.step_outputs = views(self.training["outputs"])
        self.run_inputs = views(self.manifest["inputs"])
        self.run_outputs = views(self.manifest["outputs"])
        self._lr = self._bytes[self.training["control"]["lr"]:][:4].view(np.float32)
        self.batch = self.training["inputs"][0]["shape"][0]
        # a classifier's blob: run() takes one input; train_step() takes it and the class target
        if len(self.run_inputs) != 1 or len(self.step_inputs) != 2:
            raise BlobError(f"{source}: the Flower app trains single-input models with one target; train_step() takes {', '.join(self.step_inputs)}")
        self.input_name = next(iter(self.run_inputs))
        self.target_name = next(name for name in self.step_inputs if name != self.input_name)
        self.output_name = next(iter(self.run_outputs))

    def _view(self, slot: dict) -> np.ndarray:
        dtype = DTYPES[slot["dtype"]]
        return self._bytes[slot["offset"]:slot["offset"] + slot["bytes"]].view(dtype).reshape(slot["shape"])

    @property
    def learning_rate(self) -> float:
        return float(self._lr[0])

    @learning_rate.setter
    def learning_rate(self, lr: float) -> None:
        self._lr[0] = lr

    def get_parameters(self) -> dict[str, np.ndarray]:
        """Copies of every state-dict tensor, in manifest order."""
        return {name: view.copy() for name, view in self.parameters.items()}

    def set_parameters(self, values: dict[str, np.ndarray]) -> None:
        """Writes tensors into the blob's parameters (names and shapes must match)."""
        for name, value in values.items():
            if name not in self.parameters:
                raise BlobError(f"{self.source}: no parameter '{name}' (parameters: {', '.join(self.parameters)})")
            view = self.parameters[name]
            if tuple(value.shape) != view.shape:
                raise BlobError(f"{self.source}: parameter '{name}' is {list(view.shape)}, got {list(value.shape)}")
            view[...] = value

    def train_step(self, batch: dict[str, np.ndarray]) -> StepResult:
        """Writes one batch (every train_step() input: the model's inputs and the targets) and runs one step."""
        for name, view in self.step_inputs.items():
            view[...] = batch[name].reshape(view.shape)
        status = self._train_step(self._store)
        return StepResult(status, float(self.step_outputs["loss"].reshape(-1)[0]) if status == TRAIN_OK else float("nan"))

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """run() on the current parameters; returns views of its outputs (valid until the next call)."""
        for name, view in self.run_inputs.items():
            view[...] = inputs[name].reshape(view.shape)
        status = self._run(self._store)
        if status != 0:
            raise BlobError(f"{self.source}: run() returned status {status}")
        return self.run_outputs
