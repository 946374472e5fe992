// One `npm run fuzz` worker: runs the cases the parent sends, posting each result as it finishes.
import { parentPort } from "node:worker_threads";
import { runCase, type FuzzCorpus } from "./fuzz-case.js";

parentPort!.on("message", (job: { corpus: FuzzCorpus; seed: number; from: number; to: number }) => {
  for (let i = job.from; i < job.to; i++) parentPort!.postMessage(runCase(job.corpus, job.seed, i));
});
parentPort!.postMessage({ ready: true });
