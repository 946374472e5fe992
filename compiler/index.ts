/** teenygrad: the public API. */
export * as nn from "./tensor/nn";
export { Tensor, type NestedArray, type ConvOptions, type PoolOptions } from "./tensor/tensor";
export { Generator, manualSeed } from "./tensor/random";
export { compile, type CompileOptions, type CompileReport, type CompileResult } from "./compile";
export { loadModelFile } from "./load-model";
export { loadBlob, type LoadedModel } from "./host/loader";
export { parseNpy, encodeNpy } from "./host/npy";
export { parseSafetensors, encodeSafetensors } from "./host/safetensors";
export { inspectWasm, type WasmInfo } from "./host/wasm-info";
export type { Manifest, TensorSlot } from "./codegen/manifest";
export { interpret } from "./ops/interpret";
export { TeenygradError } from "./errors";
export type { DType } from "./ir/dtype";
export { TARGETS, getTarget, type Target } from "../targets";
