/**
 * Arena planner benchmark on seeded random but realistic schedules: MLPs, ResNets, U-Nets (long skips),
 * MobileNetV2, DenseNets, Inception blocks, transformer encoders, and branchy random DAGs, at several sizes.
 * Table 1, per model: buffers, the live lower bound (no plan can be smaller), TFLite Micro's greedy plan,
 * ours, how far each is above the bound, bytes saved, and planning time (median of 5 runs after a warm-up).
 * Table 2: the same for 30 random DAGs per size, as mean / worst.
 * Run: npx tsx bench/planner.ts
 */
import { liveness, planArena, type ArenaPlan, type BufferRequest, type ScheduleStep } from "../compiler/planner/index.js";
import { seededRandom } from "../compiler/planner/arena.js";


/** Builds a schedule one kernel at a time; every tensor is float32. */
class ScheduleBuilder {
  readonly steps: ScheduleStep[] = [];
  readonly bytes = new Map<number, number>();
  private nextId = 0;

  input(elements: number): number {
    return this.allocate(elements);
  }

  /** One kernel reading `reads` and writing a new tensor of `elements` floats, with optional scratch. */
  op(reads: number[], elements: number, scratchElements = 0): number {
    const output = this.allocate(elements);
    const scratch = scratchElements > 0 ? [{ id: this.nextId++, bytes: scratchElements * 4 }] : undefined;
    this.steps.push({ reads, writes: [output], scratch });
    return output;
  }

  private allocate(elements: number): number {
    const id = this.nextId++;
    this.bytes.set(id, elements * 4);
    return id;
  }
}

interface Model {
  name: string;
  buffers: BufferRequest[];
}

function finish(name: string, builder: ScheduleBuilder, inputs: number[], outputs: number[]): Model {
  return { name, buffers: liveness(builder.steps, (id) => builder.bytes.get(id)!, inputs, outputs) };
}

const pick = <T>(random: () => number, choices: T[]): T => choices[Math.floor(random() * choices.length)];

/** ResNet-like: stem, stages of residual blocks (downsampling ones with a 1×1 shortcut), pool, classifier. */
function resnet(random: () => number, blocksPerStage: number[]): Model {
  const g = new ScheduleBuilder();
  let side = pick(random, [32, 48, 64, 96]);
  let channels = pick(random, [8, 16, 24]);
  const image = g.input(side * side * 3);
  const im2col = (c: number) => (random() < 0.5 ? side * side * c * 9 : 0);
  let x = g.op([image], side * side * channels, side * side * 27);
  blocksPerStage.forEach((blocks, stage) => {
    for (let block = 0; block < blocks; block++) {
      const downsample = stage > 0 && block === 0;
      let shortcut = x;
      if (downsample) {
        side = Math.max(1, side >> 1);
        channels *= 2;
        shortcut = g.op([x], side * side * channels);
      }
      const a = g.op([x], side * side * channels, im2col(channels));
      const b = g.op([a], side * side * channels, im2col(channels));
      x = g.op([b, shortcut], side * side * channels);
    }
  });
  const pooled = g.op([x], channels);
  const logits = g.op([pooled], 10);
  const probabilities = g.op([logits], 10);
  return finish(`resnet ${blocksPerStage.join("-")}`, g, [image], [probabilities]);
}

/** U-Net: every encoder level's features live until the decoder comes back up to that level. */
function unet(random: () => number, depth: number, convsPerLevel: number): Model {
  const g = new ScheduleBuilder();
  let side = 2 ** depth * pick(random, [1, 2, 3]);
  let channels = pick(random, [4, 8, 16]);
  const image = g.input(side * side * 3);
  let x = g.op([image], side * side * channels);
  const skips: { id: number; side: number; channels: number }[] = [];
  for (let level = 0; level < depth; level++) {
    for (let c = 0; c < convsPerLevel; c++) x = g.op([x], side * side * channels, side * side * channels * 9);
    skips.push({ id: x, side, channels });
    side >>= 1;
    channels *= 2;
    x = g.op([x], side * side * channels);
  }
  for (let c = 0; c < convsPerLevel; c++) x = g.op([x], side * side * channels);
  for (const skip of skips.reverse()) {
    ({ side, channels } = skip);
    const up = g.op([x], side * side * channels);
    x = g.op([up, skip.id], side * side * channels * 2);
    for (let c = 0; c < convsPerLevel; c++) x = g.op([x], side * side * channels, side * side * channels * 9);
  }
  const mask = g.op([x], side * side);
  return finish(`unet depth ${depth}×${convsPerLevel}`, g, [image], [mask]);
}

