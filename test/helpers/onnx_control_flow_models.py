"""Builds the ONNX models of test/onnx-control-flow.test.ts with onnx.helper and runs them in onnxruntime.

Writes OUT/<model>.onnx and, per case, OUT/<model>.<case>.<name>.npy for every input and every expected output.
"""
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper as h, numpy_helper

out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def const(name, value):
    return h.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def save(model_name, graph, cases, opset=17):
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], producer_name="teenygrad-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = f"{out}/{model_name}.onnx"
    onnx.save(model, path)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for case, feeds in cases.items():
        for k, v in feeds.items():
            np.save(f"{out}/{model_name}.{case}.{k}.npy", v)
        for k, v in zip(names, session.run(None, feeds)):
            np.save(f"{out}/{model_name}.{case}.{k}.npy", v)


# 1. A VAD-style model: nested Ifs decided by a sample-rate input and by shapes; the branches have different
#    output shapes, so only pinning `sr` makes it static. The inner Ifs read `x` and `w` from the outer scope.
w = rng.standard_normal((8, 8)).astype(np.float32)
x_shape = h.make_node("Shape", ["x"], ["x_shape"])
inner16 = h.make_graph([
    const("four", np.array([4], np.int64)), const("one", np.array([1], np.int64)),
    h.make_node("Gather", ["x_shape", "one"], ["width"], axis=0),
    h.make_node("Greater", ["width", "four"], ["wide"]),
    h.make_node("If", ["wide"], ["y16"],
                then_branch=h.make_graph([h.make_node("MatMul", ["x", "w"], ["mm"]), h.make_node("Tanh", ["mm"], ["t"])], "wide", [], [h.make_tensor_value_info("t", F, [1, "w"])]),
                else_branch=h.make_graph([h.make_node("Neg", ["x"], ["n"])], "narrow", [], [h.make_tensor_value_info("n", F, [1, "w"])])),
], "sr16k", [], [h.make_tensor_value_info("y16", F, [1, "w"])])
inner8 = h.make_graph([
    const("starts", np.array([0], np.int64)), const("ends", np.array([4], np.int64)), const("axes", np.array([1], np.int64)),
    h.make_node("Slice", ["x", "starts", "ends", "axes"], ["half"]),
    h.make_node("Sigmoid", ["half"], ["y8"]),
], "sr8k", [], [h.make_tensor_value_info("y8", F, [1, "w"])])
graph = h.make_graph([
    x_shape, const("sixteen_k", np.array(16000, np.int64)),
    h.make_node("Equal", ["sr", "sixteen_k"], ["is16k"]),
    h.make_node("If", ["is16k"], ["y"], then_branch=inner16, else_branch=inner8),
], "nested_if", [h.make_tensor_value_info("x", F, [1, 8]), h.make_tensor_value_info("sr", I64, [])],
    [h.make_tensor_value_info("y", F, [1, "w"])], [numpy_helper.from_array(w, "w")])
x = rng.standard_normal((1, 8)).astype(np.float32)
save("nested_if", graph, {"sr16000": {"x": x, "sr": np.array(16000, np.int64)}, "sr8000": {"x": x, "sr": np.array(8000, np.int64)}})

# 2. A wake-word-style model: a second stage runs only when the first score reaches 0.5 — a condition on data.
w1 = rng.standard_normal((6, 6)).astype(np.float32) * 0.5
graph = h.make_graph([
    h.make_node("ReduceMean", ["x"], ["score"], keepdims=0),
    const("half", np.array(0.5, np.float32)),
    h.make_node("GreaterOrEqual", ["score", "half"], ["fire"]),
    h.make_node("If", ["fire"], ["y"],
                then_branch=h.make_graph([h.make_node("MatMul", ["x", "w1"], ["s2"]), h.make_node("Sigmoid", ["s2"], ["p"])], "stage2", [], [h.make_tensor_value_info("p", F, [2, 6])]),
                else_branch=h.make_graph([h.make_node("Mul", ["x", "x"], ["q"])], "idle", [], [h.make_tensor_value_info("q", F, [2, 6])])),
], "data_if", [h.make_tensor_value_info("x", F, [2, 6])], [h.make_tensor_value_info("y", F, [2, 6])], [numpy_helper.from_array(w1, "w1")])
low = rng.uniform(-1, 0.5, (2, 6)).astype(np.float32)
save("data_if", graph, {"low": {"x": low - low.mean() + 0.2}, "high": {"x": low - low.mean() + 0.8}})

# 3. Paddle2ONNX writes dim_value -1 for the batch: dynamic, fixed by --input.
wc = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
x_info = h.make_tensor_value_info("x", F, [1, 3, 8, 8])
x_info.type.tensor_type.shape.dim[0].dim_value = -1
graph = h.make_graph([
    h.make_node("Conv", ["x", "wc"], ["c"], pads=[1, 1, 1, 1]), h.make_node("Relu", ["c"], ["r"]),
    h.make_node("GlobalAveragePool", ["r"], ["g"]), h.make_node("Flatten", ["g"], ["y"]),
], "paddle", [x_info], [h.make_tensor_value_info("y", F, ["n", 4])], [numpy_helper.from_array(wc, "wc")])
# the checker rejects dim_value -1, which is why it is written after building: skip check_model for this one
model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
model.ir_version = 8
onnx.save(model, f"{out}/paddle.onnx")
xb = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
session = ort.InferenceSession(f"{out}/paddle.onnx", providers=["CPUExecutionProvider"])
np.save(f"{out}/paddle.b3.x.npy", xb)
np.save(f"{out}/paddle.b3.y.npy", session.run(None, {"x": xb})[0])

