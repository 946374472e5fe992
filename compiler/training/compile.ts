import { footprint, checkBudget, type Footprint } from "../budget.js";
import { buildModule } from "../codegen/build.js";
import { entryImports, indent, lowerGraph, renderImports } from "../codegen/emit.js";
import type { Manifest, TensorSlot, TrainingManifest } from "../codegen/manifest.js";
import { ADDRESS_SPACE } from "../codegen/limits.js";
import { ALIGN, layoutMemory, RESERVED_BYTES, type MemoryLayout } from "../codegen/memory.js";
import { fail, TeenygradError } from "../errors.js";
import { DTYPES, type DType } from "../ir/dtype.js";
import { Graph, type Node, type Value } from "../ir/graph.js";
import { shapeStr } from "../ir/shape.js";
import { getOp, inferTypes } from "../ops/index.js";
import { decompose, eliminateDeadNodes, foldConstants, fuseElementwise, fuseEpilogues, optimize } from "../passes/index.js";
import * as losses from "../tensor/losses.js";
import { inEvalMode, type InputSpec, type Module } from "../tensor/nn.js";
import { apply, Tensor } from "../tensor/tensor.js";
import { Trace, withTrace } from "../tensor/trace.js";
import { getTarget, WAMR_PAGE_BYTES } from "../../targets/index.js";
import { symbolic, traceBackward } from "./backward.js";
import { checkOptimizer, traceUpdate, type OptimizerSpec } from "./optimizers.js";

export type LossName = "crossEntropy" | "mse" | "bceWithLogits";
export type LossFn = (output: Tensor, ...targets: Tensor[]) => Tensor;
const LOSSES: Record<LossName, LossFn> = { crossEntropy: losses.crossEntropy, mse: losses.mse, bceWithLogits: losses.bceWithLogits };

export interface TrainingOptions {
  /** model inputs, name → shape; the leading dim is the batch (`batch` replaces it) */
  inputs: Record<string, number[] | InputSpec>;
  /** loss targets, name → shape (leading dim: the batch); default for a named loss: "target", int32 [batch] for crossEntropy, else the output's shape */
  targets?: Record<string, number[] | InputSpec>;
  loss: LossName | LossFn;
  optimizer: OptimizerSpec;
  /** examples per train_step (default: the inputs' leading dim) */
  batch?: number;
  /** examples per run() (default: batch) */
  inferenceBatch?: number;
  /** parameters to freeze: full names or module prefixes ("features" freezes features.0.weight …) */
  freeze?: string[];
  /** train only the parameters of the last N modules that own parameters; freeze the rest */
  trainLastN?: number;
  target?: string;
  name?: string;
  optimizeLevel?: 0 | 1 | 2 | 3;
  budget?: { ram?: number; flash?: number };
}

/** One fixed region of a training blob's memory. */
export interface MemoryRegion {
  name: string;
  offset: number;
  bytes: number;
  what: string;
}

export interface TrainingMemoryReport {
  regions: MemoryRegion[];
  /** the arena, shared by run() and train_step() (they never run at once) */
  arena: {
    bytes: number;
    run: number;
    trainStep: number;
    lowerBound: number;
    greedyBaseline: number;
    /** what train_step's arena holds at its fullest step */
    peak: { step: number; savedActivations: number; gradients: number; scratch: number; other: number };
    /** the most bytes of parameter gradients ever live at once, against keeping every one until the update */
    parameterGradients: { peakLive: number; allKept: number };
  };
  /** first byte past the arena: the memory the blob's data needs */
  totalBytes: number;
  /** with frozen parameters: what training every parameter would need more */
  frozen: { parameters: string[]; bytesSaved: { parameters: number; optimizerState: number; arena: number; total: number } } | null;
}

export interface TrainingReport {
  model: string;
  target: string;
  optimizer: Required<OptimizerSpec>;
  batch: number;
  trainable: string[];
  frozen: string[];
  /** what the compile noticed but did not refuse (a parameter no gradient reaches) */
  warnings: string[];
  memory: TrainingMemoryReport;
  nodes: { run: number; trainStep: number };
  codeBytes: number;
  wasmBytes: number;
  footprint: Footprint;
  millis: { plan: number; asc: number; total: number };
}

export interface TrainingResult {
  wasm: Uint8Array;
  /** on wamr-flash: the shared heap's bytes (frozen parameters, the trained ones' initial values, constants, zero-padded), for flashing apart from the blob */
  weights: Uint8Array | null;
  manifest: Manifest;
  report: TrainingReport;
  source: string;
  graphs: { run: Graph; trainStep: Graph };
}

const alignUp = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/**
 * A model → one blob that trains itself: train_step() runs forward, backward (each op's gradient rule
 * from the registry, traced on the graph) and the optimizer update on the batch in its input buffers,
 * writes the loss, and updates the parameters in place; run() is inference on the current parameters.
 * Every byte is placed at compile time:
 *   [reserved | parameters | control (step, lr) | constants | optimizer state | arena | AS static data]
 * parameters, control and constants are the data segment (initial values); optimizer state starts at zero.
 * On wamr-flash the frozen parameters and the constants are instead a read-only region ending at 2^32 (WAMR's
 * shared heap, attached from flash; `weights` of the result), and only what the step writes is in linear memory,
 * with no data segment: its initial values are an image in that region, which an `init()` export copies into RAM
 * (run() and train_step() call it first if it has not run; calling it again starts training over).
 */
