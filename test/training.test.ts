import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compile, Generator, loadBlob, losses, nn, optim, Tensor, TeenygradError } from "../compiler/index.js";
import { compileTraining, evaluate, loadMnist, loadTrainingBlob, trainLoop, TrainStepError, type OptimizerSpec, type TrainingOptions } from "../compiler/training/index.js";
import { SECTION, splitSections } from "../compiler/codegen/build.js";
import { relError, SEED } from "./helpers/compiled.js";
import { dataSegments } from "./helpers/data-segments.js";
import { findWasmtime } from "../targets/wasmtime/runner.js";
import { trainInWasmtime } from "../targets/wasmtime/training.js";

/**
 * Compiled training against eager mode: one or two train_step() calls give the parameters eager
 * backward() plus the eager optimizer give; gradients, freezing, checkpoints, bad input, and a short
 * MNIST run whose loss must fall.
 */

const rng = new Generator(SEED + 7);
const randn = (...shape: number[]) => Tensor.randn(shape, { generator: rng });
const labels = (n: number, classes: number) => Tensor.from(Int32Array.from({ length: n }, () => Math.floor(rng.next() * classes)));

/** conv → relu → maxpool → linear: every layer kind the MNIST CNN uses, small. */
class TinyCNN extends nn.Module {
  conv = new nn.Conv2d(2, 3, 3, { padding: 1 });
  fc = new nn.Linear(3 * 3 * 3, 4);
  forward(x: Tensor): Tensor {
    return this.fc.forward(this.conv.forward(x).relu().maxPool2d(2).flatten(1));
  }
}

/** TinyCNN with a BatchNorm, trained in train mode: its running statistics are buffers the step writes */
class TinyBNCNN extends nn.Module {
  conv = new nn.Conv2d(2, 3, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(3);
  fc = new nn.Linear(3 * 3 * 3, 4);
  forward(x: Tensor): Tensor {
    return this.fc.forward(this.bn.forward(this.conv.forward(x)).relu().maxPool2d(2).flatten(1));
  }
}

class TinyMLP extends nn.Module {
  fc1 = new nn.Linear(5, 7);
  fc2 = new nn.Linear(7, 3);
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.fc1.forward(x).tanh());
  }
}

/** two identical models: one trained eagerly (the oracle), one compiled */
function twins<M extends nn.Module>(make: () => M): [M, M] {
  const a = make(), b = make();
  b.loadStateDict(a.stateDict());
  return [a, b];
}

function eagerOptimizer(spec: OptimizerSpec, params: nn.Parameter[]) {
  if (spec.type === "sgd") return new optim.SGD(params, spec);
  return spec.type === "adam" ? new optim.Adam(params, spec) : new optim.AdamW(params, spec);
}

const fast = { optimizeLevel: 1 } as const;

function assertSameParameters(got: Record<string, Tensor>, want: Record<string, Tensor>, tol: number, what: string): void {
  for (const [name, t] of Object.entries(want)) {
    const err = relError(got[name].data as Float32Array, t.data as Float32Array);
    assert.ok(err <= tol, `${what}: ${name} differs from eager by ${err} relative (seed ${SEED})`);
  }
}

