import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { compile, loadBlob, manualSeed, TeenygradError, type nn } from "../compiler/index.js";
import type { TypedArray } from "../compiler/ir/dtype.js";
import { runOnEngine } from "../targets/engines.js";
import { CHROMIUM_FLAGS, findChromium, runInChromium } from "../targets/chromium/runner.js";
import { serveLocal, staticFiles } from "../targets/chromium/server.js";
import { buildBrowserExample } from "../examples/browser/build.js";
import CNN, { inputs as cnnInputs } from "../examples/cnn.js";
import KWS, { inputs as kwsInputs } from "../examples/kws-dscnn.js";
import MLP, { inputs as mlpInputs } from "../examples/mlp.js";
import { randn, SEED } from "./helpers/compiled.js";
import { separateWeightsModel, trappingModel } from "./helpers/host-models.js";

/** The example page and the Chromium engine, in real headless Chromium (Debian's package, driven by playwright-core). */

const CI = Boolean(process.env.CI);
const chromiumPath = findChromium();
// an optional development dependency: without it only the page test is skipped
const playwright = await import("playwright-core").catch(() => null);
const noChromium = !chromiumPath && "chromium not found: bash scripts/install-chromium.sh";
const noPlaywright = !playwright && "playwright-core not installed: npm install";
const skipEngine = !CI && noChromium;
const skipPage = !CI && (noChromium || noPlaywright);

const PAGE_DIR = "out/browser";
const SCREENSHOT = "out/browser-digit.png";
const VIEWPORT = { width: 860, height: 560 };