export async function compileTraining(model: Module, opts: TrainingOptions): Promise<TrainingResult> {
  const t0 = performance.now();
  const target = getTarget(opts.target ?? "wasm-simd");
  const plan = planTraining(model, opts);
  const frozenSavings = plan.frozen.length ? planUnfrozen(model, opts) : null;
  const t1 = performance.now();

  const imports = entryImports();
  const run = lowerGraph(plan.run.graph, plan.run.layout, imports);
  const step = lowerGraph(plan.train.graph, plan.train.layout, imports);
  const name = opts.name ?? model.constructor.name;
  const init = plan.init;
  const initFirst = init ? ["  if (!initialised) init();"] : [];
  const source = [
    `// Generated by teenygrad for training ${name}. Every shape and address below is a compile-time constant.`,
    ...renderImports(imports),
    ...(init ? [
      "",
      "let initialised = false;",
      "// the written state's initial values (trained parameters, moved buffers, step and lr) from flash, the optimizer state zeroed",
      "export function init(): void {",
      `  memory.copy(${init.to}, ${init.from}, ${init.bytes});`,
      ...(init.zero.bytes ? [`  memory.fill(${init.zero.offset}, 0, ${init.zero.bytes});`] : []),
      "  initialised = true;",
      "}",
    ] : []),
    "",
    "export function run(): i32 {", ...initFirst, ...indent(run.body), "  return 0;", "}",
    "",
    "export function train_step(): i32 {", ...initFirst, ...indent(step.body), "  return 0;", "}",
  ].join("\n") + "\n";

  const trainingManifest: TrainingManifest = {
    inputs: plan.train.graph.inputs.map((v) => plan.slot(plan.train.layout, v)),
    outputs: plan.train.graph.outputs.map((v) => plan.slot(plan.train.layout, v)),
    parameters: plan.parameters.map((p) => ({ ...plan.slot(plan.train.layout, p.value), trainable: p.trainable, ...(p.inFlash ? { inFlash: true } : {}) })),
    optimizerState: plan.state.map((s) => plan.slot(plan.train.layout, s)),
    control: { step: plan.control.step, lr: plan.control.lr },
    optimizer: plan.optimizer,
    ...(init ? { init } : {}),
  };
  // train_step's optimizer updates are inline code: a training module is compiled with asc
  const built = await buildModule({ source, program: { unsupported: "a training module" } }, {
    target,
    optimizeLevel: opts.optimizeLevel,
    memoryBase: plan.end,
    weights: { offset: RESERVED_BYTES, bytes: plan.data, embedded: true },
    manifest: (pages, heapBase, features): Manifest => ({
      format: "teenygrad",
      version: 1,
      target: target.name,
      features,
      flavour: "reactor",
      memory: { pages, bytes: pages * 65536, heapBase },
      arena: { offset: plan.arenaOffset, bytes: plan.memory.arena.bytes, lowerBound: plan.memory.arena.lowerBound, greedyBaseline: plan.memory.arena.greedyBaseline },
      weights: plan.flash ? {
        offset: plan.flash.offset,
        bytes: plan.flash.bytes.byteLength,
        embedded: false,
        sharedHeap: { bytes: plan.flash.bytes.byteLength },
        tensors: [...plan.parameters.filter((p) => p.inFlash).map((p) => plan.slot(plan.train.layout, p.value)), ...plan.constantSlots],
      } : {
        offset: RESERVED_BYTES,
        bytes: plan.data.byteLength,
        embedded: true,
        tensors: [...plan.parameters.map((p) => plan.slot(plan.train.layout, p.value)), ...plan.constantSlots],
      },
      inputs: plan.run.graph.inputs.map((v) => plan.slot(plan.run.layout, v)),
      outputs: plan.run.graph.outputs.map((v) => plan.slot(plan.run.layout, v)),
      training: trainingManifest,
    }),
  });
  const manifest = built.info.manifest!;
  const fp = footprint(built.wasm.byteLength, built.info, manifest);
  if (opts.budget) checkBudget(fp, opts.budget);

  const memory = plan.memory;
  if (frozenSavings) {
    const all = frozenSavings.memory;
    const bytesOf = (m: TrainingMemoryReport, region: string) => m.regions.filter((r) => r.name === region).reduce((a, r) => a + r.bytes, 0);
    memory.frozen = {
      parameters: plan.frozen,
      bytesSaved: {
        parameters: plan.parameters.filter((p) => p.inFlash).reduce((a, p) => a + alignUp(p.value.bytes), 0),
        optimizerState: bytesOf(all, "optimizer state") - bytesOf(memory, "optimizer state"),
        arena: all.arena.bytes - memory.arena.bytes,
        total: all.totalBytes - memory.totalBytes,
      },
    };
  }
  return {
    wasm: built.wasm,
    weights: plan.flash?.bytes ?? null,
    manifest,
    source,
    graphs: { run: plan.run.graph, trainStep: plan.train.graph },
    report: {
      model: name,
      target: target.name,
      optimizer: plan.optimizer,
      batch: plan.batch,
      trainable: plan.parameters.filter((p) => p.trainable).map((p) => p.value.name),
      frozen: plan.frozen,
      warnings: plan.warnings,
      memory,
      nodes: { run: plan.run.graph.nodes.length, trainStep: plan.train.graph.nodes.length },
      codeBytes: built.info.codeBytes,
      wasmBytes: built.wasm.byteLength,
      footprint: fp,
      millis: { plan: t1 - t0, asc: built.ascMillis, total: performance.now() - t0 },
    },
  };
}

/** The plan with every parameter trained, to report what freezing saves; null when that cannot train (a frozen branch is not differentiable). */
function planUnfrozen(model: Module, opts: TrainingOptions): TrainingPlan | null {
  try {
    return planTraining(model, { ...opts, freeze: [], trainLastN: undefined, allTrainable: true });
  } catch (e) {
    if (e instanceof TeenygradError) return null;
    throw e;
  }
}

