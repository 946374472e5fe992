import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** PyPI's onnx and onnxruntime in the venv scripts/install-onnx.sh makes: builds reference models and runs them. */

export const ONNX_VERSION = "1.22.0"; // keep in sync with ONNX_VERSION in scripts/install-onnx.sh

/** $TEENYGRAD_ONNX_PYTHON, else ${TEENYGRAD_CACHE:-~/.cache/teenygrad}/onnx-<version>/bin/python; null when absent. */
export function findOnnxPython(): string | null {
  const explicit = process.env.TEENYGRAD_ONNX_PYTHON;
  if (explicit) return existsSync(explicit) ? explicit : null;
  const python = join(process.env.TEENYGRAD_CACHE ?? join(homedir(), ".cache", "teenygrad"), `onnx-${ONNX_VERSION}`, "bin", "python");
  return existsSync(python) ? python : null;
}

export const NO_ONNX_PYTHON = "onnx/onnxruntime venv not found: run `bash scripts/install-onnx.sh` (or set TEENYGRAD_ONNX_PYTHON)";

/** Runs a Python script from test/helpers with the venv's python; throws with its stderr when it fails. */
export function runOnnxPython(python: string, script: string, args: string[]): void {
  const r = spawnSync(python, [join(import.meta.dirname, script), ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${r.stderr}`);
}
