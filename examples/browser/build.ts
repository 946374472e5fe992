/**
 * Builds the browser example into a directory: index.html, main.js (main.ts and the loader bundled by esbuild) and
 * model.wasm, the MLP example followed by a softmax (so the page shows class probabilities), compiled for wasm-simd.
 * There is no trained model yet: the weights are the seeded initialisation.
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
import { compile, manualSeed, nn, type CompileReport } from "../../compiler/index.js";
import MLP, { inputs } from "../mlp.js";
import { serveLocal, staticFiles } from "../../targets/chromium/server.js";

export const DEFAULT_OUT_DIR = "out/browser";
const SEED = 42;
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export async function buildBrowserExample(outDir = DEFAULT_OUT_DIR): Promise<CompileReport> {
  await mkdir(outDir, { recursive: true });
  manualSeed(SEED);
  const model = new nn.Sequential(new MLP(), new nn.Softmax(-1));
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
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { serve: { type: "boolean" }, port: { type: "string", default: "8080" } },
  });
  const outDir = positionals[0] ?? DEFAULT_OUT_DIR;
  const report = await buildBrowserExample(outDir);
  console.log(`${outDir}: index.html, main.js, model.wasm (${report.wasmBytes} bytes, ${report.memory.pages} pages of memory)`);
  if (values.serve) {
    const server = await serveLocal(staticFiles(outDir), Number(values.port));
    console.log(`serving ${outDir} on ${server.url} (Ctrl-C stops)`);
  }
}
