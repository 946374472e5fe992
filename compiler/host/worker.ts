/**
 * Runs a blob off the caller's thread: in a worker_threads worker in Node, a module Web Worker in a browser.
 * run() returns a promise and never blocks the caller (a browser page stays responsive while a large model
 * runs); the worker holds the instance and its memory, so inputs and outputs are copied across. A streaming
 * blob's state stays in the worker's memory between runs, as in loadBlob; readState(), writeState() and
 * reset() stand in for LoadedModel's state views and reset().
 */
import { TeenygradError } from "../errors.js";
import type { Manifest } from "../codegen/manifest.js";
import type { InputValues, OutputTensor } from "./loader.js";

type Request =
  | { type: "load"; bytes: Uint8Array | ArrayBuffer; weights?: Uint8Array; source: string }
  | { type: "run"; inputs: InputValues }
  | { type: "readState" }
  | { type: "writeState"; values: InputValues }
  | { type: "reset" };
export type WorkerRequest = Request & { id: number };
export type WorkerReply =
  | { id: number; manifest: Manifest }
  | { id: number; outputs: Record<string, OutputTensor> }
  | { id: number; state: Record<string, OutputTensor> }
  | { id: number; done: true }
  | { id: number; error: string; teenygrad: boolean };

export interface WorkerModel {
  manifest: Manifest;
  /** writes the inputs, calls run() in the worker and resolves to copies of the outputs with their shapes and dtypes */
  run(inputs: InputValues): Promise<Record<string, OutputTensor>>;
  /** copies of a streaming blob's state (manifest `state`) as the last run left it; {} for a blob without state */
  readState(): Promise<Record<string, OutputTensor>>;
  /** sets the named states (a starting state), checked as run() checks inputs; the other states keep their values */
  writeState(values: InputValues): Promise<void>;
  /** starts the stream again: zeroes the state, as it was when the blob was loaded */
  reset(): Promise<void>;
  /** stops the worker; pending runs reject */
  terminate(): Promise<void>;
}

export interface WorkerOptions {
  weights?: Uint8Array;
  source?: string;
  /**
   * the worker script (dist/blob-worker.js of the package, by default found next to this module); a browser
   * bundler that does not copy it needs its URL here
   */
  workerUrl?: string | URL;
}

/** the worker's half: a Node worker thread or a Web Worker, reduced to what this module uses */
interface Channel {
  send(request: WorkerRequest): void;
  onReply(handle: (reply: WorkerReply) => void): void;
  onFailure(handle: (error: Error) => void): void;
  terminate(): Promise<unknown>;
}

/** the package ships dist/blob-worker.js next to this module's bundle; a checkout runs blob-worker.ts */
function defaultWorkerUrl(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./blob-worker.ts" : "./blob-worker.js", import.meta.url);
}

/** A Node worker thread running the module at `url` (a checkout's .ts worker too). */
export async function nodeWorker(url: string | URL): Promise<import("node:worker_threads").Worker> {
  const { Worker } = await import("node:worker_threads");
  // a worker thread does not inherit tsx's loader hooks: a .ts worker registers them before loading itself
  return String(url).endsWith(".ts")
    ? new Worker(`import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(String(url))}); })`, { eval: true })
    : new Worker(url);
}

async function startWorker(url: string | URL): Promise<Channel> {
  if (typeof process !== "undefined" && process.versions?.node) {
    const worker = await nodeWorker(url);
    return {
      send: (request) => worker.postMessage(request),
      onReply: (handle) => worker.on("message", handle),
      onFailure: (handle) => {
        worker.on("error", handle);
        worker.on("exit", (code) => handle(new Error(`the worker exited (code ${code})`)));
      },
      terminate: () => worker.terminate(),
    };
  }
  const worker = new Worker(url, { type: "module" });
  return {
    send: (request) => worker.postMessage(request),
    onReply: (handle) => worker.addEventListener("message", (e) => handle(e.data as WorkerReply)),
    onFailure: (handle) => worker.addEventListener("error", (e) => handle(new Error(e.message || "the worker failed"))),
    terminate: async () => worker.terminate(),
  };
}

/** a Tensor crosses as its shape and data (structured cloning keeps neither its class nor its getters) */
const plainValues = (values: InputValues): InputValues => Object.fromEntries(Object.entries(values).map(([k, v]) =>
  [k, v && typeof v === "object" && "shape" in v && "data" in v && !ArrayBuffer.isView(v) ? { shape: [...v.shape], data: v.data } : v]));

/** Loads a blob into a new worker (the same checks as loadBlob, made there) and returns its async handle. */
export async function loadBlobInWorker(bytes: Uint8Array | ArrayBuffer, opts: WorkerOptions = {}): Promise<WorkerModel> {
  const source = opts.source ?? "<blob>";
  const channel = await startWorker(opts.workerUrl ?? defaultWorkerUrl());
  const pending = new Map<number, { resolve: (reply: WorkerReply) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let failure: Error | null = null;
  channel.onReply((reply) => {
    const waiting = pending.get(reply.id);
    pending.delete(reply.id);
    if (!waiting) return;
    if ("error" in reply) waiting.reject(reply.teenygrad ? new TeenygradError(reply.error) : new Error(reply.error));
    else waiting.resolve(reply);
  });
  channel.onFailure((e) => {
    failure ??= new TeenygradError(`${source}: the worker running the blob stopped: ${e.message}`);
    for (const waiting of pending.values()) waiting.reject(failure);
    pending.clear();
  });
  const ask = (request: Request): Promise<WorkerReply> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      channel.send({ ...request, id });
    });
  };

  let loaded: WorkerReply;
  try {
    loaded = await ask({ type: "load", bytes, weights: opts.weights, source });
  } catch (e) {
    await channel.terminate();
    throw e;
  }
  return {
    manifest: (loaded as { manifest: Manifest }).manifest,
    async run(inputs) {
      return ((await ask({ type: "run", inputs: plainValues(inputs) })) as { outputs: Record<string, OutputTensor> }).outputs;
    },
    async readState() {
      return ((await ask({ type: "readState" })) as { state: Record<string, OutputTensor> }).state;
    },
    async writeState(values) {
      await ask({ type: "writeState", values: plainValues(values) });
    },
    async reset() {
      await ask({ type: "reset" });
    },
    async terminate() {
      failure ??= new TeenygradError(`${source}: the worker was terminated`);
      await channel.terminate();
    },
  };
}
