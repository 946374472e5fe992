/**
 * Loads a wasm-simd-threads blob into N workers sharing one memory (Node worker_threads, browser Web Workers;
 * a browser page must be cross-origin isolated for SharedArrayBuffer). The caller's thread never computes and
 * never blocks (a browser's main thread may not Atomics.wait): run() writes the inputs into the shared memory,
 * wakes the workers through an atomic start word and resolves when the last of them reports done.
 */
import { fail, TeenygradError } from "../errors.js";
import type { TypedArray } from "../ir/dtype.js";
import type { Manifest } from "../codegen/manifest.js";
import { SYNC_WORDS } from "../codegen/threads.js";
import { compileBlob, runStatusMessage, slotViews, writeInputs, type InputValues, type OutputTensor } from "./loader.js";
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
  /** the worker script (dist/threads-worker.js of the package, found next to this module by default) */
  workerUrl?: string | URL;
}

interface ThreadChannel {
  send(start: ThreadStart): void;
  onReply(handle: (reply: ThreadReply) => void): void;
  onFailure(handle: (error: Error) => void): void;
  terminate(): Promise<unknown>;
}

function defaultWorkerUrl(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./threads-worker.ts" : "./threads-worker.js", import.meta.url);
}

async function startThread(url: string | URL): Promise<ThreadChannel> {
  if (typeof process !== "undefined" && process.versions?.node) {
    const { Worker } = await import("node:worker_threads");
    // a worker thread does not inherit tsx's loader hooks: a .ts worker registers them before loading itself
    const worker = String(url).endsWith(".ts")
      ? new Worker(`import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(String(url))}); })`, { eval: true })
      : new Worker(url);
    return {
      send: (start) => worker.postMessage(start),
      onReply: (handle) => worker.on("message", handle),
      onFailure: (handle) => {
        worker.on("error", handle);
        worker.on("exit", (code) => code !== 0 && handle(new Error(`a worker exited (code ${code})`)));
      },
      terminate: () => worker.terminate(),
    };
  }
  const worker = new Worker(url, { type: "module" });
  return {
    send: (start) => worker.postMessage(start),
    onReply: (handle) => worker.addEventListener("message", (e) => handle(e.data as ThreadReply)),
    onFailure: (handle) => worker.addEventListener("error", (e) => handle(new Error(e.message || "a worker failed"))),
    terminate: async () => worker.terminate(),
  };
}

const defaultThreads = (max: number): number => {
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 2;
  return Math.max(1, Math.min(max, cores));
};

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
  const ready = await Promise.allSettled(Array.from({ length: threads }, async (_, tid) => {
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
      channel.send({ module, memory, tid, threads, sync: spec.sync, entry: spec.entry });
    });
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
    const done = new Promise<void>((resolve, reject) => (waiting = { resolve, reject }));
    Atomics.store(words, SYNC_WORDS.done, 0);
    Atomics.add(words, SYNC_WORDS.start, 1);
    Atomics.notify(words, SYNC_WORDS.start);
    await done;
    waiting = null;
    // the atomic loads order the workers' writes before the host's reads of the outputs
    if (Atomics.load(words, SYNC_WORDS.done) !== threads) fail(`internal: ${source}: a run ended with ${Atomics.load(words, SYNC_WORDS.done)} of ${threads} workers done`);
    const status = Atomics.load(words, SYNC_WORDS.status);
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
