import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The MLPerf Tiny reference models (shared data, never copied into the repository): where they are, and which
 * float/int8 pairs belong together. Node only.
 */

export interface MlperfModel {
  /** benchmark name */
  task: "kws" | "vww" | "ic" | "ad" | "sww";
  file: string;
  quantized: boolean;
  about: string;
}

export const MLPERF_MODELS: MlperfModel[] = [
  { task: "kws", file: "kws_ref_model_float32.tflite", quantized: false, about: "keyword spotting, DS-CNN" },
  { task: "kws", file: "kws_ref_model.tflite", quantized: true, about: "keyword spotting, DS-CNN" },
  { task: "vww", file: "vww_96_float.tflite", quantized: false, about: "visual wake words, MobileNetV1 0.25 96x96" },
  { task: "vww", file: "vww_96_int8.tflite", quantized: true, about: "visual wake words, MobileNetV1 0.25 96x96" },
  { task: "ic", file: "pretrainedResnet.tflite", quantized: false, about: "image classification, ResNet-8 (CIFAR-10)" },
  { task: "ic", file: "pretrainedResnet_quant.tflite", quantized: true, about: "image classification, ResNet-8 (CIFAR-10)" },
  { task: "ad", file: "ad01_fp32.tflite", quantized: false, about: "anomaly detection, FC autoencoder" },
  { task: "ad", file: "ad01_int8.tflite", quantized: true, about: "anomaly detection, FC autoencoder" },
  { task: "sww", file: "str_ww_ref_model.tflite", quantized: true, about: "streaming wake word, DS-CNN" },
];

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * The directory holding the .tflite files: $TEENYGRAD_DATA/mlperf-tiny (or $TEENYGRAD_DATA itself when the
 * files are directly there), else ../shared/data/mlperf-tiny beside the repository; null when neither has them.
 */
export function findMlperfDir(): string | null {
  const candidates = process.env.TEENYGRAD_DATA
    ? [join(process.env.TEENYGRAD_DATA, "mlperf-tiny"), process.env.TEENYGRAD_DATA]
    : [join(REPO, "..", "shared", "data", "mlperf-tiny")];
  return candidates.find((d) => existsSync(join(d, MLPERF_MODELS[0].file))) ?? null;
}

export const MLPERF_WHERE = "$TEENYGRAD_DATA/mlperf-tiny or ../shared/data/mlperf-tiny (beside the repository)";
