import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { compile, inspectWasm, manualSeed, TeenygradError, type nn } from "../compiler/index.js";
import { exportC } from "../compiler/codegen/export-c.js";
import type { TypedArray } from "../compiler/ir/dtype.js";
import { availableEngines, runOnEngine } from "../targets/engines.js";
import { findNativeRunner, runInNativeRunner } from "../targets/native-runner/runner.js";
import { bytesOf } from "../targets/protocol.js";
import { buildEmbedding, buildWamrLibrary, findWamrSources } from "../targets/wamr/build.js";
import CNN, { inputs as cnnInputs } from "../examples/cnn.js";
import KWS, { inputs as kwsInputs } from "../examples/kws-dscnn.js";
import MLP, { inputs as mlpInputs } from "../examples/mlp.js";
import { randn, SEED } from "./helpers/compiled.js";
import { addOneModel, assemble, F, int64Model, manifestFor, manifestSection, separateWeightsModel, slot, trappingModel, wasiAddOneCommand } from "./helpers/host-models.js";

/**
 * The scalar build in real interpreters: every example in WAMR and wasm3 (teenygrad-native-run) gives the same
 * bits as Node running the same blob, and so does the C embedding (targets/wamr/main.c) built against
 * `teenygrad export-c` output and WAMR's C sources. Skipped, loudly, when they are not installed, except under CI.
 */

const CI = Boolean(process.env.CI);
const runner = findNativeRunner();
const skipNative = !runner && !CI && "teenygrad-native-run not installed: npm run engines";
const wamrSources = findWamrSources();
const skipC = !wamrSources && !CI && "WAMR's C sources not in the cargo registry: npm run engines";

const examples: [string, () => nn.Module, Record<string, number[]>][] = [
  ["mlp", () => new MLP(), mlpInputs],
  ["cnn", () => new CNN(), cnnInputs],
  ["kws-dscnn", () => new KWS(), kwsInputs],
];

/** an example compiled for wasm-scalar, a random input for it, and Node's outputs on that input */
async function scalarExample(name: string, make: () => nn.Module, inputs: Record<string, number[]>) {
  manualSeed(SEED);
  const { wasm, manifest } = await compile(make(), inputs, { target: "wasm-scalar", name });
  const values = Object.fromEntries(Object.entries(inputs).map(([input, shape]) => [input, randn(...shape).data as Float32Array]));
  return { wasm, manifest, values, node: await runOnEngine("node", wasm, values) };
}

const isInterpreter = (engine: string) => engine === "wamr" || engine === "wasm3";

const bits = (outputs: Record<string, TypedArray>) =>
  Object.fromEntries(Object.entries(outputs).map(([name, array]) => [name, Buffer.from(bytesOf(array)).toString("hex")]));

/** y = x over 5 float32s with memory.copy (bulk memory), under addOneModel's manifest */
function memoryCopyModel(): Uint8Array {
  const wat = `(module (memory (export "memory") 1 1)
    (func (export "run") (result i32) (memory.copy (i32.const 64) (i32.const 0) (i32.const 20)) (i32.const 0)))`;
  return assemble(wat, F.MVP | F.BulkMemory | F.BulkMemoryOpt, manifestSection(addOneModel(5).manifest));
}

