import { checkBudget, footprint, type Footprint } from "./budget.js";
import { buildModule, type CodegenReport } from "./codegen/build.js";
import { emitEntry } from "./codegen/emit.js";
import type { Manifest, StateSlot, TensorSlot } from "./codegen/manifest.js";
import { layoutMemory } from "./codegen/memory.js";
import { THREAD_ENTRY, threadLayout, threadSteps } from "./codegen/threads.js";
import { fail } from "./errors.js";
import type { Graph, Value } from "./ir/graph.js";
import { optimize, type PassStats } from "./passes/index.js";
import { attachStreamState, resolveStatePairs } from "./passes/stream-state.js";
import type { ArenaPlan, BufferRequest } from "./planner/index.js";
import { isModule, traceModule, type InputSpec, type Module } from "./tensor/nn.js";
import { getTarget, WAMR_PAGE_BYTES } from "../targets/index.js";

export interface CompileOptions {
  /** "wasm-simd" (default) or "wasm-scalar" */
  target?: string;
  /** also emit a WASI command (_start: inputs on stdin, outputs on stdout) */
  wasi?: boolean;
  /** keep the weights out of the module, in `weights` of the result, for flashing apart from code */
  separateWeights?: boolean;
  /** name used in the generated source and the report */
  name?: string;
  /** binaryen optimisation level (default 3, from asconfig.json); 1 compiles ~3x faster for ~10% more code */
  optimizeLevel?: 0 | 1 | 2 | 3;
  /** fail unless the blob fits: RAM and flash limits in bytes */
  budget?: { ram?: number; flash?: number };
  /**
   * "kernel-library" (default): the entry is built directly as WebAssembly and linked with the kernel
   * library compiled once per target (cached); an entry it cannot build yet is compiled with asc, and the
   * report's `codegen` says so and why. "asc": always compile the entry's AssemblyScript with the kernels.
   */
  codegen?: "kernel-library" | "asc";
  /**
   * Streaming state, state input name → the output that becomes its next value (an LSTM's `h_in: "h_out"`):
   * the blob keeps the state in its own memory between run() calls (zero at first), the host no longer feeds
   * those inputs, and the manifest's `state` lists them.
   */
  streamState?: Record<string, string>;
  /** target wasm-simd-threads: the most workers the blob may run on (default 4); the host picks 1..threads at load time */
  threads?: number;
  /** called as each stage starts ("tracing", "optimizing the graph", …), for a progress display */
  onProgress?: (stage: string) => void;
}

export interface CompileReport {
  model: string;
  target: string;
  inputs: TensorSlot[];
  outputs: TensorSlot[];
  /** the streaming state kept in the blob (empty without streamState) */
  state: StateSlot[];
  arena: { bytes: number; lowerBound: number; greedyBaseline: number; strategy: string };
  weightsBytes: number;
  codeBytes: number;
  wasmBytes: number;
  memory: Manifest["memory"];
  /** what the device needs: flash (module + weights kept apart) and RAM (linear memory as the engine allocates it, in WAMR also its structures and stack) */
  footprint: Footprint;
  nodes: number;
  kernelCalls: number;
  /** which code generation path made the blob, and why asc when it did */
  codegen: CodegenReport;
  passes: PassStats;
  millis: { trace: number; passes: number; plan: number; asc: number; total: number };
}

export interface CompileResult {
  wasm: Uint8Array;
  /** the weights region's bytes when compiled with separateWeights or for wamr-flash (then zero-padded to the shared heap's size) */
  weights: Uint8Array | null;
  manifest: Manifest;
  report: CompileReport;
  /** the generated AssemblyScript entry module */
  source: string;
  graph: Graph;
  /** the arena plan and the buffers it placed (for renderPlanText / renderPlanSvg) */
  plan: { buffers: BufferRequest[]; arena: ArenaPlan; names: Map<number, string> };
}

/** Two constants may derive from one weight the same way ("w:permute" twice): number the repeats. */
function uniqueNames(slots: TensorSlot[]): TensorSlot[] {
  const seen = new Map<string, number>();
  return slots.map((s) => {
    const n = (seen.get(s.name) ?? 0) + 1;
    seen.set(s.name, n);
    return n === 1 ? s : { ...s, name: `${s.name}#${n}` };
  });
}

/**
 * Model (an nn.Module traced on the given input shapes, or an already built graph) → one WebAssembly
 * blob: optimize the graph, plan memory, generate the entry module, compile it with the kernels.
 */
