/**
 * Runs teenygrad blobs in the wasmtime CLI (Node only).
 * - reactor blobs, unmodified:  wasmtime run --preload model=<blob.wasm> <adapter.wasm>   (protocol in adapter.ts)
 * - "wasi" command blobs:        wasmtime run <blob.wasm>   (raw input bytes on stdin, raw output bytes on stdout)
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fail } from "../../compiler/errors.js";
import type { TypedArray } from "../../compiler/ir/dtype.js";
import type { Manifest } from "../../compiler/codegen/manifest.js";
import type { InputValues } from "../../compiler/host/loader.js";
import { decodeResponse, encodeRequest, ENGINES_HINT, findExecutable, PROTOCOL_EXITS, runProcess, type ProcessResult } from "../protocol.js";
import { ADAPTER_WAT } from "./adapter.js";

// moved to the shared protocol module; re-exported for the runners that import them from here

export const WASMTIME_VERSION = "48.0.8";

export function teenygradCacheDir(): string {
  return process.env.TEENYGRAD_CACHE || join(homedir(), ".cache", "teenygrad");
}

/** $TEENYGRAD_WASMTIME, else the pinned build in the cache, else `wasmtime` on PATH; null when none exists */
export function findWasmtime(): string | null {
  return findExecutable("TEENYGRAD_WASMTIME", [join(teenygradCacheDir(), "engines", `wasmtime-${WASMTIME_VERSION}`, "bin", "wasmtime"), "wasmtime"]);
}


function requireWasmtime(): string {
  const wasmtime = findWasmtime();
  if (!wasmtime) fail(`wasmtime not found: ${ENGINES_HINT}, put wasmtime on PATH, or set TEENYGRAD_WASMTIME`);
  return wasmtime;
}

/**
 * ADAPTER_WAT assembled with binaryen, cached in the teenygrad cache under a hash of its source so binaryen
 * (slow to load) is only needed the first time.
 */
let adapterPath: string | null = null;
async function adapterWasm(): Promise<string> {
  if (adapterPath && existsSync(adapterPath)) return adapterPath;
  return (adapterPath = await assembleAdapter(ADAPTER_WAT, "wasmtime-adapter"));
}

/** Assembles an adapter's text into the cache once per distinct text (the file name carries its hash). */
export async function assembleAdapter(wat: string, stem: string): Promise<string> {
  const hash = createHash("sha256").update(wat).digest("hex").slice(0, 16);
  const dir = join(teenygradCacheDir(), "adapters");
  const path = join(dir, `${stem}-${hash}.wasm`);
  if (existsSync(path)) return path;
  const { default: binaryen } = await import("binaryen");
  const module = binaryen.parseText(wat);
  try {
    module.setFeatures(binaryen.Features.MultiMemory | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
    if (!module.validate()) fail(`internal: the wasmtime adapter ${stem} (targets/wasmtime/) does not validate`);
    mkdirSync(dir, { recursive: true });
    // write then rename, so a concurrent run never sees half a file
    const partial = `${path}.${process.pid}.tmp`;
    writeFileSync(partial, module.emitBinary());
    renameSync(partial, path);
  } finally {
    module.dispose();
  }
  return path;
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
  const request = encodeRequest(manifest, inputs, opts.weights, what);
  const args = ["--preload", `model=${blobPath}`, await adapterWasm()];
  const { stdout } = await wasmtime(args, request, what, PROTOCOL_EXITS);
  return decodeResponse(stdout, manifest, what);
}

/** `wasmtime run blob.wasm < inputBytes`: returns stdout */
export async function runWasiCommand(blobPath: string, inputBytes: Uint8Array): Promise<Uint8Array> {
  const { stdout } = await wasmtime([blobPath], inputBytes, `wasmtime (${blobPath})`);
  return new Uint8Array(stdout.buffer, stdout.byteOffset, stdout.byteLength);
}