// --- planning -----------------------------------------------------------------------------------------
interface PlannedGraph { graph: Graph; layout: MemoryLayout }

interface TrainingPlan {
  run: PlannedGraph;
  train: PlannedGraph;
  parameters: { value: Value; trainable: boolean; inFlash: boolean }[];
  frozen: string[];
  state: Value[];
  control: { step: number; lr: number };
  optimizer: Required<OptimizerSpec>;
  batch: number;
  /** the data segment from RESERVED_BYTES: parameters, control and both graphs' constants; empty on wamr-flash */
  data: Uint8Array;
  /** on wamr-flash: the shared heap (frozen parameters, the written state's initial values, constants) at the top of the address space, and its bytes */
  flash: { offset: number; bytes: Uint8Array } | null;
  /** on wamr-flash: what init() copies from flash into RAM and the optimizer state it zeroes (TrainingManifest.init) */
  init: NonNullable<TrainingManifest["init"]> | null;
  constantSlots: TensorSlot[];
  arenaOffset: number;
  end: number;
  memory: TrainingMemoryReport;
  slot(layout: MemoryLayout, v: Value): TensorSlot;
  /** what the compile noticed but did not refuse */
  warnings: string[];
}

const withBatch = (spec: number[] | InputSpec, batch: number | undefined, what: string): InputSpec => {
  const { shape, dtype } = Array.isArray(spec) ? { shape: spec, dtype: undefined } : spec;
  if (!shape.length) fail(`${what} needs a batch dimension first, got a scalar`);
  if (!shape.every((d) => Number.isInteger(d) && d > 0)) fail(`${what} needs a static shape of positive integers, got ${shapeStr(shape)}`);
  return { shape: batch === undefined ? [...shape] : [batch, ...shape.slice(1)], dtype: dtype ?? "float32" };
};

/** Which state-dict tensors train: Parameters with requiresGrad, minus `freeze` and all but the last `trainLastN` modules. */
function trainableNames(model: Module, opts: TrainingOptions & { allTrainable?: boolean }): Set<string> {
  const params = model.namedParameters();
  if (opts.allTrainable) return new Set(params.map(([n]) => n));
  const names = new Set(params.filter(([, p]) => p.requiresGrad).map(([n]) => n));
  for (const f of opts.freeze ?? []) {
    const hit = params.filter(([n]) => n === f || n.startsWith(`${f}.`));
    if (!hit.length) fail(`freeze: '${f}' names no parameter (parameters: ${params.map(([n]) => n).join(", ")})`);
    for (const [n] of hit) names.delete(n);
  }
  if (opts.trainLastN !== undefined) {
    const owners = model.namedModules().filter(([, m]) => Object.values(m).some((v) => params.some(([, p]) => p === v)));
    if (!Number.isInteger(opts.trainLastN) || opts.trainLastN < 1 || opts.trainLastN > owners.length) {
      fail(`trainLastN must be an integer from 1 to ${owners.length} (the modules with parameters: ${owners.map(([n]) => n || "(root)").join(", ")}), got ${opts.trainLastN}`);
    }
    const kept = owners.slice(owners.length - opts.trainLastN).map(([n]) => n);
    for (const [n] of params) {
      const owner = n.includes(".") ? n.slice(0, n.lastIndexOf(".")) : "";
      if (!kept.includes(owner)) names.delete(n);
    }
  }
  if (!names.size) fail("no parameter is left to train (every one is frozen)");
  return names;
}

/** A value that lives at a fixed address: created like an input, but not fed by the host. */
function fixedValue(g: Graph, name: string, shape: number[], dtype: DType): Value {
  const v = g.addInput(name, { shape, dtype });
  g.inputs.pop();
  return v;
}

