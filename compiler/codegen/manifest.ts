import type { DType } from "../ir/dtype.js";

/**
 * The JSON stored in the blob's `teenygrad.manifest` custom section. A host in any language finds every
 * buffer from it without calling exports. All offsets are absolute byte addresses in linear memory.
 */
export interface TensorSlot {
  name: string;
  dtype: DType;
  shape: number[];
  offset: number;
  bytes: number;
}

export interface Manifest {
  format: "teenygrad";
  version: 1;
  /** target name, e.g. "wasm-simd" */
  target: string;
  /** WASM features the code may use, e.g. ["simd128", "bulk-memory"] */
  features: string[];
  /** "reactor": exports memory + run() -> i32; "wasi": a WASI command (_start reads inputs from stdin, writes outputs to stdout) */
  flavour: "reactor" | "wasi";
  /** linear memory: initial == maximum pages */
  memory: { pages: number; bytes: number };
  arena: { offset: number; bytes: number; lowerBound: number; greedyBaseline: number };
  weights: {
    offset: number;
    bytes: number;
    /** false: the weights were written to a separate file the host copies to `offset` before the first run */
    embedded: boolean;
    tensors: TensorSlot[];
  };
  inputs: TensorSlot[];
  outputs: TensorSlot[];
}

export const MANIFEST_SECTION = "teenygrad.manifest";
