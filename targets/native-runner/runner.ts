/**
 * Runs unmodified reactor blobs in the WAMR and wasm3 interpreters through teenygrad-native-run (Node only):
 *   teenygrad-native-run --engine wamr|wasm3 [--repeat N] <blob.wasm>  < request  > response
 * speaks the wasmtime adapter's protocol (targets/protocol.ts); see src/main.rs.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fail } from "../../compiler/errors.js";
import type { TypedArray } from "../../compiler/ir/dtype.js";
import type { Manifest } from "../../compiler/codegen/manifest.js";
import type { InputValues } from "../../compiler/host/loader.js";
import type { WasmFeature } from "../../compiler/host/wasm-info.js";
import { decodeResponse, encodeRequest, ENGINES_HINT, findExecutable, PROTOCOL_EXITS, runProcess } from "../protocol.js";
import { teenygradCacheDir } from "../wasmtime/runner.js";

export type NativeEngine = "wamr" | "wasm3";

/**
 * What each interpreter, as the native runner builds it, can run. WAMR 2.4.3's fast interpreter is built
 * without SIMD (the wamrx crate's default features); wasm3 0.4.7 (the one the wasm3 crate vendors) knows
 * neither bulk memory nor multi-value.
 */
export const NATIVE_ENGINES: Record<NativeEngine, { description: string; features: WasmFeature[] }> = {
  wamr: {
    description: "WAMR 2.4.3 fast interpreter",
    features: ["bulk-memory", "multivalue", "mutable-globals", "nontrapping-fptoint", "reference-types", "sign-ext"],
  },
  wasm3: {
    description: "wasm3 0.4.7",
    features: ["mutable-globals", "nontrapping-fptoint", "sign-ext"],
  },
};

/** the crate's sources, in the order scripts/install-engines.sh hashes them to name the install directory */
const CRATE_SOURCES = ["Cargo.toml", "Cargo.lock", "src/main.rs"];
const CRATE_DIR = fileURLToPath(new URL(".", import.meta.url));
/** the crate's version (Cargo.toml); scripts/install-engines.sh links native-runner-<version> to the latest build */
export const NATIVE_RUNNER_VERSION = "0.1.0";

/**
 * $TEENYGRAD_NATIVE_RUNNER, else the build of these very sources in the cache (where scripts/install-engines.sh
 * puts it), else, in an installed package (which does not ship the crate's sources), the build of this version;
 * null when none exists.
 */
export function findNativeRunner(): string | null {
  return findExecutable("TEENYGRAD_NATIVE_RUNNER", [join(nativeRunnerDir(), "bin", "teenygrad-native-run")]);
}

/** where the native runner is installed: by the hash of the crate's sources in a checkout, else by version */
export function nativeRunnerDir(): string {
  return join(teenygradCacheDir(), "engines", `native-runner-${crateHash() ?? NATIVE_RUNNER_VERSION}`);
}

/** first 16 hex digits of the SHA-256 of the crate's sources, concatenated; null without the sources */
function crateHash(): string | null {
  const hash = createHash("sha256");
  try {
    for (const file of CRATE_SOURCES) hash.update(readFileSync(join(CRATE_DIR, file)));
  } catch {
    return null;
  }
  return hash.digest("hex").slice(0, 16);
}


/** fails, naming the engine and the features, when the blob uses something the interpreter cannot run */
export function checkNativeFeatures(engine: NativeEngine, features: readonly WasmFeature[], source: string): void {
  const { description, features: supported } = NATIVE_ENGINES[engine];
  const missing = features.filter((f) => !supported.includes(f));
  if (missing.length === 0) return;
  const hint = missing.includes("simd128") ? "; compile with --target wasm-scalar" : "";
  fail(`${source}: ${engine} (${description}) cannot run this blob: it uses ${missing.join(", ")}${hint}`);
}

export interface NativeRun {
  outputs: Record<string, TypedArray>;
  /** nanoseconds of each call to run(), timed inside the runner */
  runNanos: number[];
}

/**
 * Runs an unmodified reactor blob `repeat` times (inputs written again before each run) and returns copies of
 * the last run's outputs with every run's duration.
 */
export async function runInNativeRunner(
  engine: NativeEngine,
  blobPath: string,
  manifest: Manifest,
  inputs: InputValues,
  opts: { weights?: Uint8Array; repeat?: number } = {},
): Promise<NativeRun> {
  const what = `${engine} (${blobPath})`;
  const runner = findNativeRunner();
  if (!runner) fail(`${what}: teenygrad-native-run not found in ${nativeRunnerDir()}: ${ENGINES_HINT}, or set TEENYGRAD_NATIVE_RUNNER`);
  const request = encodeRequest(manifest, inputs, opts.weights, what);
  const args = ["--engine", engine, "--repeat", String(opts.repeat ?? 1), blobPath];
  let result;
  try {
    result = await runProcess(runner, args, request);
  } catch (e) {
    fail(`${what}: ${(e as Error).message}`);
  }
  if (result.code !== 0) {
    const known = result.code !== null ? PROTOCOL_EXITS[result.code] : undefined;
    // the runner's own message is the last line of stderr, e.g. "teenygrad-native-run: wasm3: [trap] unreachable executed"
    const reason = known ?? result.stderr.trim().split("\n").pop()?.replace(/^teenygrad-native-run: [^:]+: /, "");
    const status = result.code !== null ? `exit code ${result.code}` : `signal ${result.signal}`;
    fail(`${what}: teenygrad-native-run failed (${status}): ${reason || "no message"}`);
  }
  const timing = /^run-ns: ([\d ]+)$/m.exec(result.stderr);
  if (!timing) fail(`${what}: teenygrad-native-run reported no run times on stderr:\n${result.stderr.trim()}`);
  return { outputs: decodeResponse(result.stdout, manifest, what), runNanos: timing[1].split(" ").map(Number) };
}
