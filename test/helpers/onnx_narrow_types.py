"""Builds a model casting float32 to every narrow ONNX type (bfloat16, the float8 kinds, float8e8m0 in each round_mode, float4e2m1, 4- and 2-bit
integers) and back, plus packed 4-/2-bit initializers, and runs onnx.reference on it. argv: x.bin n.bin model.onnx expected.bin"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

x_file, n_file, model_file, expected_file = sys.argv[1:5]
x = np.fromfile(x_file, dtype=np.float32)
n = np.fromfile(n_file, dtype=np.float32)
floats = [("bfloat16", TensorProto.BFLOAT16, [1]), ("e4m3fn", TensorProto.FLOAT8E4M3FN, [1, 0]), ("e4m3fnuz", TensorProto.FLOAT8E4M3FNUZ, [1, 0]),
          ("e5m2", TensorProto.FLOAT8E5M2, [1, 0]), ("e5m2fnuz", TensorProto.FLOAT8E5M2FNUZ, [1, 0]), ("float4", TensorProto.FLOAT4E2M1, [1])]
ints = [("int4", TensorProto.INT4), ("uint4", TensorProto.UINT4), ("int2", TensorProto.INT2), ("uint2", TensorProto.UINT2)]
nodes, outputs = [], []
for name, code, saturations in floats:
    for s in saturations:
        nodes += [helper.make_node("Cast", ["x"], [f"{name}_{s}"], to=code, saturate=s), helper.make_node("Cast", [f"{name}_{s}"], [f"out_{name}_{s}"], to=TensorProto.FLOAT)]
        outputs.append(f"out_{name}_{s}")
for mode in ["up", "down", "nearest"]:
    for s in [1, 0]:
        nodes += [helper.make_node("Cast", ["x"], [f"e8m0_{mode}_{s}"], to=TensorProto.FLOAT8E8M0, saturate=s, round_mode=mode),
                  helper.make_node("Cast", [f"e8m0_{mode}_{s}"], [f"out_e8m0_{mode}_{s}"], to=TensorProto.FLOAT)]
        outputs.append(f"out_e8m0_{mode}_{s}")
for name, code in ints:
    nodes += [helper.make_node("Cast", ["n"], [name], to=code), helper.make_node("Cast", [name], [f"out_{name}"], to=TensorProto.FLOAT)]
    outputs.append(f"out_{name}")
# packed initializers: 4-bit pairs and 2-bit quads, low bits first, an odd count so the last byte is partly padding
inits = [helper.make_tensor("packed_int4", TensorProto.INT4, [15], list(range(-8, 7))), helper.make_tensor("packed_uint2", TensorProto.UINT2, [7], [0, 1, 2, 3, 3, 2, 1])]
for t in inits:
    nodes.append(helper.make_node("Cast", [t.name], [f"out_{t.name}"], to=TensorProto.FLOAT))
    outputs.append(f"out_{t.name}")
graph = helper.make_graph(nodes, "narrow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [len(x)]), helper.make_tensor_value_info("n", TensorProto.FLOAT, [len(n)])],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], initializer=inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
model.ir_version = 11
onnx.save(model, model_file)
results = ReferenceEvaluator(model).run(None, {"x": x, "n": n})
with open(expected_file, "wb") as f:
    for name, r in zip(outputs, results):
        f.write(np.asarray(r, dtype=np.float32).tobytes())
print(",".join(outputs))
