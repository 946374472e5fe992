// One conformance worker: runs the backend tests the parent sends, one at a time.
import { parentPort } from "node:worker_threads";
import { runBackendTest } from "../compiler/import/onnx/backend-test.js";

// binaryen's passes change code size and speed, not the values compared; skipping them saves a third of each compile
parentPort!.on("message", async (job: { dir: string; name: string }) => {
  parentPort!.postMessage(await runBackendTest(job.dir, job.name, { optimizeLevel: 1 }));
});
parentPort!.postMessage({ ready: true });
