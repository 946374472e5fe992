import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { compile, encodeNpy, loadBlob, loadBlobPool, loadThreadedBlob, manualSeed, nn, Tensor, TeenygradError, type CompileResult } from "../compiler/index.js";
import { MIN_PARALLEL_WORK, threadSteps } from "../compiler/codegen/threads.js";
import { emitEntry } from "../compiler/codegen/emit.js";
import { inspectWasm } from "../compiler/host/wasm-info.js";
import { layoutMemory } from "../compiler/codegen/memory.js";
import type { Graph } from "../compiler/ir/graph.js";
import type { TypedArray } from "../compiler/ir/dtype.js";
import { importTfliteModel } from "../compiler/import/tflite/index.js";
import { findMlperfDir, MLPERF_WHERE } from "../compiler/import/tflite/mlperf.js";
import { optimize } from "../compiler/passes/index.js";
import { traceModule } from "../compiler/tensor/nn.js";
import { apply } from "../compiler/tensor/tensor.js";
import { CHROMIUM_FLAGS, findChromium } from "../targets/chromium/runner.js";
import { serveLocal } from "../targets/chromium/server.js";
import { availableEngines, runOnEngine } from "../targets/engines.js";
import CNN, { inputs as cnnInputs } from "../examples/cnn.js";
import KWS, { inputs as kwsInputs } from "../examples/kws-dscnn.js";
import MLP, { inputs as mlpInputs } from "../examples/mlp.js";
import { FnModule, rng, SEED } from "./helpers/compiled.js";

/**
 * The threaded build (wasm-simd-threads) against the single-threaded wasm-simd blob of the same model, bit for
 * bit, on fresh random inputs, in Node workers with 1, 2 and 3 threads; the pool against loadBlob.
 */