export function planTraining(model: Module, opts: TrainingOptions & { allTrainable?: boolean }): TrainingPlan {
  const optimizer = checkOptimizer(opts.optimizer);
  const inputNames = Object.keys(opts.inputs);
  if (!inputNames.length) fail("compileTraining: the model declares no inputs");
  const inputs = Object.fromEntries(inputNames.map((k) => [k, withBatch(opts.inputs[k], opts.batch, `input '${k}'`)]));
  const batch = inputs[inputNames[0]].shape[0];
  const trainable = trainableNames(model, opts);
  const state = Object.entries(model.stateDict());
  const lossFn: LossFn = typeof opts.loss === "function" ? opts.loss
    : LOSSES[opts.loss] ?? fail(`unknown loss '${String(opts.loss)}' (losses: ${Object.keys(LOSSES).join(", ")}, or a function)`);

  // --- the train_step graph: forward, loss, backward, guard, updates ---------------------------------
  const g = new Graph(inferTypes);
  const paramValues = new Map<Tensor, Value>(state.map(([n, t]) => [t, fixedValue(g, n, [...t.shape], t.dtype)]));
  const names = new Map<Tensor, string>(state.map(([n, t]) => [t, n]));
  const stepValue = fixedValue(g, "step", [], "float32"), lrValue = fixedValue(g, "lr", [], "float32");
  const stateValues: Value[] = [];
  const warnings: string[] = [];
  const pins: [Tensor, Value][] = [];
  let gradValues: Value[] = [];
  let loss!: Value, output!: Value, guard!: Value;
  const trace = new Trace(names, { graph: g, bound: paramValues });
  withTrace(trace, () => {
    const xs = inputNames.map((k) => symbolic(g.addInput(k, { shape: inputs[k].shape, dtype: inputs[k].dtype! })));
    const out = model.forward(...xs);
    if (!(out instanceof Tensor)) fail("compileTraining: forward() must return one Tensor (the output the loss compares with the targets)");
    if (!out.value) fail("compileTraining: the model's output does not depend on its inputs");
    const targetSpecs = opts.targets ?? defaultTargets(opts.loss, out.shape);
    const ts = Object.entries(targetSpecs).map(([k, spec]) => {
      if (k in inputs) fail(`target '${k}' has the name of a model input`);
      const s = withBatch(spec, opts.batch, `target '${k}'`);
      return symbolic(g.addInput(k, { shape: s.shape, dtype: s.dtype! }));
    });
    const l = lossFn(out, ...ts);
    if (!(l instanceof Tensor) || l.size !== 1 || l.dtype !== "float32") fail(`the loss must be one float32 value, got ${l instanceof Tensor ? `${l.dtype} ${shapeStr(l.shape)}` : typeof l}`);
    if (!l.value) fail("the loss does not depend on the model's inputs");
    loss = l.value;
    output = out.value;

    const params = state.filter(([n]) => trainable.has(n)).map(([, t]) => paramValues.get(t)!);
    const grads = traceBackward(g, loss, params);
    guard = apply("stepGuard", [symbolic(loss), symbolic(stepValue)], {}).value!;
    pins.push([symbolic(guard), stepValue]);
    const shared = new Map<string, Tensor>();
    params.forEach((p, i) => {
      const grad = grads[i];
      if (!grad) {
        // the loss does not reach this parameter (a detach() cuts it off, or it is unused): it is frozen
        trainable.delete(p.name);
        warnings.push(`'${p.name}' gets no gradient from the loss (is it cut off by detach(), or unused?): it is not trained`);
        return;
      }
      if (!grad.value) fail(`internal: the gradient of ${p.name} is not a graph value`);
      gradValues.push(grad.value);
      traceUpdate(optimizer, symbolic(p), grad, {
        lr: symbolic(lrValue),
        step: symbolic(guard),
        state(slot) {
          const v = fixedValue(g, `${p.name}.${slot}`, [...p.shape], "float32");
          stateValues.push(v);
          return symbolic(v);
        },
        assign: (next, current) => pins.push([next, current.value!]),
      }, shared);
    });
    // buffers the forward pass moves (BatchNorm's running statistics in training mode), after the guard too
    for (const { buffer, next } of trace.deferredUpdates) pins.push([next(), paramValues.get(buffer)!]);
  });
  const updateNodes = new Set(g.nodes.slice(g.nodes.indexOf(guard.producer!)));
  loss.name = "loss";
  output.name = "output";

  // passes; pinned values and gradients stay graph outputs meanwhile so nothing fuses them away
  const kept = [loss, output];
  g.outputs = [...kept, ...pins.map(([t]) => t.value!), ...gradValues];
  keepMaxpoolChoices(g);
  decompose(g);
  transposeMatmuls(g);
  composePermutes(g);
  smallMatmulsElementwise(g);
  foldConstants(g);
  eliminateDeadNodes(g);
  scheduleUpdates(g, updateNodes, new Map(pins.map(([t, cur]) => [t.value!, cur])));
  fuseEpilogues(g);
  fuseElementwise(g);
  const pinnedNow = g.outputs.slice(kept.length, kept.length + pins.length);
  readBeforeOverwrite(g, new Map(pinnedNow.map((v, i) => [v, pins[i][1]])));
  gradValues = g.outputs.slice(kept.length + pins.length);
  g.outputs = g.outputs.slice(0, kept.length);

  // --- the run() graph: inference on the same parameters -----------------------------------------------
  const rg = new Graph(inferTypes);
  const runParams = new Map<Tensor, Value>(state.map(([n, t]) => [t, fixedValue(rg, n, [...t.shape], t.dtype)]));
  // run() is inference: every module in eval mode (BatchNorm on its running statistics)
  inEvalMode(model, () => withTrace(new Trace(names, { graph: rg, bound: runParams }), () => {
    const xs = inputNames.map((k) => {
      const shape = opts.inferenceBatch ? [opts.inferenceBatch, ...inputs[k].shape.slice(1)] : inputs[k].shape;
      return symbolic(rg.addInput(k, { shape, dtype: inputs[k].dtype! }));
    });
    const out = model.forward(...xs) as Tensor;
    rg.outputs = [out.value!];
    out.value!.name = "output";
  }));
  smallMatmulsElementwise(rg);
  optimize(rg);

  // --- memory: parameters, control, constants (the data segment), optimizer state, arena ---------------
  // on wamr-flash the frozen parameters and the constants leave linear memory for a read-only region at the
  // top of the address space (WAMR's shared heap, in flash); what the step writes stays in linear memory
  const inFlash = getTarget(opts.target ?? "wasm-simd").weights === "wamr-shared-heap";
  const parameters = state.map(([n, t]) => ({ value: paramValues.get(t)!, trainable: trainable.has(n), inFlash: false, tensor: t }));
  // a buffer the step moves (BatchNorm's running statistics in training mode) is written: it stays in RAM
  const written = new Set(pins.map(([, current]) => current));
  const frozenInFlash = inFlash ? parameters.filter((p) => !p.trainable && !written.has(p.value)) : [];
  const runParamOf = new Map(parameters.map((p, i) => [p.value, runParams.get(state[i][1])!]));
  // constants' sizes do not depend on where the fixed values are: size them with placeholder addresses
  const placeholders = (vs: Value[]) => new Map(vs.map((v) => [v, 0]));
  const runConstBytes = layoutMemory(rg, { fixed: placeholders([...runParamOf.values()]) }).weights.bytes;
  // a constant train_step shares with run() (an int8 backbone's weights) is stored once: train_step reads run()'s copy
  const sharedConstants = shareConstants(g, rg);
  const trainConstBytes = layoutMemory(g, { fixed: placeholders([...paramValues.values(), stepValue, lrValue, ...stateValues, ...pinnedNow, ...sharedConstants.keys()]) }).weights.bytes;

  const address = new Map<Value, number>();
  let at = RESERVED_BYTES;
  const place = (v: Value) => {
    address.set(v, at);
    at = alignUp(at + v.bytes);
  };
  for (const p of frozenInFlash) p.inFlash = true;
  for (const p of parameters) if (!p.inFlash) place(p.value);
  const control = { step: at, lr: at + 4 };
  address.set(stepValue, control.step);
  address.set(lrValue, control.lr);
  at = alignUp(at + 8);
  const controlEnd = at;
  // on wamr-flash, what the step writes starts from an image in flash of [RESERVED_BYTES, controlEnd), which init() copies
  const imageBytes = controlEnd - RESERVED_BYTES;
  const flashBytes = frozenInFlash.reduce((a, p) => a + alignUp(p.value.bytes), 0) + imageBytes + runConstBytes + trainConstBytes;
  let region: { offset: number; bytes: number } | undefined;
  let imageAt = 0, runConstAt: number, trainConstAt: number, stateAt: number;
  if (inFlash) {
    // whole shared-heap pages, with ALIGN bytes past the last tensor so no kernel pointer wraps to 0
    const bytes = Math.ceil((flashBytes + ALIGN) / WAMR_PAGE_BYTES) * WAMR_PAGE_BYTES;
    if (bytes >= ADDRESS_SPACE / 2) fail(`the frozen parameters and constants (${flashBytes} bytes) do not fit a shared heap in the 32-bit address space`);
    region = { offset: ADDRESS_SPACE - bytes, bytes };
    at = region.offset;
    for (const p of frozenInFlash) place(p.value);
    imageAt = at;
    runConstAt = alignUp(imageAt + imageBytes);
    trainConstAt = alignUp(runConstAt + runConstBytes);
    stateAt = controlEnd;
  } else {
    runConstAt = controlEnd;
    trainConstAt = alignUp(runConstAt + runConstBytes);
    stateAt = alignUp(trainConstAt + trainConstBytes);
  }
  const trainFixed = new Map(address);
  const runFixed = new Map(parameters.map((p) => [runParamOf.get(p.value)!, address.get(p.value)!]));
  at = stateAt;
  for (const s of stateValues) {
    trainFixed.set(s, at);
    at = alignUp(at + s.bytes);
  }
  pinnedNow.forEach((v, i) => trainFixed.set(v, trainFixed.get(pins[i][1])!));
  const arenaOffset = alignUp(at);
  const runLayout = layoutMemory(rg, { fixed: runFixed, weightsAt: runConstAt, arenaAt: arenaOffset });
  for (const [shared, constant] of sharedConstants) trainFixed.set(shared, runLayout.address.get(constant)!);
  const trainLayout = layoutMemory(g, { fixed: trainFixed, weightsAt: trainConstAt, arenaAt: arenaOffset });
  const end = Math.max(runLayout.end, trainLayout.end);

  // the initial bytes: of the data segment (linear memory) or, on wamr-flash, of the shared heap, where a
  // value in linear memory has its initial bytes in the image at the same distance from its start
  const data = new Uint8Array(region ? 0 : stateAt - RESERVED_BYTES);
  const flash = region ? new Uint8Array(region.bytes) : null;
  const put = (offset: number, d: ArrayBufferView) => {
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    if (!region) data.set(bytes, offset - RESERVED_BYTES);
    else flash!.set(bytes, (offset >= region.offset ? offset : imageAt + offset - RESERVED_BYTES) - region.offset);
  };
  for (const p of parameters) put(address.get(p.value)!, p.tensor.data);
  put(control.lr, new Float32Array([optimizer.lr]));
  for (const layout of [runLayout, trainLayout]) for (const c of layout.weights.values) put(layout.address.get(c)!, c.data!);

  const slot = (layout: MemoryLayout, v: Value): TensorSlot => ({ name: v.name, dtype: v.dtype, shape: [...v.shape], offset: layout.address.get(v)!, bytes: v.bytes });
  const constantSlots = [...runLayout.weights.values.map((v) => slot(runLayout, v)), ...trainLayout.weights.values.map((v) => slot(trainLayout, v))]
    .map((s, i) => ({ ...s, name: `${s.name}#${i}` }));
  const trainableBytes = parameters.filter((p) => p.trainable).reduce((a, p) => a + alignUp(p.value.bytes), 0);
  const frozenBytes = parameters.filter((p) => !p.trainable).reduce((a, p) => a + alignUp(p.value.bytes), 0);
  const arenaBytes = Math.max(runLayout.arena.plan.arenaBytes, trainLayout.arena.plan.arenaBytes);
  const memory: TrainingMemoryReport = {
    regions: [
      { name: "parameters (trained)", offset: RESERVED_BYTES, bytes: trainableBytes, what: `weights the step updates in place; initial values ${region ? "copied from flash by init()" : "from the data segment"}` },
      { name: "parameters (frozen)", offset: region ? region.offset : RESERVED_BYTES, bytes: frozenBytes, what: `weights and buffers the step only reads${region ? ", read in place from flash (WAMR's shared heap)" : ""}` },
      { name: "control", offset: control.step, bytes: controlEnd - control.step, what: "step count and learning rate (f32)" },
      ...(region ? [{ name: "initial values", offset: imageAt, bytes: imageBytes, what: "in flash: the trained parameters, moved buffers and control as they start; init() copies them to RAM" }] : []),
      { name: "constants", offset: runConstAt, bytes: trainConstAt + trainConstBytes - runConstAt, what: `constants of run() and train_step()${region ? ", in flash" : ""}` },
      { name: "optimizer state", offset: stateAt, bytes: arenaOffset - stateAt, what: stateValues.length ? `${[...new Set(stateValues.map((s) => s.name.slice(s.name.lastIndexOf(".") + 1)))].join(", ")}, zero at start` : "none (plain SGD)" },
      { name: "arena", offset: arenaOffset, bytes: arenaBytes, what: "activations, saved activations, gradients and scratch, planned per step" },
    ],
    arena: {
      bytes: arenaBytes,
      run: runLayout.arena.plan.arenaBytes,
      trainStep: trainLayout.arena.plan.arenaBytes,
      lowerBound: Math.max(runLayout.arena.plan.lowerBound, trainLayout.arena.plan.lowerBound),
      greedyBaseline: Math.max(runLayout.arena.plan.greedyBaseline, trainLayout.arena.plan.greedyBaseline),
      ...arenaBreakdown(g, trainLayout, new Set([loss, output]), gradValues),
    },
    totalBytes: end,
    frozen: null,
  };
  return {
    run: { graph: rg, layout: runLayout },
    train: { graph: g, layout: trainLayout },
    parameters,
    frozen: model.namedParameters().map(([n]) => n).filter((n) => !trainable.has(n)),
    state: stateValues,
    control,
    optimizer,
    batch,
    data,
    flash: region ? { offset: region.offset, bytes: flash! } : null,
    init: region ? { from: imageAt, to: RESERVED_BYTES, bytes: imageBytes, zero: { offset: stateAt, bytes: arenaOffset - stateAt } } : null,
    constantSlots,
    arenaOffset,
    end,
    memory,
    slot,
    warnings,
  };
}