const bytesOf = (a: TypedArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe(`browser (seed ${SEED})`, () => {
  test("chromium and playwright-core are available (required under CI)", { skip: !CI && (noChromium || noPlaywright) }, () => {
    assert.ok(chromiumPath, "CI must have chromium: bash scripts/install-chromium.sh");
    assert.ok(playwright, "CI must have playwright-core: npm ci");
  });

  test("the example page, with weights trained on MNIST, reads a drawn 7 as 7, exactly as Node's loader does", { skip: skipPage }, async () => {
    const built = await buildBrowserExample(PAGE_DIR);
    assert.ok(built.heldOutAccuracy > 0.9, `the page's MLP reaches only ${built.heldOutAccuracy} on the held-out digits`);
    const server = await serveLocal(staticFiles(PAGE_DIR));
    // playwright adds --headless and a fresh temporary --user-data-dir itself
    const browser = await playwright!.chromium.launch({ executablePath: chromiumPath!, headless: true, args: CHROMIUM_FLAGS });
    try {
      const page = await browser.newPage({ viewport: VIEWPORT });
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(e.message));
      await page.goto(server.url);
      await page.waitForSelector("body[data-model=ready]", { timeout: 10_000 });

      // a "7": a bar along the top, then a diagonal down to the bottom left
      const box = (await page.locator("#pad").boundingBox())!;
      const at = (x: number, y: number): [number, number] => [box.x + x * box.width, box.y + y * box.height];
      await page.mouse.move(...at(0.25, 0.22));
      await page.mouse.down();
      await page.mouse.move(...at(0.75, 0.22), { steps: 12 });
      await page.mouse.move(...at(0.42, 0.8), { steps: 16 });
      await page.mouse.up();

      // a string, not a function: tsx would wrap a function in helpers the page does not have
      const lastRun = (await page.evaluate("window.lastRun")) as { input: number[]; output: number[]; top: number } | undefined;
      assert.ok(lastRun, "the page ran the model after the stroke");
      assert.equal(lastRun.input.length, 28 * 28);
      const ink = lastRun.input.filter((v) => v > 0.5).length;
      assert.ok(ink > 20 && ink < 28 * 28 / 3, `${ink} inked pixels: the stroke should cover part of the image`);

      const model = await loadBlob(await readFile(join(PAGE_DIR, "model.wasm")));
      const [input] = model.manifest.inputs;
      const [output] = model.manifest.outputs;
      const expected = Array.from(model.run({ [input.name]: lastRun.input })[output.name] as Float32Array);
      assert.deepEqual(lastRun.output, expected, "the page's outputs are bit for bit Node's for the same input");
      const sum = expected.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5, `the blob ends in a softmax: its outputs sum to ${sum}`);
      const best = expected.indexOf(Math.max(...expected));
      assert.equal(lastRun.top, best);
      assert.equal(best, 7, `the drawn 7 is read as ${best}: ${expected.map((v) => v.toFixed(3)).join(", ")}`);
      assert.equal(await page.textContent("#top"), String(best), "the page shows the top class");
      assert.deepEqual(await page.locator("#outputs .value").allTextContents(), expected.map((v) => v.toFixed(4)), "the page shows every probability");

      await mkdir("out", { recursive: true });
      await page.screenshot({ path: SCREENSHOT });
      console.log(`screenshot: ${SCREENSHOT}`);
      const png = await readFile(SCREENSHOT);
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
      assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [VIEWPORT.width, VIEWPORT.height], "PNG size is the viewport");
      assert.ok(png.length > 10_000, `a ${png.length}-byte screenshot is too small to show the page`);

      await page.click("#clear");
      assert.equal(await page.textContent("#top"), "–");
      assert.equal(await page.evaluate("window.lastRun"), undefined, "Clear forgets the last run");
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      await server.close();
    }
  });

  const examples: [string, () => nn.Module, Record<string, number[]>][] = [
    ["mlp", () => new MLP(), mlpInputs],
    ["cnn", () => new CNN(), cnnInputs],
    ["kws-dscnn", () => new KWS(), kwsInputs],
  ];
  for (const [name, make, inputs] of examples) {
    test(`${name} (wasm-simd): runInChromium gives Node's outputs bit for bit`, { skip: skipEngine }, async () => {
      manualSeed(SEED);
      const res = await compile(make(), inputs, { name });
      const [inputName, shape] = Object.entries(inputs)[0];
      const values = { [inputName]: randn(...shape).data };
      const inNode = await runOnEngine("node", res.wasm, values);
      const inChromium = await runInChromium(res.wasm, values, { source: name });
      assert.deepEqual(Object.keys(inChromium), Object.keys(inNode));
      for (const [output, array] of Object.entries(inNode)) {
        assert.ok(inChromium[output] instanceof Float32Array);
        assert.deepEqual(bytesOf(inChromium[output]), bytesOf(array), `${name}: output "${output}" differs (seed ${SEED})`);
      }
    });
  }

  test("runInChromium passes a separate weights file and reports failures", { skip: skipEngine }, async () => {
    const split = separateWeightsModel();
    const out = await runInChromium(split.bytes, { x: [1, 2, 3, 4, 5] }, { weights: new Uint8Array(new Float32Array([10, 20, 30, 40, 50]).buffer) });
    assert.deepEqual(Array.from(out.y as Float32Array), [11, 22, 33, 44, 55]);

    await assert.rejects(runInChromium(trappingModel().bytes, { x: [1, 2, 3, 4, 5] }, { source: "trap.wasm" }), (e: Error) => {
      assert.ok(e instanceof TeenygradError);
      assert.match(e.message, /^chromium: trap\.wasm: run\(\) trapped: unreachable/);
      return true;
    });
    await assert.rejects(runInChromium(split.bytes, { x: [1, 2, 3, 4, 5] }), /weights are in a separate file/);
    await assert.rejects(runInChromium(split.bytes, { x: [1, 2] }), /input "x" expects float32\[5\] = 5 elements, got 2/);

    // a browser that dies before the page answers
    const chosen = process.env.TEENYGRAD_CHROMIUM;
    process.env.TEENYGRAD_CHROMIUM = "/bin/false";
    try {
      await assert.rejects(runInChromium(split.bytes, { x: [1, 2, 3, 4, 5] }, { source: "y.wasm" }), /^TeenygradError: chromium \(y\.wasm\): Chromium exited \(exit code 1\) before the page answered/);
    } finally {
      if (chosen === undefined) delete process.env.TEENYGRAD_CHROMIUM;
      else process.env.TEENYGRAD_CHROMIUM = chosen;
    }
  });
});
