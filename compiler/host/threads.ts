/**
 * Loads a wasm-simd-threads blob into N workers sharing one memory (Node worker_threads, browser Web Workers;
 * a browser page must be cross-origin isolated for SharedArrayBuffer). run() writes the inputs into the shared
 * memory and wakes the workers through an atomic start word. In a browser the caller's thread never computes
 * (its main thread may not Atomics.wait): N workers run and the last one done posts a message. In Node the
 * caller's thread is worker 0 (it may wait): it computes its part beside N − 1 workers and waits on the done word,
 * which saves a wake-up and a message per run.
 */
import { fail, TeenygradError } from "../errors.js";
import type { TypedArray } from "../ir/dtype.js";
import { SYNC_WORDS, type Manifest } from "../codegen/manifest.js";
import { compileBlob, runStatusMessage, slotViews, writeInputs, type InputValues, type OutputTensor } from "./loader.js";
import { spinWhile } from "./spin.js";
import { nodeWorker } from "./worker.js";
import type { ThreadReply, ThreadStart } from "./threads-worker.js";

export interface ThreadedModel {
  manifest: Manifest;
  /** how many workers run each inference */
  threads: number;
  /** the shared memory every worker computes in */
  memory: WebAssembly.Memory;
  /** zero-copy views of the inputs and outputs in the shared memory */
  inputs: Record<string, TypedArray>;
  outputs: Record<string, TypedArray>;
  /** writes the inputs (or runs on what `inputs` holds), runs every worker and resolves to the output views (the next run overwrites them) */
  run(inputs?: InputValues): Promise<Record<string, TypedArray>>;
  /** run(), resolving to copies of the outputs with their shapes and dtypes */
  runTensors(inputs?: InputValues): Promise<Record<string, OutputTensor>>;
  /** stops the workers; later runs reject */
  terminate(): Promise<void>;
}

export interface ThreadedOptions {
  /** workers per inference, 1..the blob's maxThreads (default: min(maxThreads, the machine's cores)) */
  threads?: number;
  source?: string;
  /** the weights file of a blob compiled with separateWeights */
  weights?: Uint8Array;
  /** whether the caller's thread computes as worker 0 (default: in Node, where it may block; never in a browser) */
  callerComputes?: boolean;
  /** the worker script (dist/threads-worker.js of the package, found next to this module by default) */
  workerUrl?: string | URL;
}

interface ThreadChannel {
  send(start: ThreadStart): void;
  onReply(handle: (reply: ThreadReply) => void): void;
  onFailure(handle: (error: Error) => void): void;
  terminate(): Promise<unknown>;
  /** whether the worker keeps a Node process alive: only while a run waits for it (an idle model never does) */
  hold(on: boolean): void;
}

function defaultWorkerUrl(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./threads-worker.ts" : "./threads-worker.js", import.meta.url);
}

async function startThread(url: string | URL): Promise<ThreadChannel> {
  if (typeof process !== "undefined" && process.versions?.node) {
    const worker = await nodeWorker(url);
    return {
      send: (start) => worker.postMessage(start),
      onReply: (handle) => worker.on("message", handle),
      onFailure: (handle) => {
        worker.on("error", handle);
        worker.on("exit", (code) => code !== 0 && handle(new Error(`a worker exited (code ${code})`)));
      },
      terminate: () => worker.terminate(),
      hold: (on) => (on ? worker.ref() : worker.unref()),
    };
  }
  const worker = new Worker(url, { type: "module" });
  return {
    send: (start) => worker.postMessage(start),
    onReply: (handle) => worker.addEventListener("message", (e) => handle(e.data as ThreadReply)),
    onFailure: (handle) => worker.addEventListener("error", (e) => handle(new Error(e.message || "a worker failed"))),
    terminate: async () => worker.terminate(),
    hold: () => {},
  };
}

const defaultThreads = (max: number): number => {
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 2;
  return Math.max(1, Math.min(max, cores));
};

/** how long the caller's thread polls the done word at the end of a run before it sleeps */
const DONE_SPIN_MS = 0.2;