const mlperf = findMlperfDir();
const bytesOf = (a: TypedArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

interface Case { name: string; build: (target: string) => Promise<CompileResult> }
const moduleCase = (name: string, make: () => nn.Module, inputs: Record<string, number[]>): Case => ({
  name,
  // the same weights for both builds: the module is made once
  build: (() => {
    manualSeed(SEED);
    const model = make();
    return (target: string) => compile(model, inputs, { target });
  })(),
});
const tfliteCase = (name: string, file: string): Case => ({
  name,
  build: (target) => compile(importTfliteModel(new Uint8Array(readFileSync(join(mlperf!, file))), { source: file }).graph, {}, { target }),
});

/**
 * a depthwise-separable block (depthwise 3x3 on the padded-plane kernel, 1x1), then a 5x5 depthwise and a grouped
 * convolution, which split by groups through the direct kernel
 */
class Depthwise extends nn.Module {
  dw = new nn.Conv2d(16, 16, 3, { padding: 1, groups: 16 });
  pw = new nn.Conv2d(16, 24, 1);
  dw5 = new nn.Conv2d(24, 24, 5, { padding: 2, groups: 24 });
  grouped = new nn.Conv2d(24, 32, 3, { padding: 1, stride: 2, groups: 4 });
  forward(x: Tensor) { return this.grouped.forward(this.dw5.forward(this.pw.forward(this.dw.forward(x).relu()).relu())).relu(); }
}

/**
 * odd sizes: im2col convolutions split by output pixels (workers' ranges starting inside the whole call's im2col
 * blocks, a ragged last GEMM tile) or, on a plane under 16 pixels, by channels (a ragged last block of 4), and a
 * direct convolution's ragged last channel block; d (22 -> 19 on 12x10) is a Winograd convolution on SIMD targets,
 * split by channels; b and d have no bias (a null pointer a sub-range must not offset)
 */
class OddSizes extends nn.Module {
  a = new nn.Conv2d(5, 20, 3, { padding: 1 });
  b = new nn.Conv2d(20, 13, 3, { padding: 1, bias: false });
  c = new nn.Conv2d(13, 22, 3, { padding: 1, stride: 2 });
  d = new nn.Conv2d(22, 19, 3, { padding: 1, bias: false });
  e = new nn.Conv2d(19, 42, 3, { stride: 4 });
  forward(x: Tensor) { return this.e.forward(this.d.forward(this.c.forward(this.b.forward(this.a.forward(x).relu()).relu()).relu())); }
}
const ODD_INPUTS = { x: [1, 5, 23, 19] };

const CASES: Case[] = [
  moduleCase("small CNN", () => new CNN(), cnnInputs),
  moduleCase("odd sizes", () => new OddSizes(), ODD_INPUTS),
  moduleCase("depthwise, pointwise and grouped convolutions", () => new Depthwise(), { x: [1, 16, 20, 20] }),
  moduleCase("KWS DS-CNN (example)", () => new KWS(), kwsInputs),
  moduleCase("MLP", () => new MLP(), mlpInputs),
  ...(mlperf ? [tfliteCase("MLPerf Tiny ResNet-8", "pretrainedResnet.tflite"), tfliteCase("MLPerf Tiny VWW", "vww_96_float.tflite")] : []),
];

const randomInputs = (r: CompileResult) =>
  Object.fromEntries(r.manifest.inputs.map((s) => [s.name, Tensor.randn([s.bytes / 4], { generator: rng }).data as Float32Array]));

describe(`wasm-simd-threads (seed ${SEED})`, () => {
  test(mlperf ? "the MLPerf Tiny float models are here" : `MLPerf Tiny models absent (${MLPERF_WHERE}): ResNet-8 and VWW are not tested`, () => {});

  for (const c of CASES) {
    test(`${c.name}: 1, 2 and 3 threads (the caller's one of them, or only workers) compute the single-threaded blob's bytes`, async () => {
      const single = await c.build("wasm-simd");
      const threaded = await c.build("wasm-simd-threads");
      assert.equal(threaded.report.codegen.path, "kernel-library");
      assert.deepEqual(threaded.manifest.threads && { max: threaded.manifest.threads.maxThreads, entry: threaded.manifest.threads.entry }, { max: 4, entry: "run_thread" });
      const imports = WebAssembly.Module.imports(new WebAssembly.Module(threaded.wasm as BufferSource));
      assert.deepEqual(imports, [{ module: "env", name: "memory", kind: "memory" }]);
      const reference = await loadBlob(single.wasm);
      const inputs = [randomInputs(single), randomInputs(single)];
      const expected = inputs.map((x) => Object.fromEntries(Object.entries(reference.run(x)).map(([k, v]) => [k, bytesOf(v).slice()])));
      for (const [threads, callerComputes] of [[1, true], [2, true], [3, true], [1, false], [2, false]] as const) {
        const model = await loadThreadedBlob(threaded.wasm, { threads, callerComputes, source: `${c.name}.wasm` });
        try {
          assert.equal(model.threads, threads);
          // twice each: a second run starts from the first run's leftovers in the shared memory
          for (const [i, x] of [...inputs, ...inputs].entries()) {
            const got = await model.run(x);
            for (const [name, want] of Object.entries(expected[i % 2])) {
              assert.ok(Buffer.from(bytesOf(got[name])).equals(Buffer.from(want)), `${c.name}: output ${name} with ${threads} threads (caller computes: ${callerComputes}) differs (input ${i % 2}, seed ${SEED})`);
            }
          }
        } finally {
          await model.terminate();
        }
      }
    });
  }

  test("the big kernels split: every convolution of the CNN and VWW with enough work runs in parallel", async () => {
    manualSeed(SEED);
    const graphs: [string, Graph][] = [["cnn", traceModule(new CNN(), cnnInputs)]];
    if (mlperf) graphs.push(["vww", importTfliteModel(new Uint8Array(readFileSync(join(mlperf, "vww_96_float.tflite")))).graph]);
    for (const [name, g] of graphs) {
      optimize(g, {});
      const entry = emitEntry(g, layoutMemory(g), { wasi: false, modelName: name });
      assert.ok(!("unsupported" in entry.program));
      const steps = threadSteps(entry.program);
      const macs = (n: Graph["nodes"][number]) => n.outputs[0].shape.slice(1).reduce((a, b) => a * b, 1) * n.inputs[1].shape.slice(1).reduce((a, b) => a * b, 1);
      const convs = g.nodes.filter((n) => n.op === "conv2d" && macs(n) >= MIN_PARALLEL_WORK).length;
      assert.ok(convs >= 2);
      const parallel = steps.filter((s) => "parallel" in s && /^(conv2d|conv2dIm2col|depthwise3x3)$/.test(s.parallel.fn)).length;
      assert.equal(parallel, convs, `${name}: ${parallel} of ${convs} convolutions split`);
    }
  });

  test("odd sizes split every way: im2col by pixels (ranges inside the whole call's blocks, a ragged tail) and by channels, direct by channels with a ragged block", () => {
    manualSeed(SEED);
    const g = traceModule(new OddSizes(), ODD_INPUTS);
    optimize(g, { simd: true });
    const entry = emitEntry(g, layoutMemory(g), { wasi: false, modelName: "odd" });
    assert.ok(!("unsupported" in entry.program));
    const splits = threadSteps(entry.program).flatMap((s) => ("parallel" in s ? [{ fn: s.parallel.fn, args: s.parallel.args, ...s.split }] : []));
    assert.equal(splits.length, 5);
    const pixels = splits.filter((s) => s.range?.kernel === "conv2dIm2colPixels");
    const tile = (s: (typeof splits)[number]) => s.args[24];
    const share = (s: (typeof splits)[number], n: number) => Math.ceil(Math.ceil(s.units / 8) / n) * 8;
    assert.ok(pixels.some((s) => s.units % 8 !== 0), "a plane whose pixels end in a ragged GEMM tile");
    assert.ok(pixels.some((s) => share(s, 2) % tile(s) !== 0 && share(s, 3) % tile(s) !== 0), "2 and 3 workers' ranges start inside the whole call's im2col blocks");
    assert.ok(splits.some((s) => s.fn === "conv2dIm2col" && !s.range && s.units === s.args[8]), "an im2col split by channels");
    assert.ok(splits.some((s) => s.fn === "conv2d" && s.units % 4 !== 0), "a direct convolution with a ragged channel block");
  });

  test("a fault on worker 0 (a gather index out of range) is run()'s status, later steps still meet at their barriers", async () => {
    const w = Tensor.randn([32, 32], { generator: rng });
    const model = new FnModule((table: Tensor, idx: Tensor) => apply("matmul", [apply("gather", [table, idx], { axis: 0 }), w], {}).relu());
    const { wasm } = await compile(model, { table: [16, 32], idx: { shape: [4], dtype: "int32" } }, { target: "wasm-simd-threads" });
    const threaded = await loadThreadedBlob(wasm, { threads: 2, source: "gather.wasm" });
    try {
      const table = Tensor.randn([16 * 32], { generator: rng }).data as Float32Array;
      await assert.rejects(threaded.run({ table, idx: new Int32Array([0, 3, 16, 1]) }), (e: Error) => e instanceof TeenygradError && /^gather\.wasm: run\(\) returned status 2 \(an index out of range in a gather\)$/.test(e.message));
      const ok = await threaded.run({ table, idx: new Int32Array([0, 3, 15, 1]) });
      const single = await loadBlob((await compile(model, { table: [16, 32], idx: { shape: [4], dtype: "int32" } })).wasm);
      const want = single.run({ table, idx: new Int32Array([0, 3, 15, 1]) });
      for (const name of Object.keys(want)) assert.ok(Buffer.from(bytesOf(ok[name])).equals(Buffer.from(bytesOf(want[name]))));
    } finally {
      await threaded.terminate();
    }
  });

  test("bad uses fail clearly: thread counts out of range, the wrong loader, --wasi", async () => {
    manualSeed(SEED);
    const net = new MLP();
    const threaded = await compile(net, mlpInputs, { target: "wasm-simd-threads", threads: 2 });
    const single = await compile(net, mlpInputs, { target: "wasm-simd" });
    for (const threads of [0, 3, 1.5]) {
      await assert.rejects(loadThreadedBlob(threaded.wasm, { threads, source: "mlp.wasm" }), (e: Error) => e instanceof TeenygradError && e.message === `mlp.wasm: threads must be an integer in [1, 2] (the blob's maxThreads), got ${threads}`);
    }
    await assert.rejects(loadBlob(threaded.wasm, { source: "mlp.wasm" }), (e: Error) => e instanceof TeenygradError && /^mlp\.wasm: a wasm-simd-threads blob runs on workers sharing its imported memory: load it with loadThreadedBlob$/.test(e.message));
    await assert.rejects(loadThreadedBlob(single.wasm, { source: "mlp.wasm" }), (e: Error) => e instanceof TeenygradError && /not a threaded blob \(target wasm-simd\)/.test(e.message));
    await assert.rejects(compile(net, mlpInputs, { target: "wasm-simd-threads", wasi: true }), (e: Error) => e instanceof TeenygradError && /reactor blobs only/.test(e.message));
    await assert.rejects(compile(net, mlpInputs, { target: "wasm-simd-threads", threads: 0 }), (e: Error) => e instanceof TeenygradError && /threads must be an integer in \[1, 64\], got 0/.test(e.message));
    // weights shipped apart: written once into the shared memory
    const apart = await compile(net, mlpInputs, { target: "wasm-simd-threads", separateWeights: true });
    await assert.rejects(loadThreadedBlob(apart.wasm, { source: "mlp.wasm" }), (e: Error) => e instanceof TeenygradError && /weights are in a separate file/.test(e.message));
    const withWeights = await loadThreadedBlob(apart.wasm, { threads: 2, weights: apart.weights! });
    const image = Tensor.randn([784], { generator: rng }).data as Float32Array;
    const want = (await loadBlob(single.wasm)).run({ image }).output;
    assert.ok(Buffer.from(bytesOf((await withWeights.run({ image })).output)).equals(Buffer.from(bytesOf(want))));
    await withWeights.terminate();
    const model = await loadThreadedBlob(threaded.wasm, { threads: 2 });
    await model.terminate();
    await assert.rejects(model.run({ image: new Float32Array(784) }), /terminated/);
  });
});

describe(`wasm-simd-threads through the engines and the CLI (seed ${SEED})`, () => {
  test("runOnEngine: node runs a threaded blob on its workers, every other engine refuses it clearly", async () => {
    manualSeed(SEED);
    const net = new CNN();
    const threaded = await compile(net, cnnInputs, { target: "wasm-simd-threads", threads: 2 });
    const single = await compile(net, cnnInputs, { target: "wasm-simd" });
    const image = Tensor.randn([784], { generator: rng }).data as Float32Array;
    const got = await runOnEngine("node", threaded.wasm, { image }, { source: "cnn.wasm" });
    assert.ok(Buffer.from(bytesOf(got.output)).equals(Buffer.from(bytesOf((await loadBlob(single.wasm)).run({ image }).output))));
    for (const engine of ["wasmtime", "wamr", "wasm3", "chromium", "qemu-cortex-m4"] as const) {
      await assert.rejects(runOnEngine(engine, threaded.wasm, { image }, { source: "cnn.wasm" }), (e: Error) => e instanceof TeenygradError && e.message === `cnn.wasm: a wasm-simd-threads blob runs on workers sharing its imported memory (engine node, or loadThreadedBlob in a cross-origin isolated page); ${engine} cannot run it: compile for another target`);
    }
    assert.deepEqual(availableEngines(inspectWasm(threaded.wasm).features), ["node"]);
    await assert.rejects(compile(net, cnnInputs, { target: "wasm-simd", threads: 2 }), (e: Error) => e instanceof TeenygradError && e.message === "threads (2) applies to target wasm-simd-threads; wasm-simd runs on one thread");
  });

  test("teenygrad compile --threads N sets the blob's maxThreads; run --engine node runs it, wasmtime refuses it", { timeout: 120_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), "teenygrad-threads-cli-"));
    const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "compiler/cli/bin.ts", ...args], { encoding: "utf8", timeout: 60_000 });
    const blob = join(dir, "cnn.wasm");
    const compiled = cli("compile", "examples/cnn.ts", "-o", blob, "--target", "wasm-simd-threads", "--threads", "3");
    assert.equal(compiled.status, 0, compiled.stderr);
    assert.equal(inspectWasm(readFileSync(blob)).manifest?.threads?.maxThreads, 3);
    writeFileSync(join(dir, "x.npy"), encodeNpy("float32", [1, 1, 28, 28], Tensor.randn([784], { generator: rng }).data as Float32Array));
    const ran = cli("run", blob, "--input", `image=${join(dir, "x.npy")}`, "--out", join(dir, "out"), "--engine", "node");
    assert.equal(ran.status, 0, ran.stderr);
    assert.match(ran.stdout, /output: 10 values/);
    const refused = cli("run", blob, "--input", `image=${join(dir, "x.npy")}`, "--out", join(dir, "out2"), "--engine", "wasmtime");
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /wasm-simd-threads blob runs on workers sharing its imported memory .*; wasmtime cannot run it/);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, "no stack trace");
    const bad = cli("compile", "examples/cnn.ts", "-o", join(dir, "x.wasm"), "--target", "wasm-simd-threads", "--threads", "two");
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /bad thread count 'two'/);
  });
});

