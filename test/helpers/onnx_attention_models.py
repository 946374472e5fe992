"""Builds the ONNX models of test/onnx-attention.test.ts with onnx.helper: RotaryEmbedding (opset 23),
LinearAttention and CausalConvWithState (opset 27), FlexAttention (ai.onnx.preview) with score_mod / prob_mod subgraphs, and runs
them in onnxruntime where it has the operator, else in onnx.reference.

Writes OUT/<model>.onnx, OUT/<model>.<name>.npy for every input and expected output, and OUT/engines.json
naming the engine each model's expected outputs come from.
"""
import json
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper as h, numpy_helper
from onnx.reference import ReferenceEvaluator

out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
F, I64 = TensorProto.FLOAT, TensorProto.INT64
engines = {}


def save(name, node, inputs, outputs, feeds, opsets, initializers=()):
    graph = h.make_graph([node], name, [h.make_tensor_value_info(k, t, v.shape) for (k, t), v in zip(inputs, feeds.values())],
                         [h.make_tensor_value_info(k, F, None) for k in outputs], list(initializers))
    model = h.make_model(graph, opset_imports=[h.make_opsetid(d, v) for d, v in opsets.items()], producer_name="teenygrad-tests")
    model.ir_version = 10
    path = f"{out}/{name}.onnx"
    onnx.save(model, path)
    try:
        results = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
        engines[name] = f"onnxruntime {ort.__version__}"
    except Exception:  # an operator or opset this onnxruntime does not have
        results = ReferenceEvaluator(model).run(None, feeds)
        engines[name] = f"onnx.reference {onnx.__version__}"
    for k, v in feeds.items():
        np.save(f"{out}/{name}.{k}.npy", v)
    for k, v in zip(outputs, results):
        np.save(f"{out}/{name}.{k}.npy", v)


