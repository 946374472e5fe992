/**
 * Measures a blob's device RAM in the C embedding (main.c built with RUN_MODEL_REPORT_RAM against WAMR's C
 * sources): the pool's high-water mark (module, instance, stack, WAMR's bookkeeping) and the linear memory as WAMR
 * allocated it. Node only; test/device-ram.test.ts and scripts/mlperf.ts use it.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportC } from "../../compiler/codegen/export-c.js";
import type { Manifest } from "../../compiler/codegen/manifest.js";
import { fail } from "../../compiler/errors.js";
import { DTYPES, type TypedArray } from "../../compiler/ir/dtype.js";
import { Generator } from "../../compiler/tensor/random.js";
import { buildEmbedding, buildWamrLibrary, type WamrSources } from "./build.js";

export interface MeasuredRam {
  /** the smallest pool that served every allocation (high-water mark plus the allocator's header) */
  pool: number;
  /** linear memory as WAMR allocated it (outside the pool on Linux, in it on microcontroller ports) */
  linearMemory: number;
  /** the interpreter stack, inside `pool` */
  stack: number;
  /** pool + linearMemory */
  total: number;
}

export interface Embedding {
  /** runs the blob once on stdin bytes; `stackBytes` overrides the stack the header budgets */
  run(stdin: Uint8Array, stackBytes?: number): { ok: boolean; stdout: Buffer; stderr: string; ram: MeasuredRam | null };
  /** the executable, for inspection (its arrays must sit in read-only data) */
  executable: string;
  dispose(): void;
}

/** export-c + main.c with RUN_MODEL_REPORT_RAM, in a temporary directory */
export async function buildMeasuringEmbedding(sources: WamrSources, wasm: Uint8Array, weights?: Uint8Array | null): Promise<Embedding> {
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-device-ram-"));
  try {
    writeFileSync(join(dir, "model.h"), exportC(wasm, { weights: weights ?? undefined }));
    const executable = join(dir, "run-model");
    await buildEmbedding(sources, await buildWamrLibrary(sources), dir, executable, { reportRam: true });
    return {
      executable,
      run(stdin, stackBytes) {
        const env = stackBytes === undefined ? {} : { RUN_MODEL_STACK_BYTES: String(stackBytes) };
        const r = spawnSync(executable, [], { input: stdin, env, maxBuffer: 64 * 1024 * 1024 });
        const stderr = r.stderr.toString();
        const line = /run-model RAM: (\{.*\})/.exec(stderr);
        const parsed = line ? (JSON.parse(line[1]) as Omit<MeasuredRam, "total">) : null;
        return { ok: r.status === 0, stdout: r.stdout, stderr, ram: parsed && { ...parsed, total: parsed.pool + parsed.linearMemory } };
      },
      dispose: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * the smallest interpreter stack (to 16 bytes) the blob runs with, by bisection below `hi` (main.c's pool leaves
 * 16 KiB of slack beyond the compiler's budget, so a larger stack does not fit it)
 */
export function smallestStack(embedding: Embedding, stdin: Uint8Array, hi = 16 * 1024): number {
  const first = embedding.run(stdin, hi);
  if (!first.ok) fail(`the blob does not run even with a ${hi}-byte stack: ${first.stderr.trim()}`);
  let lo = 0;
  while (hi - lo > 16) {
    const mid = Math.floor((lo + hi) / 32) * 16;
    if (embedding.run(stdin, mid).ok) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** seeded inputs for a manifest, as the raw bytes main.c reads and as typed arrays for runOnEngine, any dtype */
export function randomInputs(manifest: Manifest, seed: number): { stdin: Uint8Array; values: Record<string, TypedArray> } {
  const rng = new Generator(seed);
  const stdin = new Uint8Array(manifest.inputs.reduce((n, s) => n + s.bytes, 0));
  const values: Record<string, TypedArray> = {};
  let at = 0;
  for (const slot of manifest.inputs) {
    const bytes = new Uint8Array(slot.bytes);
    if (slot.dtype === "float32") new Float32Array(bytes.buffer).forEach((_, i, a) => (a[i] = rng.next() * 2 - 1));
    else bytes.forEach((_, i, a) => (a[i] = Math.floor(rng.next() * 256)));
    const array = DTYPES[slot.dtype].array as unknown as new (buffer: ArrayBuffer) => TypedArray;
    values[slot.name] = new array(bytes.buffer);
    stdin.set(bytes, at);
    at += slot.bytes;
  }
  return { stdin, values };
}
