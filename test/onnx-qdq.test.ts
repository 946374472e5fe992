import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { compile, importOnnx, interpret, loadBlob, parseNpy } from "../compiler/index.js";
import type { Graph, HostTensor } from "../compiler/ir/graph.js";
import { SEED } from "./helpers/compiled.js";
import { findOnnxPython, NO_ONNX_PYTHON, runOnnxPython } from "./helpers/onnx-reference.js";

/**
 * ONNX int8 models from onnxruntime's quantize_static (QDQ form, calibrated on random data; built by
 * test/helpers/onnx_qdq_models.py) on the integer kernels, against onnxruntime on fresh seeded inputs. "layers" has one
 * quantized op per output, each reading quantized graph inputs, so every output is compared one op deep: onnxruntime
 * requantizes with a float multiply rounded half to even where the kernels use TFLite's fixed point, so an element
 * may land one step apart, never more. "cnn" chains them (conv+relu, depthwise, maxpool, residual add, avgpool, gemm).
 */

const python = findOnnxPython();
const dir = mkdtempSync(join(tmpdir(), "teenygrad-onnx-qdq-"));
const skip = python ? false : NO_ONNX_PYTHON;
const SAMPLES = 4; // keep in sync with onnx_qdq_models.py
before(() => {
  if (python) runOnnxPython(python, "onnx_qdq_models.py", [dir, String(SEED), "both:s8_channel", "both:s8_operators", "layers:u8_tensor", "layers:u8_weights"]);
});

const npy = (model: string, name: string) => parseNpy(readFileSync(join(dir, `${model}.${name}.npy`)), name);
const FLOAT_OPS = ["conv2d", "matmul", "avgpool2d", "maxpool2d", "reduce"];

/** Per output, how many elements lie 0, 1, 2, 3, 4, 5+ steps from onnxruntime's over all samples, running `run` on each sample's inputs. */
function stepsFromOnnxruntime(model: string, inputs: Record<string, { shape: number[] }>, run: (x: Record<string, HostTensor>) => Record<string, ArrayLike<number>>) {
  const steps = JSON.parse(readFileSync(join(dir, `${model}.steps.json`), "utf8")) as Record<string, number>;
  const counts: Record<string, number[]> = {};
  for (let s = 0; s < SAMPLES; s++) {
    const feed = Object.fromEntries(Object.entries(inputs).map(([k, { shape }]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      return [k, { shape, dtype: "float32" as const, data: (npy(model, k).data as Float32Array).slice(s * n, (s + 1) * n) }];
    }));
    for (const [k, got] of Object.entries(run(feed))) {
      const ref = npy(model, k).data as Float32Array, n = got.length;
      const c = (counts[k] ??= [0, 0, 0, 0, 0, 0]);
      for (let i = 0; i < n; i++) c[Math.min(5, Math.round(Math.abs(got[i] - ref[s * n + i]) / steps[k]))]++;
    }
  }
  return counts;
}

/** The graph run by the integer ops' host references (the compiled kernels match them bit for bit, as the first test checks). */
const onHost = (graph: Graph) => (x: Record<string, HostTensor>) => Object.fromEntries(Object.entries(interpret(graph, x)).map(([k, t]) => [k, t.data as Float32Array]));

/** Counts elements 0, 1, … max, more than max steps from onnxruntime's. */
function assertWithinSteps(counts: Record<string, number[]>, max: number, what: string): void {
  const table = Object.entries(counts).map(([k, c]) => `${k} ${c.slice(1).reduce((a, b) => a + b, 0)}/${c.reduce((a, b) => a + b, 0)} (${c.slice(1).join("/")})`).join(", ");
  console.log(`${what}: elements off onnxruntime's by 1/2/3/4/more steps: ${table}`);
  for (const [k, c] of Object.entries(counts)) assert.equal(c.slice(max + 1).reduce((a, b) => a + b, 0), 0, `${what} ${k}: elements more than ${max} step(s) from onnxruntime (seed ${SEED})`);
}