async function rejectsTeenygrad(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof TeenygradError, `expected a TeenygradError, got ${(e as Error)?.stack ?? e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe(`WAMR and wasm3 (seed ${SEED})`, () => {
  let dir: string;
  const file = (name: string, bytes: Uint8Array | string) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  before(() => (dir = mkdtempSync(join(tmpdir(), "teenygrad-native-test-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("teenygrad-native-run is installed (required under CI)", { skip: skipNative }, () => {
    assert.ok(runner, "CI must have teenygrad-native-run: npm run engines");
    assert.deepEqual(availableEngines([]).filter(isInterpreter), ["wamr", "wasm3"], "an MVP blob runs in both");
    assert.deepEqual(availableEngines().filter(isInterpreter), [], "they do not run every blob");
  });

  for (const [name, make, inputs] of examples) {
    test(`${name} (wasm-scalar) gives Node's bits in WAMR and wasm3`, { skip: skipNative }, async () => {
      const { wasm, values, node } = await scalarExample(name, make, inputs);
      const features = inspectWasm(wasm).features;
      assert.deepEqual(availableEngines(features).slice(-2), ["wamr", "wasm3"], `both interpreters can run ${features.join(", ")}`);
      for (const engine of ["wamr", "wasm3"] as const) {
        assert.deepEqual(bits(await runOnEngine(engine, wasm, values)), bits(node), `${engine} (seed ${SEED})`);
      }
    });
  }

  test("a SIMD blob is refused before it reaches an interpreter, naming the engine and the feature", async () => {
    manualSeed(SEED);
    const { wasm } = await compile(new MLP(), mlpInputs, { target: "wasm-simd" });
    assert.deepEqual(availableEngines(inspectWasm(wasm).features).filter(isInterpreter), []);
    const x = new Float32Array(784);
    await rejectsTeenygrad(runOnEngine("wamr", wasm, { x }), /wamr \(WAMR 2\.4\.3 fast interpreter\) cannot run this blob: it uses simd128; compile with --target wasm-scalar/);
    await rejectsTeenygrad(runOnEngine("wasm3", wasm, { x }), /wasm3 \(wasm3 0\.4\.7\) cannot run this blob: it uses simd128/);
    // bulk memory is fine in WAMR but not in wasm3 0.4.7
    await rejectsTeenygrad(runOnEngine("wasm3", memoryCopyModel(), { x: new Float32Array(5) }), /wasm3 .* cannot run this blob: it uses bulk-memory$/);
    await rejectsTeenygrad(runOnEngine("wamr", wasiAddOneCommand().bytes, { x: new Float32Array(5) }), /a "wasi" blob runs only as a WASI command \(wasmtime\); wamr runs "reactor" blobs/);
  });

  test("the protocol: several dtypes, large ranges, a weights file, bulk memory in WAMR", { skip: skipNative }, async () => {
    const i64 = int64Model();
    const big = addOneModel(100_000);
    const x = Float32Array.from({ length: 100_000 }, (_, i) => i * 0.25);
    const weighted = separateWeightsModel();
    const weights = new Uint8Array(new Float32Array([1, 2, 3, 4, 5]).buffer);
    for (const engine of ["wamr", "wasm3"] as const) {
      const out = (await runInNativeRunner(engine, file("i64.wasm", i64.bytes), i64.manifest, { a: [5, -7, 0], b: new BigInt64Array([1n, 2n, 2n ** 60n]) })).outputs;
      assert.deepEqual([...out.sum], [6n, -5n, 2n ** 60n], engine);
      assert.deepEqual([...out.sign], [1, -1, 0], engine);
      const { y } = (await runInNativeRunner(engine, file("big.wasm", big.bytes), big.manifest, { x })).outputs;
      assert.equal(y[99_999], 99_999 * 0.25 + 1, engine);
      assert.equal(y[12_345], 12_345 * 0.25 + 1, engine);
      assert.deepEqual([...(await runOnEngine(engine, weighted.bytes, { x: [1, 1, 1, 1, 1] }, { weights }))["y"]], [2, 3, 4, 5, 6], engine);
    }
    assert.deepEqual([...(await runOnEngine("wamr", memoryCopyModel(), { x: [1, 2, 3, 4, 5] }))["y"]], [1, 2, 3, 4, 5]);
  });

  test("--repeat writes the inputs again before every run and times each run", { skip: skipNative }, async () => {
    // run() adds 1 to its input in place and copies it to the output: without the rewrite, run 3 would see x + 2
    const manifest = manifestFor({ inputs: [slot("x", 0, 1)], outputs: [slot("y", 16, 1)], pages: 1 });
    const wat = `(module (memory (export "memory") 1 1)
      (func (export "run") (result i32)
        (f32.store (i32.const 0) (f32.add (f32.load (i32.const 0)) (f32.const 1)))
        (f32.store (i32.const 16) (f32.load (i32.const 0)))
        (i32.const 0)))`;
    const path = file("inplace.wasm", assemble(wat, F.MVP, manifestSection(manifest)));
    for (const engine of ["wamr", "wasm3"] as const) {
      const { outputs, runNanos } = await runInNativeRunner(engine, path, manifest, { x: [10] }, { repeat: 3 });
      assert.deepEqual([...outputs.y], [11], engine);
      assert.equal(runNanos.length, 3, engine);
      assert.ok(runNanos.every((ns) => Number.isInteger(ns) && ns >= 0), `${engine}: ${runNanos}`);
    }
  });

  test("statuses, traps, bad ranges and unreadable blobs are TeenygradErrors naming the engine", { skip: skipNative }, async () => {
    const { bytes, manifest } = addOneModel(5);
    const path = file("add1.wasm", bytes);
    const trap = trappingModel();
    const trapPath = file("trap.wasm", trap.bytes);
    const lying = manifestFor({ inputs: [slot("x", 65532, 5)], outputs: [slot("y", 32, 5)], pages: 1 });
    for (const engine of ["wamr", "wasm3"] as const) {
      await rejectsTeenygrad(runInNativeRunner(engine, path, manifest, { x: [-1, 0, 0, 0, 0] }), /run\(\) returned status 2 \(an index out of range in a gather\)$/);
      await rejectsTeenygrad(runInNativeRunner(engine, trapPath, trap.manifest, { x: new Float32Array(5) }),
        new RegExp(`^${engine} \\(.*trap\\.wasm\\): teenygrad-native-run failed \\(exit code 1\\): .*unreachable`));
      await rejectsTeenygrad(runInNativeRunner(engine, path, lying, { x: new Float32Array(5) }), /exit code 73\): a requested range lies outside the model's memory/);
      await rejectsTeenygrad(runInNativeRunner(engine, join(dir, "missing.wasm"), manifest, { x: new Float32Array(5) }), /exit code 1\): cannot read .*missing\.wasm/);
      await rejectsTeenygrad(runInNativeRunner(engine, file("junk.wasm", "not wasm"), manifest, { x: new Float32Array(5) }), /exit code 1\): .*/);
    }
  });
});