/**
 * Replaces each train_step constant whose dtype, shape and bytes equal a run() constant by a fixed value (to be
 * placed at the run() constant's address); returns them with the constant they read. Code generation reads
 * constants through their addresses only, so the passes that need constant data have run by now.
 */
function shareConstants(g: Graph, rg: Graph): Map<Value, Value> {
  const key = (v: Value) => `${v.dtype}:${v.shape.join("x")}`;
  const bytes = (v: Value) => new Uint8Array(v.data!.buffer, v.data!.byteOffset, v.data!.byteLength);
  const runConstants = new Map<string, Value[]>();
  for (const c of rg.constants()) runConstants.set(key(c), [...(runConstants.get(key(c)) ?? []), c]);
  const shared = new Map<Value, Value>();
  for (const c of g.constants()) {
    const b = bytes(c);
    const same = runConstants.get(key(c))?.find((r) => Buffer.compare(bytes(r), b) === 0);
    if (!same) continue;
    const v = fixedValue(g, `${c.name}/shared`, [...c.shape], c.dtype);
    g.replaceAllUses(c, v);
    shared.set(v, same);
  }
  return shared;
}

/**
 * Max pooling's backward needs only which element each window chose: the forward pooling becomes
 * maxpool2dArgmax (also writing those int32 offsets) and the backward a scatter from them, so the
 * pooling's input need not live until the backward pass. A ReLU's mask right before the pooling,
 * where(x > 0, dx, 0), folds into the scatter (at the chosen element, x > 0 exactly when the pooled value is),
 * so nothing keeps the ReLU's output either.
 */