test("quantize_static QDQ models (per-channel int8) run on the integer kernels, one op within one step of onnxruntime", { skip, timeout: 180_000 }, async () => {
  const model = "both.s8_channel";
  const bytes = readFileSync(join(dir, `${model}.onnx`));
  const imp = importOnnx(bytes, { source: model });
  const ops = imp.graph.nodes.map((n) => n.op);
  for (const op of ["qconv2d", "qfullyConnected", "qadd", "qavgpool2d", "qmaxpool2d"]) assert.ok(ops.includes(op), `${op} missing: ${ops.join(" ")}`);
  assert.deepEqual(ops.filter((op) => FLOAT_OPS.includes(op)), [], "no float compute op is left");
  assert.match(imp.notes.join("\n"), /on integer kernels: QLinearConv ×5, MaxPool ×2, QLinearAveragePool ×2, QLinearGlobalAveragePool ×1, QLinearAdd ×2, QGemm ×2, QLinearMatMul ×1/);
  const { wasm, report } = await compile(imp.graph, {}, { name: model });
  const blob = await loadBlob(wasm);
  const run = (x: Record<string, HostTensor>) => blob.run(Object.fromEntries(Object.entries(x).map(([k, t]) => [k, t.data]))) as Record<string, Float32Array>;
  const counts = stepsFromOnnxruntime(model, imp.inputs, run);
  console.log(`${model}: arena ${report.arena.bytes} B, weights ${report.weightsBytes} B on the int8 kernels`);
  // the CNN's output is six requantizations deep: one-step differences compound (onnxruntime's own fused and
  // unfused runs of it differ by up to 4), so it is held to 4 steps; its kernels are checked bit-exact below
  const { y, ...layers } = counts;
  assertWithinSteps(layers, 1, model);
  assertWithinSteps({ y }, 4, model);
  // the compiled kernels compute exactly what the integer ops' references (TFLite's algorithms) do
  const x = { x: { shape: imp.inputs.x.shape, dtype: "float32" as const, data: npy(model, "x").data.slice(0, 3 * 12 * 12) as Float32Array } };
  const feeds = Object.fromEntries(Object.entries(imp.inputs).map(([k, { shape }]) => [k, k === "x" ? x.x : { shape, dtype: "float32" as const, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }]));
  assert.deepEqual(run(feeds).y, interpret(imp.graph, feeds).y.data);
  const emulated = importOnnx(bytes, { source: model, quantized: "dequantize" });
  assert.match(emulated.notes.join(), /emulated in float32 as requested/);
  assert.ok(emulated.graph.nodes.some((n) => n.op === "conv2d") && !emulated.graph.nodes.some((n) => n.op.startsWith("q")));
});

test("quantize_static's operator form (QLinearConv, QGemm, QLinearAdd…) takes the same integer kernels", { skip }, () => {
  const model = "both.s8_operators";
  const imp = importOnnx(readFileSync(join(dir, `${model}.onnx`)), { source: model });
  assert.match(imp.notes.join("\n"), /on integer kernels: QLinearConv ×5, MaxPool ×2, QLinearAveragePool ×2, QLinearGlobalAveragePool ×1, QLinearAdd ×2, QGemm ×2, QLinearMatMul ×1/);
  assert.deepEqual(imp.graph.nodes.map((n) => n.op).filter((op) => FLOAT_OPS.includes(op)), []);
  const { y, ...layers } = stepsFromOnnxruntime(model, imp.inputs, onHost(imp.graph));
  assertWithinSteps(layers, 1, model);
  assertWithinSteps({ y }, 4, model);
  // and their float32 emulation (ONNX's definitions: dequantize, the float op, quantize)
  const emulated = importOnnx(readFileSync(join(dir, `${model}.onnx`)), { source: model, quantized: "dequantize" });
  assert.ok(!emulated.graph.nodes.some((n) => n.op.startsWith("q")));
  const { y: yEmulated, ...layersEmulated } = stepsFromOnnxruntime(model, emulated.inputs, onHost(emulated.graph));
  assertWithinSteps(layersEmulated, 1, `${model} emulated`);
  assertWithinSteps({ y: yEmulated }, 4, `${model} emulated`);
});

test("uint8 activations (quantize_static's default) run on the int8 kernels as q − 128, within a step of onnxruntime", { skip }, () => {
  const model = "layers.u8_tensor";
  const imp = importOnnx(readFileSync(join(dir, `${model}.onnx`)), { source: model });
  assert.match(imp.notes.join("\n"), /on integer kernels: QLinearConv ×2, MaxPool ×1, QLinearAveragePool ×1, QLinearGlobalAveragePool ×1, QLinearAdd ×1, QGemm ×1, QLinearMatMul ×1/);
  assert.deepEqual(imp.graph.nodes.map((n) => n.op).filter((op) => FLOAT_OPS.includes(op)), []);
  assertWithinSteps(stepsFromOnnxruntime(model, imp.inputs, onHost(imp.graph)), 1, model);
});

test("asymmetric uint8 weights have no integer kernel: noted per node, emulated in float32, still within a step", { skip }, () => {
  const model = "layers.u8_weights";
  const imp = importOnnx(readFileSync(join(dir, `${model}.onnx`)), { source: model });
  const notes = imp.notes.join("\n");
  assert.match(notes, /QDQ nodes left as DequantizeLinear → float32 → QuantizeLinear: Conv '[^']+': the weight is not int8/);
  assert.match(notes, /on integer kernels: MaxPool ×1, QLinearAveragePool ×1, QLinearGlobalAveragePool ×1, QLinearAdd ×1/);
  assert.ok(imp.graph.nodes.some((n) => n.op === "conv2d"));
  assertWithinSteps(stepsFromOnnxruntime(model, imp.inputs, onHost(imp.graph)), 1, model);
});