export async function loadThreadedBlob(bytes: Uint8Array | ArrayBuffer, opts: ThreadedOptions = {}): Promise<ThreadedModel> {
  const source = opts.source ?? "<blob>";
  const { module, manifest } = await compileBlob(bytes, source);
  const spec = manifest.threads ?? fail(`${source}: not a threaded blob (target ${manifest.target}); compile for wasm-simd-threads, or load it with loadBlob / loadBlobPool`);
  const threads = opts.threads ?? defaultThreads(spec.maxThreads);
  if (!Number.isInteger(threads) || threads < 1 || threads > spec.maxThreads) fail(`${source}: threads must be an integer in [1, ${spec.maxThreads}] (the blob's maxThreads), got ${threads}`);
  if (typeof SharedArrayBuffer === "undefined") fail(`${source}: a threaded blob needs SharedArrayBuffer (in a browser: a cross-origin isolated page, COOP same-origin + COEP require-corp)`);
  const { pages } = manifest.memory;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const words = new Int32Array(memory.buffer, spec.sync, 8);
  const { weights } = manifest;
  if (!weights.embedded) {
    if (!opts.weights) fail(`${source}: the blob's weights are in a separate file (${weights.bytes} bytes); pass them as the weights option`);
    if (opts.weights.byteLength !== weights.bytes) fail(`${source}: weights file has ${opts.weights.byteLength} bytes, the blob expects ${weights.bytes}`);
    new Uint8Array(memory.buffer, weights.offset, weights.bytes).set(opts.weights);
  } else if (opts.weights) fail(`${source}: the blob embeds its weights; do not pass a weights file`);
  const inputs = slotViews(memory.buffer, manifest.inputs, "input", source);
  const outputs = slotViews(memory.buffer, manifest.outputs, "output", source);

  let failure: Error | null = null;
  let waiting: { resolve: () => void; reject: (e: Error) => void } | null = null;
  const channels: ThreadChannel[] = [];
  const stopAll = (e: Error) => {
    failure ??= e;
    waiting?.reject(failure);
    waiting = null;
  };
  const url = opts.workerUrl ?? defaultWorkerUrl();
  const isNode = typeof process !== "undefined" && Boolean(process.versions?.node);
  const callerComputes = opts.callerComputes ?? isNode;
  if (callerComputes && !isNode) fail(`${source}: callerComputes needs a thread that may Atomics.wait (Node); a browser's main thread may not`);
  const workers = callerComputes ? threads - 1 : threads;
  let ownEntry: ((tid: number, n: number, run: number) => number) | null = null;
  if (callerComputes) {
    try {
      ownEntry = (await WebAssembly.instantiate(module, { env: { memory } })).exports[spec.entry] as (tid: number, n: number, run: number) => number;
    } catch (e) {
      fail(`${source}: the threaded blob does not instantiate: ${(e as Error).message}`);
    }
  }
  const ready = await Promise.allSettled(Array.from({ length: workers }, async (_, k) => {
    const tid = callerComputes ? k + 1 : k;
    const channel = await startThread(url);
    channels.push(channel);
    await new Promise<void>((resolve, reject) => {
      channel.onFailure((e) => {
        reject(e);
        stopAll(new TeenygradError(`${source}: a worker running the blob stopped: ${e.message}`));
      });
      channel.onReply((reply) => {
        if ("ready" in reply) resolve();
        else if ("done" in reply) waiting?.resolve();
        else {
          const e = new TeenygradError(`${source}: ${reply.error}`);
          reject(e);
          stopAll(e);
        }
      });
      channel.send({ module, memory, tid, threads, workers, report: !callerComputes, sync: spec.sync, entry: spec.entry });
    });
    // after the listeners, which hold the worker again when attached
    channel.hold(false);
  }));
  const terminate = async () => {
    failure ??= new TeenygradError(`${source}: the threaded model was terminated`);
    Atomics.store(words, SYNC_WORDS.stop, 1);
    Atomics.add(words, SYNC_WORDS.start, 1);
    Atomics.notify(words, SYNC_WORDS.start);
    await Promise.all(channels.map((c) => c.terminate()));
  };
  const refused = ready.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (refused) {
    await terminate();
    throw refused.reason instanceof TeenygradError ? refused.reason : new TeenygradError(`${source}: ${(refused.reason as Error).message}`);
  }

  // runs one at a time: each waits for the one before it
  let queue: Promise<unknown> = Promise.resolve();
  const runOnce = async (values?: InputValues) => {
    if (failure) throw failure;
    if (values) writeInputs(manifest, inputs, values, source);
    Atomics.store(words, SYNC_WORDS.done, 0);
    let status: number;
    if (ownEntry) {
      // the start count before this run is the run's number
      const runIndex = Atomics.add(words, SYNC_WORDS.start, 1);
      Atomics.notify(words, SYNC_WORDS.start);
      try {
        status = ownEntry(0, threads, runIndex);
      } catch (e) {
        fail(`${source}: run_thread(0, ${threads}, ${runIndex}) trapped: ${(e as Error).message}`);
      }
      // worker 0 returned when the last step was done: the others are at most finishing their last claim, so spin before sleeping
      for (let d = Atomics.load(words, SYNC_WORDS.done); d !== workers; d = Atomics.load(words, SYNC_WORDS.done)) {
        if (!spinWhile(words, SYNC_WORDS.done, d, DONE_SPIN_MS)) Atomics.wait(words, SYNC_WORDS.done, d, 1000);
      }
    } else {
      const done = new Promise<void>((resolve, reject) => (waiting = { resolve, reject }));
      channels.forEach((c) => c.hold(true));
      Atomics.add(words, SYNC_WORDS.start, 1);
      Atomics.notify(words, SYNC_WORDS.start);
      try {
        await done;
      } finally {
        waiting = null;
        channels.forEach((c) => c.hold(false));
      }
      // the atomic loads order the workers' writes before the host's reads of the outputs
      if (Atomics.load(words, SYNC_WORDS.done) !== workers) fail(`internal: ${source}: a run ended with ${Atomics.load(words, SYNC_WORDS.done)} of ${workers} workers done`);
      status = Atomics.load(words, SYNC_WORDS.status);
    }
    if (status !== 0) fail(`${source}: ${runStatusMessage(status)}`);
    return outputs;
  };
  const run = (values?: InputValues) => {
    const next = queue.then(() => runOnce(values));
    queue = next.catch(() => {});
    return next;
  };
  return {
    manifest,
    threads,
    memory,
    inputs,
    outputs,
    run,
    async runTensors(values) {
      const views = await run(values);
      return Object.fromEntries(manifest.outputs.map((s) => [s.name, { name: s.name, dtype: s.dtype, shape: [...s.shape], data: views[s.name].slice() }]));
    },
    terminate,
  };
}
