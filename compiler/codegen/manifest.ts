import type { DType } from "../ir/dtype.js";

/**
 * The JSON stored in the blob's `teenygrad.manifest` custom section. A host in any language finds every
 * buffer from it without calling exports. All offsets are absolute byte addresses in linear memory.
 */
export interface TensorSlot {
  name: string;
  dtype: DType;
  shape: number[];
  offset: number;
  bytes: number;
  /** an int8 input or output of a quantized model: real value = (q − zeroPoint)·scale */
  quantization?: Quantization;
}

/** A streaming model's state input, kept in the blob's memory, and the output that becomes its next value. */
export interface StateSlot extends TensorSlot {
  output: string;
}

export interface Quantization {
  scale: number;
  zeroPoint: number;
}

export interface Manifest {
  format: "teenygrad";
  version: 1;
  /** target name, e.g. "wasm-simd" */
  target: string;
  /** WASM features the code may use, e.g. ["simd128", "bulk-memory"] */
  features: string[];
  /** "reactor": exports memory + run() -> i32; "wasi": a WASI command (_start reads inputs from stdin, writes outputs to stdout) */
  flavour: "reactor" | "wasi";
  /**
   * linear memory: initial == maximum pages; `heapBase`, exported as __heap_base, ends the bytes the code
   * uses, which is all WAMR allocates
   */
  memory: { pages: number; bytes: number; heapBase?: number };
  arena: { offset: number; bytes: number; lowerBound: number; greedyBaseline: number };
  weights: {
    offset: number;
    bytes: number;
    /** false: the weights were written to a separate file the host copies to `offset` before the first run */
    embedded: boolean;
    /**
     * present for target wamr-flash: the weights are not in linear memory but in a region of `bytes` bytes
     * (the weights file zero-padded) that the host attaches read-only as WAMR's shared heap, which WAMR
     * maps at 2^32 - bytes = `offset`
     */
    sharedHeap?: { bytes: number };
    tensors: TensorSlot[];
  };
  inputs: TensorSlot[];
  outputs: TensorSlot[];
  /**
   * present for a streaming model (compile's `streamState`): its state inputs, which are not among `inputs`: each
   * buffer keeps its value between run() calls, and the last statements of run() copy the output named `output`
   * over it, which the next call reads. Zero at instantiation; a host resets the stream by zeroing them (or
   * writes a starting state there).
   */
  state?: StateSlot[];
  /**
   * present for target wasm-simd-threads: the blob imports its memory (`env.memory`, shared, `memory.pages`
   * pages) and exports `entry`(tid, n) -> i32, which each of n ≤ maxThreads workers calls; `sync` is the
   * address of the 32 bytes of i32 words they coordinate through (compiler/codegen/threads.ts)
   */
  threads?: { maxThreads: number; sync: number; entry: string };
  /** present in blobs from compileTraining, which also export train_step() -> i32 */
  training?: TrainingManifest;
}

/**
 * A training blob's extra buffers. `inputs`/`outputs` above belong to run(); these to train_step(),
 * which reads a batch from `inputs`, writes the loss (and the model's output) to `outputs`, and updates
 * `parameters` in place. train_step() statuses: 0 ok, 2 an index out of range in a gather, 5 an integer division by zero, 3 the loss is
 * not finite (nothing was updated), 4 a class target out of range (nothing was updated).
 */
export interface TrainingManifest {
  inputs: TensorSlot[];
  outputs: TensorSlot[];
  /** every state-dict tensor, trainable or not, at its address: in writable linear memory, or (`inFlash`, frozen ones on wamr-flash) in the read-only shared heap */
  parameters: (TensorSlot & { trainable: boolean; inFlash?: boolean })[];
  /** optimizer state (momentum buffers, Adam moments): zero at instantiation */
  optimizerState: TensorSlot[];
  /** f32 scalars: `step` counts completed steps; `lr` is the learning rate the next step uses (writable) */
  control: { step: number; lr: number };
  optimizer: Record<string, unknown>;
  /**
   * wamr-flash: linear memory holds no initial value (no data segment); the blob's `init()` export copies `bytes`
   * from `from` in the shared heap (flash) to `to` (the parameters that are not in flash, then `control`) and zeroes
   * the optimizer state (`zero`): a fresh start, again on every call. run() and train_step() call it first if it has
   * not run, so a host that writes parameters or the learning rate before the first call calls init() first.
   */
  init?: { from: number; to: number; bytes: number; zero: { offset: number; bytes: number } };
}

export const MANIFEST_SECTION = "teenygrad.manifest";

/**
 * A threaded blob's sync words (i32 indices from the manifest's `threads.sync`): the host's start count (runs so
 * far), workers done, worker 0's status and stop (compiler/host/threads.ts), and how many workers sleep waiting
 * for a step (compiler/codegen/threads.ts). The blob reserves SYNC_BYTES there.
 */
export const SYNC_WORDS = { start: 0, done: 1, status: 2, stop: 3, sleepers: 4 } as const;
export const SYNC_BYTES = 32;
