/**
 * A training blob's train_step() in WAMR from C (train.c beside main.c): export-c's model.h and a train.h naming
 * the training inputs, the loss and the trained parameters, compiled against the cached WAMR library.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exportC } from "../../compiler/codegen/export-c.js";
import type { Manifest, TensorSlot } from "../../compiler/codegen/manifest.js";
import { fail } from "../../compiler/errors.js";
import type { TypedArray } from "../../compiler/ir/dtype.js";
import { buildWamrLibrary, type WamrSources } from "./build.js";
import type { MeasuredRam } from "./device-ram.js";

const TRAIN_C = fileURLToPath(new URL("train.c", import.meta.url));

export interface WamrTraining {
  status: number[];
  losses: number[];
  /** the trained parameters' bytes after the steps, by name */
  parameters: Record<string, Uint8Array>;
  /** what the embedding measured: WAMR's pool high-water mark and the linear memory it allocated */
  ram: MeasuredRam | null;
}

const slots = (name: string, list: TensorSlot[]) =>
  [`static const struct { uint32_t offset, bytes; } ${name}[${Math.max(list.length, 1)}] = {`, ...list.map((s) => `    {${s.offset}u, ${s.bytes}u}, /* ${s.name} */`), "};"];

/**
 * Builds train.c for this blob and runs one train_step() per batch (in the training inputs' order), after init() if the
 * blob has one (wamr-flash); `restartAt`: the step before which init() runs again, starting training over.
 */
export async function trainInWamr(sources: WamrSources, wasm: Uint8Array, manifest: Manifest, weights: Uint8Array | null, batches: Record<string, TypedArray>[], opts: { restartAt?: number } = {}): Promise<WamrTraining> {
  const training = manifest.training ?? fail("trainInWamr: not a training blob");
  const trained = training.parameters.filter((p) => p.trainable);
  const loss = training.outputs.find((s) => s.name === "loss") ?? fail("trainInWamr: the blob has no loss output");
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-wamr-train-"));
  try {
    writeFileSync(join(dir, "model.h"), exportC(wasm, { weights: weights ?? undefined }));
    writeFileSync(join(dir, "train.h"), [
      `#define TRAIN_INPUT_COUNT ${training.inputs.length}u`, ...slots("train_inputs", training.inputs),
      `#define TRAIN_LOSS_OFFSET ${loss.offset}u`,
      `#define TRAIN_READ_COUNT ${trained.length}u`, ...slots("train_reads", trained), "",
    ].join("\n"));
    const executable = join(dir, "train-model");
    const library = await buildWamrLibrary(sources);
    execFileSync("cc", ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I", dir, "-I", join(sources.root, "core", "iwasm", "include"), TRAIN_C, library, "-lm", "-ldl", "-lpthread", "-o", executable], { stdio: "pipe" });
    const parts: Uint8Array[] = [new Uint8Array(Uint32Array.of(batches.length, opts.restartAt ?? 0xffffffff).buffer)];
    for (const batch of batches) {
      for (const slot of training.inputs) {
        const t = batch[slot.name] ?? fail(`trainInWamr: a batch has no '${slot.name}'`);
        if (t.byteLength !== slot.bytes) fail(`trainInWamr: '${slot.name}' has ${t.byteLength} bytes, the blob takes ${slot.bytes}`);
        parts.push(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
      }
    }
    const r = spawnSync(executable, [], { input: Buffer.concat(parts), maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) fail(`train.c failed (exit ${r.status}): ${r.stderr.toString().trim()}`);
    const out = new DataView(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
    const status: number[] = [], losses: number[] = [];
    let at = 0;
    for (let s = 0; s < batches.length; s++) {
      status.push(out.getInt32(at, true));
      losses.push(out.getFloat32(at + 4, true));
      at += 8;
      if (status[s] !== 0) break;
    }
    const parameters: Record<string, Uint8Array> = {};
    if (status.every((s) => s === 0)) {
      for (const p of trained) {
        parameters[p.name] = new Uint8Array(r.stdout.subarray(at, at + p.bytes));
        at += p.bytes;
      }
    }
    const line = /train-model RAM: (\{.*\})/.exec(r.stderr.toString());
    const parsed = line ? (JSON.parse(line[1]) as Omit<MeasuredRam, "total">) : null;
    return { status, losses, parameters, ram: parsed && { ...parsed, total: parsed.pool + parsed.linearMemory } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
