import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { compile, importOnnx, loadBlob, parseNpy } from "../compiler/index.js";
import { relError, SEED } from "./helpers/compiled.js";
import { onnxModel } from "./helpers/onnx-model.js";
import { findOnnxPython, NO_ONNX_PYTHON, runOnnxPython } from "./helpers/onnx-reference.js";

/**
 * RotaryEmbedding, LinearAttention, FlexAttention (score_mod and prob_mod subgraphs) and CausalConvWithState imported from models built
 * with onnx.helper (test/helpers/onnx_attention_models.py), compiled, run in Node and compared on seeded random
 * inputs with onnxruntime, or onnx.reference for the operators onnxruntime does not have (engines.json names which).
 */

const python = findOnnxPython();
const dir = mkdtempSync(join(tmpdir(), "teenygrad-onnx-attention-"));
const skip = python ? false : NO_ONNX_PYTHON;
let engines: Record<string, string> = {};
before(() => {
  if (!python) return;
  runOnnxPython(python, "onnx_attention_models.py", [dir, String(SEED)]);
  engines = JSON.parse(readFileSync(join(dir, "engines.json"), "utf8"));
});

const npy = (file: string) => parseNpy(readFileSync(join(dir, file)), file);

/**
 * Compiles DIR/model.onnx, runs it on `inputs` and checks `outputs` against the reference's within `tolerance`.
 * The ops are ones the kernel library has, so the entry links without asc, except where int64 position ids
 * are cast to int32 gather indices at run time (the library has no int64 loops).
 */
async function check(model: string, inputs: string[], outputs: string[], linked = true, tolerance = 1e-5): Promise<void> {
  const { graph } = importOnnx(readFileSync(join(dir, `${model}.onnx`)));
  const { wasm, report } = await compile(graph, {}, { optimizeLevel: 1 });
  if (linked) assert.equal(report.codegen.path, "kernel-library", `${model}: ${report.codegen.reason}`);
  const out = (await loadBlob(wasm)).run(Object.fromEntries(inputs.map((n) => [n, npy(`${model}.${n}.npy`).data])));
  for (const name of outputs) {
    const want = npy(`${model}.${name}.npy`).data as Float32Array;
    assert.equal(out[name].length, want.length, `${model} ${name}: ${out[name].length} values, expected ${want.length}`);
    const err = relError(out[name] as Float32Array, want);
    assert.ok(err < tolerance, `${model} ${name} against ${engines[model]}: relative error ${err}, seed ${SEED}`);
  }
}

test("RotaryEmbedding: 4-d with position_ids, interleaved on part of each head, 3-d with num_heads and per-position caches", { skip, timeout: 120_000 }, async () => {
  await check("rope", ["x", "cos", "sin", "pos"], ["y"], false);
  await check("rope_interleaved", ["x", "cos", "sin", "pos"], ["y"], false);
  await check("rope3d", ["x", "cos", "sin"], ["y"]);
});

test("LinearAttention over 6 steps: gated_delta (grouped-query, past state, per-key decay), delta, gated (per-head decay), linear", { skip, timeout: 180_000 }, async () => {
  await check("la_gated_delta", ["q", "k", "v", "state", "decay", "beta"], ["y", "present"]);
  await check("la_delta", ["q", "k", "v", "beta"], ["y", "present"]);
  await check("la_gated", ["q", "k", "v", "decay"], ["y", "present"]);
  await check("la_linear", ["q", "k", "v"], ["y", "present"]);
});

test("FlexAttention: grouped-query heads with a scale; a causal score_mod computed from the scores' shape and a prob_mod", { skip, timeout: 120_000 }, async () => {
  await check("flex_gqa", ["q", "k", "v"], ["y"]);
  await check("flex_mods", ["q", "k", "v"], ["y"]);
});

test("CausalConvWithState: a past state, a bias and SiLU; zeros for a missing state over a sequence shorter than the kernel", { skip, timeout: 120_000 }, async () => {
  await check("causal_conv", ["x", "w", "b", "state"], ["y", "present"]);
  await check("causal_conv_short", ["x", "w"], ["y", "present"]);
});

test("attention operators refuse inputs they cannot take, naming the node", () => {
  const model = (op: string, inputs: { name: string; shape: number[] }[], attrs: Record<string, number | string>, opset: number, outputs = ["y"]) => onnxModel({
    inputs, outputs: outputs.map((name) => ({ name, shape: [1] })), opset, nodes: [{ op, name: "n", inputs: inputs.map((i) => i.name), outputs, attrs }],
  });
  const qkv = (d: number) => ["q", "k", "v"].map((name) => ({ name, shape: [1, 3, d] }));
  assert.throws(() => importOnnx(model("RotaryEmbedding", [{ name: "x", shape: [1, 3, 8] }, { name: "c", shape: [1, 3, 4] }, { name: "s", shape: [1, 3, 4] }], {}, 23)),
    /RotaryEmbedding node 'n': a 3-d input needs the num_heads attribute/);
  assert.throws(() => importOnnx(model("RotaryEmbedding", [{ name: "x", shape: [1, 2, 3, 8] }, { name: "c", shape: [1, 3, 3] }, { name: "s", shape: [1, 3, 3] }], {}, 23)),
    /RotaryEmbedding node 'n': cos_cache has shape \[1, 3, 3\], expected \[1, 3, 4\]/);
  assert.throws(() => importOnnx(model("LinearAttention", qkv(8), { q_num_heads: 2, kv_num_heads: 2, update_rule: "gated" }, 27, ["y", "state"])),
    /LinearAttention node 'n': update_rule 'gated' needs decay input/);
  assert.throws(() => importOnnx(model("LinearAttention", qkv(8), { q_num_heads: 3, kv_num_heads: 2, update_rule: "linear" }, 27, ["y", "state"])),
    /LinearAttention node 'n': 3 query heads do not group over 2 KV heads/);
  assert.throws(() => importOnnx(model("LinearAttention", qkv(8), { q_num_heads: 2, kv_num_heads: 2, update_rule: "sum" }, 27, ["y", "state"])),
    /LinearAttention node 'n': update_rule 'sum' is not one of linear, gated, delta, gated_delta/);
  assert.throws(() => importOnnx(model("CausalConvWithState", [{ name: "x", shape: [1, 3, 5] }, { name: "w", shape: [2, 1, 4] }], {}, 27, ["y", "state"])),
    /CausalConvWithState node 'n': the weight must be \[3, 1, k\] for 3 channels, got \[2, 1, 4\]/);
});