/** MobileNetV2: inverted residual blocks (1×1 expand ×6, 3×3 depthwise, 1×1 project), the real channel plan. */
function mobilenetV2(random: () => number, widthMultiplier: number): Model {
  const g = new ScheduleBuilder();
  let side = pick(random, [96, 128, 160]);
  const scaled = (c: number) => Math.max(8, Math.round((c * widthMultiplier) / 8) * 8);
  const image = g.input(side * side * 3);
  side /= 2;
  let channels = scaled(32);
  let x = g.op([image], side * side * channels, side * side * 27);
  // [expansion, output channels, repeats, first stride]
  const plan = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
  for (const [expansion, outChannels, repeats, firstStride] of plan) {
    for (let repeat = 0; repeat < repeats; repeat++) {
      const stride = repeat === 0 ? firstStride : 1;
      const hidden = channels * expansion;
      const expanded = expansion === 1 ? x : g.op([x], side * side * hidden);
      const outSide = Math.ceil(side / stride);
      const depthwise = g.op([expanded], outSide * outSide * hidden);
      const projected = g.op([depthwise], outSide * outSide * scaled(outChannels));
      x = stride === 1 && channels === scaled(outChannels) ? g.op([x, projected], outSide * outSide * channels) : projected;
      side = outSide;
      channels = scaled(outChannels);
    }
  }
  const features = g.op([x], side * side * 1280);
  const pooled = g.op([features], 1280);
  const logits = g.op([pooled], 1000);
  return finish(`mobilenetv2 ×${widthMultiplier}`, g, [image], [logits]);
}

/** DenseNet block: every layer reads the concatenation of all earlier features, so feature maps live long. */
function densenet(random: () => number, blocks: number, layersPerBlock: number): Model {
  const g = new ScheduleBuilder();
  let side = pick(random, [32, 48, 64]);
  const growth = pick(random, [12, 24, 32]);
  const image = g.input(side * side * 3);
  let channels = 2 * growth;
  let x = g.op([image], side * side * channels, side * side * 27);
  for (let block = 0; block < blocks; block++) {
    const features = [x];
    for (let layer = 0; layer < layersPerBlock; layer++) {
      const concatenated = features.length === 1 ? x : g.op([...features], side * side * channels);
      const bottleneck = g.op([concatenated], side * side * 4 * growth);
      features.push(g.op([bottleneck], side * side * growth, side * side * 4 * growth * 9));
      channels += growth;
    }
    const all = g.op([...features], side * side * channels);
    if (block < blocks - 1) {
      side >>= 1;
      channels >>= 1;
      x = g.op([all], side * side * channels);
    } else {
      x = g.op([all], channels);
    }
  }
  const logits = g.op([x], 10);
  return finish(`densenet ${blocks}×${layersPerBlock}`, g, [image], [logits]);
}

/** Random DAG: each kernel reads one to three recent tensors and writes a tensor of a random size. */
function randomDag(random: () => number, kernels: number): Model {
  const g = new ScheduleBuilder();
  const recent = [g.input(1000 + Math.floor(random() * 50_000))];
  for (let kernel = 0; kernel < kernels; kernel++) {
    const fanIn = 1 + Math.floor(random() * 3);
    const reads = [...new Set(Array.from({ length: fanIn }, () => recent[Math.max(0, recent.length - 1 - Math.floor(random() * 6))]))];
    recent.push(g.op(reads, 100 + Math.floor(random() * 50_000), random() < 0.2 ? Math.floor(random() * 20_000) : 0));
  }
  return finish(`random dag ${kernels}`, g, [recent[0]], [recent[recent.length - 1]]);
}

/** Inception: four parallel branches of different widths per block, concatenated. */
function inception(random: () => number, blocks: number): Model {
  const g = new ScheduleBuilder();
  let side = pick(random, [28, 35, 42]);
  let channels = pick(random, [64, 96, 128]);
  const image = g.input(side * side * 3);
  let x = g.op([image], side * side * channels, side * side * 27);
  for (let block = 0; block < blocks; block++) {
    if (block > 0 && block % 3 === 0) {
      side = Math.ceil(side / 2);
      x = g.op([x], side * side * channels);
    }
    const area = side * side;
    const quarter = Math.round(channels / 4);
    const b1 = g.op([x], area * quarter);
    const b2 = g.op([g.op([x], area * Math.round(channels * 0.375))], area * Math.round(channels * 0.5), area * channels * 0.375 * 9);
    const b3 = g.op([g.op([x], area * Math.round(channels / 16))], area * Math.round(channels / 8), area * Math.round(channels / 16) * 25);
    const b4 = g.op([g.op([x], area * channels)], area * Math.round(channels / 8));
    channels = Math.round(channels / 4) + Math.round(channels * 0.5) + 2 * Math.round(channels / 8);
    x = g.op([b1, b2, b3, b4], area * channels);
  }
  const logits = g.op([g.op([x], channels)], 1000);
  return finish(`inception ${blocks} blocks`, g, [image], [logits]);
}

