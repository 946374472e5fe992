/**
 * Training memory and speed (npm run bench:training). Table 1: the compile report's memory, region by
 * region, for the MNIST CNN (batch 32 and 1, every layer), the KWS DS-CNN fine-tuning its classifier, and
 * MobileNetV1-0.25 at 96x96 (the classifier, the last two blocks, every layer), Adam, beside the goals of
 * issue 12. Table 2: train_step() against PyTorch on one CPU thread (the same models, loss and optimizer;
 * scripts/bench-training-torch.py), median of timed steps after a warm-up, when /usr/bin/python3 has torch.
 * Table 3: fine-tuning memory beside what MIT's Tiny Training Engine reports (256 KB SRAM). Table 4: the device RAM
 * of the wamr-flash rows as the compile report models WAMR. The int8 rows fine-tune the MLPerf Tiny int8 models
 * (../shared/data/mlperf-tiny/) with int8FineTuning: the frozen prefix on the integer kernels, a float32 head.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { compileTraining, int8FineTuning, loadTrainingBlob, type DequantizedConv2d, type OptimizerSpec, type TrainingOptions, type TrainingReport } from "../compiler/training/index.js";
import { Generator, manualSeed, nn, Tensor } from "../compiler/index.js";
import SmallCNN from "../examples/cnn.js";
import KwsDsCnn from "../examples/kws-dscnn.js";
import MobileNetV1 from "../examples/mobilenet-v1.js";
import { MnistCNN } from "../examples/mnist-cnn.js";

const KIB = 1024;
const kib = (n: number) => (n / KIB).toLocaleString("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const adam = { type: "adam", lr: 1e-3 } as const;

interface Config {
  name: string;
  model: () => nn.Module;
  opts: Omit<TrainingOptions, "optimizer" | "loss">;
  optimizer?: OptimizerSpec;
  goal?: string;
}
const sgd = { type: "sgd", lr: 1e-3 } as const;

/** everything before MobileNet's last two blocks */
const mobilenetFrozenHead = ["stem", ...Array.from({ length: 11 }, (_, i) => `blocks.${i}`)];
const configs: Config[] = [
  { name: "MNIST CNN, batch 32, all layers", model: () => new MnistCNN(), opts: { inputs: { image: [32, 1, 28, 28] } }, goal: "≤ 3,000 KiB" },
  { name: "MNIST CNN, batch 1, all layers", model: () => new MnistCNN(), opts: { inputs: { image: [1, 1, 28, 28] } } },
  { name: "KWS DS-CNN, classifier", model: () => new KwsDsCnn(), opts: { inputs: { mfcc: [1, 1, 49, 10] }, trainLastN: 1 }, goal: "≤ 64 KB" },
  { name: "KWS DS-CNN, classifier, wamr-flash", model: () => new KwsDsCnn(), opts: { inputs: { mfcc: [1, 1, 49, 10] }, trainLastN: 1, target: "wamr-flash" }, goal: "≤ 64 KB" },
  { name: "MobileNetV1-0.25 96x96, classifier", model: () => new MobileNetV1(), opts: { inputs: { image: [1, 3, 96, 96] }, trainLastN: 1 } },
  { name: "MobileNetV1-0.25 96x96, last 2 blocks", model: () => new MobileNetV1(), opts: { inputs: { image: [1, 3, 96, 96] }, freeze: mobilenetFrozenHead }, goal: "≤ 256 KB (int8 flash backbone: not yet)" },
  { name: "MobileNetV1-0.25 96x96, all layers", model: () => new MobileNetV1(), opts: { inputs: { image: [1, 3, 96, 96] } } },
  ...int8Configs(),
];

/**
 * The MLPerf Tiny int8 models, fine-tuned on wamr-flash with plain SGD (as TTE does): KWS's classifier, and
 * MobileNetV1-0.25 (VWW)'s last two blocks and classifier as a float32 head, with TTE's sparse-update choices.
 */