describe(`compiled training step against eager mode (seed ${SEED})`, () => {
  const cases: [string, OptimizerSpec][] = [
    ["SGD with momentum and weight decay", { type: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 0.01 }],
    ["Adam", { type: "adam", lr: 0.01 }],
    ["AdamW", { type: "adamw", lr: 0.01, weightDecay: 0.1 }],
  ];
  for (const [name, spec] of cases) {
    test(`${name}: two steps of a small CNN give eager's parameters (≤1e-5 relative)`, async () => {
      const [eager, compiled] = twins(() => new TinyCNN());
      const { wasm } = await compileTraining(compiled, { inputs: { x: [4, 2, 6, 6] }, loss: "crossEntropy", optimizer: spec, ...fast });
      const blob = await loadTrainingBlob(wasm);
      const opt = eagerOptimizer(spec, eager.parameters());
      for (let step = 1; step <= 2; step++) {
        const x = randn(4, 2, 6, 6), y = labels(4, 4);
        const { loss } = blob.trainStep({ x: x.data, target: y.data });
        opt.zeroGrad();
        const eagerLoss = losses.crossEntropy(eager.forward(x), y);
        eagerLoss.backward();
        opt.step();
        assert.ok(Math.abs(loss - eagerLoss.item()) <= 1e-5 * Math.abs(eagerLoss.item()), `step ${step} loss ${loss} vs eager ${eagerLoss.item()}`);
        assertSameParameters(blob.stateDict(), eager.stateDict(), 1e-5, `${name}, step ${step}`);
      }
      assert.equal(blob.steps, 2);
    });
  }

  test("compiled gradients equal eager backward(): SGD with lr 1 moves each weight by exactly its gradient", async () => {
    const [eager, compiled] = twins(() => new TinyMLP());
    const { wasm } = await compileTraining(compiled, { inputs: { x: [6, 5] }, targets: { y: [6, 3] }, loss: "mse", optimizer: { type: "sgd", lr: 1 }, ...fast });
    const blob = await loadTrainingBlob(wasm);
    const before = blob.stateDict();
    const x = randn(6, 5), y = randn(6, 3);
    blob.trainStep({ x: x.data, y: y.data });
    losses.mse(eager.forward(x), y).backward();
    const after = blob.stateDict();
    for (const [name, p] of eager.namedParameters()) {
      const compiledGrad = (before[name].data as Float32Array).map((w, i) => w - (after[name].data as Float32Array)[i]);
      const err = relError(compiledGrad, p.grad!.data as Float32Array);
      assert.ok(err <= 1e-4, `gradient of ${name}: ${err} relative (seed ${SEED})`);
    }
  });

  test("a lowered learning rate (written into the blob) is the one the next step uses", async () => {
    const [eager, compiled] = twins(() => new TinyMLP());
    const { wasm } = await compileTraining(compiled, { inputs: { x: [3, 5] }, loss: "crossEntropy", optimizer: { type: "sgd", lr: 0.5 }, ...fast });
    const blob = await loadTrainingBlob(wasm);
    blob.learningRate = 0.05;
    const x = randn(3, 5), y = labels(3, 3);
    blob.trainStep({ x: x.data, target: y.data });
    const opt = new optim.SGD(eager.parameters(), { lr: 0.05 });
    losses.crossEntropy(eager.forward(x), y).backward();
    opt.step();
    assertSameParameters(blob.stateDict(), eager.stateDict(), 1e-5, "lr 0.05");
  });
});

/**
 * A wamr-flash blob as WAMR maps it: linear memory below, the shared heap ending at 2^32. Node has no shared heap,
 * so the blob's memory is widened to the whole 4 GiB address space (reserved, not committed) and the heap's bytes
 * copied to its top; the code reads them at the same addresses it would in WAMR.
 */
async function instantiateWithSharedHeap(wasm: Uint8Array, heap: Uint8Array | null) {
  const fullMemory = Uint8Array.from([SECTION.memory, 8, 1, 1, 0x80, 0x80, 0x04, 0x80, 0x80, 0x04]); // 65536 pages, fixed
  const sections = splitSections(wasm).map((s) => (s.id === SECTION.memory && heap ? fullMemory : s.raw));
  const { instance } = await WebAssembly.instantiate(Buffer.concat([wasm.subarray(0, 8), ...sections]));
  const memory = (instance.exports.memory as WebAssembly.Memory).buffer;
  if (heap) new Uint8Array(memory).set(heap, 2 ** 32 - heap.byteLength);
  return { memory, trainStep: instance.exports.train_step as () => number, init: instance.exports.init as (() => void) | undefined };
}


