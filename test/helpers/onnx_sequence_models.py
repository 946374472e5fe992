"""Builds the ONNX models of test/onnx-sequence.test.ts with onnx.helper and runs them in onnxruntime.

Writes OUT/<model>.onnx and, per case, OUT/<model>.<case>.<name>.npy for every tensor input and output; a
sequence's elements are saved as <name>_0, <name>_1, … (the names the compiled model gives them).
"""
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper as h, numpy_helper

out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def const(name, value):
    return h.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def save_values(prefix, named):
    for k, v in named:
        if isinstance(v, list):
            for i, e in enumerate(v):
                np.save(f"{prefix}.{k}_{i}.npy", e)
        else:
            np.save(f"{prefix}.{k}.npy", v)


def save(model_name, graph, cases, opset=18):
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], producer_name="teenygrad-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = f"{out}/{model_name}.onnx"
    onnx.save(model, path)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for case, feeds in cases.items():
        save_values(f"{out}/{model_name}.{case}", feeds.items())
        save_values(f"{out}/{model_name}.{case}", zip(names, session.run(None, feeds)))


# 1. Sequences inside the graph: SplitToSequence by sizes, insert / erase / at (the position a graph input,
#    so it must be pinned), SequenceMap over a body that reads an outer-scope weight, ConcatFromSequence
#    (concatenated and stacked), SequenceLength, and an optional's element.
body = h.make_graph([
    h.make_node("Mul", ["e", "scale"], ["scaled"]), h.make_node("Tanh", ["scaled"], ["t"]),
], "map_body", [h.make_value_info("e", h.make_tensor_type_proto(F, ["k", 4]))], [h.make_value_info("t", h.make_tensor_type_proto(F, ["k", 4]))])
graph = h.make_graph([
    const("sizes", np.array([1, 2, 3], np.int64)),
    h.make_node("SplitToSequence", ["x", "sizes"], ["parts"], axis=0),
    h.make_node("Relu", ["x"], ["rx"]),
    const("front", np.array(0, np.int64)),
    h.make_node("SequenceInsert", ["parts", "rx", "front"], ["inserted"]),
    const("second", np.array(1, np.int64)),
    h.make_node("SequenceErase", ["inserted", "second"], ["erased"]),
    h.make_node("SequenceAt", ["erased", "pos"], ["picked"]),
    h.make_node("SequenceMap", ["erased"], ["mapped"], body=body),
    h.make_node("ConcatFromSequence", ["mapped"], ["cat"], axis=0),
    h.make_node("SequenceLength", ["mapped"], ["count"]),
    h.make_node("Sigmoid", ["x"], ["sx"]),
    h.make_node("SequenceConstruct", ["x", "sx", "rx"], ["trio"]),
    h.make_node("ConcatFromSequence", ["trio"], ["stacked"], axis=-1, new_axis=1),
    h.make_node("Optional", ["sx"], ["maybe"]),
    h.make_node("OptionalHasElement", ["maybe"], ["has"]),
    h.make_node("OptionalGetElement", ["maybe"], ["got"]),
], "seq_ops", [h.make_tensor_value_info("x", F, [6, 4]), h.make_tensor_value_info("pos", I64, [])],
    [h.make_tensor_value_info("picked", F, ["k", 4]), h.make_tensor_value_info("cat", F, ["m", 4]), h.make_tensor_value_info("count", I64, []),
     h.make_tensor_value_info("stacked", F, [6, 4, 3]), h.make_tensor_value_info("has", TensorProto.BOOL, []), h.make_tensor_value_info("got", F, [6, 4])],
    [numpy_helper.from_array(rng.uniform(0.5, 1.5, (1, 4)).astype(np.float32), "scale")])
x = rng.standard_normal((6, 4)).astype(np.float32)
save("seq_ops", graph, {"pos0": {"x": x, "pos": np.array(0, np.int64)}, "posm1": {"x": x, "pos": np.array(-1, np.int64)}})

# 2. Sequences at the graph's edges: a sequence input (elements of different lengths) and a tensor inserted
#    into it, returned as a sequence.
graph = h.make_graph([
    h.make_node("Exp", ["t"], ["et"]),
    h.make_node("SequenceInsert", ["s", "et"], ["y"]),
], "seq_io", [h.make_value_info("s", h.make_sequence_type_proto(h.make_tensor_type_proto(F, ["n", 3]))), h.make_tensor_value_info("t", F, [1, 3])],
    [h.make_value_info("y", h.make_sequence_type_proto(h.make_tensor_type_proto(F, ["n", 3])))])
t = rng.standard_normal((1, 3)).astype(np.float32)
save("seq_io", graph, {"two": {"s": [rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)], "t": t},
                       "empty": {"s": [], "t": t}})

# 3. Invalid (neither the checker nor onnxruntime would take it, so it is saved unchecked): a sequence fed to
#    an op that takes tensors.
graph = h.make_graph([
    h.make_node("SequenceConstruct", ["x"], ["s"]),
    h.make_node("Relu", ["s"], ["y"], name="relu_of_sequence"),
], "seq_misuse", [h.make_tensor_value_info("x", F, [2])], [h.make_tensor_value_info("y", F, [2])])
onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 18)]), f"{out}/seq_misuse.onnx")