function int8Configs(): Config[] {
  const dir = new URL("../../shared/data/mlperf-tiny/", import.meta.url);
  const file = (name: string) => new URL(name, dir);
  if (!existsSync(file("kws_ref_model.tflite")) || !existsSync(file("vww_96_int8.tflite"))) {
    console.log(`(int8 rows skipped: no MLPerf Tiny models in ${dir.pathname})`);
    return [];
  }
  const kws = new Uint8Array(readFileSync(file("kws_ref_model.tflite"))), vww = new Uint8Array(readFileSync(file("vww_96_int8.tflite")));
  const kwsHead = () => int8FineTuning(kws, { floatLayers: 1 });
  // VWW's head: dw, pw (block 12), dw, pw (block 13), pool, reshapes, the classifier: head.0 … head.7
  const vwwHead = () => int8FineTuning(vww, { floatLayers: 5 });
  const vwwInputs = vwwHead().inputs;
  const flash = { target: "wamr-flash" } as const;
  const weights = ["head.0.weight", "head.1.weight", "head.2.weight", "head.3.weight", "head.7.weight"];
  return [
    { name: "KWS int8 backbone, classifier, SGD, wamr-flash", model: () => kwsHead().model, opts: { inputs: kwsHead().inputs, ...flash }, optimizer: sgd, goal: "≤ 64 KB device RAM" },
    { name: "KWS int8 backbone, classifier, Adam, wamr-flash", model: () => kwsHead().model, opts: { inputs: kwsHead().inputs, ...flash } },
    { name: "MobileNetV1-0.25 int8 backbone, last 2 blocks, SGD, wamr-flash", model: () => vwwHead().model, opts: { inputs: vwwInputs, ...flash }, optimizer: sgd, goal: "≤ 256 KB" },
    { name: "  last block + classifier", model: () => vwwHead().model, opts: { inputs: vwwInputs, ...flash, freeze: ["head.0", "head.1"] }, optimizer: sgd },
    { name: "  last 2 blocks, biases only", model: () => vwwHead().model, opts: { inputs: vwwInputs, ...flash, freeze: weights }, optimizer: sgd },
    {
      name: "  last 2 blocks, TTE-style: biases, depthwise, 32 of 256 pointwise channels, classifier",
      model: () => {
        const { model } = vwwHead();
        for (const i of [1, 3]) (model.head.layers[i] as DequantizedConv2d).trainChannels(32);
        return model;
      },
      opts: { inputs: vwwInputs, ...flash }, optimizer: sgd, goal: "≤ 256 KB",
    },
  ];
}

const region = (r: TrainingReport, name: string) => r.memory.regions.filter((g) => g.name === name).reduce((a, g) => a + g.bytes, 0);

