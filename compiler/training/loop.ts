import cliProgress from "cli-progress";
import { fail } from "../errors.js";
import { DTYPES, numel, type DType, type TypedArray } from "../ir/dtype.js";
import { checkedIntegers } from "../host/loader.js";
import { shapeStr } from "../ir/shape.js";
import { Generator } from "../tensor/random.js";
import { TrainStepError, type TrainingBlob } from "./blob.js";

/** Examples for a training blob: per input/target name, `count` examples laid out one after another. */
export interface Dataset {
  count: number;
  tensors: Record<string, TypedArray>;
}

export interface EpochStats {
  epoch: number;
  /** training steps the epoch ran */
  steps: number;
  /** mean training loss over the epoch's steps */
  loss: number;
  /** training accuracy over the epoch (classification: int32 targets, [batch, classes] output), else null */
  accuracy: number | null;
  /** held-out accuracy through run(), when validation data was given */
  validationAccuracy: number | null;
  millis: number;
}

export interface TrainLoopResult {
  epochs: EpochStats[];
  /** the loss of every completed step */
  losses: number[];
  /** why training ended early (a non-zero train_step() status); the parameters are those before that step */
  stopped: { step: number; status: number; reason: string } | null;
  /** mean wall time of one train_step() call, batch writing included */
  stepMillis: number;
}

export interface TrainLoopOptions {
  epochs: number;
  /** reshuffle the examples every epoch with this seed (default 0); false keeps their order */
  shuffle?: boolean;
  seed?: number;
  validation?: Dataset;
  /** a progress bar on stderr (when it is a terminal) */
  progress?: boolean;
  onEpoch?: (stats: EpochStats) => void;
  /** stop after this many steps in all (a short run) */
  maxSteps?: number;
}

/**
 * Feeds a dataset to a training blob batch by batch: each step writes the examples straight into the
 * blob's input buffers and calls train_step(). A leftover partial batch is skipped (the blob's batch is
 * fixed at compile time). A non-zero train_step() status ends training cleanly, reported in `stopped`.
 */
export function trainLoop(blob: TrainingBlob, data: Dataset, opts: TrainLoopOptions): TrainLoopResult {
  const slots = blob.training.inputs;
  if (!(Number.isInteger(opts.epochs) && opts.epochs >= 1)) fail(`trainLoop: epochs must be a positive integer, got ${opts.epochs}`);
  data = checkDataset(data, slots, "training data");
  const batch = slots[0].shape[0];
  const stepsPerEpoch = Math.floor(data.count / batch);
  if (stepsPerEpoch === 0) fail(`training data has ${data.count} examples, fewer than one batch of ${batch}`);
  const rng = new Generator(opts.seed ?? 0);
  const order = Array.from({ length: data.count }, (_, i) => i);
  const classify = classification(blob);
  const result: TrainLoopResult = { epochs: [], losses: [], stopped: null, stepMillis: 0 };
  const bar = opts.progress && process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: "epoch {epoch} |{bar}| {value}/{total} steps | loss {loss} | acc {acc}", hideCursor: true }, cliProgress.Presets.shades_classic)
    : null;
  let stepTime = 0;
  train: for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    const t0 = performance.now();
    if (opts.shuffle !== false) shuffle(order, rng);
    let lossSum = 0, correct = 0, seen = 0;
    bar?.start(stepsPerEpoch, 0, { epoch, loss: "-", acc: "-" });
    for (let s = 0; s < stepsPerEpoch; s++) {
      if (opts.maxSteps !== undefined && result.losses.length >= opts.maxSteps) break train;
      const ts = performance.now();
      for (const slot of slots) gatherRows(data.tensors[slot.name], blob.inputs[slot.name], order, s * batch, batch);
      // the step may reuse its input buffers once it has read them: keep the labels for the accuracy
      const labels = classify ? blob.inputs[classify.target].slice() : null;
      let loss: number;
      try {
        loss = blob.trainStep({ ...blob.inputs }).loss;
      } catch (e) {
        if (!(e instanceof TrainStepError)) throw e;
        result.stopped = { step: result.losses.length + 1, status: e.status, reason: e.message };
        break train;
      } finally {
        stepTime += performance.now() - ts;
      }
      result.losses.push(loss);
      lossSum += loss;
      if (classify) correct += classify(blob.outputs.output, labels!);
      seen += batch;
      bar?.update(s + 1, { epoch, loss: (lossSum / (s + 1)).toFixed(4), acc: classify ? (correct / seen).toFixed(4) : "-" });
    }
    bar?.stop();
    const stats: EpochStats = {
      epoch,
      steps: stepsPerEpoch,
      loss: lossSum / stepsPerEpoch,
      accuracy: classify ? correct / seen : null,
      validationAccuracy: opts.validation ? evaluate(blob, opts.validation) : null,
      millis: performance.now() - t0,
    };
    result.epochs.push(stats);
    opts.onEpoch?.(stats);
  }
  bar?.stop();
  result.stepMillis = result.losses.length ? stepTime / result.losses.length : 0;
  return result;
}