export async function compile(model: Module | Graph, inputs: Record<string, number[] | InputSpec> = {}, opts: CompileOptions = {}): Promise<CompileResult> {
  const t0 = performance.now();
  const target = getTarget(opts.target ?? "wasm-simd");
  if (opts.threads !== undefined && !target.threads) fail(`threads (${opts.threads}) applies to target wasm-simd-threads; ${target.name} runs on one thread`);
  const name = opts.name ?? (isModule(model) ? model.constructor.name : "graph");
  const progress = opts.onProgress ?? (() => {});
  if (isModule(model)) progress(`tracing ${name}`);
  const graph = isModule(model) ? traceModule(model, inputs) : model;
  const t1 = performance.now();
  const statePairs = resolveStatePairs(graph, opts.streamState ?? {});
  progress(`optimizing the graph (${graph.nodes.length} nodes)`);
  const passes = optimize(graph, { compactInt8: target.compactInt8, simd: target.simd });
  const state = attachStreamState(graph, statePairs);
  const t2 = performance.now();
  progress("planning memory");
  const inSharedHeap = target.weights === "wamr-shared-heap";
  const layout = layoutMemory(graph, { ...(inSharedHeap ? { weightsRegion: { pageBytes: WAMR_PAGE_BYTES } } : {}), state });
  // the weights leave the module when shipped apart or read from flash as WAMR's shared heap
  const separateWeights = Boolean(opts.separateWeights) || inSharedHeap;
  const t3 = performance.now();
  const entry = emitEntry(graph, layout, { wasi: Boolean(opts.wasi), modelName: name });
  const threads = target.threads ? threadLayout(layout.scratch, layout.end, opts.threads ?? 4, "unsupported" in entry.program ? 0 : threadSteps(entry.program).length) : undefined;

  const slot = (v: Value, label = v.name): TensorSlot => ({
    name: label, dtype: v.dtype, shape: [...v.shape], offset: layout.address.get(v)!, bytes: v.bytes, ...(v.quantization ? { quantization: { ...v.quantization } } : {}),
  });
  const weightBytes = new Uint8Array(layout.weights.region?.bytes ?? layout.weights.bytes);
  for (const c of layout.weights.values) {
    const d = c.data!;
    weightBytes.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), layout.address.get(c)! - layout.weights.offset);
  }
  const plan = layout.arena.plan;
  const inputSlots = graph.inputs.map((v) => slot(v));
  const outputSlots = graph.outputs.map((v) => slot(v));
  const stateSlots = state.map((s): StateSlot => ({ ...slot(s.value), output: s.output.name }));
  if (new Set(outputSlots.map((s) => s.name)).size !== outputSlots.length) fail(`duplicate output names: ${outputSlots.map((s) => s.name).join(", ")}`);

  const built = await buildModule(entry, {
    target,
    codegen: opts.codegen,
    onProgress: progress,
    optimizeLevel: opts.optimizeLevel,
    memoryBase: threads ? threads.end : layout.end,
    threads,
    weights: { offset: layout.weights.offset, bytes: weightBytes, embedded: !separateWeights },
    manifest: (pages, heapBase, features): Manifest => ({
      format: "teenygrad",
      version: 1,
      target: target.name,
      features,
      flavour: opts.wasi ? "wasi" : "reactor",
      memory: { pages, bytes: pages * 65536, heapBase },
      arena: { offset: layout.arena.offset, bytes: plan.arenaBytes, lowerBound: plan.lowerBound, greedyBaseline: plan.greedyBaseline },
      weights: {
        offset: layout.weights.offset,
        bytes: weightBytes.byteLength,
        embedded: !separateWeights,
        ...(layout.weights.region ? { sharedHeap: { bytes: layout.weights.region.bytes } } : {}),
        tensors: uniqueNames(layout.weights.values.map((v) => slot(v))),
      },
      inputs: inputSlots,
      outputs: outputSlots,
      ...(stateSlots.length ? { state: stateSlots } : {}),
      ...(threads ? { threads: { maxThreads: threads.maxThreads, sync: threads.sync, entry: THREAD_ENTRY } } : {}),
    }),
  });
  const t4 = performance.now();
  const manifest = built.info.manifest!;
  const fp = footprint(built.wasm.byteLength, built.info, manifest);
  if (opts.budget) checkBudget(fp, opts.budget);
  return {
    wasm: built.wasm,
    weights: separateWeights ? weightBytes : null,
    manifest,
    get source() {
      return entry.source; // written on first read (asc and --emit-source)
    },
    graph,
    plan: { buffers: layout.arena.buffers, arena: plan, names: layout.arena.names },
    report: {
      model: name,
      target: target.name,
      inputs: inputSlots,
      outputs: outputSlots,
      state: stateSlots,
      arena: { bytes: plan.arenaBytes, lowerBound: plan.lowerBound, greedyBaseline: plan.greedyBaseline, strategy: plan.strategy },
      weightsBytes: layout.weights.bytes,
      codeBytes: built.info.codeBytes,
      wasmBytes: built.wasm.byteLength,
      memory: manifest.memory,
      footprint: fp,
      nodes: graph.nodes.length,
      kernelCalls: entry.kernelCalls,
      codegen: built.codegen,
      passes,
      millis: { trace: t1 - t0, passes: t2 - t1, plan: t3 - t2, asc: built.ascMillis, total: t4 - t0 },
    },
  };
}
