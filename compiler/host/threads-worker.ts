/**
 * One worker of loadThreadedBlob (compiler/host/threads.ts): a Node worker_threads worker or a browser module
 * Web Worker. It instantiates the threaded blob on the shared memory, then sleeps on the start word: each time
 * the host bumps it, it runs its part (run_thread(tid, n, run number)) and counts itself done; the last one done tells the host.
 */
import { SYNC_WORDS } from "../codegen/manifest.js";
import { spinWhile } from "./spin.js";

/** `workers`: how many workers count themselves done per run (the caller's thread may be worker 0 in Node); `report`: the last one done posts it */
export interface ThreadStart { module: WebAssembly.Module; memory: WebAssembly.Memory; tid: number; threads: number; workers: number; report: boolean; sync: number; entry: string }
export type ThreadReply = { ready: true } | { done: true } | { error: string };

interface Port {
  post(reply: ThreadReply): void;
  once(handle: (start: ThreadStart) => void): void;
  close(): void;
}

async function connect(): Promise<Port> {
  if (typeof process !== "undefined" && process.versions?.node) {
    const { parentPort } = await import("node:worker_threads");
    if (!parentPort) throw new Error("threads-worker: not started as a worker thread");
    return { post: (reply) => parentPort.postMessage(reply), once: (handle) => parentPort.once("message", handle), close: () => parentPort.close() };
  }
  const scope = globalThis as unknown as { postMessage(m: unknown): void; onmessage: ((e: { data: ThreadStart }) => void) | null; close(): void };
  return { post: (reply) => scope.postMessage(reply), once: (handle) => (scope.onmessage = (e) => handle(e.data)), close: () => scope.close() };
}

const port = await connect();
/** how long a worker polls the start word after a run before it sleeps: back-to-back runs then skip the futex wake-up */
const START_SPIN_MS = 0.2;

port.once(async ({ module, memory, tid, threads, workers, report, sync, entry }) => {
  let run: (tid: number, n: number, run: number) => number;
  try {
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    run = instance.exports[entry] as typeof run;
  } catch (e) {
    port.post({ error: `the worker could not instantiate the blob: ${(e as Error).message}` });
    return;
  }
  const words = new Int32Array(memory.buffer, sync, 8);
  let seen = Atomics.load(words, SYNC_WORDS.start);
  port.post({ ready: true });
  // a worker blocks here between runs (Atomics.wait is allowed in workers, also in browsers)
  for (;;) {
    if (!spinWhile(words, SYNC_WORDS.start, seen, START_SPIN_MS)) Atomics.wait(words, SYNC_WORDS.start, seen);
    const now = Atomics.load(words, SYNC_WORDS.start);
    if (now === seen) continue;
    seen = now;
    if (Atomics.load(words, SYNC_WORDS.stop)) break;
    let status: number;
    try {
      status = run(tid, threads, now - 1);
    } catch (e) {
      port.post({ error: `run_thread(${tid}, ${threads}, ${now - 1}) trapped: ${(e as Error).message}` });
      break;
    }
    if (tid === 0) Atomics.store(words, SYNC_WORDS.status, status);
    if (Atomics.add(words, SYNC_WORDS.done, 1) + 1 === workers) {
      Atomics.notify(words, SYNC_WORDS.done);
      if (report) port.post({ done: true });
    }
  }
  port.close();
});
