import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { Generator, losses, optim, Tensor, TeenygradError } from "../compiler/index.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { readTflite } from "../compiler/import/tflite/reader.js";
import { compileTraining, DequantizedConv2d, FrozenInt8Graph, int8FineTuning, loadTrainingBlob } from "../compiler/training/index.js";
import { relError, SEED } from "./helpers/compiled.js";

/**
 * Fine-tuning an int8 TFLite model: the frozen prefix runs the model's own integer graph, the float32 head starts
 * at a dequantize. The head's initial logits are the int8 model's (its weights dequantized correctly), and compiled
 * steps give eager mode's parameters (the int8 prefix on the integer kernels, the head's backward and Adam).
 */

const MLPERF = new URL("../../shared/data/mlperf-tiny/", import.meta.url);
const kwsFile = new URL("kws_ref_model.tflite", MLPERF);
const skip = existsSync(kwsFile) ? false : `no ${kwsFile.pathname} (the MLPerf Tiny models)`;
const rng = new Generator(SEED + 12);
const int8Input = (n: number) => new Tensor([1, 49, 10, 1], "int8", Int8Array.from({ length: n }, () => Math.floor(rng.next() * 256) - 128));

/**
 * A dequantized layer's pre-activations are exact multiples of its accumulator step (input scale × weight scale,
 * per output channel): an int8 accumulator of exactly 0 (one of the pointwise conv's 8,000 outputs, for about one
 * seed in ten) puts its ReLU on the kink, where float32 summation order picks the side, differently in eager and
 * compiled code and both right (the gradient there is a tie; for seed 1 it moved one of 125 mask bits, 2% of a bias
 * gradient). Moving each bias by half a step, in both models, keeps every pre-activation half a step (≥ 1e-4 here)
 * from the kink, far beyond float32 error (≈ 4e-6), so the comparisons below test the step, not the tie.
 */
function offTheGrid(bytes: Uint8Array, { model, layers }: ReturnType<typeof int8FineTuning>): void {
  const grids = new Map(readTflite(bytes).tensors.map((t) => [t.name, t.quantization]));
  const nodes = importTfliteModel(bytes).graph.nodes.filter((n) => n.op === "qconv2d" || n.op === "qfullyConnected").slice(-layers.length);
  nodes.forEach((n, l) => {
    const sIn = grids.get(n.inputs[0].name)!.scale[0], sW = grids.get(n.inputs[1].name)!.scale;
    const bias = (model.head.layers[Number(layers[l].split(".")[1])] as unknown as { bias: Tensor }).bias.data as Float32Array;
    for (let o = 0; o < bias.length; o++) bias[o] += 0.5 * sIn * sW[sW.length === 1 ? 0 : o];
  });
}

const argmax = (v: Float32Array) => v.indexOf(Math.max(...v));