# 4. Loop with a static trip count (a running product and a scan output) and Scan (a cumulative sum, reversed input).
body = h.make_graph([
    h.make_node("Identity", ["cond_in"], ["cond_out"]),
    h.make_node("Cast", ["i"], ["fi"], to=F),
    h.make_node("Add", ["acc", "fi"], ["acc1"]), h.make_node("Mul", ["acc1", "x"], ["acc_out"]),
    h.make_node("Sin", ["acc_out"], ["step"]),
], "body", [h.make_tensor_value_info("i", I64, []), h.make_tensor_value_info("cond_in", B, []), h.make_tensor_value_info("acc", F, [3])],
    [h.make_tensor_value_info("cond_out", B, []), h.make_tensor_value_info("acc_out", F, [3]), h.make_tensor_value_info("step", F, [3])])
scan_body = h.make_graph([h.make_node("Add", ["s", "row"], ["s_out"]), h.make_node("Identity", ["s_out"], ["row_out"])], "scan_body",
                         [h.make_tensor_value_info("s", F, [3]), h.make_tensor_value_info("row", F, [3])],
                         [h.make_tensor_value_info("s_out", F, [3]), h.make_tensor_value_info("row_out", F, [3])])
graph = h.make_graph([
    const("trips", np.array(4, np.int64)), const("yes", np.array(True)),
    h.make_node("Loop", ["trips", "yes", "x"], ["final", "steps"], body=body),
    h.make_node("Scan", ["x", "rows"], ["total", "cumsum"], body=scan_body, num_scan_inputs=1, scan_input_directions=[1]),
], "loops", [h.make_tensor_value_info("x", F, [3]), h.make_tensor_value_info("rows", F, [5, 3])],
    [h.make_tensor_value_info("final", F, [3]), h.make_tensor_value_info("steps", F, [4, 3]), h.make_tensor_value_info("total", F, [3]), h.make_tensor_value_info("cumsum", F, [5, 3])])
save("loops", graph, {"a": {"x": rng.uniform(0.5, 1.0, 3).astype(np.float32), "rows": rng.standard_normal((5, 3)).astype(np.float32)}})

# 5. The wake-word pattern with a costly second stage that run() must skip: its bias row is gathered at index
#    1,000,000 × (not fire), out of range unless the branch is taken, so running it on a low score would fault.
I32 = TensorProto.INT32
w_score = rng.standard_normal((8, 1)).astype(np.float32)
w_hidden = rng.standard_normal((8, 16)).astype(np.float32)
w_out = rng.standard_normal((16, 4)).astype(np.float32)
bias_rows = rng.standard_normal((3, 4)).astype(np.float32)
stage2 = h.make_graph([
    h.make_node("Not", ["fire"], ["idle"]), h.make_node("Cast", ["idle"], ["idle_i"], to=I32),
    const("far", np.array([1000000], np.int32)), h.make_node("Mul", ["idle_i", "far"], ["row_2d"]),
    const("flat", np.array([1], np.int64)), h.make_node("Reshape", ["row_2d", "flat"], ["row"]),
    h.make_node("Gather", ["bias_rows", "row"], ["bias"], axis=0),
    h.make_node("MatMul", ["x", "w_hidden"], ["hid"]), h.make_node("Relu", ["hid"], ["act"]),
    h.make_node("MatMul", ["act", "w_out"], ["logits"]), h.make_node("Add", ["logits", "bias"], ["keywords"]),
], "stage2", [], [h.make_tensor_value_info("keywords", F, [1, 4])])
idle = h.make_graph([const("silence", np.zeros((1, 4), np.float32))], "idle", [], [h.make_tensor_value_info("silence", F, [1, 4])])
graph = h.make_graph([
    h.make_node("MatMul", ["x", "w_score"], ["logit"]), h.make_node("Sigmoid", ["logit"], ["score"]),
    const("half", np.array(0.5, np.float32)), h.make_node("GreaterOrEqual", ["score", "half"], ["fire"]),
    h.make_node("If", ["fire"], ["y"], then_branch=stage2, else_branch=idle),
], "wake_word", [h.make_tensor_value_info("x", F, [1, 8])],
    [h.make_tensor_value_info("score", F, [1, 1]), h.make_tensor_value_info("y", F, [1, 4])],
    [numpy_helper.from_array(v, k) for k, v in {"w_score": w_score, "w_hidden": w_hidden, "w_out": w_out, "bias_rows": bias_rows}.items()])
xw = rng.standard_normal((1, 8)).astype(np.float32)
fires = xw if (xw @ w_score).item() >= 0 else -xw
save("wake_word", graph, {"fire": {"x": fires}, "idle": {"x": -fires}})
# onnxruntime's Sigmoid is accurate to about 1e-7 absolute, not relative: below a logit of about -4.5 its relative
# error passes 1e-5 (3e-4 at -8), which the idle case's one-element score is compared with, so the expected score is
# the float64 sigmoid of the float32 inputs' logit instead
for case, x in {"fire": fires, "idle": -fires}.items():
    logit = x.astype(np.float64) @ w_score.astype(np.float64)
    np.save(f"{out}/wake_word.{case}.score.npy", (1 / (1 + np.exp(-logit))).astype(np.float32))
