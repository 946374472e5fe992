import { fail } from "../compiler/errors.js";
import type { WasmFeature } from "../compiler/host/wasm-info.js";
import type { Engine } from "./engines.js";

/**
 * A target: what the compiled module may use and where it runs. The compiler builds the same kernel
 * sources with or without SIMD from this, and refuses to emit a module using a feature it forbids.
 */
export interface Target {
  name: string;
  description: string;
  /** builds the SIMD paths of runtime-as (ASC_FEATURE_SIMD) */
  simd: boolean;
  /** builds the fused multiply-adds of relaxed SIMD (ASC_FEATURE_RELAXED_SIMD) */
  relaxedSimd: boolean;
  /** features the module may contain */
  features: WasmFeature[];
  /** largest linear memory the target's engines allow, in 64 KiB pages */
  maxPages: number;
  defaultEngine: Engine;
  /**
   * Where the weights live. "linear-memory" (default): a data segment, so the blob is self-contained and
   * instantiation copies the weights into RAM. "wamr-shared-heap": outside linear memory, in a region the
   * host attaches read-only as WAMR's shared heap (targets/wamr/teenygrad_weights.h), which WAMR maps at
   * the top of the 32-bit address space; on a microcontroller the region is the weights' array in flash.
   */
  weights?: "linear-memory" | "wamr-shared-heap";
  /**
   * one model's kernels split over workers that share an imported memory (compiler/codegen/threads.ts); the
   * blob exports run_thread(tid, n) instead of run() and loads with loadThreadedBlob
   */
  threads?: boolean;
  /** the compact int8 convolution kernels instead of the packed ones (see LoweringOptions in compiler/ops/registry.ts) */
  compactInt8?: boolean;
}

/**
 * WAMR rounds linear memory up to its platform page (os_getpagesize(): 4 KiB on Linux, Zephyr, ESP-IDF,
 * RT-Thread) and needs a pre-allocated shared heap to be a whole number of those pages.
 */
export const WAMR_PAGE_BYTES = 4096;

const MVP_PLUS: WasmFeature[] = ["bulk-memory", "mutable-globals", "nontrapping-fptoint", "sign-ext", "multivalue"];

export const TARGETS: Record<string, Target> = {
  "wasm-simd": {
    name: "wasm-simd",
    description: "128-bit SIMD: Node, browsers, wasmtime",
    simd: true,
    relaxedSimd: false,
    features: [...MVP_PLUS, "simd128"],
    maxPages: 65536,
    defaultEngine: "node",
  },
  "wasm-simd-threads": {
    name: "wasm-simd-threads",
    description: "wasm-simd with one model's kernels split over N workers sharing an imported memory: Node worker_threads, browsers (cross-origin isolated)",
    simd: true,
    relaxedSimd: false,
    features: [...MVP_PLUS, "simd128", "threads"],
    maxPages: 65536,
    defaultEngine: "node",
    threads: true,
  },
  "wasm-relaxed": {
    name: "wasm-relaxed",
    description: "SIMD with relaxed-SIMD fused multiply-add: browsers, wasmtime, Node with --experimental-wasm-relaxed-simd",
    simd: true,
    relaxedSimd: true,
    features: [...MVP_PLUS, "simd128", "relaxed-simd"],
    maxPages: 65536,
    defaultEngine: "wasmtime",
  },
  "wasm-scalar": {
    name: "wasm-scalar",
    description: "no v128 anywhere: WAMR and wasm3 interpreters on microcontrollers",
    simd: false,
    relaxedSimd: false,
    features: MVP_PLUS,
    maxPages: 65536,
    defaultEngine: "wamr",
  },
  "wamr-flash": {
    name: "wamr-flash",
    description: "wasm-scalar with the weights outside the module: WAMR reads them in place from flash as its shared heap (the C embedding, targets/wamr)",
    simd: false,
    relaxedSimd: false,
    features: MVP_PLUS,
    maxPages: 65536,
    defaultEngine: "wamr",
    weights: "wamr-shared-heap",
    compactInt8: true,
  },
  "wasm-mvp": {
    name: "wasm-mvp",
    description: "scalar and without bulk memory (memory.copy/fill become loops): wasm3 0.4 and other MVP-only engines",
    simd: false,
    relaxedSimd: false,
    features: MVP_PLUS.filter((f) => f !== "bulk-memory" && f !== "multivalue"),
    maxPages: 65536,
    defaultEngine: "wasm3",
  },
};

export function getTarget(name: string): Target {
  return TARGETS[name] ?? fail(`unknown target '${name}' (known: ${Object.keys(TARGETS).join(", ")})`);
}
