"""Small CNNs quantized by onnxruntime's quantize_static (QDQ), with seeded inputs and onnxruntime's outputs.

usage: onnx_qdq_models.py DIR SEED MODEL:VARIANT...
Writes DIR/MODEL.onnx (the float model), DIR/MODEL.VARIANT.onnx (quantized, calibrated on random data) and, for
SAMPLES fresh random inputs, DIR/MODEL.VARIANT.NAME.npy for every input and output (onnxruntime's), stacked, and
DIR/MODEL.VARIANT.steps.json, each output's quantization step.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

out_dir, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
SAMPLES = 4  # inputs per run, stacked on a leading axis of the .npy files


def weight(name, shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * (2 / np.prod(shape[1:])) ** 0.5).astype(np.float32), name)


def cnn():
    """conv+relu, depthwise conv+relu, maxpool, pointwise conv, residual add, avgpool, flatten, gemm."""
    nodes = [
        helper.make_node("Conv", ["x", "cw1", "cb1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "cw2", "cb2"], ["c2"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "cw3", "cb3"], ["c3"]),
        helper.make_node("Add", ["c3", "p1"], ["s1"]),
        helper.make_node("AveragePool", ["s1"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"]),
        helper.make_node("Gemm", ["f", "cw4", "cb4"], ["y"], transB=1),
    ]
    inits = [weight("cw1", [8, 3, 3, 3]), weight("cb1", [8]), weight("cw2", [8, 1, 3, 3]), weight("cb2", [8]),
             weight("cw3", [8, 8, 1, 1]), weight("cb3", [8]), weight("cw4", [10, 72]), weight("cb4", [10])]
    return nodes, inits, {"x": [1, 3, 12, 12]}, {"y": [1, 10]}


def layers():
    """one quantized op per output, each on quantized graph inputs: its int8 result is compared op by op."""
    nodes = [
        helper.make_node("Conv", ["a", "w1", "b1"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w2", "b2"], ["dw"], pads=[1, 1, 1, 1], strides=[2, 2], group=8),
        helper.make_node("Relu", ["dw"], ["depthwise"]),
        helper.make_node("MaxPool", ["a"], ["maxpool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["a"], ["avgpool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["a"], ["gap"]),
        helper.make_node("Add", ["a", "b"], ["add"]),
        helper.make_node("Gemm", ["m", "w3", "b3"], ["gemm"], transB=1),
        helper.make_node("MatMul", ["m", "w4"], ["matmul"]),
    ]
    inits = [weight("w1", [8, 8, 3, 3]), weight("b1", [8]), weight("w2", [8, 1, 3, 3]), weight("b2", [8]),
             weight("w3", [6, 32]), weight("b3", [6]), weight("w4", [32, 5])]
    inputs = {"a": [1, 8, 8, 8], "b": [1, 8, 8, 8], "m": [4, 32]}
    outputs = {"conv": [1, 8, 8, 8], "depthwise": [1, 8, 4, 4], "maxpool": [1, 8, 4, 4], "avgpool": [1, 8, 4, 4],
               "gap": [1, 8, 1, 1], "add": [1, 8, 8, 8], "gemm": [4, 6], "matmul": [4, 5]}
    return nodes, inits, inputs, outputs


def both():
    """layers and cnn side by side in one graph: one compile checks both."""
    parts = [layers(), cnn()]
    return [sum((p[i] for p in parts), []) for i in range(2)] + [{k: v for p in parts for k, v in p[i].items()} for i in (2, 3)]


MODELS = {"cnn": cnn, "layers": layers, "both": both}


def build(nodes, inits, inputs, outputs):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in inputs.items()],
                              [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in outputs.items()], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class RandomData(CalibrationDataReader):
    def __init__(self, inputs, n):
        self.batches = iter([{k: rng.standard_normal(v).astype(np.float32) for k, v in inputs.items()} for _ in range(n)])

    def get_next(self):
        return next(self.batches, None)


VARIANTS = {
    "s8_tensor": dict(activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=False),
    "s8_channel": dict(activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True),
    "u8_tensor": dict(activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False),
    "u8_weights": dict(activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8, per_channel=False),
    "s8_operators": dict(activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True, quant_format=QuantFormat.QOperator),
}
for job in sys.argv[3:]:
    model_name, variant = job.split(":")
    nodes, inits, inputs, outputs = MODELS[model_name]()
    float_path = f"{out_dir}/{model_name}.onnx"
    onnx.save(build(nodes, inits, inputs, outputs), float_path)
    path = f"{out_dir}/{model_name}.{variant}.onnx"
    quantize_static(float_path, path, RandomData(inputs, 16), **{"quant_format": QuantFormat.QDQ, **VARIANTS[variant]})
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = [{k: rng.standard_normal(v).astype(np.float32) for k, v in inputs.items()} for _ in range(SAMPLES)]
    results = [session.run(list(outputs), f) for f in feeds]
    for k in inputs:
        np.save(f"{out_dir}/{model_name}.{variant}.{k}.npy", np.stack([f[k] for f in feeds]))
    for i, k in enumerate(outputs):
        np.save(f"{out_dir}/{model_name}.{variant}.{k}.npy", np.stack([r[i] for r in results]))
    # each output's quantization step: the scale of the DequantizeLinear that writes it
    quantized = onnx.load(path)
    scales = {i.name: float(numpy_helper.to_array(i)) for i in quantized.graph.initializer if i.name.endswith("scale") and not i.dims}
    steps = {n.output[0]: scales[n.input[1]] for n in quantized.graph.node if n.op_type == "DequantizeLinear" and n.output[0] in outputs}
    with open(f"{out_dir}/{model_name}.{variant}.steps.json", "w") as f:
        json.dump(steps, f)