/**
 * Accuracy of run() on a labelled dataset: the model's inputs from `data`, its argmax against the int32
 * target (the training blob's classification target). The last partial batch is padded and counted exactly.
 */
export function evaluate(blob: TrainingBlob, data: Dataset): number {
  const classify = classification(blob) ?? fail("evaluate: the blob is not a classifier (int32 class targets, [batch, classes] output)");
  const slots = blob.manifest.inputs;
  data = checkDataset(data, [...slots, ...blob.training.inputs.filter((s) => s.name === classify.target)], "validation data");
  const batch = slots[0].shape[0];
  const labels = data.tensors[classify.target] ?? fail(`validation data has no '${classify.target}' targets`);
  let correct = 0;
  for (let start = 0; start < data.count; start += batch) {
    const n = Math.min(batch, data.count - start);
    const inputs = Object.fromEntries(slots.map((slot) => {
      const per = numel(slot.shape.slice(1));
      const buf = new (data.tensors[slot.name].constructor as { new (n: number): TypedArray })(batch * per);
      (buf as Float32Array).set((data.tensors[slot.name] as Float32Array).subarray(start * per, (start + n) * per));
      return [slot.name, buf];
    }));
    const out = blob.run(inputs).output as Float32Array;
    correct += classify(out, labels.subarray(start, start + n) as Int32Array, n);
  }
  return correct / data.count;
}

type Classifier = ((output: TypedArray, labels: TypedArray, rows?: number) => number) & { target: string };

/** Counts argmax hits when the blob looks like a classifier: one int32 [batch] target and a [batch, C] output. */
function classification(blob: TrainingBlob): Classifier | null {
  const out = blob.training.outputs.find((s) => s.name === "output");
  const targets = blob.training.inputs.filter((s) => !blob.manifest.inputs.some((i) => i.name === s.name));
  if (!out || out.shape.length !== 2 || targets.length !== 1 || targets[0].dtype !== "int32" || targets[0].shape.length !== 1) return null;
  const classes = out.shape[1];
  const count = (output: TypedArray, labels: TypedArray, rows = labels.length) => {
    let hits = 0;
    for (let r = 0; r < rows; r++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (output[r * classes + c] > output[r * classes + best]) best = c;
      if (best === labels[r]) hits++;
    }
    return hits;
  };
  return Object.assign(count, { target: targets[0].name });
}

/**
 * Checks a dataset against the blob's slots and returns it with every tensor in its slot's dtype: integer
 * targets given in another type (numpy's default int64 labels, floats) are converted once, refusing
 * values the conversion would change.
 */
function checkDataset(data: Dataset, slots: { name: string; shape: number[]; dtype: DType }[], what: string): Dataset {
  if (!(Number.isInteger(data.count) && data.count >= 0)) fail(`${what}: count must be a whole number of examples, got ${data.count}`);
  const unknown = Object.keys(data.tensors).filter((k) => !slots.some((s) => s.name === k));
  if (unknown.length) fail(`${what} has ${unknown.map((k) => `'${k}'`).join(", ")}, which the blob does not take (it takes ${slots.map((s) => s.name).join(", ")})`);
  const tensors: Record<string, TypedArray> = { ...data.tensors };
  for (const slot of slots) {
    const t = data.tensors[slot.name];
    if (!t) fail(`${what} has no '${slot.name}' (the blob needs ${slots.map((s) => s.name).join(", ")})`);
    const per = numel(slot.shape.slice(1));
    if (t.length !== data.count * per) fail(`${what}: '${slot.name}' has ${t.length} values; ${data.count} examples of ${shapeStr(slot.shape.slice(1))} need ${data.count * per}`);
    const Wanted = DTYPES[slot.dtype].array;
    if (t.constructor !== Wanted) {
      tensors[slot.name] = slot.dtype === "float32" || slot.dtype === "float64"
        ? (Wanted as Float32ArrayConstructor).from(t as ArrayLike<number>, Number)
        : checkedIntegers(t as ArrayLike<number | bigint>, slot.dtype, `${what}: '${slot.name}'`);
    }
  }
  return { count: data.count, tensors };
}

function gatherRows(src: TypedArray, dst: TypedArray, order: number[], from: number, rows: number): void {
  const per = dst.length / rows;
  for (let r = 0; r < rows; r++) {
    const i = order[from + r];
    (dst as Float32Array).set((src as Float32Array).subarray(i * per, (i + 1) * per), r * per);
  }
}

function shuffle(a: number[], rng: Generator): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
}