describe(`loadBlobPool (seed ${SEED})`, () => {
  test("independent inferences on 3 workers: each answer is loadBlob's for its own input, in any interleaving", async () => {
    manualSeed(SEED);
    const { wasm, manifest } = await compile(new CNN(), cnnInputs, { target: "wasm-simd" });
    const reference = await loadBlob(wasm);
    const pool = await loadBlobPool(wasm, { workers: 3, source: "cnn.wasm" });
    try {
      assert.equal(pool.size, 3);
      assert.deepEqual(pool.manifest, manifest);
      const inputs = Array.from({ length: 10 }, () => randomInputs({ manifest } as CompileResult));
      const answers = await Promise.all(inputs.map((x) => pool.run(x)));
      answers.forEach((answer, i) => {
        const want = reference.run(inputs[i]);
        for (const [name, view] of Object.entries(want)) assert.ok(Buffer.from(bytesOf(answer[name].data)).equals(Buffer.from(bytesOf(view))), `answer ${i} output ${name} (seed ${SEED})`);
      });
      await assert.rejects(pool.run({ nope: [1] }), (e: Error) => e instanceof TeenygradError && /unknown input "nope"/.test(e.message));
      // a failed run gives its worker back
      assert.equal((await Promise.all(inputs.slice(0, 4).map((x) => pool.run(x)))).length, 4);
    } finally {
      await pool.terminate();
    }
    await assert.rejects(loadBlobPool(wasm, { workers: 0, source: "cnn.wasm" }), (e: Error) => e instanceof TeenygradError && /a pool needs a positive integer number of workers, got 0/.test(e.message));
  });
});

