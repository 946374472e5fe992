/**
 * Runs teenygrad blobs in the wasmtime CLI (Node only).
 * - reactor blobs, unmodified:  wasmtime run --preload model=<blob.wasm> <adapter.wasm>   (protocol in adapter.ts)
 * - "wasi" command blobs:        wasmtime run <blob.wasm>   (raw input bytes on stdin, raw output bytes on stdout)
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { fail } from "../../compiler/errors.js";
import { DTYPES, numel, type TypedArray } from "../../compiler/ir/dtype.js";
import type { Manifest, TensorSlot } from "../../compiler/codegen/manifest.js";
import { runStatusMessage, writeInputs, type InputValues } from "../../compiler/host/loader.js";
import { ADAPTER_WAT } from "./adapter.js";

export const WASMTIME_VERSION = "48.0.8";

/** exit codes of the adapter (adapter.ts) */
const ADAPTER_EXITS: Record<number, string> = {
  70: "the adapter's stdin ended before the whole request was read",
  71: "the adapter could not read stdin",
  72: "the adapter could not write stdout",
  73: "a requested range lies outside the model's memory",
};

export function teenygradCacheDir(): string {
  return process.env.TEENYGRAD_CACHE || join(homedir(), ".cache", "teenygrad");
}

/** $TEENYGRAD_WASMTIME, else the pinned build in the cache, else `wasmtime` on PATH; null when none exists */
export function findWasmtime(): string | null {
  const explicit = process.env.TEENYGRAD_WASMTIME;
  if (explicit) {
    if (!isExecutable(explicit)) fail(`TEENYGRAD_WASMTIME is set to ${explicit}, which is not an executable file`);
    return explicit;
  }
  const pinned = join(teenygradCacheDir(), "engines", `wasmtime-${WASMTIME_VERSION}`, "bin", "wasmtime");
  if (isExecutable(pinned)) return pinned;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && isExecutable(join(dir, "wasmtime"))) return join(dir, "wasmtime");
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

function requireWasmtime(): string {
  const wasmtime = findWasmtime();
  if (!wasmtime) fail("wasmtime not found: run scripts/install-engines.sh, put wasmtime on PATH, or set TEENYGRAD_WASMTIME");
  return wasmtime;
}

/**
 * ADAPTER_WAT assembled with binaryen, cached in the teenygrad cache under a hash of its source so binaryen
 * (slow to load) is only needed the first time.
 */
let adapterPath: string | null = null;
async function adapterWasm(): Promise<string> {
  if (adapterPath && existsSync(adapterPath)) return adapterPath;
  const wat = ADAPTER_WAT;
  const hash = createHash("sha256").update(wat).digest("hex").slice(0, 16);
  const dir = join(teenygradCacheDir(), "adapters");
  const path = join(dir, `wasmtime-adapter-${hash}.wasm`);
  if (!existsSync(path)) {
    const { default: binaryen } = await import("binaryen");
    const module = binaryen.parseText(wat);
    try {
      module.setFeatures(binaryen.Features.MultiMemory | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
      if (!module.validate()) fail("internal: the wasmtime adapter (targets/wasmtime/adapter.ts) does not validate");
      mkdirSync(dir, { recursive: true });
      // write then rename, so a concurrent run never sees half a file
      const partial = `${path}.${process.pid}.tmp`;
      writeFileSync(partial, module.emitBinary());
      renameSync(partial, path);
    } finally {
      module.dispose();
    }
  }
  adapterPath = path;
  return path;
}

interface ProcessResult {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: string;
}

function runProcess(command: string, args: string[], stdin: Uint8Array): Promise<ProcessResult> {
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

async function wasmtime(
  args: string[],
  stdin: Uint8Array,
  what: string,
  knownExits: Record<number, string> = {},
): Promise<ProcessResult> {
  const command = requireWasmtime();
  let result: ProcessResult;
  try {
    result = await runProcess(command, ["run", ...args], stdin);
  } catch (e) {
    fail(`${what}: ${(e as Error).message}`);
  }
  if (result.code === 0) return result;
  const known = result.code !== null ? knownExits[result.code] : undefined;
  if (known) fail(`${what}: ${known}`);
  // wasmtime's report ends with the cause, e.g. "wasm trap: wasm `unreachable` instruction executed"
  const trapLine = result.stderr.split("\n").find((l) => l.includes("wasm trap:"));
  const trap = trapLine?.slice(trapLine.indexOf("wasm trap:")).trim();
  const status = result.code !== null ? `exit code ${result.code}` : `signal ${result.signal}`;
  fail(`${what}: wasmtime failed (${status})${trap ? `: ${trap}` : `:\n${result.stderr.trim()}`}`);
}

/**
 * Runs an unmodified reactor blob through the WASI adapter: writes the inputs (and a separate weights file, if
 * given) into its memory, calls run(), returns copies of the outputs.
 */
export async function runInWasmtime(
  blobPath: string,
  manifest: Manifest,
  inputs: InputValues,
  opts: { weights?: Uint8Array } = {},
): Promise<Record<string, TypedArray>> {
  const what = `wasmtime (${blobPath})`;
  const values = checkedInputs(manifest, inputs, what);
  const writes: { offset: number; bytes: Uint8Array }[] = [];
  const { weights } = manifest;
  if (!weights.embedded) {
    if (!opts.weights) fail(`${what}: the blob's weights are in a separate file (${weights.bytes} bytes); pass them as the weights option`);
    if (opts.weights.byteLength !== weights.bytes) fail(`${what}: weights file has ${opts.weights.byteLength} bytes, the blob expects ${weights.bytes}`);
    writes.push({ offset: weights.offset, bytes: opts.weights });
  } else if (opts.weights) {
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

  const args = ["--preload", `model=${blobPath}`, await adapterWasm()];
  const { stdout } = await wasmtime(args, request.out, what, ADAPTER_EXITS);
  if (stdout.length < 4) fail(`${what}: the adapter returned ${stdout.length} bytes, not even a status`);
  const status = stdout.readUInt32LE(0);
  if (status !== 0) fail(`${what}: ${runStatusMessage(status)}`);
  return splitOutputs(manifest.outputs, new Uint8Array(stdout.buffer, stdout.byteOffset + 4, stdout.length - 4), what);
}

/** `wasmtime run blob.wasm < inputBytes`: returns stdout */
export async function runWasiCommand(blobPath: string, inputBytes: Uint8Array): Promise<Uint8Array> {
  const { stdout } = await wasmtime([blobPath], inputBytes, `wasmtime (${blobPath})`);
  return new Uint8Array(stdout.buffer, stdout.byteOffset, stdout.byteLength);
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
