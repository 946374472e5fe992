import { existsSync } from "node:fs";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { fail } from "./errors.js";
import { isModule, type InputSpec, type Module } from "./tensor/nn.js";

export interface ModelFile {
  model: Module;
  inputs: Record<string, number[] | InputSpec>;
  name: string;
}

let typeScriptRegistered = false;

/**
 * Lets import() load .ts files. tsx is registered process-wide (not tsImport's private namespace) so a
 * model importing this library gets the very same module instances as the compiler that traces it.
 */
async function registerTypeScript(): Promise<void> {
  if (typeScriptRegistered) return;
  (await import("tsx/esm/api")).register();
  typeScriptRegistered = true;
}

/**
 * Loads a model module: a .ts/.js file whose default export is an nn.Module (class or instance) and
 * which exports `inputs` (input name → shape).
 */
export async function loadModelFile(path: string): Promise<ModelFile> {
  const file = resolve(path);
  if (!existsSync(file)) fail(`model file not found: ${path}`);
  const ext = extname(file).toLowerCase();
  if (ext === ".onnx" || ext === ".tflite") fail(`${path}: importing ${ext} models is not supported yet`);
  if (![".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"].includes(ext)) fail(`${path}: expected a .ts or .js model module, got '${ext || "no extension"}'`);
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
