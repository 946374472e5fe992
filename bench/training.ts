/**
 * Training memory and speed (npm run bench:training). Table 1: the compile report's memory, region by
 * region, for the MNIST CNN (batch 32 and 1, every layer), the KWS DS-CNN fine-tuning its classifier, and
 * MobileNetV1-0.25 at 96x96 (the classifier, the last two blocks, every layer), Adam, beside the goals of
 * issue 12. Table 2: train_step() of the MNIST CNN at batch 32 against PyTorch on one CPU thread (the
 * same model, loss and optimizer), median of timed steps after a warm-up, when /usr/bin/python3 has torch.
 */
import { spawnSync } from "node:child_process";
import { compileTraining, loadTrainingBlob, type TrainingOptions, type TrainingReport } from "../compiler/training/index.js";
import { Generator, manualSeed, nn, Tensor } from "../compiler/index.js";
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
  goal?: string;
}

/** everything before MobileNet's last two blocks */
const mobilenetFrozenHead = ["stem", ...Array.from({ length: 11 }, (_, i) => `blocks.${i}`)];
const configs: Config[] = [
  { name: "MNIST CNN, batch 32, all layers", model: () => new MnistCNN(), opts: { inputs: { image: [32, 1, 28, 28] } }, goal: "≤ 3,000 KiB" },
  { name: "MNIST CNN, batch 1, all layers", model: () => new MnistCNN(), opts: { inputs: { image: [1, 1, 28, 28] } } },
  { name: "KWS DS-CNN, classifier", model: () => new KwsDsCnn(), opts: { inputs: { mfcc: [1, 1, 49, 10] }, trainLastN: 1 }, goal: "≤ 64 KB" },
  { name: "MobileNetV1-0.25 96x96, classifier", model: () => new MobileNetV1(), opts: { inputs: { image: [1, 3, 96, 96] }, trainLastN: 1 } },
  { name: "MobileNetV1-0.25 96x96, last 2 blocks", model: () => new MobileNetV1(), opts: { inputs: { image: [1, 3, 96, 96] }, freeze: mobilenetFrozenHead }, goal: "≤ 256 KB (int8 flash backbone: not yet)" },
  { name: "MobileNetV1-0.25 96x96, all layers", model: () => new MobileNetV1(), opts: { inputs: { image: [1, 3, 96, 96] } } },
];

const region = (r: TrainingReport, name: string) => r.memory.regions.filter((g) => g.name === name).reduce((a, g) => a + g.bytes, 0);

manualSeed(1);
const reports: TrainingReport[] = [];
for (const c of configs) {
  const { report } = await compileTraining(c.model(), { ...c.opts, loss: "crossEntropy", optimizer: adam, name: c.name, optimizeLevel: 1 });
  reports.push(report);
}
console.log("Training memory (Adam, float32; KiB; arena peak = saved activations + gradients + scratch + inputs/outputs at the fullest step)\n");
console.log("| configuration | trained params | frozen params | optimizer state | constants | arena | saved act. | gradients | scratch | total | goal |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
configs.forEach((c, i) => {
  const r = reports[i], p = r.memory.arena.peak;
  const cells = [region(r, "parameters (trained)"), region(r, "parameters (frozen)"), region(r, "optimizer state"), region(r, "constants"), r.memory.arena.bytes, p.savedActivations, p.gradients, p.scratch, r.memory.totalBytes];
  console.log(`| ${c.name} | ${cells.map(kib).join(" | ")} | ${c.goal ?? ""} |`);
});

// --- train_step speed: the MNIST CNN at batch 32 against PyTorch on one thread -------------------------
const STEPS = 30, WARMUP = 5, BATCH = 32;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rng = new Generator(3);
const images = Tensor.randn([BATCH, 1, 28, 28], { generator: rng }).data as Float32Array;
const targets = Int32Array.from({ length: BATCH }, () => Math.floor(rng.next() * 10));

const { wasm } = await compileTraining(new MnistCNN(), { inputs: { image: [BATCH, 1, 28, 28] }, loss: "crossEntropy", optimizer: adam });
const blob = await loadTrainingBlob(wasm);
const ours: number[] = [];
for (let s = 0; s < WARMUP + STEPS; s++) {
  const t0 = performance.now();
  blob.trainStep({ image: images, target: targets });
  if (s >= WARMUP) ours.push(performance.now() - t0);
}

const TORCH = `
import sys, time, torch
torch.set_num_threads(1)
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x = torch.randn(${BATCH}, 1, 28, 28); y = torch.randint(0, 10, (${BATCH},))
times = []
for s in range(${WARMUP + STEPS}):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    if s >= ${WARMUP}: times.append((time.perf_counter() - t0) * 1000)
print(sorted(times)[len(times) // 2], torch.__version__)
`;
const torch = spawnSync("/usr/bin/python3", ["-c", TORCH], { encoding: "utf8" });
const [torchMillis, torchVersion] = torch.status === 0 ? torch.stdout.trim().split(" ") : [null, null];

console.log(`\ntrain_step, MNIST CNN, batch ${BATCH}, Adam (median of ${STEPS} steps after ${WARMUP} warm-up; one thread)\n`);
console.log("| implementation | ms per step |");
console.log("| --- | ---: |");
console.log(`| teenygrad (Node, wasm-simd) | ${median(ours).toFixed(2)} |`);
console.log(torchMillis ? `| PyTorch ${torchVersion} CPU, torch.set_num_threads(1) | ${Number(torchMillis).toFixed(2)} |`
  : `| PyTorch | not measured: /usr/bin/python3 cannot import torch (apt-get install python3-torch) |`);
