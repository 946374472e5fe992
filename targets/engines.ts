/**
 * One entry point to run a blob on any engine we test against (Node only): "node" is V8 through the
 * browser-compatible loader, "wasmtime" is the wasmtime CLI (reactor blobs through the adapter, "wasi" blobs
 * as commands), "wamr" and "wasm3" are those interpreters in teenygrad-native-run (reactor blobs whose
 * features the interpreter has: the wasm-scalar target), "chromium" is headless Chromium loading the blob in a
 * page through the same loader as "node"; "qemu" boots a firmware image from `teenygrad firmware` in QEMU and
 * "qemu-cortex-m4" builds the blob into one first (targets/mcu: WAMR on an emulated Cortex-M4). A wasm-simd-threads
 * blob runs on "node" only (loadThreadedBlob); the other engines refuse it.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import v8 from "node:v8";
import { fail } from "../compiler/errors.js";
import type { TypedArray } from "../compiler/ir/dtype.js";
import { inspectWasm, type WasmFeature } from "../compiler/host/wasm-info.js";
import { loadBlob, type InputValues } from "../compiler/host/loader.js";
import { loadThreadedBlob } from "../compiler/host/threads.js";
import { findChromium, runInChromium } from "./chromium/runner.js";
import { checkNativeFeatures, findNativeRunner, NATIVE_ENGINES, runInNativeRunner } from "./native-runner/runner.js";
import { bytesOf, checkedInputs, splitOutputs } from "./protocol.js";
import { findWasmtime, runInWasmtime, runWasiCommand } from "./wasmtime/runner.js";

export type Engine = "node" | "wasmtime" | "wamr" | "wasm3" | "chromium" | "qemu" | "qemu-cortex-m4";

export const ENGINES: readonly Engine[] = ["node", "wasmtime", "wamr", "wasm3", "chromium", "qemu", "qemu-cortex-m4"];

/**
 * The engines installed here that can run a blob using `features` (inspectWasm(blob).features); without them,
 * the engines that run every blob: "node" always, "wasmtime" when installed. The interpreters lack SIMD (and
 * wasm3 bulk memory and multi-value), so "wamr" and "wasm3" are listed only for a blob whose features they have.
 */
export function availableEngines(features?: readonly WasmFeature[]): Engine[] {
  const engines: Engine[] = ["node"];
  // a threaded blob (shared memory, atomics) runs on workers sharing its imported memory: loadThreadedBlob, in Node here
  if (features?.includes("threads")) return engines;
  if (findWasmtime()) engines.push("wasmtime");
  if (findChromium()) engines.push("chromium");
  if (features && findNativeRunner()) {
    for (const engine of ["wamr", "wasm3"] as const) {
      if (!features || features.every((f) => NATIVE_ENGINES[engine].features.includes(f))) engines.push(engine);
    }
  }
  return engines;
}

export interface EngineRunOptions {
  /** the separate weights file, for blobs compiled with weights.embedded = false */
  weights?: Uint8Array;
  /** names the blob in error messages (defaults to the path, or "<blob>") */
  source?: string;
}

