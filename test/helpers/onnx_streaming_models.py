"""Builds the streaming LSTM of test/streaming.test.ts with onnx.helper and runs it in onnxruntime.

lstm_step.onnx: one frame x [1, 1, F] and the state h_in, c_in [1, 1, H] in; a wake-word style score [1, 1]
(sigmoid of a linear head on h) and the next state h_out, c_out out. lstm_seq.onnx: the same weights over T frames
at once from a zero state (the unrolled reference). Writes OUT/<model>.onnx and OUT/stream.<name>.npy: the frames
x [T, 1, F], onnxruntime's unrolled scores [T, 1], h_last and c_last, and the frames run one by one through
lstm_step in onnxruntime with the state fed back by hand (checked here to equal the unrolled run).
"""
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper as h, numpy_helper

out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
F32 = TensorProto.FLOAT
T, FEATURES, HIDDEN = 10, 8, 16

weights = {
    "W": rng.standard_normal((1, 4 * HIDDEN, FEATURES)).astype(np.float32) * 0.4,
    "R": rng.standard_normal((1, 4 * HIDDEN, HIDDEN)).astype(np.float32) * 0.4,
    "B": rng.standard_normal((1, 8 * HIDDEN)).astype(np.float32) * 0.2,
    "Wo": rng.standard_normal((HIDDEN, 1)).astype(np.float32),
}
initializers = [numpy_helper.from_array(v, k) for k, v in weights.items()]


def const(name, value):
    return h.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def save(name, graph):
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], producer_name="teenygrad-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = f"{out}/{name}.onnx"
    onnx.save(model, path)
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def head(y, steps, score):
    """score = sigmoid(h · Wo) for each step's h in the LSTM's Y [steps, 1, 1, H]"""
    return [
        const(f"{score}_shape", np.array([steps, HIDDEN], np.int64)),
        h.make_node("Reshape", [y, f"{score}_shape"], [f"{score}_h"]),
        h.make_node("MatMul", [f"{score}_h", "Wo"], [f"{score}_logit"]),
        h.make_node("Sigmoid", [f"{score}_logit"], [score]),
    ]


step = save("lstm_step", h.make_graph(
    [h.make_node("LSTM", ["x", "W", "R", "B", "", "h_in", "c_in"], ["y", "h_out", "c_out"], hidden_size=HIDDEN), *head("y", 1, "score")],
    "lstm_step",
    [h.make_tensor_value_info("x", F32, [1, 1, FEATURES]), h.make_tensor_value_info("h_in", F32, [1, 1, HIDDEN]), h.make_tensor_value_info("c_in", F32, [1, 1, HIDDEN])],
    [h.make_tensor_value_info("score", F32, [1, 1]), h.make_tensor_value_info("h_out", F32, [1, 1, HIDDEN]), h.make_tensor_value_info("c_out", F32, [1, 1, HIDDEN])],
    initializers))
seq = save("lstm_seq", h.make_graph(
    [h.make_node("LSTM", ["x", "W", "R", "B"], ["y", "h_last", "c_last"], hidden_size=HIDDEN), *head("y", T, "scores")],
    "lstm_seq",
    [h.make_tensor_value_info("x", F32, [T, 1, FEATURES])],
    [h.make_tensor_value_info("scores", F32, [T, 1]), h.make_tensor_value_info("h_last", F32, [1, 1, HIDDEN]), h.make_tensor_value_info("c_last", F32, [1, 1, HIDDEN])],
    initializers))

x = rng.standard_normal((T, 1, FEATURES)).astype(np.float32)
scores, h_last, c_last = seq.run(None, {"x": x})
state = {"h_in": np.zeros((1, 1, HIDDEN), np.float32), "c_in": np.zeros((1, 1, HIDDEN), np.float32)}
stepped = []
for t in range(T):
    score, state["h_in"], state["c_in"] = step.run(None, {"x": x[t:t + 1], **state})
    stepped.append(score[0])
np.testing.assert_allclose(np.stack(stepped), scores, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(state["h_in"], h_last, rtol=1e-5, atol=1e-6)
for k, v in {"x": x, "scores": scores, "h_last": h_last, "c_last": c_last, "stepped": np.stack(stepped)}.items():
    np.save(f"{out}/stream.{k}.npy", v)
