/**
 * Runs a training blob's train_step() in the wasmtime CLI (Node only), unmodified, through a variant of
 * the reactor adapter (adapter.ts) that imports train_step instead of run:
 *   request (u32 little-endian): steps, loss offset, then per step: count x (offset, length, <bytes>)
 *   response: per step, u32 status and the f32 loss; the adapter stops after a non-zero status.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fail } from "../../compiler/errors.js";
import type { TypedArray } from "../../compiler/ir/dtype.js";
import type { Manifest } from "../../compiler/codegen/manifest.js";
import { checkedInputs, bytesOf, findExecutable, PROTOCOL_EXITS, runProcess } from "../protocol.js";
import { ADAPTER_WAT } from "./adapter.js";
import { assembleAdapter, findWasmtime } from "./runner.js";

const HELPERS = ADAPTER_WAT.replace(`(import "model" "run" (func $run (result i32)))`, `(import "model" "train_step" (func $train_step (result i32)))`);
const TRAINING_ADAPTER_WAT = HELPERS.slice(0, HELPERS.indexOf(`  (func (export "_start")`)) + `
  (func (export "_start")
    (local $steps i32) (local $loss i32) (local $count i32) (local $offset i32)
    (local.set $steps (call $read_u32))
    (local.set $loss (call $read_u32))
    (block $done
      (loop $step
        (br_if $done (i32.eqz (local.get $steps)))
        (local.set $count (call $read_u32))
        (block $written
          (loop $more
            (br_if $written (i32.eqz (local.get $count)))
            (local.set $offset (call $read_u32))
            (call $read_into_model (local.get $offset) (call $read_u32))
            (local.set $count (i32.sub (local.get $count) (i32.const 1)))
            (br $more)))
        (i32.store $io (i32.const 12) (call $train_step))
        (call $write_all (i32.const 12) (i32.const 4))
        (br_if $done (i32.load $io (i32.const 12)))
        (call $write_from_model (local.get $loss) (i32.const 4))
        (local.set $steps (i32.sub (local.get $steps) (i32.const 1)))
        (br $step))))
)
`;

const trainingAdapter = () => assembleAdapter(TRAINING_ADAPTER_WAT, "wasmtime-training-adapter");

/** One train_step() per batch in a fresh wasmtime instance; returns each step's status and loss (stops at the first failure). */
export async function trainInWasmtime(blob: Uint8Array, manifest: Manifest, batches: Record<string, ArrayLike<number>>[]): Promise<{ status: number; loss: number }[]> {
  const training = manifest.training ?? fail("trainInWasmtime: not a training blob");
  const wasmtime = findWasmtime() ?? findExecutable("TEENYGRAD_WASMTIME", ["wasmtime"]) ?? fail("wasmtime not found: run npm run engines");
  const loss = training.outputs.find((s) => s.name === "loss")!;
  const parts: Uint8Array[] = [];
  const u32 = (...xs: number[]) => parts.push(new Uint8Array(new Uint32Array(xs).buffer));
  u32(batches.length, loss.offset);
  const asManifest = { ...manifest, inputs: training.inputs };
  for (const batch of batches) {
    const arrays: TypedArray[] = checkedInputs(asManifest, batch, "trainInWasmtime");
    u32(arrays.length);
    training.inputs.forEach((slot, i) => {
      u32(slot.offset, slot.bytes);
      parts.push(bytesOf(arrays[i]));
    });
  }
  const request = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (request.set(p, at), at + p.length), 0);
  const dir = await mkdtemp(join(tmpdir(), "teenygrad-train-"));
  try {
    const path = join(dir, "blob.wasm");
    await writeFile(path, blob);
    const result = await runProcess(wasmtime, ["run", "--preload", `model=${path}`, await trainingAdapter()], request);
    if (result.code !== 0) fail(`wasmtime (training): ${PROTOCOL_EXITS[result.code ?? -1] ?? `exit ${result.code}`}\n${result.stderr.trim()}`);
    const out = new DataView(result.stdout.buffer, result.stdout.byteOffset, result.stdout.byteLength);
    const steps: { status: number; loss: number }[] = [];
    for (let at = 0; at < out.byteLength;) {
      const status = out.getUint32(at, true);
      at += 4;
      if (status !== 0) {
        steps.push({ status, loss: NaN });
        break;
      }
      steps.push({ status, loss: out.getFloat32(at, true) });
      at += 4;
    }
    return steps;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
