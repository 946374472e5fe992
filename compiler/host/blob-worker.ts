/**
 * The worker side of loadBlobInWorker (compiler/host/worker.ts): a Node worker_threads worker or a browser
 * module Web Worker that loads one blob with loadBlob and answers run requests with copies of the outputs, and
 * state requests with copies of the state it keeps between runs.
 */
import { fail, TeenygradError } from "../errors.js";
import { loadBlob, writeSlots, type LoadedModel, type OutputTensor } from "./loader.js";
import type { WorkerReply, WorkerRequest } from "./worker.js";

interface Port {
  post(reply: WorkerReply, transfer: ArrayBuffer[]): void;
  listen(handle: (request: WorkerRequest) => void): void;
}

async function connect(): Promise<Port> {
  if (typeof process !== "undefined" && process.versions?.node) {
    const { parentPort } = await import("node:worker_threads");
    if (!parentPort) throw new Error("blob-worker: not started as a worker thread");
    return { post: (reply, transfer) => parentPort.postMessage(reply, transfer), listen: (handle) => parentPort.on("message", handle) };
  }
  const scope = globalThis as unknown as { postMessage(m: unknown, t: ArrayBuffer[]): void; onmessage: ((e: { data: WorkerRequest }) => void) | null };
  return { post: (reply, transfer) => scope.postMessage(reply, transfer), listen: (handle) => (scope.onmessage = (e) => handle(e.data)) };
}

const port = await connect();
let model: LoadedModel | null = null;
let source = "<blob>";
port.listen(async (request) => {
  try {
    if (request.type === "load") {
      source = request.source;
      model = await loadBlob(request.bytes, { weights: request.weights, source });
      port.post({ id: request.id, manifest: model.manifest }, []);
      return;
    }
    if (!model) throw new Error(`blob-worker: ${request.type} before load`);
    const { manifest, state } = model;
    const slots = manifest.state ?? [];
    if (request.type === "run") {
      const outputs = model.runTensors(request.inputs);
      port.post({ id: request.id, outputs }, Object.values(outputs).map((o) => o.data.buffer as ArrayBuffer));
    } else if (request.type === "readState") {
      const copies: Record<string, OutputTensor> = Object.fromEntries(slots.map((s) => [s.name, { name: s.name, dtype: s.dtype, shape: [...s.shape], data: state[s.name].slice() }]));
      port.post({ id: request.id, state: copies }, Object.values(copies).map((o) => o.data.buffer as ArrayBuffer));
    } else {
      if (request.type === "writeState") {
        const unknown = Object.keys(request.values).find((name) => !Object.hasOwn(state, name));
        if (unknown !== undefined) fail(`${source}: unknown state "${unknown}" (the model's states: ${slots.map((s) => s.name).join(", ") || "none"})`);
        writeSlots(slots.filter((s) => Object.hasOwn(request.values, s.name)), state, request.values, source, "state");
      } else model.reset();
      port.post({ id: request.id, done: true }, []);
    }
  } catch (e) {
    port.post({ id: request.id, error: (e as Error).message, teenygrad: e instanceof TeenygradError }, []);
  }
});
