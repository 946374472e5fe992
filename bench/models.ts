// Per-kernel profile of real models: the graph after the compiler's passes, each node compiled alone into a
// blob of its own (its constant inputs as weights, the others as inputs) and timed alone, wasm-simd. Prints
// op, shapes, µs per call, GFLOP/s (a multiply-add counts 2) and the node's share of the sum over nodes,
// beside the whole model's latency. The models are bench:peers's PyTorch exports (bench/peers-models.py).
// Run: npm run bench:models [-- --models kws_dscnn,ic_resnet8 --target wasm-relaxed]
import { compile, Generator, importOnnx, loadBlob } from "../compiler/index.js";
import { Graph, type Node } from "../compiler/ir/graph.js";
import { numel } from "../compiler/ir/dtype.js";
import { inferTypes } from "../compiler/ops/index.js";
import { convGeometry, epilogueOf, linalgExtras } from "../compiler/ops/linalg.js";
import { optimize } from "../compiler/passes/index.js";
import { exportModels, median, MODELS, option } from "./peers-common.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROUNDS = Number(option("rounds", "5"));
const TARGET = option("target", "wasm-simd");
const models = option("models", MODELS.filter((m) => m !== "mlp").join(",")).split(",");

/** Multiply-adds × 2 of a conv2d or matmul node; 0 for the rest. */
function flopsOf(node: Node): number {
  if (node.op === "conv2d") {
    const g = convGeometry(node.inputs[0].shape, node.inputs[1].shape, node.attrs);
    return 2 * g.N * g.OC * g.OH * g.OW * g.CG * g.KH * g.KW;
  }
  if (node.op === "matmul") {
    const a = node.inputs[0];
    return 2 * numel(node.outputs[0].shape) * a.shape[a.shape.length - 1];
  }
  return 0;
}

function describe(node: Node): string {
  const shapes = node.inputs.filter((v) => !v.isConstant).map((v) => v.shape.join("x"));
  let what = node.op;
  if (node.op === "conv2d") {
    const g = convGeometry(node.inputs[0].shape, node.inputs[1].shape, node.attrs);
    const kind = g.groups === g.C && g.CG === 1 && g.groups > 1 ? "dw" : g.KH * g.KW === 1 ? "pw" : "";
    what = `conv ${kind ? `${kind} ` : ""}${g.KH}x${g.KW}${g.stride[0] > 1 ? ` s${g.stride[0]}` : ""} ${g.C}->${g.OC}`;
  } else if (node.op === "matmul") what = `matmul ${node.inputs[1].shape.join("x")}`;
  const linalg = node.op === "conv2d" || node.op === "matmul";
  const act = linalg ? epilogueOf(node.attrs).act : 0;
  const { bias, residual } = linalg ? linalgExtras(node.inputs, node.attrs) : {};
  return `${what}${bias ? " +bias" : ""}${residual ? " +res" : ""}${act ? " +act" : ""} [${shapes.join(", ")}] -> ${node.outputs[0].shape.join("x")}`;
}

interface Timed {
  label: string;
  flops: number;
  run: () => void;
}

async function blobOf(graph: Graph, inputs: Record<string, Float32Array>): Promise<() => void> {
  const { wasm } = await compile(graph, {}, { target: TARGET });
  const model = await loadBlob(wasm);
  return () => void model.run(inputs);
}

function randomInput(shape: number[], rng: Generator): Float32Array {
  return Float32Array.from({ length: numel(shape) }, () => rng.next() * 2 - 1);
}

/** Mean µs per call over a batch of about 20 ms. */
function timeBatch(run: () => void, estimateMicros: number): number {
  const reps = Math.max(1, Math.round(20_000 / Math.max(estimateMicros, 0.5)));
  const start = performance.now();
  for (let i = 0; i < reps; i++) run();
  return ((performance.now() - start) * 1000) / reps;
}

async function profile(name: string, bytes: Uint8Array): Promise<void> {
  const rng = new Generator(1);
  const whole = importOnnx(bytes).graph;
  const modelInput = { [whole.inputs[0].name]: randomInput(whole.inputs[0].shape, rng) };
  const timed: Timed[] = [{ label: "whole model", flops: 0, run: await blobOf(whole, modelInput) }];
  const graph = importOnnx(bytes).graph;
  optimize(graph);
  for (const node of graph.nodes) {
    const single = new Graph(inferTypes);
    const feeds: Record<string, Float32Array> = {};
    const inputs = node.inputs.map((v, i) => {
      if (v.isConstant) return v;
      const name = `in${i}`;
      feeds[name] = randomInput(v.shape, rng);
      return single.addInput(name, { shape: [...v.shape], dtype: v.dtype });
    });
    const copy = single.addNode(node.op, inputs, node.attrs, node.name);
    single.outputs = [copy.outputs[0]];
    timed.push({ label: describe(node), flops: flopsOf(node), run: await blobOf(single, feeds) });
  }
  const estimates = timed.map((t) => {
    for (const until = performance.now() + 100; performance.now() < until; ) t.run();
    return timeBatch(t.run, 1);
  });
  const samples = timed.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) timed.forEach((t, i) => samples[i].push(timeBatch(t.run, estimates[i])));
  const micros = samples.map(median);
  const nodeSum = micros.slice(1).reduce((p, q) => p + q, 0);
  const totalFlops = timed.reduce((p, t) => p + t.flops, 0);
  const width = Math.max(...timed.map((t) => t.label.length));
  console.log(`\n${name} (${TARGET}): whole model ${micros[0].toFixed(1)} µs, ${(totalFlops / micros[0] / 1e3).toFixed(1)} GFLOP/s; nodes timed alone sum to ${nodeSum.toFixed(1)} µs`);
  console.log(`${"node".padEnd(width)}  ${"µs".padStart(8)}  ${"GFLOP/s".padStart(8)}  ${"share".padStart(6)}`);
  for (let i = 1; i < timed.length; i++) {
    const gflops = timed[i].flops ? (timed[i].flops / micros[i] / 1e3).toFixed(1) : "-";
    console.log(`${timed[i].label.padEnd(width)}  ${micros[i].toFixed(1).padStart(8)}  ${gflops.padStart(8)}  ${`${((100 * micros[i]) / nodeSum).toFixed(1)}%`.padStart(6)}`);
  }
}

const dir = exportModels();
for (const m of models) await profile(m, new Uint8Array(readFileSync(join(dir, `${m}.onnx`))));