manualSeed(1);
const reports: TrainingReport[] = [];
for (const c of configs) {
  // -O3 as compileTraining's default: on a device the code's size is RAM (WAMR holds it)
  const { report } = await compileTraining(c.model(), { ...c.opts, loss: "crossEntropy", optimizer: c.optimizer ?? adam, name: c.name, optimizeLevel: c.opts.target === "wamr-flash" ? 3 : 1 });
  reports.push(report);
}
console.log("Training memory (Adam unless named, float32 unless int8; KiB; arena peak = saved activations + gradients + scratch + inputs/outputs at the fullest step)\n");
console.log("| configuration | trained params | frozen params | optimizer state | constants | arena | saved act. | gradients | scratch | total | goal |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
configs.forEach((c, i) => {
  const r = reports[i], p = r.memory.arena.peak;
  const cells = [region(r, "parameters (trained)"), region(r, "parameters (frozen)"), region(r, "optimizer state"), region(r, "constants"), r.memory.arena.bytes, p.savedActivations, p.gradients, p.scratch, r.memory.totalBytes];
  console.log(`| ${c.name} | ${cells.map(kib).join(" | ")} | ${c.goal ?? ""} |`);
});

// --- train_step speed against PyTorch on one thread ------------------------------------------------------
const STEPS = 30, WARMUP = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
interface SpeedCase { name: string; torchModel: string; batch: number; model: () => nn.Module }
const speedCases: SpeedCase[] = [
  { name: "MNIST CNN", torchModel: "mnist-cnn", batch: 32, model: () => new MnistCNN() },
  { name: "MNIST CNN", torchModel: "mnist-cnn", batch: 1, model: () => new MnistCNN() },
  { name: "conv-BN-ReLU-pool CNN (examples/cnn.ts), BatchNorm in training mode", torchModel: "small-cnn-bn", batch: 32, model: () => new SmallCNN().train() },
];

const rng = new Generator(3);
const ours: number[] = [];
for (const c of speedCases) {
  const images = Tensor.randn([c.batch, 1, 28, 28], { generator: rng }).data as Float32Array;
  const targets = Int32Array.from({ length: c.batch }, () => Math.floor(rng.next() * 10));
  const { wasm } = await compileTraining(c.model(), { inputs: { image: [c.batch, 1, 28, 28] }, loss: "crossEntropy", optimizer: adam });
  const blob = await loadTrainingBlob(wasm);
  const times: number[] = [];
  for (let s = 0; s < WARMUP + STEPS; s++) {
    const t0 = performance.now();
    blob.trainStep({ image: images, target: targets });
    if (s >= WARMUP) times.push(performance.now() - t0);
  }
  ours.push(median(times));
}

const workloads = speedCases.map((c) => ({ model: c.torchModel, batch: c.batch, steps: STEPS, warmup: WARMUP }));
const torch = spawnSync("/usr/bin/python3", [fileURLToPath(new URL("../scripts/bench-training-torch.py", import.meta.url))], { input: JSON.stringify(workloads), encoding: "utf8" });
const torchResult = torch.status === 0 ? (JSON.parse(torch.stdout) as { version: string; millis: number[] }) : null;

console.log(`\ntrain_step, Adam, cross-entropy: median ms of ${STEPS} steps after ${WARMUP} warm-up, one thread` +
  (torchResult ? ` (PyTorch ${torchResult.version} CPU, torch.set_num_threads(1))` : "") + "\n");
console.log("| model | batch | teenygrad (Node, wasm-simd) | PyTorch | teenygrad / PyTorch |");
console.log("| --- | ---: | ---: | ---: | ---: |");
speedCases.forEach((c, i) => {
  const theirs = torchResult?.millis[i];
  console.log(`| ${c.name} | ${c.batch} | ${ours[i].toFixed(2)} | ${theirs === undefined ? "not measured" : theirs.toFixed(2)} | ${theirs === undefined ? "" : (ours[i] / theirs).toFixed(2)} |`);
});
if (!torchResult) console.log(`\nPyTorch not measured: /usr/bin/python3 cannot run torch (npm run torch installs Debian's python3-torch)\n${torch.stderr ?? ""}`);

// --- memory against MIT's Tiny Training Engine -------------------------------------------------------------
// TTE (Lin et al., "On-Device Training Under 256KB Memory", NeurIPS 2022) fine-tunes MCUNet, MobileNetV2-w0.35
// and ProxylessNAS-w0.3 at batch 1 on an STM32F746 within 256 KB of SRAM and 1 MB of flash: int8 frozen
// weights in flash, sparse update (biases and a few chosen layers), gradients applied in place.
const TTE_SRAM = 256 * KIB;
const fineTuning = configs.filter((c) => !c.name.startsWith("MNIST"));
console.log("\nFine-tuning memory (batch 1) against MIT's Tiny Training Engine: TTE fits MCUNet / MobileNetV2-w0.35 / ProxylessNAS-w0.3");
console.log("sparse-update fine-tuning in 256 KB SRAM + 1 MB flash (int8 frozen weights in flash). Ours is float32; KiB.\n");
console.log("| configuration | arena | RAM total | frozen weights in it | RAM without frozen weights | vs TTE's 256 KB |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const c of fineTuning) {
  const r = reports[configs.indexOf(c)];
  // on wamr-flash the frozen weights are already out of RAM, in the shared heap
  const frozen = r.target === "wamr-flash" ? 0 : region(r, "parameters (frozen)");
  const withoutFrozen = r.memory.totalBytes - frozen;
  console.log(`| ${c.name} | ${kib(r.memory.arena.bytes)} | ${kib(r.memory.totalBytes)} | ${kib(frozen)} | ${kib(withoutFrozen)} | ${(withoutFrozen / TTE_SRAM).toFixed(2)}× |`);
}

// --- device RAM of the wamr-flash rows ---------------------------------------------------------------------
console.log("\nDevice RAM on wamr-flash (the compile report's model of WAMR: linear memory + module and instance + stack; KiB)\n");
console.log("| configuration | blob's memory | device RAM | of which linear memory | module and instance | flash | goal |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
configs.forEach((c, i) => {
  const r = reports[i], f = r.footprint;
  if (r.target !== "wamr-flash") return;
  console.log(`| ${c.name.trim()} | ${kib(r.memory.totalBytes)} | ${kib(f.ram.bytes)} | ${kib(f.ram.linearMemory)} | ${kib(f.ram.engine)} | ${kib(f.flash.bytes)} | ${c.goal ?? ""} |`);
});
