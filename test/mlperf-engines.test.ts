import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { compile, Generator, inspectWasm } from "../compiler/index.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { findLitertPython, randomTfliteInputs, runLitertMany } from "../compiler/import/tflite/litert.js";
import { findMlperfDir, MLPERF_MODELS, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";
import type { TypedArray } from "../compiler/ir/dtype.js";
import { availableEngines, runOnEngine } from "../targets/engines.js";
import { bytesOf } from "../targets/protocol.js";
import { relError, SEED } from "./helpers/compiled.js";

/**
 * The MLPerf Tiny float models in every engine installed: the same build gives the same bits in each engine, and
 * the scalar build is within 1e-6 of the SIMD build (3e-6 where the SIMD build uses Winograd convolutions), and the MVP build (no bulk memory, for wasm3) is bit-identical
 * to the scalar one. KWS's int8-weight ("hybrid") convolutions are imported as plain float32 here: emulating TFLite's
 * run-time input quantization would let a last-bit difference between builds flip a rounding, a whole quantization step. One inference per engine: the interpreters take a few hundred milliseconds on these models.
 */

const CI = Boolean(process.env.CI);
const dir = findMlperfDir();
const skip = !dir && !CI && `MLPerf Tiny models not found (${MLPERF_WHERE})`;
const MODELS = ["kws_ref_model_float32.tflite", "ad01_fp32.tflite", "pretrainedResnet.tflite", "vww_96_float.tflite"];
const hex = (outputs: Record<string, TypedArray>) => Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, Buffer.from(bytesOf(v)).toString("hex")]));

describe(`MLPerf Tiny float models across engines (seed ${SEED})`, () => {
  test("models are present (required under CI)", { skip }, () => assert.ok(dir, `CI needs ${MLPERF_WHERE}`));
  for (const file of MODELS) {
    test(file, { skip, timeout: 600_000 }, async (t) => {
      const bytes = new Uint8Array(readFileSync(join(dir!, file)));
      const imp = importTfliteModel(bytes, { source: file, hybrid: "float" });
      const rng = new Generator(SEED);
      const inputs = Object.fromEntries(imp.inputs.map((io) => [io.name, Float32Array.from({ length: io.shape.reduce((a, b) => a * b, 1) }, () => rng.next() * 2 - 1)]));
      const byTarget: Record<string, Record<string, TypedArray>> = {};
      let winograd = false;
      // wasm-mvp (no bulk memory) is the build wasm3 0.4 can run when the scalar build uses memory.copy
      for (const target of ["wasm-simd", "wasm-scalar", "wasm-mvp"]) {
        const { wasm, graph } = await compile(importTfliteModel(bytes, { source: file, hybrid: "float" }).graph, {}, { target, name: file });
        winograd ||= graph.nodes.some((n) => n.op === "conv2dWinograd");
        const engines = availableEngines(inspectWasm(wasm).features);
        t.diagnostic(`${target}: ${engines.join(", ")}`);
        const node = await runOnEngine("node", wasm, inputs);
        byTarget[target] = node;
        for (const engine of engines.filter((e) => e !== "node")) {
          assert.deepEqual(hex(await runOnEngine(engine, wasm, inputs, { source: `${file} (${target})` })), hex(node), `${file} ${target}: ${engine} differs from node`);
        }
      }
      assert.deepEqual(hex(byTarget["wasm-mvp"]), hex(byTarget["wasm-scalar"]), `${file}: the mvp build differs from the scalar build`);
      for (const io of imp.outputs) {
        const err = relError(byTarget["wasm-scalar"][io.name] as Float32Array, byTarget["wasm-simd"][io.name] as Float32Array);
        // the SIMD build runs ResNet-8's dense 3x3 layers through Winograd, which rounds differently: each build
        // measured within 1.1e-6 of the host reference (11 seeds), the two up to 9.5e-7 apart
        const tol = winograd ? 3e-6 : 1e-6;
        assert.ok(err <= tol, `${file} ${io.name}: scalar vs simd ${err}`);
      }
    });
  }
});

/**
 * The MLPerf Tiny int8 models on the integer kernels: the SIMD, scalar and MVP builds in every engine installed give
 * the same int8 outputs, and (with the interpreter installed) TFLite's. Two seeds per model: the interpreters take
 * about a second per VWW inference; tflite.test.ts checks 20 seeds against TFLite in Node.
 */
const INT8_MODELS = MLPERF_MODELS.filter((m) => m.quantized).map((m) => m.file);
describe(`MLPerf Tiny int8 models across engines (seeds ${SEED}, ${SEED + 1})`, () => {
  for (const file of INT8_MODELS) {
    test(file, { skip, timeout: 600_000 }, async (t) => {
      const path = join(dir!, file);
      const imp = importTfliteModel(new Uint8Array(readFileSync(path)), { source: file });
      const sets = [SEED, SEED + 1].map((seed) => randomTfliteInputs(imp, seed));
      const want = findLitertPython() ? runLitertMany(path, sets.map((s) => s.reference)).runs.map((outs) => outs.map((o) => Buffer.from(bytesOf(o.data)).toString("hex"))) : null;
      for (const target of ["wasm-simd", "wasm-scalar", "wasm-mvp"]) {
        const { wasm } = await compile(imp.graph, {}, { target, name: file });
        const engines = availableEngines(inspectWasm(wasm).features);
        t.diagnostic(`${target}: ${engines.join(", ")}`);
        for (const engine of engines) {
          for (const [r, set] of sets.entries()) {
            const got = hex(await runOnEngine(engine, wasm, set.blob, { source: `${file} (${target})` }));
            if (want) assert.deepEqual(imp.outputs.map((io) => got[io.name]), want[r], `${file} ${target} ${engine}: differs from TFLite (seed ${SEED + r})`);
            assert.ok(imp.outputs.every((io) => got[io.name]), `${file} ${target} ${engine}: outputs missing`);
            expectSame(`${file} seed ${SEED + r}`, `${target} ${engine}`, got);
          }
        }
      }
    });
  }
});

/** Every build and engine must give the first one's bytes (per model and seed). */
const firstSeen = new Map<string, { who: string; bytes: Record<string, string> }>();
function expectSame(key: string, who: string, bytes: Record<string, string>): void {
  const first = firstSeen.get(key);
  if (!first) firstSeen.set(key, { who, bytes });
  else assert.deepEqual(bytes, first.bytes, `${key}: ${who} differs from ${first.who}`);
}
