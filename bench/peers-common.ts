// Shared by bench:peers and bench:models: the benchmark models (PyTorch exports) and small helpers.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const MODELS = ["mlp", "lenet", "kws_dscnn", "ic_resnet8", "vww_mobilenet", "ad_autoencoder"];

/** `--name value` from the command line, else the fallback. */
export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * The directory of the models' ONNX files, exported by bench/peers-models.py with PyTorch on first use into
 * the cache, once per version of that script (Debian's python3-torch, or $TEENYGRAD_TORCH_PYTHON).
 */
export function exportModels(): string {
  const script = join(HERE, "peers-models.py");
  const key = createHash("sha256").update(readFileSync(script)).digest("hex").slice(0, 12);
  const root = join(process.env.TEENYGRAD_CACHE ?? join(homedir(), ".cache", "teenygrad"), "peers-models");
  const dir = join(root, key);
  if (!existsSync(join(dir, `${MODELS[MODELS.length - 1]}.onnx`))) {
    const python = process.env.TEENYGRAD_TORCH_PYTHON ?? "/usr/bin/python3";
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(root, { recursive: true });
    console.error(`exporting the benchmark models with PyTorch (${python}) into ${dir}`);
    execFileSync(python, [script, tmp], { stdio: ["ignore", "ignore", "inherit"] });
    renameSync(tmp, dir);
  }
  return dir;
}
