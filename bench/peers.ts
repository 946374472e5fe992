// Teenygrad (wasm-simd, one thread) beside the WebAssembly peers on the same ONNX models, in one Node process:
// onnxruntime-web (the current release and 1.18, wasm execution provider, one thread) and TensorFlow.js's
// wasm backend (one thread; tfjs reads no ONNX, so the imported graph is replayed with tfjs ops, NHWC, on the
// same weights). The models are PyTorch definitions (bench/peers-models.py) exported to ONNX on first use into
// ~/.cache/teenygrad. Rounds are interleaved across engines; each cell is the median over rounds of the mean
// latency of one batch. Ratios below 1 mean Teenygrad is faster.
// Run: npm run bench:peers [-- --rounds 7 --models kws_dscnn,ic_resnet8]
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ortCurrent from "onnxruntime-web";
import * as tf from "@tensorflow/tfjs-core";
import { setThreadsCount, setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { compile, Generator, importOnnx, loadBlob } from "../compiler/index.js";
import type { Graph, Node, Value } from "../compiler/ir/graph.js";
import { exportModels, median, MODELS, option } from "./peers-common.js";

const ROUNDS = Number(option("rounds", "5"));
const BATCH_MILLIS = Number(option("batch-ms", "150"));
const models = option("models", MODELS.join(",")).split(",");

interface Engine {
  name: string;
  /** one inference on `input`; resolves to the output */
  run: () => Promise<Float32Array>;
}

async function teenygradEngine(bytes: Uint8Array, input: Float32Array): Promise<Engine> {
  const { graph } = importOnnx(bytes);
  const { wasm } = await compile(graph, {}, { target: "wasm-simd" });
  const model = await loadBlob(wasm);
  return { name: "teenygrad", run: async () => model.run({ input }).output as Float32Array };
}

type Ort = typeof ortCurrent;
// the 1.18 package declares its types as module "onnxruntime-web", not under its alias: the same API
const ORT_118 = "onnxruntime-web-1-18";
const ort118 = (await import(ORT_118)) as Ort;
async function ortEngine(name: string, ort: Ort, bytes: Uint8Array, input: Float32Array, shape: number[]): Promise<Engine> {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.simd = true;
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const feed = { input: new ort.Tensor("float32", input, shape) };
  return {
    name,
    run: async () => {
      const out = await session.run(feed);
      return out.output.data as Float32Array;
    },
  };
}

/**
 * The imported graph replayed with tfjs ops. 4-D values are kept NHWC (tfjs's wasm convolutions take only
 * that); reshapes and permutes of 4-D values go back to NCHW first, so every op keeps the ONNX semantics.
 * Nodes whose inputs are all constants run once, at build time.
 */
function tfjsEngine(graph: Graph, input: Float32Array, shape: number[]): Engine {
  const nhwc = new Set<Value>();
  const constants = new Map<Value, tf.Tensor>();
  const asNchw = (v: Value, t: tf.Tensor) => (nhwc.has(v) ? tf.transpose(t, [0, 3, 1, 2]) : t);
  const toNhwc = (t: tf.Tensor) => tf.transpose(t, [0, 2, 3, 1]);
  const valueOf = (env: Map<Value, tf.Tensor>, v: Value): tf.Tensor => {
    const t = env.get(v) ?? constants.get(v);
    if (t) return t;
    if (!v.isConstant) throw new Error(`tfjs replay: ${v.name} has no value`);
    const c = tf.keep(tf.tensor(Float32Array.from(v.data as ArrayLike<number>), v.shape, "float32"));
    constants.set(v, c);
    return c;
  };
  const step = (env: Map<Value, tf.Tensor>, node: Node): tf.Tensor => {
    const [a, b, c] = node.inputs;
    const x = () => valueOf(env, a);
    const at = node.attrs as Record<string, any>;
    switch (node.op) {
      case "conv2d": {
        const [OC, CG, KH, KW] = b.shape;
        const w = valueOf(env, b);
        const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [at.pads[0], at.pads[2]], [at.pads[1], at.pads[3]], [0, 0]];
        const input4 = nhwc.has(a) ? x() : toNhwc(x());
        let y: tf.Tensor4D;
        if (at.groups === 1) {
          y = tf.conv2d(input4 as tf.Tensor4D, tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D, at.stride, pad, "NHWC", at.dilation);
        } else if (CG === 1 && at.groups === OC) {
          y = tf.depthwiseConv2d(input4 as tf.Tensor4D, tf.reshape(tf.transpose(w, [2, 3, 0, 1]), [KH, KW, OC, 1]) as tf.Tensor4D, at.stride, pad, "NHWC", at.dilation);
        } else throw new Error(`tfjs replay: grouped conv2d (groups ${at.groups})`);
        nhwc.add(node.outputs[0]);
        return c ? tf.add(y, valueOf(env, c)) : y;
      }
      case "maxpool2d":
      case "avgpool2d": {
        if (at.pads.some((p: number) => p !== 0)) throw new Error(`tfjs replay: padded ${node.op}`);
        const input4 = (nhwc.has(a) ? x() : toNhwc(x())) as tf.Tensor4D;
        nhwc.add(node.outputs[0]);
        return node.op === "maxpool2d" ? tf.maxPool(input4, at.kernel, at.stride, "valid") : tf.avgPool(input4, at.kernel, at.stride, "valid");
      }
      case "reduce": {
        if (at.kind !== "mean") throw new Error(`tfjs replay: reduce ${at.kind}`);
        const axes = (at.axes as number[]).map((d) => (nhwc.has(a) ? [0, 3, 1, 2][d] : d));
        const y = tf.mean(x(), axes, at.keepdim);
        if (nhwc.has(a) && at.keepdim) nhwc.add(node.outputs[0]);
        else if (nhwc.has(a) && !axes.every((d) => d === 1 || d === 2)) throw new Error("tfjs replay: mean over channels");
        return y;
      }
      case "relu":
      case "clamp":
      case "cast":
        if (nhwc.has(a)) nhwc.add(node.outputs[0]);
        return node.op === "relu" ? tf.relu(x()) : node.op === "clamp" ? tf.clipByValue(x(), at.min, at.max) : x();
      case "add": {
        const [p, q] = [valueOf(env, a), valueOf(env, b)];
        if (nhwc.has(a) !== nhwc.has(b)) throw new Error("tfjs replay: add of NCHW and NHWC values");
        if (nhwc.has(a)) nhwc.add(node.outputs[0]);
        return tf.add(p, q);
      }
      case "matmul": {
        const y = tf.matMul(x() as tf.Tensor2D, valueOf(env, b) as tf.Tensor2D);
        return c ? tf.add(y, valueOf(env, c)) : y;
      }
      case "batchnorm":
        return tf.batchNorm(x(), valueOf(env, node.inputs[3]), valueOf(env, node.inputs[4]), valueOf(env, node.inputs[2]), valueOf(env, b), at.eps);
      case "reshape": return tf.reshape(asNchw(a, x()), node.outputs[0].shape);
      case "permute": return tf.transpose(asNchw(a, x()), at.perm);
      default: throw new Error(`tfjs replay: no mapping for ${node.op}`);
    }
  };
  const inputValue = graph.inputs[0];
  const constantEnv = new Map<Value, tf.Tensor>();
  const live: Node[] = [];
  for (const node of graph.nodes) {
    if (node.inputs.every((v) => v.isConstant || constantEnv.has(v))) constantEnv.set(node.outputs[0], tf.keep(step(constantEnv, node)));
    else live.push(node);
  }
  for (const [v, t] of constantEnv) constants.set(v, t);
  const inputTensor = tf.keep(tf.tensor(input, shape, "float32"));
  return {
    name: "tfjs-wasm",
    run: async () => {
      const out = tf.tidy(() => {
        const env = new Map<Value, tf.Tensor>([[inputValue, inputTensor]]);
        for (const node of live) env.set(node.outputs[0], step(env, node));
        return asNchw(graph.outputs[0], env.get(graph.outputs[0])!);
      });
      const data = (await out.data()) as Float32Array;
      out.dispose();
      return data;
    },
  };
}

