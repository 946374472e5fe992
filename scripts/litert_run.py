"""Runs a .tflite model in the TFLite reference interpreter (ai-edge-litert), for teenygrad's tests and reports.

usage: python litert_run.py MODEL DIR [RUNS]
Reads DIR/input_<k>.npy for the model's k-th input (in the interpreter's input order), runs the model once, writes
DIR/output_<k>.npy, and prints one JSON line describing inputs and outputs (name, shape, dtype, quantization).
With RUNS, runs it RUNS times, on DIR/<r>/input_<k>.npy, writing DIR/<r>/output_<k>.npy (one interpreter start for
many seeds). Without input files it only describes the model. Installed by scripts/install-litert.sh.
"""
import json
import os
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def describe(detail):
    scale, zero_point = detail["quantization"]
    return {
        "name": detail["name"],
        "shape": [int(d) for d in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": {"scale": float(scale), "zeroPoint": int(zero_point)} if scale else None,
    }


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    model, work = sys.argv[1], sys.argv[2]
    runs = [os.path.join(work, str(r)) for r in range(int(sys.argv[3]))] if len(sys.argv) == 4 else [work]
    # TFLite's builtin kernels, without the default XNNPACK delegate: XNNPACK quantizes the inputs of hybrid ops
    # (int8 weights, float activations) its own way, while the builtin kernels are the ones TFLite Micro mirrors
    interpreter = Interpreter(model_path=model, num_threads=1,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    ran = all(os.path.exists(os.path.join(run, f"input_{k}.npy")) for run in runs for k in range(len(inputs)))
    for run in runs if ran else []:
        paths = [os.path.join(run, f"input_{k}.npy") for k in range(len(inputs))]
        for detail, path in zip(inputs, paths):
            value = np.load(path)
            if value.dtype != detail["dtype"] or list(value.shape) != list(detail["shape"]):
                sys.exit(f"{path}: {value.dtype}{list(value.shape)} does not fit input '{detail['name']}' "
                         f"{np.dtype(detail['dtype']).name}{list(detail['shape'])}")
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        for k, detail in enumerate(outputs):
            np.save(os.path.join(run, f"output_{k}.npy"), interpreter.get_tensor(detail["index"]))
    print(json.dumps({"ran": ran, "inputs": [describe(d) for d in inputs], "outputs": [describe(d) for d in outputs]}))


if __name__ == "__main__":
    main()
