/**
 * The stdin/stdout protocol that drives an unmodified reactor blob in another process (Node only): the wasmtime
 * adapter (targets/wasmtime/adapter.ts) and teenygrad-native-run (targets/native-runner/) both speak it.
 *
 *   request (u32 little-endian):
 *     count, then count x (offset, length, <length bytes>)   bytes to write into model memory (weights, inputs)
 *     count, then count x (offset, length)                   model memory ranges to send back (outputs)
 *   response: u32 status from run(); when it is 0, the requested ranges' bytes in order.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import { fail } from "../compiler/errors.js";
import { DTYPES, numel, type TypedArray } from "../compiler/ir/dtype.js";
import type { Manifest, TensorSlot } from "../compiler/codegen/manifest.js";
import { runStatusMessage, writeInputs, type InputValues } from "../compiler/host/loader.js";

/** exit codes both runners use for protocol failures */
export const PROTOCOL_EXITS: Record<number, string> = {
  70: "the runner's stdin ended before the whole request was read",
  71: "the runner could not read stdin",
  72: "the runner could not write stdout",
  73: "a requested range lies outside the model's memory",
};

/**
 * The request for one run: the weights first when the blob keeps them in a separate file, then every input;
 * asks for every output back. `what` names the run in error messages.
 */
export function encodeRequest(manifest: Manifest, inputs: InputValues, weightsFile: Uint8Array | undefined, what: string): Uint8Array {
  const values = checkedInputs(manifest, inputs, what);
  const writes: { offset: number; bytes: Uint8Array }[] = [];
  const { weights } = manifest;
  if (weights.sharedHeap) fail(`${what}: a wamr-flash blob reads its weights from WAMR's shared heap at ${weights.offset}, outside linear memory: it runs only in a WAMR embedding that attaches them (targets/wamr/main.c); compile for wasm-scalar to run it here`);
  if (!weights.embedded) {
    if (!weightsFile) fail(`${what}: the blob's weights are in a separate file (${weights.bytes} bytes); pass them as the weights option`);
    if (weightsFile.byteLength !== weights.bytes) fail(`${what}: weights file has ${weightsFile.byteLength} bytes, the blob expects ${weights.bytes}`);
    writes.push({ offset: weights.offset, bytes: weightsFile });
  } else if (weightsFile) {
    fail(`${what}: the blob embeds its weights; do not pass a weights file`);
  }
  manifest.inputs.forEach((slot, i) => writes.push({ offset: slot.offset, bytes: bytesOf(values[i]) }));

  const request = new ByteWriter(8 + writes.reduce((n, w) => n + 8 + w.bytes.length, 0) + 8 * manifest.outputs.length);
  request.u32(writes.length);
  for (const w of writes) {
    request.u32(w.offset);
    request.u32(w.bytes.length);
    request.bytes(w.bytes);
  }
  request.u32(manifest.outputs.length);
  for (const slot of manifest.outputs) {
    request.u32(slot.offset);
    request.u32(slot.bytes);
  }
  return request.out;
}

/** the outputs from a response to encodeRequest's request; fails on a non-zero run() status */
export function decodeResponse(response: Uint8Array, manifest: Manifest, what: string): Record<string, TypedArray> {
  if (response.length < 4) fail(`${what}: the runner returned ${response.length} bytes, not even a status`);
  const status = new DataView(response.buffer, response.byteOffset, 4).getUint32(0, true);
  if (status !== 0) fail(`${what}: ${runStatusMessage(status)}`);
  return splitOutputs(manifest.outputs, response.subarray(4), what);
}

/** the manifest inputs, in manifest order, validated and converted to their dtypes */
export function checkedInputs(manifest: Manifest, inputs: InputValues, what: string): TypedArray[] {
  const arrays = manifest.inputs.map((slot) => new DTYPES[slot.dtype].array(numel(slot.shape)));
  writeInputs(manifest, Object.fromEntries(manifest.inputs.map((slot, i) => [slot.name, arrays[i]])), inputs, what);
  return arrays;
}

export function bytesOf(array: TypedArray): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** cuts a concatenation of raw output bytes into fresh arrays, in manifest order */
export function splitOutputs(slots: TensorSlot[], raw: Uint8Array, what: string): Record<string, TypedArray> {
  const expected = slots.reduce((n, slot) => n + slot.bytes, 0);
  if (raw.length !== expected) fail(`${what}: expected ${expected} bytes of outputs, got ${raw.length}`);
  const outputs: Record<string, TypedArray> = {};
  let at = 0;
  for (const slot of slots) {
    const copy = Uint8Array.prototype.slice.call(raw, at, at + slot.bytes); // a copy, even for a Node Buffer
    outputs[slot.name] = new DTYPES[slot.dtype].array(copy.buffer, 0, slot.bytes / DTYPES[slot.dtype].bytes);
    at += slot.bytes;
  }
  return outputs;
}

export interface ProcessResult {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: string;
}

/** runs a command with `stdin` as its whole input and collects its output; rejects only when it cannot start */
export function runProcess(command: string, args: string[], stdin: Uint8Array): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    // the child may exit before reading all of stdin (e.g. a rejected request): its exit code tells why
    child.stdin.on("error", () => {});
    child.on("error", (e) => reject(new Error(`cannot start ${command}: ${e.message}`)));
    child.on("close", (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString("utf8") }));
    child.stdin.end(stdin);
  });
}

class ByteWriter {
  readonly out: Uint8Array;
  private readonly view: DataView;
  private at = 0;
  constructor(size: number) {
    this.out = new Uint8Array(size);
    this.view = new DataView(this.out.buffer);
  }
  u32(n: number): void {
    this.view.setUint32(this.at, n, true);
    this.at += 4;
  }
  bytes(b: Uint8Array): void {
    this.out.set(b, this.at);
    this.at += b.length;
  }
}

/** how to install wasmtime and teenygrad-native-run, in a checkout or an installed package (which lacks scripts/) */
export const ENGINES_HINT = "build it with `npm run engines` in a clone of teenygrad (it installs into $TEENYGRAD_CACHE or ~/.cache/teenygrad, for every project on the machine)";

/**
 * An engine's executable: `$envVar` when set (it must then be executable: a typo should not fall back
 * silently), else the first of `candidates` that is executable — absolute paths as they are, bare
 * names looked up on PATH; null when none is.
 */
export function findExecutable(envVar: string, candidates: string[]): string | null {
  const explicit = process.env[envVar];
  if (explicit) {
    if (!isExecutable(explicit)) fail(`${envVar} is set to ${explicit}, which is not an executable file`);
    return explicit;
  }
  for (const c of candidates) {
    if (isAbsolute(c)) {
      if (isExecutable(c)) return c;
      continue;
    }
    for (const dir of (process.env.PATH ?? "").split(delimiter)) {
      if (dir && isExecutable(join(dir, c))) return join(dir, c);
    }
  }
  return null;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