function keepMaxpoolChoices(g: Graph): void {
  const isZero = (v: Value) => v.isConstant && v.data!.every((d) => Number(d) === 0);
  for (const grad of g.nodes.filter((n) => n.op === "maxpool2dGrad")) {
    const [x, gy] = grad.inputs;
    const forward = g.nodes.find((n) => n.op === "maxpool2d" && n.inputs[0] === x && JSON.stringify(n.attrs) === JSON.stringify(grad.attrs));
    if (!forward) continue;
    const argmax = g.insertBefore(forward, "maxpool2dArgmax", [x], forward.attrs, `${forward.name}/argmax`);
    const [y, indices] = argmax.outputs;
    g.replaceAllUses(forward.outputs[0], y);
    g.removeNode(forward);
    const uses = g.consumers().get(grad.outputs[0]) ?? [];
    const mask = uses.length === 1 && !g.outputs.includes(grad.outputs[0]) ? uses[0] : null;
    const relu = mask?.op === "where" && mask.inputs[1] === grad.outputs[0] && isZero(mask.inputs[2]) && mask.outputs[0].shape.join() === x.shape.join() &&
      mask.inputs[0].producer?.op === "gt" && mask.inputs[0].producer.inputs[0] === x && isZero(mask.inputs[0].producer.inputs[1]);
    const scatter = g.insertBefore(grad, "maxpool2dScatter", relu ? [indices, gy, y] : [indices, gy], { inputShape: [...x.shape] }, `${grad.name}/scatter`);
    g.replaceAllUses((relu ? mask! : grad).outputs[0], scatter.outputs[0]);
    if (relu) g.removeNode(mask!);
    g.removeNode(grad);
  }
}

/**
 * (A·B)ᵀ = Bᵀ·Aᵀ for 2-D matmuls: a linear layer's weight gradient is (Xᵀ·G)ᵀ, and Gᵀ·X computes it in
 * place of a weight-sized transposed copy (Xᵀᵀ then composes away). Gᵀ has the batch's size, not the weight's.
 */