/** Runs the blob (bytes, or a path to a .wasm file) once and returns copies of its outputs. */
export async function runOnEngine(
  engine: Engine,
  blob: Uint8Array | string,
  inputs: InputValues,
  opts: EngineRunOptions = {},
): Promise<Record<string, TypedArray>> {
  const source = opts.source ?? (typeof blob === "string" ? blob : "<blob>");
  const bytes = typeof blob === "string" ? await readBlob(blob) : blob;

  // "qemu" boots a firmware image, not a blob
  if (engine !== "qemu" && inspectWasm(bytes, source).manifest?.threads) {
    if (engine !== "node") fail(`${source}: a wasm-simd-threads blob runs on workers sharing its imported memory (engine node, or loadThreadedBlob in a cross-origin isolated page); ${engine} cannot run it: compile for another target`);
    const model = await loadThreadedBlob(bytes, { weights: opts.weights, source });
    try {
      return Object.fromEntries(Object.entries(await model.run(inputs)).map(([name, view]) => [name, view.slice()]));
    } finally {
      await model.terminate();
    }
  }
  if (engine === "node") {
    if (inspectWasm(bytes, source).features.includes("relaxed-simd")) enableRelaxedSimd();
    const model = await loadBlob(bytes, { weights: opts.weights, source });
    const outputs = model.run(inputs);
    return Object.fromEntries(Object.entries(outputs).map(([name, view]) => [name, view.slice()]));
  }
  if (!ENGINES.includes(engine)) fail(`unknown engine "${engine}" (engines: ${ENGINES.join(", ")})`);
  if (engine === "chromium") return runInChromium(bytes, inputs, { weights: opts.weights, source });
  if (engine === "qemu" || engine === "qemu-cortex-m4") {
    const { runOnQemuEngine } = await import("./mcu/runner.js"); // the firmware builder, loaded only for qemu
    return (await runOnQemuEngine(engine, bytes, inputs, source, opts.weights)).outputs;
  }

  const info = inspectWasm(bytes, source);
  const manifest = info.manifest;
  if (!manifest) fail(`${source}: no teenygrad.manifest custom section: not a teenygrad blob`);
  if (engine === "wamr" || engine === "wasm3") {
    if (manifest.flavour !== "reactor") fail(`${source}: a "${manifest.flavour}" blob runs only as a WASI command (wasmtime); ${engine} runs "reactor" blobs`);
    checkNativeFeatures(engine, info.features, source);
  }
  // the runners need a file: reuse the caller's path, or write the bytes to a private temp dir
  const dir = typeof blob === "string" ? null : await mkdtemp(join(tmpdir(), "teenygrad-"));
  const path = dir ? join(dir, "blob.wasm") : (blob as string);
  try {
    if (dir) await writeFile(path, bytes);
    if (engine === "wamr" || engine === "wasm3") return (await runInNativeRunner(engine, path, manifest, inputs, { weights: opts.weights })).outputs;
    if (manifest.flavour === "reactor") return await runInWasmtime(path, manifest, inputs, { weights: opts.weights });
    // a WASI command reads every input's raw bytes in manifest order and writes every output's likewise
    if (!manifest.weights.embedded) fail(`${source}: a "wasi" blob must embed its weights (it has no way to receive a weights file)`);
    if (opts.weights) fail(`${source}: the blob embeds its weights; do not pass a weights file`);
    const arrays = checkedInputs(manifest, inputs, source);
    const stdin = new Uint8Array(arrays.reduce((n, a) => n + a.byteLength, 0));
    let at = 0;
    for (const array of arrays) {
      stdin.set(bytesOf(array), at);
      at += array.byteLength;
    }
    return splitOutputs(manifest.outputs, await runWasiCommand(path, stdin), `wasmtime (${source})`);
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A function computing f32x4.relaxed_madd of three zero vectors: WebAssembly.validate accepts it only when
 * V8 has relaxed SIMD on.
 */
const RELAXED_SIMD_PROBE = (() => {
  const zeros = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0
  const body = [0x00, ...zeros, ...zeros, ...zeros, 0xfd, 0x85, 0x02, 0x0b];
  const types = [0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b], functions = [0x03, 0x02, 0x01, 0x00];
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...functions, 0x0a, body.length + 2, 0x01, body.length, ...body]);
})();

/**
 * Turns on V8's relaxed SIMD where it is still behind --experimental-wasm-relaxed-simd (Node 20), which
 * NODE_OPTIONS does not accept: V8 reads its wasm feature flags at each compile, so setting it now suffices.
 */
function enableRelaxedSimd(): void {
  if (WebAssembly.validate(RELAXED_SIMD_PROBE)) return;
  v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  if (!WebAssembly.validate(RELAXED_SIMD_PROBE)) fail(`this Node (${process.version}) cannot run relaxed-SIMD blobs; compile with --target wasm-simd`);
}

async function readBlob(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    fail(`cannot read ${path}: ${(e as Error).message}`);
  }
}
