import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, extname, resolve } from "node:path";
import { register } from "node:module";
import { pathToFileURL } from "node:url";
import { fail } from "./errors.js";
import { importOnnx, type ConstantInput } from "./import/onnx/index.js";
import { importTfliteModel } from "./import/tflite/index.js";
import type { Graph } from "./ir/graph.js";
import { isModule, type InputSpec, type Module } from "./tensor/nn.js";

export interface ModelFile {
  /** a model module's nn.Module, or the graph an .onnx file imports to */
  model: Module | Graph;
  inputs: Record<string, number[] | InputSpec>;
  name: string;
  /** what an importer changed about how the model computes (e.g. int8 run in float32) */
  notes?: string[];
}

let typeScriptRegistered = false;

/**
 * Lets import() load .ts files. tsx is registered process-wide (not tsImport's private namespace) so a
 * model importing this library gets the very same module instances as the compiler that traces it.
 */
async function registerTypeScript(): Promise<void> {
  if (typeScriptRegistered) return;
  (await import("tsx/esm/api")).register();
  // registered after tsx, so it resolves first: see ESM_TYPESCRIPT_HOOK
  register(`data:text/javascript,${encodeURIComponent(ESM_TYPESCRIPT_HOOK)}`);
  typeScriptRegistered = true;
}

/**
 * A module-resolution hook that loads .ts/.tsx files as ES modules even in a `"type": "commonjs"` package
 * (what `npm init -y` writes). tsx would hand them to the CommonJS loader, which then fails on the `import`
 * statements ("Cannot require() ES Module … in a cycle"); a model module imports teenygrad, which is ESM only.
 */
const ESM_TYPESCRIPT_HOOK = `export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const commonjs = resolved.format === "commonjs" || resolved.format === "commonjs-typescript";
  return commonjs && /\\.tsx?$/.test(new URL(resolved.url).pathname) ? { ...resolved, format: "module" } : resolved;
}`;

/**
 * Loads a model: an .onnx or .tflite file, or a model module (a .ts/.js file whose default export is an nn.Module
 * class or instance and which exports `inputs`, input name → shape). `inputShapes` fixes input shapes
 * (an ONNX model's dynamic dims; a module's declared shapes); `constants` pins ONNX inputs to values at compile time;
 * `elements` gives an ONNX sequence input's element shapes (or "none" for an empty optional input).
 */
export async function loadModelFile(path: string, inputShapes: Record<string, number[]> = {}, constants: Record<string, ConstantInput> = {}, elements: Record<string, number[][] | "none"> = {}): Promise<ModelFile> {
  const file = resolve(path);
  if (!existsSync(file)) fail(`model file not found: ${path}`);
  const ext = extname(file).toLowerCase();
  const name = basename(file, extname(file));
  if (ext === ".onnx") {
    const imported = importOnnx(readFileSync(file), { inputShapes, constantInputs: constants, inputElements: elements, baseDir: dirname(file), source: basename(file) });
    return { model: imported.graph, inputs: imported.inputs, name, notes: imported.notes };
  }
  if (Object.keys(elements).length) fail(`--input ${Object.keys(elements).join(", ")}: sequence and optional inputs apply to .onnx models`);
  if (Object.keys(constants).length && ext !== ".onnx") fail(`--const ${Object.keys(constants).join(", ")}: pinning inputs applies to .onnx models`);
  if (ext === ".tflite") {
    const imported = importTfliteModel(readFileSync(file), { source: basename(file) });
    const inputs = Object.fromEntries(imported.graph.inputs.map((v) => [v.name, { shape: [...v.shape], dtype: v.dtype }]));
    for (const [k, shape] of Object.entries(inputShapes)) {
      if (!(k in inputs)) fail(`--input ${k}: the model has no input '${k}' (inputs: ${Object.keys(inputs).join(", ")})`);
      if (shape.join() !== inputs[k].shape.join()) fail(`--input ${k}: a .tflite model's input shapes are fixed (${inputs[k].shape.join("x")})`);
    }
    return { model: imported.graph, inputs, name, notes: imported.notes };
  }
  if (![".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"].includes(ext)) fail(`${path}: expected an .onnx or .tflite model or a .ts/.js model module, got '${ext || "no extension"}'`);
  const loaded = await loadModule(path, file, ext);
  for (const [k, shape] of Object.entries(inputShapes)) {
    if (!(k in loaded.inputs)) fail(`--input ${k}: the model has no input '${k}' (inputs: ${Object.keys(loaded.inputs).join(", ")})`);
    loaded.inputs[k] = shape;
  }
  return loaded;
}

async function loadModule(path: string, file: string, ext: string): Promise<ModelFile & { model: Module }> {
  let mod: Record<string, unknown>;
  try {
    if ([".ts", ".mts", ".cts"].includes(ext)) await registerTypeScript();
    mod = await import(pathToFileURL(file).href);
  } catch (e) {
    fail(`${path}: failed to load the model module: ${(e as Error).message}`);
  }
  const exported = mod.default;
  let model: unknown = exported;
  if (typeof exported === "function") {
    try {
      model = new (exported as new () => unknown)();
    } catch (e) {
      fail(`${path}: constructing the default export failed: ${(e as Error).message}`);
    }
  }
  if (!isModule(model)) fail(`${path}: the default export must be an nn.Module class or instance`);
  const inputs = mod.inputs;
  if (!inputs || typeof inputs !== "object") fail(`${path}: export 'inputs' (input name → shape, e.g. { x: [1, 784] }) is missing`);
  const name = typeof exported === "function" ? exported.name : model.constructor.name;
  return { model, inputs: inputs as ModelFile["inputs"], name };
}