function transposeMatmuls(g: Graph): void {
  const uses = g.consumers();
  for (const n of [...g.nodes]) {
    const m = n.inputs[0]?.producer;
    if (n.op !== "permute" || m?.op !== "matmul" || m.inputs.length !== 2 || n.outputs[0].shape.length !== 2) continue;
    if (m.inputs.some((v) => v.shape.length !== 2) || uses.get(m.outputs[0])?.length !== 1 || g.outputs.includes(m.outputs[0])) continue;
    const [a, b] = m.inputs;
    const t = (v: Value) => g.insertBefore(n, "permute", [v], { perm: [1, 0] }, `${n.name}/transpose`).outputs[0];
    const product = g.insertBefore(n, "matmul", [t(b), t(a)], {}, `${n.name}/matmul`).outputs[0];
    g.replaceAllUses(n.outputs[0], product);
    g.removeNode(n);
    g.removeNode(m);
  }
}

/**
 * permute(permute(x)) becomes one permute, or x itself: the backward of x @ wᵀ transposes wᵀ back, and
 * reading w directly spares a copy of it that would live from the forward pass to the backward pass.
 */
function composePermutes(g: Graph): void {
  for (const n of [...g.nodes]) {
    const inner = n.inputs[0]?.producer;
    if (n.op !== "permute" || inner?.op !== "permute") continue;
    const outer = n.attrs.perm as number[], first = inner.attrs.perm as number[];
    const perm = outer.map((d) => first[d]);
    if (perm.every((d, i) => d === i)) {
      g.replaceAllUses(n.outputs[0], inner.inputs[0]);
      g.removeNode(n);
    } else {
      n.inputs = [inner.inputs[0]];
      n.attrs = { ...n.attrs, perm };
    }
  }
}

/** matmuls this small become element-wise products and a sum (a product this size stays well inside any arena) */
const ELEMENTWISE_MATMUL_ELEMENTS = 4096;

/**
 * A batch-1 linear layer's matmuls as element-wise code: the forward [1, K]·wᵀ is a row times w [N, K] summed
 * over K, its weight gradient [N, 1]·[1, K] an outer product; a permute that only moves unit dims, and a sum
 * over unit dims (the gradient's sum back to a broadcast operand's shape), are reshapes.
 * Their arithmetic is the same; the blob then needs neither the gemm kernel nor a transposed copy of w, which
 * on a device is code the engine holds in RAM (WAMR: about 7 bytes per instruction).
 */
function smallMatmulsElementwise(g: Graph): void {
  const reshape = (anchor: Node, v: Value, shape: number[]) => g.insertBefore(anchor, "reshape", [v], { shape }, `${anchor.name}/reshape`).outputs[0];
  for (const n of [...g.nodes]) {
    if (n.op === "permute") {
      const x = n.inputs[0], perm = n.attrs.perm as number[];
      const moved = perm.filter((d) => x.shape[d] !== 1);
      if (moved.every((d, i) => i === 0 || moved[i - 1] < d)) {
        g.replaceAllUses(n.outputs[0], reshape(n, x, n.outputs[0].shape));
        g.removeNode(n);
      }
      continue;
    }
    if (n.op === "reduce" && n.attrs.kind === "sum" && n.inputs[0].shape.length && n.outputs[0].shape.reduce((a, d) => a * d, 1) === n.inputs[0].shape.reduce((a, d) => a * d, 1)) {
      g.replaceAllUses(n.outputs[0], reshape(n, n.inputs[0], n.outputs[0].shape));
      g.removeNode(n);
      continue;
    }
    if (n.op !== "matmul" || n.inputs.length !== 2 || n.inputs.some((v) => v.shape.length !== 2)) continue;
    const [a, b] = n.inputs, [M, K] = a.shape, N = b.shape[1];
    if (M * N * K > ELEMENTWISE_MATMUL_ELEMENTS) continue;
    let product: Value;
    if (K === 1) product = g.insertBefore(n, "mul", [a, b], {}, `${n.name}/outer`).outputs[0];
    else if (M === 1 && b.producer?.op === "permute" && (b.producer.attrs.perm as number[]).join() === "1,0") {
      const rows = g.insertBefore(n, "mul", [a, b.producer.inputs[0]], {}, `${n.name}/rows`).outputs[0];
      product = reshape(n, g.insertBefore(n, "reduce", [rows], { kind: "sum", axes: [1], keepdim: false }, `${n.name}/sum`).outputs[0], [1, N]);
    } else continue;
    g.replaceAllUses(n.outputs[0], product);
    g.removeNode(n);
  }
}

function defaultTargets(loss: TrainingOptions["loss"], outputShape: number[]): Record<string, InputSpec> {
  if (typeof loss === "function") fail("compileTraining: a custom loss function needs `targets` (name → shape)");
  if (loss === "crossEntropy") return { target: { shape: [outputShape[0]], dtype: "int32" } };
  return { target: { shape: [...outputShape], dtype: "float32" } };
}

/**
 * Moves each update node (and the step guard) to the earliest point it may run: after its inputs, after
 * the guard, and after every node that still reads the parameter or state it overwrites. A gradient is
 * then consumed, and its buffer freed, as soon as the last reader of its parameter is done.
 */
