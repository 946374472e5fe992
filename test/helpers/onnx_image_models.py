"""Builds the ONNX models of test/onnx-image-ops.test.ts with onnx.helper and runs them in onnxruntime
(onnx.reference for the 5-d GridSample, irfft and a complex STFT, where onnxruntime fails).

Writes OUT/<model>.onnx, OUT/<model>.<name>.npy for every input and every expected output.
"""
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper as h, numpy_helper
from onnx.reference import ReferenceEvaluator

out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def save(name, nodes, inputs, outputs, feeds, opset, rank=4, reference=False):
    graph = h.make_graph(nodes, name, [h.make_tensor_value_info(k, t, s) for k, t, s in inputs],
                         [h.make_tensor_value_info(k, t, [None] * rank) for k, t in outputs])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], producer_name="teenygrad-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = f"{out}/{name}.onnx"
    onnx.save(model, path)
    if reference:
        results = ReferenceEvaluator(model).run(None, feeds)
    else:
        results = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    for k, v in feeds.items():
        np.save(f"{out}/{name}.{k}.npy", v)
    for (k, _), v in zip(outputs, results):
        np.save(f"{out}/{name}.{k}.npy", v)


# GridSample, 4-d at opset 16 (bilinear / bicubic spelling): every mode, padding and align_corners; the grid
# reaches past [-1, 1] so every padding mode is exercised
x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
grid = rng.uniform(-1.4, 1.4, (2, 4, 7, 2)).astype(np.float32)
nodes, outputs = [], []
for mode in ["nearest", "bilinear", "bicubic"]:
    for padding in ["zeros", "border", "reflection"]:
        for align in [0, 1]:
            y = f"{mode}_{padding}_{align}"
            nodes.append(h.make_node("GridSample", ["x", "grid"], [y], mode=mode, padding_mode=padding, align_corners=align))
            outputs.append((y, F))
save("gridsample", nodes, [("x", F, x.shape), ("grid", F, grid.shape)], outputs, {"x": x, "grid": grid}, 16)

# 5-d GridSample (opset 20): linear and nearest
x5 = rng.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
grid5 = rng.uniform(-1.2, 1.2, (1, 2, 3, 4, 3)).astype(np.float32)
nodes = [h.make_node("GridSample", ["x", "grid"], [f"{m}_{p}"], mode=m, padding_mode=p, align_corners=a)
         for m, p, a in [("linear", "zeros", 0), ("linear", "reflection", 1), ("nearest", "border", 0)]]
save("gridsample5d", nodes, [("x", F, x5.shape), ("grid", F, grid5.shape)], [(n.output[0], F) for n in nodes], {"x": x5, "grid": grid5}, 20, rank=5, reference=True)


def const(name, value):
    return h.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


# AffineGrid (opset 20): a 2-d grid without and a 3-d grid with align_corners
theta2 = rng.standard_normal((2, 2, 3)).astype(np.float32)
theta3 = rng.standard_normal((2, 3, 4)).astype(np.float32)
save("affine2", [const("size", np.array([2, 3, 5, 7], np.int64)), h.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=0)],
     [("theta", F, theta2.shape)], [("grid", F)], {"theta": theta2}, 20)
save("affine3", [const("size", np.array([2, 1, 3, 4, 5], np.int64)), h.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=1)],
     [("theta", F, theta3.shape)], [("grid", F)], {"theta": theta3}, 20, rank=5)

# DFT at opset 20 (axis as an input): forward real and complex, onesided, inverse, irfft, a dft_length that
# pads and one that cuts; and opset 17's axis attribute
real = rng.standard_normal((2, 9, 6, 1)).astype(np.float32)
cplx = rng.standard_normal((2, 9, 6, 2)).astype(np.float32)
nodes = [const("ax1", np.array(1, np.int64)), const("ax2", np.array(-2, np.int64)), const("len12", np.array(12, np.int64)),
         const("len7", np.array(7, np.int64)),
         h.make_node("DFT", ["real", "", "ax1"], ["forward"]),
         h.make_node("DFT", ["cplx", "", "ax2"], ["complex"]),
         h.make_node("DFT", ["real", "len12", "ax1"], ["onesided"], onesided=1),
         h.make_node("DFT", ["cplx", "len7", "ax1"], ["inverse"], inverse=1)]
outputs = [(n, F) for n in ["forward", "complex", "onesided", "inverse"]]
save("dft", nodes, [("real", F, real.shape), ("cplx", F, cplx.shape)], outputs, {"real": real, "cplx": cplx}, 20)
# irfft (inverse and onesided): onnxruntime's shape inference refuses the pair, onnx.reference runs numpy's irfft
save("irfft", [const("ax1", np.array(1, np.int64)), const("len10", np.array(10, np.int64)), h.make_node("DFT", ["cplx", "len10", "ax1"], ["y"], inverse=1, onesided=1)],
     [("cplx", F, cplx.shape)], [("y", F)], {"cplx": cplx}, 20, reference=True)
save("dft17", [h.make_node("DFT", ["cplx"], ["y"], axis=2)], [("cplx", F, cplx.shape)], [("y", F)], {"cplx": cplx}, 17)

# STFT with a Hann window, real signal (onesided) and complex signal (two-sided)
signal = rng.standard_normal((2, 64, 1)).astype(np.float32)
csignal = rng.standard_normal((1, 40, 2)).astype(np.float32)
window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)).astype(np.float32)
steps = [const("step", np.array(6, np.int64)), const("window", window), const("flen", np.array(10, np.int64))]
save("stft", steps + [h.make_node("STFT", ["signal", "step", "window"], ["spectrum"])], [("signal", F, signal.shape)], [("spectrum", F)], {"signal": signal}, 17)
# onnxruntime's two-sided STFT of a complex signal returns garbage (1e24): onnx.reference
save("cstft", steps + [h.make_node("STFT", ["csignal", "step", "", "flen"], ["spectrum"], onesided=0)], [("csignal", F, csignal.shape)], [("spectrum", F)], {"csignal": csignal}, 17, reference=True)

# NonMaxSuppression on corner boxes (either corner first) and on centre boxes
for center in [0, 1]:
    corners = rng.uniform(0, 10, (2, 12, 4)).astype(np.float32)
    if center:
        corners[..., 2:] = rng.uniform(1, 5, (2, 12, 2))
    scores = rng.uniform(0, 1, (2, 3, 12)).astype(np.float32)
    nodes = [const("max", np.array([10], np.int64)), const("iou", np.array([0.3], np.float32)), const("score", np.array([0.2], np.float32)),
             h.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou", "score"], ["selected"], center_point_box=center)]
    save(f"nms{center}", nodes, [("boxes", F, corners.shape), ("scores", F, scores.shape)], [("selected", I64)], {"boxes": corners, "scores": scores}, 11, rank=2)
