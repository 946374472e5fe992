/**
 * The runner's page script, bundled with the loader and run inside Chromium: it fetches the job from the runner's
 * server, loads the blob with the browser-safe loader, runs it once and posts the outputs' raw bytes back (in
 * manifest order), or the error message when anything fails.
 */
import { loadBlob } from "../../compiler/host/loader.js";
import { DTYPES, type TypedArray } from "../../compiler/ir/dtype.js";

/** what runner.ts serves at /job */
export interface Job {
  source: string;
  /** whether /weights holds a separate weights file */
  weights: boolean;
}

async function fetchBuffer(path: string): Promise<ArrayBuffer> {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

async function runJob(): Promise<Uint8Array<ArrayBuffer>> {
  const job = (await (await fetch("/job")).json()) as Job;
  const blob = await fetchBuffer("/blob");
  const weights = job.weights ? new Uint8Array(await fetchBuffer("/weights")) : undefined;
  const model = await loadBlob(blob, { weights, source: job.source });

  // /inputs is every input's raw bytes, concatenated in manifest order; each is copied out so it starts aligned
  const raw = await fetchBuffer("/inputs");
  const values: Record<string, TypedArray> = {};
  let at = 0;
  for (const slot of model.manifest.inputs) {
    const { array, bytes } = DTYPES[slot.dtype];
    values[slot.name] = new array(raw.slice(at, at + slot.bytes), 0, slot.bytes / bytes);
    at += slot.bytes;
  }

  const outputs = model.run(values);
  const result = new Uint8Array(model.manifest.outputs.reduce((n, slot) => n + slot.bytes, 0));
  at = 0;
  for (const slot of model.manifest.outputs) {
    const view = outputs[slot.name];
    result.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), at);
    at += slot.bytes;
  }
  return result;
}

runJob().then(
  (result) => fetch("/result", { method: "POST", body: result }),
  (e: unknown) => fetch("/error", { method: "POST", body: e instanceof Error ? e.message : String(e) }),
);