describe("int8 backbone, float32 head (KWS DS-CNN int8)", { skip }, () => {
  const bytes = skip ? new Uint8Array() : new Uint8Array(readFileSync(kwsFile));

  test("the dequantized head gives the int8 model's logits (within its rounding)", () => {
    const heads = [1, 2, 3].map((floatLayers) => int8FineTuning(bytes, { floatLayers }).model);
    // the same int8 graph run to the fully connected layer's int8 output, dequantized
    const imported = importTfliteModel(bytes);
    const fc = imported.graph.nodes.find((n) => n.op === "qfullyConnected")!;
    const q = readTflite(bytes).tensors.find((t) => t.name === fc.outputs[0].name)!.quantization!;
    const upToFc = imported.graph.nodes.slice(0, imported.graph.nodes.indexOf(fc) + 1);
    const int8Logits = new FrozenInt8Graph(imported.graph.inputs, upToFc, fc.outputs[0], { scale: q.scale[0], zeroPoint: q.zeroPoint[0] });
    for (let k = 0; k < 3; k++) {
      const x = int8Input(490);
      const want = int8Logits.forward(x).data as Float32Array;
      heads.forEach((head, h) => {
        // the int8 model saturates at its grid's ends and rounds each layer's output to its grid: with one float
        // layer only the logits' own rounding differs (half a step); a deeper float head skips the int8 roundings
        // between its layers, which add up (over 40 seeds at most 1.9 and 3.8 steps, under 4% of the largest logit; a wrongly dequantized weight is far off)
        const [lo, hi] = [(-128 - q.zeroPoint[0]) * q.scale[0], (127 - q.zeroPoint[0]) * q.scale[0]];
        const got = Float32Array.from(head.forward(x).data as Float32Array, (v) => Math.min(Math.max(v, lo), hi));
        if (h === 0) for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= q.scale[0], `1 float layer, logit ${i}: ${got[i]} vs int8 ${want[i]} (step ${q.scale[0]}, seed ${SEED})`);
        else assert.ok(relError(got, want) <= 0.1, `${h + 1} float layers: relative error ${relError(got, want)} against the int8 logits (seed ${SEED})`);
      });
    }
  });

  for (const floatLayers of [1, 2]) {
    test(`${floatLayers} float layer(s): two Adam steps give eager's loss and parameters (≤1e-5 relative)`, async () => {
      const eager = int8FineTuning(bytes, { floatLayers });
      const compiled = int8FineTuning(bytes, { floatLayers });
      offTheGrid(bytes, eager);
      offTheGrid(bytes, compiled);
      const { wasm, report, graphs } = await compileTraining(compiled.model, { inputs: compiled.inputs, loss: "crossEntropy", optimizer: { type: "adam", lr: 1e-3 }, optimizeLevel: 1 });
      assert.deepEqual(report.trainable, compiled.layers.flatMap((l) => [`${l}.weight`, `${l}.bias`]));
      // batch 1: the linear layer's matmuls became element-wise code (a pointwise convolution's stay matmuls), and the weights below still equal eager's
      if (floatLayers === 1) assert.ok(!graphs.trainStep.nodes.some((n) => n.op === "matmul"), "a batch-1 linear layer's matmul is left in train_step");
      const blob = await loadTrainingBlob(wasm);
      const opt = new optim.Adam(eager.model.parameters(), { lr: 1e-3 });
      for (let step = 1; step <= 2; step++) {
        const x = int8Input(490);
        opt.zeroGrad();
        const logits = eager.model.forward(x);
        // any class but the top prediction: its probability is then ≤ 1/2, so the loss is ≥ log 2, float32 log-softmax's
        // error (about C·2⁻²⁴ from the sum of C exps, plus relative roundings) is far below 1e-5 of it, and
        // dL/dlogit = p − 1 is far above rounding. A confident right answer (the loss 3.5e-3 for seed 4, 1.3e-6 for
        // seed 11, with logits near 25) is below float32's resolution near p = 1: its loss cannot match eager's
        // float64 reference to 1e-5, and Adam (scale-free) turns its rounding-level gradient into a full step.
        const y = Tensor.from(Int32Array.of((argmax(logits.data as Float32Array) + 1 + Math.floor(rng.next() * 11)) % 12));
        const { loss } = blob.trainStep({ input_1: x.data, target: y.data });
        const eagerLoss = losses.crossEntropy(logits, y);
        eagerLoss.backward();
        opt.step();
        assert.ok(Math.abs(loss - eagerLoss.item()) <= 1e-5 * Math.abs(eagerLoss.item()), `step ${step}: loss ${loss} vs eager ${eagerLoss.item()} (seed ${SEED})`);
        const got = blob.stateDict();
        for (const [name, t] of Object.entries(eager.model.stateDict())) {
          const err = relError(got[name].data as Float32Array, t.data as Float32Array);
          assert.ok(err <= 1e-5, `step ${step}: ${name} differs from eager by ${err} relative (seed ${SEED})`);
        }
      }
    });
  }

  test("trainChannels: the chosen channels move as in full training, the others stay (one SGD step, compiled)", async () => {
    const full = int8FineTuning(bytes, { floatLayers: 2 }), sparse = int8FineTuning(bytes, { floatLayers: 2 });
    offTheGrid(bytes, full);
    offTheGrid(bytes, sparse);
    const conv = sparse.model.head.layers[0] as DequantizedConv2d;
    const before = (full.model.head.layers[0] as DequantizedConv2d).weight.data.slice();
    conv.trainChannels(16);
    const spec = { type: "sgd", lr: 0.05 } as const;
    const { wasm, report } = await compileTraining(sparse.model, { inputs: sparse.inputs, loss: "crossEntropy", optimizer: spec, optimizeLevel: 1 });
    assert.deepEqual(report.trainable, ["head.0.weight", "head.0.bias", "head.4.weight", "head.4.bias"]);
    const blob = await loadTrainingBlob(wasm);
    const x = int8Input(490), y = Tensor.from(Int32Array.of(3));
    blob.trainStep({ input_1: x.data, target: y.data });
    const opt = new optim.SGD(full.model.parameters(), spec);
    losses.crossEntropy(full.model.forward(x), y).backward();
    opt.step();
    const got = blob.stateDict(), want = full.model.stateDict();
    const per = 64;
    assert.ok(relError(got["head.0.weight"].data as Float32Array, (want["head.0.weight"].data as Float32Array).slice(0, 16 * per)) <= 1e-5, `the trained channels differ from full training (seed ${SEED})`);
    assert.deepEqual(Array.from(got["head.0.frozenWeight"].data as Float32Array), Array.from((before as Float32Array).slice(16 * per)), "the frozen channels moved");
    for (const name of ["head.0.bias", "head.4.weight", "head.4.bias"]) assert.ok(relError(got[name].data as Float32Array, want[name].data as Float32Array) <= 1e-5, `${name} differs from full training (seed ${SEED})`);
  });

  test("bad choices are clear errors", () => {
    assert.throws(() => int8FineTuning(bytes, { floatLayers: 0 }), (e: unknown) => e instanceof TeenygradError && /floatLayers must be an integer from 1 to 9/.test(e.message));
    const float = readFileSync(new URL("kws_ref_model_float32.tflite", MLPERF));
    assert.throws(() => int8FineTuning(new Uint8Array(float), { floatLayers: 1 }), (e: unknown) => e instanceof TeenygradError && /takes a quantized \(int8\) model/.test(e.message));
    // ResNet-8: its last convolution reads a residual sum, not the layer before it
    const resnet = new Uint8Array(readFileSync(new URL("pretrainedResnet_quant.tflite", MLPERF)));
    assert.throws(() => int8FineTuning(resnet, { floatLayers: 3 }), (e: unknown) => e instanceof TeenygradError && /the float head must be a chain of layers; choose fewer floatLayers/.test(e.message));
  });
});
