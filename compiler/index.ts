/** teenygrad: the public API. */
export * as nn from "./tensor/nn.js";
export { Tensor, noGrad, type NestedArray, type ConvOptions, type PoolOptions } from "./tensor/tensor.js";
export * as losses from "./tensor/losses.js";
export * as optim from "./tensor/optim.js";
export { Generator, manualSeed } from "./tensor/random.js";
export { compile, type CompileOptions, type CompileReport, type CompileResult } from "./compile.js";
export { loadModelFile } from "./load-model.js";
export { importOnnx, type OnnxImportOptions, type ImportedModel } from "./import/onnx/index.js";
export { loadBlob, type LoadedModel } from "./host/loader.js";
export { parseNpy, encodeNpy } from "./host/npy.js";
export { parseSafetensors, encodeSafetensors } from "./host/safetensors.js";
export { inspectWasm, type WasmInfo } from "./host/wasm-info.js";
export type { Manifest, TensorSlot } from "./codegen/manifest.js";
export { interpret } from "./ops/interpret.js";
export { TeenygradError } from "./errors.js";
export type { DType } from "./ir/dtype.js";
export { TARGETS, getTarget, type Target } from "../targets/index.js";
export { compileTraining, loadTrainingBlob, trainLoop, evaluate, loadMnist, lossCurveSvg, formatTrainingReport, TrainStepError, type TrainingOptions, type TrainingReport, type TrainingBlob, type OptimizerSpec, type Dataset } from "./training/index.js";