function scheduleUpdates(g: Graph, update: Set<Node>, overwrites: Map<Value, Value>): void {
  const views = new Map<Value, Value>(); // value → the fixed value whose bytes it views
  const order = g.nodes.filter((n) => !update.has(n));
  for (const n of g.nodes) if (getOp(n.op).view) views.set(n.outputs[0], views.get(n.inputs[0]) ?? n.inputs[0]);
  const base = (v: Value) => views.get(v) ?? v;
  let guardAt = -1;
  for (const n of g.nodes.filter((m) => update.has(m))) {
    let at = n.op === "stepGuard" ? 0 : guardAt + 1;
    const targets = new Set(n.outputs.map((o) => overwrites.get(o)).filter((v): v is Value => v !== undefined));
    order.forEach((m, i) => {
      if (m.outputs.some((o) => n.inputs.includes(o)) || m.inputs.some((v) => targets.has(base(v)))) at = Math.max(at, i + 1);
    });
    order.splice(at, 0, n);
    if (n.op === "stepGuard") guardAt = at;
    else if (at <= guardAt) guardAt++;
  }
  g.nodes = order;
}

/**
 * Fusion places a fused group where its last member was, which can move an early read of a parameter (a
 * BatchNorm gradient reading γ) past the update that overwrites γ in place. A stable topological sort
 * with one more edge per such read — every reader of a fixed value runs before the node that overwrites
 * it — restores the order and otherwise keeps the nodes where they are.
 */
function readBeforeOverwrite(g: Graph, overwrites: Map<Value, Value>): void {
  const views = new Map<Value, Value>();
  for (const n of g.nodes) if (getOp(n.op).view) views.set(n.outputs[0], views.get(n.inputs[0]) ?? n.inputs[0]);
  const base = (v: Value) => views.get(v) ?? v;
  const writerOf = new Map<Value, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (overwrites.has(o)) writerOf.set(overwrites.get(o)!, n);
  const position = new Map(g.nodes.map((n, i) => [n, i]));
  const producerOf = (v: Value) => (v.producer && position.has(v.producer) ? v.producer : null);
  const after = new Map<Node, Set<Node>>(g.nodes.map((n) => [n, new Set<Node>()]));
  for (const n of g.nodes) {
    for (const v of n.inputs) {
      const p = producerOf(v);
      if (p && p !== n) after.get(n)!.add(p);
      const writer = writerOf.get(base(v));
      if (writer && writer !== n) after.get(writer)!.add(n);
    }
  }
  const waiting = new Map(g.nodes.map((n) => [n, after.get(n)!.size]));
  const followers = new Map<Node, Node[]>(g.nodes.map((n) => [n, []]));
  for (const [n, deps] of after) for (const d of deps) followers.get(d)!.push(n);
  const ready = g.nodes.filter((n) => waiting.get(n) === 0);
  const order: Node[] = [];
  while (ready.length) {
    // the earliest node in the current order among those ready
    let best = 0;
    for (let i = 1; i < ready.length; i++) if (position.get(ready[i])! < position.get(ready[best])!) best = i;
    const n = ready.splice(best, 1)[0];
    order.push(n);
    for (const f of followers.get(n)!) {
      waiting.set(f, waiting.get(f)! - 1);
      if (waiting.get(f) === 0) ready.push(f);
    }
  }
  if (order.length !== g.nodes.length) fail("internal: a node both reads a parameter and depends on its update; the training step cannot be ordered");
  g.nodes = order;
}

/** At train_step's fullest step: bytes of forward values kept for backward, of gradients, of scratch. */
function arenaBreakdown(g: Graph, layout: MemoryLayout, outputs: Set<Value>, grads: Value[]) {
  // forward values: everything the loss and the output are computed from
  const forward = new Set<Value>();
  const stack = [...outputs];
  while (stack.length) {
    const v = stack.pop()!;
    if (forward.has(v)) continue;
    forward.add(v);
    if (v.producer) stack.push(...v.producer.inputs);
  }
  const idOf = new Map<number, Value>();
  for (const v of [...g.inputs, ...g.nodes.flatMap((n) => n.outputs)]) if (!idOf.has(v.id)) idOf.set(v.id, v);
  const buffers = layout.arena.buffers;
  const steps = Math.max(...buffers.map((b) => b.lastUse)) + 1;
  const live = (s: number) => buffers.filter((b) => b.firstUse <= s && s <= b.lastUse);
  let peak = 0, peakBytes = -1;
  for (let s = 0; s < steps; s++) {
    const total = live(s).reduce((a, b) => a + alignUp(b.bytes), 0);
    if (total > peakBytes) [peak, peakBytes] = [s, total];
  }
  const result = { step: peak, savedActivations: 0, gradients: 0, scratch: 0, other: 0 };
  for (const b of live(peak)) {
    const v = idOf.get(b.id), bytes = alignUp(b.bytes);
    if (b.id < 0) result.scratch += bytes;
    else if (v && (v.kind === "input" || outputs.has(v))) result.other += bytes;
    else if (v && forward.has(v)) result.savedActivations += bytes;
    else result.gradients += bytes;
  }
  // a gradient that is a view (a reshaped bias gradient) lives in the buffer it views
  const viewed = new Map<Value, Value>();
  for (const n of g.nodes) if (getOp(n.op).view) viewed.set(n.outputs[0], viewed.get(n.inputs[0]) ?? n.inputs[0]);
  const gradIds = new Set(grads.map((v) => (viewed.get(v) ?? v).id));
  let peakLive = 0;
  for (let s = 0; s < steps; s++) peakLive = Math.max(peakLive, live(s).filter((b) => gradIds.has(b.id)).reduce((a, b) => a + alignUp(b.bytes), 0));
  return { peak: result, parameterGradients: { peakLive, allKept: grads.reduce((a, v) => a + alignUp(v.bytes), 0) } };
}
