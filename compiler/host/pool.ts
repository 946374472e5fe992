/**
 * Throughput: independent inferences of one blob in N workers (loadBlobInWorker each), every run given to
 * the next idle worker. Each worker holds its own instance and memory, so runs never share state; a
 * streaming model's state would be split across workers, so stateful blobs are refused.
 */
import { fail } from "../errors.js";
import type { Manifest } from "../codegen/manifest.js";
import { loadBlobInWorker, type WorkerModel, type WorkerOptions } from "./worker.js";
import type { InputValues, OutputTensor } from "./loader.js";

export interface BlobPool {
  manifest: Manifest;
  /** how many workers run inferences side by side */
  size: number;
  /** runs one inference on the next idle worker and resolves to copies of the outputs */
  run(inputs: InputValues): Promise<Record<string, OutputTensor>>;
  /** stops every worker; pending and later runs reject */
  terminate(): Promise<void>;
}

export interface BlobPoolOptions extends WorkerOptions {
  /** workers (default 2) */
  workers?: number;
}

export async function loadBlobPool(bytes: Uint8Array | ArrayBuffer, opts: BlobPoolOptions = {}): Promise<BlobPool> {
  const size = opts.workers ?? 2;
  const source = opts.source ?? "<blob>";
  if (!Number.isInteger(size) || size < 1) fail(`${source}: a pool needs a positive integer number of workers, got ${size}`);
  const settled = await Promise.allSettled(Array.from({ length: size }, () => loadBlobInWorker(bytes, opts)));
  const workers = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const refused = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (refused) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw refused.reason;
  }
  const manifest = workers[0].manifest;
  if (manifest.state?.length) {
    await Promise.all(workers.map((w) => w.terminate()));
    fail(`${source}: a streaming blob keeps its state between runs in one instance; run it with loadBlob or loadBlobInWorker, not a pool`);
  }
  const idle: WorkerModel[] = [...workers];
  const queue: ((w: WorkerModel) => void)[] = [];
  const release = (w: WorkerModel) => {
    const next = queue.shift();
    if (next) next(w);
    else idle.push(w);
  };
  return {
    manifest,
    size,
    async run(inputs) {
      const worker = idle.pop() ?? (await new Promise<WorkerModel>((resolve) => queue.push(resolve)));
      try {
        return await worker.run(inputs);
      } finally {
        release(worker);
      }
    },
    async terminate() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