describe(`the C embedding: targets/wamr/main.c with \`teenygrad export-c\` (seed ${SEED})`, () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "teenygrad-c-test-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("WAMR's C sources are at hand (required under CI)", { skip: skipC }, () => {
    assert.ok(wamrSources, "CI must have WAMR's sources (npm run engines fetches them with the native runner)");
    assert.equal(wamrSources.version, "2.4.3");
  });

  for (const [name, make, inputs] of examples) {
    test(`${name}: main.c built against WAMR gives Node's bits`, { skip: skipC, timeout: 300_000 }, async () => {
      const { wasm, manifest, values, node } = await scalarExample(name, make, inputs);
      const headerDir = join(dir, name);
      mkdirSync(headerDir);
      // the library call behind `teenygrad export-c` (the CLI's output is checked against it below)
      writeFileSync(join(headerDir, "model.h"), exportC(wasm, { source: `${name}.wasm` }));
      const executable = join(dir, `run-${name}`);
      await buildEmbedding(wamrSources!, await buildWamrLibrary(wamrSources!), headerDir, executable);

      const stdin = Buffer.concat(manifest.inputs.map((s) => Buffer.from(bytesOf(values[s.name]))));
      const run = spawnSync(executable, [], { input: stdin });
      assert.equal(run.status, 0, run.stderr.toString());
      const expected = Buffer.concat(manifest.outputs.map((s) => Buffer.from(bytesOf(node[s.name]))));
      assert.equal(run.stdout.toString("hex"), expected.toString("hex"));

      const short = spawnSync(executable, [], { input: stdin.subarray(0, stdin.length - 1) });
      assert.equal(short.status, 1);
      assert.match(short.stderr.toString(), /run-model: stdin ended before this input's bytes: /);
    });
  }
});