describe(`wasm-simd-threads in Chromium (seed ${SEED})`, () => {
  const CI = Boolean(process.env.CI);
  const chromiumPath = findChromium();
  const skip = !CI && !chromiumPath && "chromium not found: bash scripts/install-chromium.sh";

  test("a cross-origin isolated page runs the threaded blob in Web Workers, bit for bit the single-threaded blob", { skip }, async () => {
    const playwright = await import("playwright-core");
    const esbuild = await import("esbuild");
    const bundle = async (contents: string) =>
      (await esbuild.build({ stdin: { contents, resolveDir: join(import.meta.dirname, ".."), loader: "ts" }, bundle: true, format: "esm", platform: "browser", target: "es2022", write: false, external: ["node:*"], logLevel: "silent" })).outputFiles[0].text;
    const files = new Map<string, { type: string; body: string | Uint8Array }>([
      ["/", { type: "text/html", body: `<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>` }],
      ["/page.js", { type: "text/javascript", body: await bundle(`
        import { loadThreadedBlob } from "./compiler/host/threads.ts";
        globalThis.runThreaded = async (name, threads, inputs) => {
          const bytes = new Uint8Array(await (await fetch("/" + name + ".wasm")).arrayBuffer());
          const model = await loadThreadedBlob(bytes, { threads, source: name, workerUrl: new URL("/threads-worker.js", location.href) });
          try {
            const out = await model.runTensors(Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Float32Array(v)])));
            return { isolated: crossOriginIsolated, outputs: Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data)])) };
          } finally {
            await model.terminate();
          }
        };
        document.body.dataset.ready = "yes";`) }],
      ["/threads-worker.js", { type: "text/javascript", body: await bundle(`import "./compiler/host/threads-worker.ts";`) }],
    ]);
    const cases = CASES.filter((c) => ["small CNN", "KWS DS-CNN (example)", "MLPerf Tiny ResNet-8"].includes(c.name));
    const expected = new Map<string, { inputs: Record<string, Float32Array>; outputs: Record<string, Uint8Array> }>();
    for (const [i, c] of cases.entries()) {
      const single = await c.build("wasm-simd");
      const threaded = await c.build("wasm-simd-threads");
      files.set(`/m${i}.wasm`, { type: "application/wasm", body: threaded.wasm });
      const inputs = randomInputs(single);
      const outputs = Object.fromEntries(Object.entries((await loadBlob(single.wasm)).run(inputs)).map(([k, v]) => [k, bytesOf(v).slice()]));
      expected.set(`m${i}`, { inputs, outputs });
    }
    const server = await serveLocal((request, response) => {
      const file = files.get(new URL(request.url ?? "/", "http://127.0.0.1").pathname);
      if (!file) {
        response.writeHead(404).end();
        return;
      }
      // cross-origin isolation: SharedArrayBuffer (the shared memory) exists only on such a page
      response.writeHead(200, { "content-type": file.type, "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp", "cache-control": "no-store" });
      response.end(file.body);
    });
    const browser = await playwright.chromium.launch({ executablePath: chromiumPath!, headless: true, args: CHROMIUM_FLAGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(server.url);
      await page.waitForSelector("body[data-ready=yes]", { state: "attached", timeout: 10_000 });
      for (const [i, c] of cases.entries()) {
        const want = expected.get(`m${i}`)!;
        for (const threads of [1, 2, 3]) {
          const inputs = Object.fromEntries(Object.entries(want.inputs).map(([k, v]) => [k, Array.from(v)]));
          const got = await page.evaluate(([name, n, x]) => (globalThis as unknown as { runThreaded: (a: string, b: number, c: unknown) => Promise<{ isolated: boolean; outputs: Record<string, number[]> }> }).runThreaded(name, n, x), [`m${i}`, threads, inputs] as const);
          assert.equal(got.isolated, true);
          for (const [name, bytes] of Object.entries(want.outputs)) {
            assert.ok(Buffer.from(bytesOf(Float32Array.from(got.outputs[name]))).equals(Buffer.from(bytes)), `${c.name} in Chromium, ${threads} threads: output ${name} differs (seed ${SEED})`);
          }
        }
      }
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