def normal(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# RotaryEmbedding: caches of random angles; 4-d with position_ids, interleaved on part of the head, 3-d with
# num_heads and caches per (batch, position)
angles = rng.uniform(0, 2 * np.pi, (16, 4)).astype(np.float32)
pos = rng.integers(0, 16, (2, 5)).astype(np.int64)
rope_in = [("x", F), ("cos", F), ("sin", F), ("pos", I64)]
save("rope", h.make_node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"]), rope_in, ["y"],
     {"x": normal(2, 3, 5, 8), "cos": np.cos(angles), "sin": np.sin(angles), "pos": pos}, {"": 23})
save("rope_interleaved", h.make_node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"], interleaved=1, rotary_embedding_dim=4), rope_in, ["y"],
     {"x": normal(2, 3, 5, 8), "cos": np.cos(angles[:, :2]), "sin": np.sin(angles[:, :2]), "pos": pos}, {"": 23})
per_position = rng.uniform(0, 2 * np.pi, (2, 5, 4)).astype(np.float32)
save("rope3d", h.make_node("RotaryEmbedding", ["x", "cos", "sin"], ["y"], num_heads=4), rope_in[:3], ["y"],
     {"x": normal(2, 5, 32), "cos": np.cos(per_position), "sin": np.sin(per_position)}, {"": 23})

# LinearAttention over 6 steps: gated_delta with grouped-query heads (4 over 2), a past state and per-key decay;
# delta with one beta for all heads; gated with per-head decay; linear with an explicit scale
B, T, DK, DV = 2, 6, 4, 3
la_in = [("q", F), ("k", F), ("v", F), ("state", F), ("decay", F), ("beta", F)]
decay = lambda last: -rng.uniform(0.05, 0.5, (B, T, last)).astype(np.float32)  # log-decay: a factor in (0.6, 0.95)
beta = lambda last: rng.uniform(0.2, 0.9, (B, T, last)).astype(np.float32)
save("la_gated_delta", h.make_node("LinearAttention", ["q", "k", "v", "state", "decay", "beta"], ["y", "present"], q_num_heads=4, kv_num_heads=2),
     la_in, ["y", "present"],
     {"q": normal(B, T, 4 * DK), "k": normal(B, T, 2 * DK) * 0.5, "v": normal(B, T, 2 * DV), "state": normal(B, 2, DK, DV), "decay": decay(2 * DK), "beta": beta(2)}, {"": 27})
save("la_delta", h.make_node("LinearAttention", ["q", "k", "v", "", "", "beta"], ["y", "present"], q_num_heads=2, kv_num_heads=2, update_rule="delta"),
     [la_in[i] for i in (0, 1, 2, 5)], ["y", "present"],
     {"q": normal(B, T, 2 * DK), "k": normal(B, T, 2 * DK) * 0.5, "v": normal(B, T, 2 * DV), "beta": beta(1)}, {"": 27})
save("la_gated", h.make_node("LinearAttention", ["q", "k", "v", "", "decay"], ["y", "present"], q_num_heads=2, kv_num_heads=1, update_rule="gated"),
     [la_in[i] for i in (0, 1, 2, 4)], ["y", "present"],
     {"q": normal(B, T, 2 * DK), "k": normal(B, T, DK), "v": normal(B, T, DV), "decay": decay(1)}, {"": 27})
save("la_linear", h.make_node("LinearAttention", ["q", "k", "v"], ["y", "present"], q_num_heads=2, kv_num_heads=2, update_rule="linear", scale=0.3),
     la_in[:3], ["y", "present"], {"q": normal(B, T, 2 * DK), "k": normal(B, T, 2 * DK), "v": normal(B, T, 2 * DV)}, {"": 27})

# FlexAttention: grouped-query heads (4 over 2) with a scale; a causal score_mod (a Where on indices computed from
# the scores' shape) with a prob_mod
flex = {"": 26, "ai.onnx.preview": 1}
flex_in = [("q", F), ("k", F), ("v", F)]
save("flex_gqa", h.make_node("FlexAttention", ["q", "k", "v"], ["y"], domain="ai.onnx.preview", scale=0.4), flex_in, ["y"],
     {"q": normal(2, 4, 5, 8), "k": normal(2, 2, 7, 8), "v": normal(2, 2, 7, 6)}, flex)


def const(name, value):
    return h.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


causal = h.make_graph([
    h.make_node("Shape", ["scores"], ["shape"]),
    const("i2", np.array(2, np.int64)), const("i3", np.array(3, np.int64)), const("zero", np.array(0, np.int64)), const("one", np.array(1, np.int64)),
    h.make_node("Gather", ["shape", "i2"], ["L"]), h.make_node("Gather", ["shape", "i3"], ["S"]),
    h.make_node("Range", ["zero", "L", "one"], ["rows"]), h.make_node("Range", ["zero", "S", "one"], ["cols"]),
    const("column", np.array([-1, 1], np.int64)), h.make_node("Reshape", ["rows", "column"], ["q_idx"]),
    h.make_node("GreaterOrEqual", ["q_idx", "cols"], ["allowed"]),
    const("neg_inf", np.array(-np.inf, np.float32)), h.make_node("Where", ["allowed", "scores", "neg_inf"], ["masked"]),
], "causal", [h.make_tensor_value_info("scores", F, None)], [h.make_tensor_value_info("masked", F, None)])
halve = h.make_graph([const("half", np.array(0.5, np.float32)), h.make_node("Mul", ["probs", "half"], ["scaled"])], "halve",
                     [h.make_tensor_value_info("probs", F, None)], [h.make_tensor_value_info("scaled", F, None)])
save("flex_mods", h.make_node("FlexAttention", ["q", "k", "v"], ["y"], domain="ai.onnx.preview", score_mod=causal, prob_mod=halve), flex_in, ["y"],
     {"q": normal(1, 2, 6, 4), "k": normal(1, 2, 6, 4), "v": normal(1, 2, 6, 4)}, flex)

# CausalConvWithState (opset 27), the short convolution beside linear attention: a past state, a bias and SiLU; and
# one without a past state (zeros) over a sequence shorter than the kernel
cc_in = [("x", F), ("w", F), ("b", F), ("state", F)]
save("causal_conv", h.make_node("CausalConvWithState", ["x", "w", "b", "state"], ["y", "present"], activation="silu"), cc_in, ["y", "present"],
     {"x": normal(2, 3, 7), "w": normal(3, 1, 4), "b": normal(3), "state": normal(2, 3, 3)}, {"": 27})
save("causal_conv_short", h.make_node("CausalConvWithState", ["x", "w"], ["y", "present"]), cc_in[:2], ["y", "present"],
     {"x": normal(2, 3, 2), "w": normal(3, 1, 5)}, {"": 27})

with open(f"{out}/engines.json", "w") as f:
    json.dump(engines, f)
