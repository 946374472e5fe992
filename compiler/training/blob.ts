import type { Manifest, TensorSlot, TrainingManifest } from "../codegen/manifest.js";
import { fail, TeenygradError } from "../errors.js";
import type { TypedArray } from "../ir/dtype.js";
import { shapeStr } from "../ir/shape.js";
import { compileBlob, instantiateBlob, runStatusMessage, slotViews, writeInputs, type InputValues } from "../host/loader.js";
import { Tensor } from "../tensor/tensor.js";

/** What a non-zero train_step() status means (see TrainingManifest). */
export const TRAIN_STATUS: Record<number, string> = {
  2: "an index out of range in a gather",
  3: "the loss is not finite (NaN or infinity); no parameter was updated",
  4: "a class target is out of range for the model's classes; no parameter was updated",
  5: "an integer division or remainder by zero",
};

/** train_step() returned a non-zero status: the parameters are as they were before the call. */
export class TrainStepError extends TeenygradError {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface TrainingBlob {
  manifest: Manifest;
  training: TrainingManifest;
  memory: WebAssembly.Memory;
  /** train_step()'s input views (a batch), zero-copy */
  inputs: Record<string, TypedArray>;
  /** train_step()'s outputs: "loss" and the model's "output" for the batch */
  outputs: Record<string, TypedArray>;
  /** writes the batch (all inputs and targets), runs one step; throws TrainStepError on a non-zero status */
  trainStep(batch: InputValues): { loss: number; output: TypedArray };
  /** inference on the current parameters: run()'s outputs, zero-copy */
  run(inputs: InputValues): Record<string, TypedArray>;
  /** copies of every state-dict tensor (trained parameters and buffers) as they are now */
  stateDict(): Record<string, Tensor>;
  /** writes tensors into the blob's parameters (names and shapes must match; a partial dict updates only those) */
  loadStateDict(state: Record<string, Tensor>): void;
  /** the learning rate the next step uses (an f32 in the blob's memory) */
  learningRate: number;
  /** completed steps */
  readonly steps: number;
}

/** Instantiates a blob from compileTraining with the WebAssembly API only (Node or browser). */
export async function loadTrainingBlob(bytes: Uint8Array | ArrayBuffer, source = "<training blob>"): Promise<TrainingBlob> {
  const { module, manifest } = await compileBlob(bytes, source);
  const training = manifest.training ?? fail(`${source}: not a training blob (compile it with compileTraining / teenygrad compile --train)`);
  if (manifest.weights.sharedHeap) fail(`${source}: a wamr-flash training blob reads its frozen parameters and constants from WAMR's shared heap at ${manifest.weights.offset}, outside linear memory: it runs only in a WAMR embedding that attaches them; compile for wasm-scalar to train here`);
  const { exports, memory } = await instantiateBlob(module, manifest, source, ["train_step"]);
  const { run, train_step: trainStep } = exports as { run: () => number; train_step: () => number };
  const buffer = memory.buffer;
  const inputs = slotViews(buffer, training.inputs, "train_step() input", source), outputs = slotViews(buffer, training.outputs, "train_step() output", source);
  for (const name of ["loss", "output"]) if (!outputs[name]) fail(`${source}: the training manifest has no train_step() output "${name}"`);
  const runInputs = slotViews(buffer, manifest.inputs, "input", source), runOutputs = slotViews(buffer, manifest.outputs, "output", source);
  const parameterViews = slotViews(buffer, training.parameters, "parameter", source);
  slotViews(buffer, training.optimizerState, "optimizer state", source);
  const view = (slot: TensorSlot): TypedArray => parameterViews[slot.name];
  const params = new Map(training.parameters.map((p) => [p.name, p]));
  const f32 = new Float32Array(buffer);
  for (const field of ["step", "lr"] as const) {
    const at = training.control[field];
    if (at % 4 !== 0 || at + 4 > buffer.byteLength) fail(`${source}: the training control scalar "${field}" at ${at} is not an aligned f32 inside the ${buffer.byteLength}-byte memory`);
  }

  return {
    manifest,
    training,
    memory,
    inputs,
    outputs,
    trainStep(batch) {
      writeInputs({ ...manifest, inputs: training.inputs }, inputs, batch, source);
      const status = trainStep();
      if (status !== 0) throw new TrainStepError(status, `${source}: train_step() returned status ${status} (${TRAIN_STATUS[status] ?? "unknown status"})`);
      return { loss: outputs.loss[0] as number, output: outputs.output };
    },
    run(values) {
      writeInputs(manifest, runInputs, values, source);
      const status = run();
      if (status !== 0) fail(`${source}: ${runStatusMessage(status)}`);
      return runOutputs;
    },
    stateDict() {
      return Object.fromEntries(training.parameters.map((p) => [p.name, Tensor.from(view(p).slice(), { shape: p.shape, dtype: p.dtype })]));
    },
    loadStateDict(state) {
      for (const [name, t] of Object.entries(state)) {
        const p = params.get(name) ?? fail(`loadStateDict: the blob has no parameter '${name}' (parameters: ${[...params.keys()].join(", ")})`);
        if (t.shape.join() !== p.shape.join() || t.dtype !== p.dtype) fail(`loadStateDict: '${name}' is ${t.dtype} ${shapeStr(t.shape)} but the blob holds ${p.dtype} ${shapeStr(p.shape)}`);
        (view(p) as Float32Array).set(t.data as Float32Array);
      }
    },
    get learningRate() {
      return f32[training.control.lr >> 2];
    },
    set learningRate(lr: number) {
      if (!(Number.isFinite(lr) && lr >= 0)) fail(`${source}: invalid learning rate ${lr} (a finite number >= 0)`);
      f32[training.control.lr >> 2] = lr;
    },
    get steps() {
      return f32[training.control.step >> 2];
    },
  };
}