describe("freezing", () => {
  test("trainLastN: 1 updates only the classifier, drops the conv's gradient and state, and reports the bytes saved", async () => {
    const [eager, compiled] = twins(() => new TinyCNN());
    const spec: OptimizerSpec = { type: "adam", lr: 0.01 };
    const frozen = await compileTraining(compiled, { inputs: { x: [4, 2, 6, 6] }, loss: "crossEntropy", optimizer: spec, trainLastN: 1, ...fast });
    const full = await compileTraining(compiled, { inputs: { x: [4, 2, 6, 6] }, loss: "crossEntropy", optimizer: spec, ...fast });
    assert.deepEqual(frozen.report.frozen, ["conv.weight", "conv.bias"]);
    assert.ok(frozen.graphs.trainStep.nodes.length < full.graphs.trainStep.nodes.length, "the frozen conv's backward branch is gone");
    assert.ok(!frozen.graphs.trainStep.nodes.some((n) => n.op === "conv2d" && n !== frozen.graphs.trainStep.nodes.find((m) => m.op === "conv2d")), "only the forward conv2d remains");
    const state = (r: typeof frozen) => r.report.memory.regions.find((g) => g.name === "optimizer state")!.bytes;
    assert.ok(state(frozen) < state(full));
    const saved = frozen.report.memory.frozen!.bytesSaved;
    assert.equal(saved.optimizerState, state(full) - state(frozen));
    assert.equal(saved.total, full.report.memory.totalBytes - frozen.report.memory.totalBytes);
    assert.ok(saved.total > 0);

    const blob = await loadTrainingBlob(frozen.wasm);
    eager.conv.weight.requiresGrad = eager.conv.bias!.requiresGrad = false;
    const opt = new optim.Adam(eager.fc.parameters(), spec);
    const x = randn(4, 2, 6, 6), y = labels(4, 4);
    blob.trainStep({ x: x.data, target: y.data });
    losses.crossEntropy(eager.forward(x), y).backward();
    opt.step();
    assertSameParameters(blob.stateDict(), eager.stateDict(), 1e-5, "frozen conv");
    assert.deepEqual(Array.from(blob.stateDict()["conv.weight"].data as Float32Array), Array.from(compiled.conv.weight.data as Float32Array), "frozen weights stay as they were");
  });

  test("on wamr-flash the frozen conv and the constants live in the shared heap, the trained layer and Adam's moments in RAM, and the losses match wasm-scalar", async () => {
    const model = new TinyCNN();
    const opts: TrainingOptions = { inputs: { x: [4, 2, 6, 6] }, loss: "crossEntropy", optimizer: { type: "adam", lr: 0.01 }, trainLastN: 1, ...fast };
    const flash = await compileTraining(model, { ...opts, target: "wamr-flash" });
    const scalar = await compileTraining(model, { ...opts, target: "wasm-scalar" });
    const { weights, training, memory } = flash.manifest;
    const heap = weights.sharedHeap!;
    assert.ok(heap && heap.bytes % 4096 === 0 && !weights.embedded && weights.offset === 2 ** 32 - heap.bytes);
    assert.equal(flash.weights!.byteLength, heap.bytes);
    const inRam = (s: { offset: number; bytes: number }) => s.offset + s.bytes <= memory.heapBase!;
    for (const p of training!.parameters) assert.equal(p.inFlash === true, !p.trainable, `${p.name} in flash exactly when frozen`);
    for (const p of training!.parameters) assert.ok(p.inFlash ? p.offset >= weights.offset : inRam(p), `${p.name} at ${p.offset}`);
    assert.ok(training!.optimizerState.length > 0 && training!.optimizerState.every(inRam));
    const frozenBytes = scalar.report.memory.regions.find((r) => r.name === "parameters (frozen)")!.bytes;
    assert.ok(scalar.report.memory.totalBytes - flash.report.memory.totalBytes >= frozenBytes, "the frozen conv left RAM");
    await assert.rejects(loadTrainingBlob(flash.wasm), /wamr-flash training blob reads its frozen parameters .* from WAMR's shared heap/);

    const blobs = await Promise.all([instantiateWithSharedHeap(flash.wasm, flash.weights), instantiateWithSharedHeap(scalar.wasm, null)]);
    const manifests = [flash.manifest.training!, scalar.manifest.training!];
    for (let step = 0; step < 3; step++) {
      const x = randn(4, 2, 6, 6).data as Float32Array, y = labels(4, 4).data as Int32Array;
      const lossesNow = blobs.map((b, i) => {
        const slot = (name: string) => manifests[i].inputs.find((s) => s.name === name)!.offset;
        new Float32Array(b.memory, slot("x"), x.length).set(x);
        new Int32Array(b.memory, slot("target"), y.length).set(y);
        assert.equal(b.trainStep(), 0);
        return new Float32Array(b.memory, manifests[i].outputs.find((s) => s.name === "loss")!.offset, 1)[0];
      });
      assert.equal(lossesNow[0], lossesNow[1], `step ${step}: wamr-flash loss ${lossesNow[0]}, wasm-scalar ${lossesNow[1]}`);
    }
    const fc = (i: number) => { const p = manifests[i].parameters.find((s) => s.name === "fc.weight")!; return Array.from(new Float32Array(blobs[i].memory, p.offset, p.bytes / 4)); };
    assert.deepEqual(fc(0), fc(1), "the trained classifier is the same");
  });

  test("on wamr-flash no data segment holds what the step writes: init() copies it from flash, and calling it again starts over", async () => {
    const model = new TinyBNCNN().train();
    const opts: TrainingOptions = { inputs: { x: [4, 2, 6, 6] }, loss: "crossEntropy", optimizer: { type: "adam", lr: 0.01 }, freeze: ["conv"], ...fast };
    const flash = await compileTraining(model, { ...opts, target: "wamr-flash" });
    const scalar = await compileTraining(model, { ...opts, target: "wasm-scalar" });
    const [tf, ts] = [flash.manifest.training!, scalar.manifest.training!];
    const init = tf.init!;
    assert.ok(init && !ts.init, "only the wamr-flash blob has init()");
    const written = [...tf.parameters.filter((p) => !p.inFlash), ...tf.optimizerState, { name: "control", offset: tf.control.step, bytes: 8 }];
    assert.ok(tf.parameters.some((p) => !p.trainable && !p.inFlash), "the moved running statistics stay in RAM");
    for (const [from, to] of dataSegments(flash.wasm)) {
      for (const w of written) assert.ok(to <= w.offset || from >= w.offset + w.bytes, `a data segment [${from}, ${to}) initialises ${w.name}`);
    }
    assert.ok(dataSegments(scalar.wasm).some(([from]) => from === ts.parameters[0].offset), "the wasm-scalar blob starts from its data segment");
    // the image in flash holds the initial values, laid out as in RAM
    const initial = model.stateDict();
    const image = (offset: number, bytes: number) => flash.weights!.subarray(init.from - flash.manifest.weights.offset + offset - init.to, init.from - flash.manifest.weights.offset + offset - init.to + bytes);
    for (const p of tf.parameters.filter((q) => !q.inFlash)) {
      const want = initial[p.name].data as Float32Array;
      assert.deepEqual(new Float32Array(image(p.offset, p.bytes).slice().buffer), want, `${p.name}'s initial values in flash`);
    }

    const blobs = await Promise.all([instantiateWithSharedHeap(flash.wasm, flash.weights), instantiateWithSharedHeap(scalar.wasm, null)]);
    const f32 = (memory: ArrayBuffer, s: { offset: number; bytes: number }) => Array.from(new Float32Array(memory, s.offset, s.bytes / 4));
    const fcWeight = tf.parameters.find((p) => p.name === "fc.weight")!;
    assert.ok(f32(blobs[0].memory, fcWeight).every((v) => v === 0), "before the first call linear memory holds no weight");
    const step = (b: Awaited<ReturnType<typeof instantiateWithSharedHeap>>, t: typeof tf, x: Float32Array, y: Int32Array) => {
      const slot = (name: string) => t.inputs.find((s) => s.name === name)!.offset;
      new Float32Array(b.memory, slot("x"), x.length).set(x);
      new Int32Array(b.memory, slot("target"), y.length).set(y);
      assert.equal(b.trainStep(), 0);
      return [t.outputs.find((s) => s.name === "loss")!, t.outputs.find((s) => s.name === "output")!].flatMap((s) => f32(b.memory, s));
    };
    const state = (b: { memory: ArrayBuffer }, t: typeof tf) => Object.fromEntries([...t.parameters, ...t.optimizerState].map((p) => [p.name, f32(b.memory, p)]));
    const batches = Array.from({ length: 3 }, () => [randn(4, 2, 6, 6).data as Float32Array, labels(4, 4).data as Int32Array] as const);
    for (const [i, [x, y]] of batches.entries()) {
      assert.deepEqual(step(blobs[0], tf, x, y), step(blobs[1], ts, x, y), `step ${i}: loss and output, wamr-flash against wasm-scalar`);
      assert.deepEqual(state(blobs[0], tf), state(blobs[1], ts), `step ${i}: parameters, running statistics and Adam's moments`);
    }
    assert.notDeepEqual(f32(blobs[0].memory, fcWeight), Array.from(initial["fc.weight"].data as Float32Array), "training moved the classifier");

    // init() again: the initial weights and statistics, step 0, the compiled learning rate, zero moments
    blobs[0].init!();
    for (const p of tf.parameters.filter((q) => !q.inFlash)) assert.deepEqual(f32(blobs[0].memory, p), Array.from(initial[p.name].data as Float32Array), `${p.name} after init()`);
    for (const s of tf.optimizerState) assert.ok(f32(blobs[0].memory, s).every((v) => v === 0), `${s.name} after init()`);
    assert.deepEqual(f32(blobs[0].memory, { offset: tf.control.step, bytes: 8 }), [0, Math.fround(0.01)]);
    // a learning rate written after init() is kept: the next step is a fresh blob's first step at that rate
    const fresh = await instantiateWithSharedHeap(scalar.wasm, null);
    for (const [b, t] of [[blobs[0], tf], [fresh, ts]] as const) new Float32Array(b.memory, t.control.lr, 1)[0] = 0.005;
    assert.deepEqual(step(blobs[0], tf, ...batches[0]), step(fresh, ts, ...batches[0]), "the first step after init()");
    assert.deepEqual(state(blobs[0], tf), state(fresh, ts), "the state after init() and one step");
  });
});

describe("checkpoints", () => {
  test("trained weights out of the blob compile into an inference blob with the same outputs, and load back", async () => {
    const model = new TinyMLP();
    const { wasm } = await compileTraining(model, { inputs: { x: [4, 5] }, loss: "crossEntropy", optimizer: { type: "sgd", lr: 0.3 }, ...fast });
    const blob = await loadTrainingBlob(wasm);
    for (let i = 0; i < 3; i++) blob.trainStep({ x: randn(4, 5).data, target: labels(4, 3).data });
    const file = nn.saveSafetensors(blob.stateDict());
    const trained = new TinyMLP();
    trained.loadStateDict(nn.loadSafetensors(file));
    const inference = await loadBlob((await compile(trained, { x: [4, 5] }, fast)).wasm);
    const x = randn(4, 5);
    const want = Array.from(blob.run({ x: x.data }).output as Float32Array);
    assert.ok(relError(inference.run({ x: x.data }).output as Float32Array, want) <= 1e-6);
    assert.ok(relError(trained.forward(x).data as Float32Array, want) <= 1e-5);

    const fresh = await loadTrainingBlob(wasm);
    fresh.loadStateDict(nn.loadSafetensors(file));
    assert.deepEqual(Array.from(fresh.run({ x: x.data }).output as Float32Array), want);
    assert.throws(() => fresh.loadStateDict({ "fc1.weight": Tensor.zeros([2, 2]) }), /fc1\.weight.*\[2, 2\].*\[7, 5\]/);
  });
});

describe("bad input", () => {
  const opts = (extra: Partial<TrainingOptions> = {}): TrainingOptions => ({ inputs: { x: [4, 5] }, loss: "crossEntropy", optimizer: { type: "sgd", lr: 0.1 }, ...fast, ...extra });
  class Floored extends nn.Module {
    fc1 = new nn.Linear(5, 7);
    fc2 = new nn.Linear(7, 3);
    forward(x: Tensor): Tensor {
      return this.fc2.forward(this.fc1.forward(x).mul(4).floor());
    }
  }

  test("a non-differentiable op between the loss and a trainable parameter is named, with the parameters behind it", async () => {
    await assert.rejects(compileTraining(new Floored(), opts()), (e: Error) =>
      e instanceof TeenygradError && /'floor'/.test(e.message) && /fc1\.weight/.test(e.message) && /fc1\.bias/.test(e.message) && /piecewise constant/.test(e.message));
    // with fc1 frozen nothing needs a gradient through floor
    await compileTraining(new Floored(), opts({ freeze: ["fc1"] }));
  });

  test("loss and target shapes that do not match, an unknown parameter to freeze, an unknown optimizer", async () => {
    await assert.rejects(compileTraining(new TinyMLP(), opts({ loss: "mse", targets: { y: [4, 2] } })), /mse.*\[4, 3\].*\[4, 2\]/);
    await assert.rejects(compileTraining(new TinyMLP(), opts({ targets: { y: [5] } })), /crossEntropy.*\[4, 3\].*\[5\]/);
    await assert.rejects(compileTraining(new TinyMLP(), opts({ freeze: ["fc9"] })), /freeze: 'fc9' names no parameter/);
    await assert.rejects(compileTraining(new TinyMLP(), opts({ optimizer: { type: "rmsprop" } as unknown as OptimizerSpec })), /unknown optimizer 'rmsprop'/);
    await assert.rejects(compileTraining(new TinyMLP(), opts({ freeze: ["fc1", "fc2"] })), /no parameter is left to train/);
  });

  test("infinite or NaN learning rates, NaN weight decay and negative eps are refused, compiled and eager", async () => {
    const bad: [OptimizerSpec, RegExp][] = [
      [{ type: "sgd", lr: Infinity }, /SGD: invalid learning rate Infinity/],
      [{ type: "sgd", lr: 0.1, weightDecay: NaN }, /SGD: invalid weight decay NaN/],
      [{ type: "adam", lr: NaN }, /adam: invalid learning rate NaN/],
      [{ type: "adamw", eps: -1e-8 }, /adamw: invalid eps -1e-8/],
      [{ type: "adam", weightDecay: NaN }, /adam: invalid weight decay NaN/],
    ];
    for (const [spec, message] of bad) {
      await assert.rejects(compileTraining(new TinyMLP(), opts({ optimizer: spec })), (e: Error) => e instanceof TeenygradError && message.test(e.message));
      assert.throws(() => eagerOptimizer(spec, new TinyMLP().parameters()), (e: Error) => e instanceof TeenygradError && new RegExp(message.source, "i").test(e.message));
    }
    const blob = await loadTrainingBlob((await compileTraining(new TinyMLP(), opts())).wasm);
    for (const lr of [Infinity, -Infinity, NaN, -0.1]) assert.throws(() => (blob.learningRate = lr), /invalid learning rate/);
    assert.ok(Math.abs(blob.learningRate - 0.1) < 1e-7, "the learning rate is unchanged");
  });

  test("class labels the int32 conversion would change are refused on the host; int64 labels are converted", async () => {
    const blob = await loadTrainingBlob((await compileTraining(new TinyMLP(), opts())).wasm);
    const x = randn(4, 5).data;
    for (const [target, shown] of [[[0, 1, 2.7, 0], "2.7"], [[0, NaN, 1, 1], "NaN"], [[2 ** 32 + 1, 0, 1, 2], "4294967297"]] as const) {
      assert.throws(() => blob.trainStep({ x, target: Float64Array.from(target) }), (e: Error) =>
        e instanceof TeenygradError && e.message.includes(`input "target" is int32, but element ${target.findIndex((v) => String(v) === shown)} is ${shown}`));
    }
    assert.equal(blob.steps, 0);
    // numpy's default integer labels (BigInt64Array) give the same steps as int32 ones
    const xs = randn(8, 5).data as Float32Array, ys = [0, 2, 1, 1, 0, 2, 2, 1];
    const [a, b] = twins(() => new TinyMLP());
    const run = async (model: nn.Module, target: Int32Array | BigInt64Array) => {
      const trained = await loadTrainingBlob((await compileTraining(model, opts())).wasm);
      return trainLoop(trained, { count: 8, tensors: { x: xs, target } }, { epochs: 1, shuffle: false }).losses;
    };
    assert.deepEqual(await run(a, BigInt64Array.from(ys.map(BigInt))), await run(b, Int32Array.from(ys)));
    assert.throws(() => trainLoop(blob, { count: 8, tensors: { x: xs, target: Float32Array.from([0, 1, 2, 0.5, 0, 0, 0, 0]) } }, { epochs: 1 }), /'target' is int32, but element 3 is 0.5/);
    assert.throws(() => trainLoop(blob, { count: 8, tensors: { x: xs, target: Int32Array.from(ys) } }, { epochs: -1 }), /epochs must be a positive integer/);
  });

  test("a parameter cut off by detach() is reported, not listed as trainable, and left unchanged", async () => {
    class Detached extends nn.Module {
      fc1 = new nn.Linear(5, 7);
      fc2 = new nn.Linear(7, 3);
      forward(x: Tensor): Tensor {
        return this.fc2.forward(this.fc1.forward(x).detach().tanh());
      }
    }
    const model = new Detached();
    const { wasm, report, manifest } = await compileTraining(model, opts());
    assert.deepEqual(report.trainable, ["fc2.weight", "fc2.bias"]);
    assert.deepEqual(report.frozen, ["fc1.weight", "fc1.bias"]);
    assert.ok(report.warnings.some((w) => /'fc1\.weight' gets no gradient.*detach\(\)/.test(w)), report.warnings.join("; "));
    assert.deepEqual(manifest.training!.parameters.filter((p) => p.trainable).map((p) => p.name), ["fc2.weight", "fc2.bias"]);
    const blob = await loadTrainingBlob(wasm);
    const before = Array.from(blob.stateDict()["fc1.weight"].data as Float32Array);
    blob.trainStep({ x: randn(4, 5).data, target: labels(4, 3).data });
    assert.deepEqual(Array.from(blob.stateDict()["fc1.weight"].data as Float32Array), before);
  });

  test("a NaN loss returns status 3 without touching the parameters, and the host loop stops cleanly", async () => {
    const { wasm } = await compileTraining(new TinyMLP(), opts());
    const blob = await loadTrainingBlob(wasm);
    const before = blob.stateDict();
    const poisoned = randn(4, 5).data.slice() as Float32Array;
    poisoned[3] = NaN;
    assert.throws(() => blob.trainStep({ x: poisoned, target: labels(4, 3).data }), (e: Error) => e instanceof TrainStepError && e.status === 3 && /not finite/.test(e.message));
    assert.throws(() => blob.trainStep({ x: randn(4, 5).data, target: Int32Array.from([0, 1, 3, 2]) }), (e: Error) => e instanceof TrainStepError && e.status === 4);
    const values = (sd: Record<string, Tensor>) => Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
    assert.deepEqual(values(blob.stateDict()), values(before));
    assert.equal(blob.steps, 0);

    // 12 examples, the 10th poisoned: steps 1 and 2 run, step 3 stops the loop
    const x = randn(12, 5).data.slice() as Float32Array;
    x.fill(NaN, 9 * 5, 10 * 5);
    const result = trainLoop(blob, { count: 12, tensors: { x, target: labels(12, 3).data } }, { epochs: 5, shuffle: false });
    assert.equal(result.losses.length, 2);
    assert.deepEqual(result.stopped && { step: result.stopped.step, status: result.stopped.status }, { step: 3, status: 3 });
    assert.equal(blob.steps, 2);
  });
});

describe("MNIST inside the blob (short)", () => {
  test("60 Adam steps of the MLP on real digits: the loss falls by more than half, held-out accuracy well above chance", async () => {
    class MLP extends nn.Module {
      net = new nn.Sequential(new nn.Linear(784, 64), new nn.ReLU(), new nn.Linear(64, 10));
      forward(x: Tensor): Tensor {
        return this.net.forward(x.flatten(1));
      }
    }
    const { wasm } = await compileTraining(new MLP(), { inputs: { image: [32, 1, 28, 28] }, loss: "crossEntropy", optimizer: { type: "adam", lr: 2e-3 }, ...fast });
    const data = loadMnist({ train: 1920, test: 500, seed: 3 });
    const blob = await loadTrainingBlob(wasm);
    const result = trainLoop(blob, data.train, { epochs: 1, seed: 3 });
    assert.equal(result.losses.length, 60);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(result.losses.slice(0, 5)), last = mean(result.losses.slice(-10));
    assert.ok(last < first / 2, `loss fell from ${first} to ${last} only`);
    assert.ok(evaluate(blob, data.test) > 0.7);
  });
});

describe("the same training blob in wasmtime", () => {
  test("a short run's losses equal Node's for the same seed and data", { skip: findWasmtime() ? false : "wasmtime is not installed (npm run engines)" }, async () => {
    const model = new TinyCNN();
    const { wasm, manifest } = await compileTraining(model, { inputs: { x: [4, 2, 6, 6] }, loss: "crossEntropy", optimizer: { type: "adam", lr: 0.01 }, ...fast });
    const batches = Array.from({ length: 6 }, () => ({ x: randn(4, 2, 6, 6).data as Float32Array, target: labels(4, 4).data as Int32Array }));
    const blob = await loadTrainingBlob(wasm);
    const node = batches.map((b) => blob.trainStep({ x: b.x, target: b.target }).loss);
    const wasmtime = await trainInWasmtime(wasm, manifest, batches);
    assert.deepEqual(wasmtime.map((s) => s.status), batches.map(() => 0));
    assert.deepEqual(wasmtime.map((s) => s.loss), node, "bit-identical losses");
    assert.ok(node[node.length - 1] !== node[0]);
  });
});
