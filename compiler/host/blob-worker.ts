/**
 * The worker side of loadBlobInWorker (compiler/host/worker.ts): a Node worker_threads worker or a browser
 * module Web Worker that loads one blob with loadBlob and answers run requests with copies of the outputs.
 */
import { TeenygradError } from "../errors.js";
import { loadBlob, type LoadedModel } from "./loader.js";
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
port.listen(async (request) => {
  try {
    if (request.type === "load") {
      model = await loadBlob(request.bytes, { weights: request.weights, source: request.source });
      port.post({ id: request.id, manifest: model.manifest }, []);
    } else {
      if (!model) throw new Error("blob-worker: run before load");
      const outputs = model.runTensors(request.inputs);
      port.post({ id: request.id, outputs }, Object.values(outputs).map((o) => o.data.buffer as ArrayBuffer));
    }
  } catch (e) {
    port.post({ id: request.id, error: (e as Error).message, teenygrad: e instanceof TeenygradError }, []);
  }
});
