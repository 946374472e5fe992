"""Writes compiler/import/onnx/op-schemas.json from the installed onnx package (bash scripts/install-onnx.sh makes the venv):
per default-domain operator and opset version, the attribute names and each input's allowed element types, the part of
the ONNX checker's rules the importer applies before import. Run: ~/.cache/teenygrad/onnx-1.22.0/bin/python scripts/gen-onnx-op-schemas.py
"""
import json
import os
import onnx
from onnx import defs

schemas = {}
for s in defs.get_all_schemas_with_history():
    if s.domain not in ("", "ai.onnx") or s.deprecated:
        continue
    constraints = {c.type_param_str: sorted(t[len("tensor("):-1] for t in c.allowed_type_strs if t.startswith("tensor(")) for c in s.type_constraints}
    inputs = []
    for p in s.inputs:
        allowed = constraints.get(p.type_str)
        if allowed is None and p.type_str.startswith("tensor("):
            allowed = [p.type_str[len("tensor("):-1]]
        inputs.append({"t": p.type_str if p.type_str in constraints else None, "allowed": allowed, "variadic": p.option == defs.OpSchema.FormalParameterOption.Variadic})
    schemas.setdefault(s.name, []).append({"since": s.since_version, "attributes": sorted(s.attributes.keys()), "inputs": inputs})
for versions in schemas.values():
    versions.sort(key=lambda v: v["since"])
out = os.path.join(os.path.dirname(__file__), "..", "compiler", "import", "onnx", "op-schemas.json")
with open(out, "w") as f:
    json.dump({"onnx": onnx.__version__, "ops": dict(sorted(schemas.items()))}, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {out}: {len(schemas)} operators")