describe("export-c", () => {
  const { bytes } = addOneModel(5);

  test("writes the blob's bytes and where its buffers live", () => {
    const header = exportC(bytes, { prefix: "add_one", source: "add1.wasm" });
    assert.match(header, /^\/\* Generated by `teenygrad export-c` from add1\.wasm: do not edit\. \*\//);
    assert.match(header, new RegExp(`#define ADD_ONE_WASM_BYTES ${bytes.length}u\n`));
    assert.match(header, /#define ADD_ONE_MEMORY_PAGES 1u\n#define ADD_ONE_MEMORY_BYTES 65536u\n/);
    assert.match(header, /#define ADD_ONE_INPUT_X_OFFSET 0u\n#define ADD_ONE_INPUT_X_BYTES 20u\n#define ADD_ONE_INPUT_X_ELEMENTS 5u\n#define ADD_ONE_INPUT_X_NDIM 1u\n/);
    assert.match(header, /static const uint32_t add_one_output_y_shape\[1\] = \{5\};/);
    assert.match(header, /\{"y", "float32", ADD_ONE_OUTPUT_Y_OFFSET, ADD_ONE_OUTPUT_Y_BYTES, ADD_ONE_OUTPUT_Y_NDIM, add_one_output_y_shape\},/);
    const array = /static const uint8_t add_one_wasm\[ADD_ONE_WASM_BYTES\] TEENYGRAD_ALIGNED = \{\n([\s\S]*?)\n\};/.exec(header);
    assert.ok(array, "the byte array");
    assert.deepEqual(Uint8Array.from(array[1].match(/0x[0-9a-f]{2}/g)!, (b) => parseInt(b, 16)), bytes);
  });

  test("tensor names become C names; names C cannot tell apart and blobs C cannot embed are refused", () => {
    const odd = manifestFor({ inputs: [slot("audio.in-1", 0, 2)], outputs: [slot("out\"*/", 16, 2), slot("ünï", 32, 2)], pages: 1 });
    const wat = `(module (memory (export "memory") 1 1) (func (export "run") (result i32) (i32.const 0)))`;
    const header = exportC(assemble(wat, F.MVP, manifestSection(odd)));
    assert.match(header, /#define MODEL_INPUT_AUDIO_IN_1_OFFSET 0u/);
    assert.match(header, /\{"out\\"\*\/", "float32"/);
    assert.match(header, /\/\* output "out"\*\\\/": float32 \[2\] \*\//);
    assert.match(header, /\{"\\303\\274n\\303\\257", "float32"/);

    const clash = manifestFor({ inputs: [slot("a.b", 0, 1), slot("a_b", 16, 1)], outputs: [slot("y", 32, 1)], pages: 1 });
    assert.throws(() => exportC(assemble(wat, F.MVP, manifestSection(clash)), { source: "c.wasm" }),
      (e: Error) => e instanceof TeenygradError && /c\.wasm: inputs "a\.b" and "a_b" both become the C name A_B/.test(e.message));
    assert.throws(() => exportC(bytes, { prefix: "9lives" }), /prefix '9lives' is not a C identifier/);
    assert.throws(() => exportC(separateWeightsModel().bytes, { source: "w.wasm" }), /w\.wasm: export-c needs the weights inside the blob, or a wamr-flash blob; compile it without --weights-file/);
    assert.throws(() => exportC(wasiAddOneCommand().bytes, { source: "cmd.wasm" }), /cmd\.wasm: export-c needs a "reactor" blob/);
    assert.throws(() => exportC(assemble(wat)), /no teenygrad\.manifest custom section/);
  });

  test("the CLI command writes the header", () => {
    const dir = mkdtempSync(join(tmpdir(), "teenygrad-export-c-"));
    try {
      writeFileSync(join(dir, "add1.wasm"), bytes);
      const r = spawnSync(process.execPath, ["--import", "tsx", "compiler/cli/bin.ts", "export-c", join(dir, "add1.wasm"), "-o", join(dir, "add1.h"), "--prefix", "add1"], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(dir, "add1.h"), "utf8"), exportC(bytes, { prefix: "add1", source: "add1.wasm" }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
