import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Generator, TeenygradError } from "../compiler/index.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { findMlperfDir } from "../compiler/import/tflite/mlperf.js";
import { BuiltinOperator, TensorType } from "../compiler/import/tflite/schema/tflite_generated.js";
import { float32Bytes, writeTflite } from "../compiler/import/tflite/writer.js";
import { SEED } from "./helpers/compiled.js";
import { MUTATORS } from "./helpers/mutate.js";

/**
 * Robustness: truncated, bit-flipped, overwritten and random .tflite files must end in a TeenygradError (or import
 * cleanly, when a mutation hits bytes that do not matter), never another exception, a hang or a huge allocation.
 * Seeded (TEST_SEED replays a run); mutates a synthetic model and, when present, two MLPerf Tiny models.
 */

const rng = new Generator(SEED);
const int = (n: number) => Math.floor(rng.next() * n);

function seeds(): [string, Uint8Array][] {
  const synthetic = writeTflite({
    tensors: [
      { name: "x", shape: [1, 4, 4, 2] },
      { name: "w", shape: [3, 2, 2, 2], data: float32Bytes(Array.from({ length: 24 }, (_, i) => i / 24)) },
      { name: "y", shape: [1, 3, 3, 3] },
      { name: "q", shape: [1, 27], type: TensorType.FLOAT32 },
    ],
    operators: [
      { op: BuiltinOperator.CONV_2D, inputs: [0, 1, -1], outputs: [2] },
      { op: BuiltinOperator.RESHAPE, inputs: [2], outputs: [3] },
    ],
    inputs: [0],
    outputs: [3],
  });
  const list: [string, Uint8Array][] = [["synthetic", synthetic]];
  const dir = findMlperfDir();
  if (dir) for (const f of ["kws_ref_model.tflite", "kws_ref_model_float32.tflite"]) list.push([f, new Uint8Array(readFileSync(join(dir, f)))]);
  return list;
}

test(`malformed .tflite files end in a TeenygradError (seed ${SEED})`, { timeout: 120_000 }, () => {
  const counts = { imported: 0, rejected: 0 };
  for (const [name, bytes] of seeds()) {
    for (let k = 0; k < 600; k++) {
      const [kind, mutate] = MUTATORS[k % MUTATORS.length];
      const mutated = mutate(bytes, int);
      try {
        importTfliteModel(mutated, { source: name });
        counts.imported++;
      } catch (e) {
        if (!(e instanceof TeenygradError)) assert.fail(`${name}, ${kind} #${k} (seed ${SEED}): ${(e as Error)?.stack ?? e}`);
        assert.ok(e.message.startsWith(`${name}: `), `the error names the file: ${e.message}`);
        counts.rejected++;
      }
    }
  }
  // most mutations must be caught, not silently imported
  assert.ok(counts.rejected > counts.imported, JSON.stringify(counts));
});