/** Transformer encoder, unfused: q/k/v, scores, softmax, context, projection, residuals, norms, MLP. */
function transformer(random: () => number, layers: number): Model {
  const g = new ScheduleBuilder();
  const tokens = pick(random, [16, 32, 64]);
  const width = pick(random, [32, 64, 128]);
  const heads = pick(random, [2, 4]);
  const input = g.input(tokens * width);
  let x = input;
  for (let layer = 0; layer < layers; layer++) {
    const normed = g.op([x], tokens * width);
    const q = g.op([normed], tokens * width);
    const k = g.op([normed], tokens * width);
    const v = g.op([normed], tokens * width);
    const scores = g.op([q, k], heads * tokens * tokens);
    const weights = g.op([scores], heads * tokens * tokens);
    const context = g.op([weights, v], tokens * width);
    const projected = g.op([context], tokens * width);
    const attended = g.op([x, projected], tokens * width);
    const normed2 = g.op([attended], tokens * width);
    const hidden = g.op([normed2], tokens * width * 4);
    const activated = g.op([hidden], tokens * width * 4);
    const down = g.op([activated], tokens * width);
    x = g.op([attended, down], tokens * width);
  }
  return finish(`transformer ${layers} layers`, g, [input], [x]);
}

/** MLP with unfused matmul → bias → activation, random widths. */
function mlp(random: () => number, layers: number): Model {
  const g = new ScheduleBuilder();
  const batch = pick(random, [1, 8, 32]);
  let width = pick(random, [64, 128, 784]);
  const input = g.input(batch * width);
  let x = input;
  for (let layer = 0; layer < layers; layer++) {
    width = pick(random, [16, 32, 64, 100, 128, 256, 300, 512]);
    const product = g.op([x], batch * width, random() < 0.3 ? batch * width : 0);
    const biased = g.op([product], batch * width);
    x = g.op([biased], batch * width);
  }
  return finish(`mlp ${layers} layers`, g, [input], [x]);
}

const random = seededRandom(2024);
const models: Model[] = [
  mlp(random, 4),
  mlp(random, 60),
  resnet(random, [1, 1, 1]),
  resnet(random, [3, 4, 6, 3]),
  resnet(random, [10, 20, 30, 10]),
  unet(random, 3, 2),
  unet(random, 6, 8),
  mobilenetV2(random, 0.35),
  mobilenetV2(random, 1),
  densenet(random, 3, 6),
  densenet(random, 4, 16),
  inception(random, 3),
  inception(random, 9),
  transformer(random, 2),
  transformer(random, 36),
  randomDag(random, 40),
  randomDag(random, 200),
  randomDag(random, 500),
];

const kib = (bytes: number) => (bytes / 1024).toFixed(1);
const percentOver = (ratio: number) => `+${((ratio - 1) * 100).toFixed(1)}%`;

/** Plans once to warm up the JIT, then times five more runs and keeps the median. */
function timedPlan(buffers: BufferRequest[]): { plan: ArenaPlan; milliseconds: number } {
  const plan = planArena(buffers);
  const times = Array.from({ length: 5 }, () => {
    const start = performance.now();
    planArena(buffers);
    return performance.now() - start;
  }).sort((a, b) => a - b);
  return { plan, milliseconds: times[2] };
}

function printTable(rows: string[][], leftAligned: number[]): void {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  for (const [index, row] of rows.entries()) {
    console.log(row.map((cell, column) => (leftAligned.includes(column) ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join("  ").trimEnd());
    if (index === 0) console.log(widths.map((width) => "-".repeat(width)).join("  "));
  }
}

const modelRows = [["model", "buffers", "lower KiB", "greedy KiB", "ours KiB", "greedy/LB", "ours/LB", "saved KiB", "ms", "strategy"]];
for (const model of models) {
  const { plan, milliseconds } = timedPlan(model.buffers);
  modelRows.push([
    model.name,
    String(model.buffers.length),
    kib(plan.lowerBound),
    kib(plan.greedyBaseline),
    kib(plan.arenaBytes),
    percentOver(plan.greedyBaseline / plan.lowerBound),
    percentOver(plan.arenaBytes / plan.lowerBound),
    kib(plan.greedyBaseline - plan.arenaBytes),
    milliseconds.toFixed(1),
    plan.strategy,
  ]);
}
printTable(modelRows, [0, 9]);

console.log();
const seeds = 30;
const dagRows = [["random DAGs", "buffers", "greedy/LB mean", "worst", "ours/LB mean", "worst", "ours at LB", "beat greedy", "ms mean", "worst"]];
for (const kernels of [40, 200, 500]) {
  const greedy: number[] = [];
  const ours: number[] = [];
  const times: number[] = [];
  let buffers = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const model = randomDag(seededRandom(seed), kernels);
    const { plan, milliseconds } = timedPlan(model.buffers);
    buffers += model.buffers.length;
    greedy.push(plan.greedyBaseline / plan.lowerBound);
    ours.push(plan.arenaBytes / plan.lowerBound);
    times.push(milliseconds);
  }
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  dagRows.push([
    `${seeds} × ${kernels} kernels`,
    `~${Math.round(buffers / seeds)}`,
    percentOver(mean(greedy)),
    percentOver(Math.max(...greedy)),
    percentOver(mean(ours)),
    percentOver(Math.max(...ours)),
    `${ours.filter((ratio) => ratio === 1).length}/${seeds}`,
    `${ours.filter((ratio, i) => ratio < greedy[i]).length}/${seeds}`,
    mean(times).toFixed(1),
    Math.max(...times).toFixed(1),
  ]);
}
printTable(dagRows, [0]);