/** Mean milliseconds per inference over a batch of about BATCH_MILLIS. */
async function timeBatch(engine: Engine, perRun: number): Promise<number> {
  const reps = Math.max(1, Math.round(BATCH_MILLIS / Math.max(perRun, 0.01)));
  const start = performance.now();
  for (let i = 0; i < reps; i++) await engine.run();
  return (performance.now() - start) / reps;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0, diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return a.length === b.length ? diff / Math.max(scale, 1e-12) : Infinity;
}

async function main(): Promise<void> {
  const dir = exportModels();
  const require = createRequire(import.meta.url);
  setWasmPaths(`${dirname(require.resolve("@tensorflow/tfjs-backend-wasm"))}/`);
  setThreadsCount(1);
  await tf.setBackend("wasm");
  await tf.ready();
  const peers = [`ort-web ${ortCurrent.env.versions.web}`, `ort-web ${ort118.env.versions.web}`, "tfjs-wasm"];
  const rows: { model: string; ms: number[]; diff: number }[] = [];
  for (const model of models) {
    const bytes = new Uint8Array(readFileSync(join(dir, `${model}.onnx`)));
    const { graph } = importOnnx(bytes);
    const shape = graph.inputs[0].shape;
    const rng = new Generator(1);
    const input = Float32Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => rng.next() * 2 - 1);
    const engines = [
      await teenygradEngine(bytes, input),
      await ortEngine(peers[0], ortCurrent, bytes, input, shape),
      await ortEngine(peers[1], ort118, bytes, input, shape),
      tfjsEngine(graph, input, shape),
    ];
    // outputs must agree before timings mean anything
    const reference = await engines[1].run();
    let diff = 0;
    for (const e of engines) {
      const d = maxRelDiff(await e.run(), reference);
      if (!(d < 1e-3)) throw new Error(`${model}: ${e.name} differs from ${engines[1].name} by ${d}`);
      diff = Math.max(diff, d);
    }
    // warm-up (V8 tiers wasm up in the background) and a first latency estimate per engine
    const estimate = [];
    for (const e of engines) {
      for (const until = performance.now() + 300; performance.now() < until; ) await e.run();
      estimate.push(await timeBatch(e, 1));
    }
    const samples: number[][] = engines.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, e] of engines.entries()) samples[i].push(await timeBatch(e, estimate[i]));
    }
    rows.push({ model, ms: samples.map(median), diff });
    console.error(`${model}: ${samples.map((s, i) => `${engines[i].name} ${median(s).toFixed(3)} ms`).join(", ")}`);
  }

  const names = ["teenygrad", ...peers];
  const width = Math.max(...rows.map((r) => r.model.length), 5);
  const col = (s: string) => s.padStart(16);
  console.log(`\nmedian ms per inference (${ROUNDS} interleaved rounds, one thread each); ratio = teenygrad / peer, below 1 = teenygrad faster`);
  console.log(`${"model".padEnd(width)}${names.map(col).join("")}${peers.map((p) => col(`÷ ${p.replace("ort-web ", "ort ")}`)).join("")}${col("÷ best peer")}${col("max rel diff")}`);
  for (const r of rows) {
    const ratios = r.ms.slice(1).map((m) => r.ms[0] / m);
    console.log(
      `${r.model.padEnd(width)}${r.ms.map((m) => col(m.toFixed(3))).join("")}${ratios.map((x) => col(`${x.toFixed(2)}x`)).join("")}` +
        `${col(`${(r.ms[0] / Math.min(...r.ms.slice(1))).toFixed(2)}x`)}${col(r.diff.toExponential(1))}`,
    );
  }
}

await main();
