// One conformance worker: runs the backend tests the parent sends, one at a time.
import { parentPort } from "node:worker_threads";
import { runBackendTest } from "../compiler/import/onnx/backend-test.js";

// -O1, the level whose kernel library `npm run kernel-library` prebuilds beside the default: each test links its entry without asc
parentPort!.on("message", async (job: { dir: string; name: string }) => {
  parentPort!.postMessage(await runBackendTest(job.dir, job.name, { optimizeLevel: 1 }));
});
parentPort!.postMessage({ ready: true });
