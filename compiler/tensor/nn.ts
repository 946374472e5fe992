import { fail } from "../errors.js";
import type { DType } from "../ir/dtype.js";
import type { Graph } from "../ir/graph.js";
import { shapeStr } from "../ir/shape.js";
import { encodeSafetensors, parseSafetensors } from "../host/safetensors.js";
import { noGrad, Tensor, type ConvOptions, type PoolOptions } from "./tensor.js";
import { activeTrace, Trace, withTrace } from "./trace.js";

/** A trainable tensor (torch.nn.Parameter). */
export class Parameter extends Tensor {
  constructor(t: Tensor, requiresGrad = true) {
    super(t.shape, t.dtype, t.data);
    this.requiresGrad = requiresGrad;
  }
}

const MODULE = Symbol.for("teenygrad.Module");

/**
 * torch.nn.Module: parameters, buffers and child modules are found from the instance's own properties
 * in assignment order, so `this.fc = new Linear(…)` registers "fc.weight" and "fc.bias".
 */
export abstract class Module {
  readonly [MODULE] = true;
  private bufferNames = new Set<string>();
  /**
   * Training mode (PyTorch's module.training), set by train() / eval(). Unlike PyTorch a module starts in
   * eval mode, so fine-tuning keeps BatchNorm on its running statistics unless train() is called.
   */
  training = false;

  abstract forward(...inputs: Tensor[]): Tensor | Tensor[] | Record<string, Tensor>;

  /** registers a non-trainable tensor saved in the state dict (e.g. BatchNorm running statistics) */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.bufferNames.add(name);
    (this as unknown as Record<string, Tensor>)[name] = t;
    return t;
  }

  /** sets training mode on this module and every submodule (PyTorch's train(mode)); returns this */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (isModule(v)) out.push([k, v]);
      else if (Array.isArray(v)) v.forEach((m, i) => isModule(m) && out.push([`${k}.${i}`, m]));
    }
    return out;
  }
  namedModules(prefix = ""): [string, Module][] {
    return [[prefix, this], ...this.namedChildren().flatMap(([k, m]) => m.namedModules(prefix ? `${prefix}.${k}` : k))];
  }
  namedParameters(): [string, Parameter][] {
    return this.namedTensors().filter((e): e is [string, Parameter] => e[1] instanceof Parameter);
  }
  namedBuffers(): [string, Tensor][] {
    return this.namedTensors().filter(([, t]) => !(t instanceof Parameter));
  }
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }
  /** drops every parameter's accumulated gradient (PyTorch's zero_grad(set_to_none=True)) */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }
  /** parameters and buffers in registration order, with dotted names */
  private namedTensors(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [k, v] of Object.entries(m)) {
        if (v instanceof Parameter || (v instanceof Tensor && m.bufferNames.has(k))) out.push([prefix ? `${prefix}.${k}` : k, v]);
      }
    }
    return out;
  }

  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.namedTensors());
  }
  /** copies values into this module's tensors; every key must match by name and shape unless strict is false */
  loadStateDict(state: Record<string, Tensor>, strict = true): void {
    const own = new Map(this.namedTensors());
    if (strict) {
      const missing = [...own.keys()].filter((k) => !(k in state));
      const unexpected = Object.keys(state).filter((k) => !own.has(k));
      if (missing.length || unexpected.length) {
        fail(`loadStateDict: ${missing.length ? `missing keys: ${missing.join(", ")}` : ""}${missing.length && unexpected.length ? "; " : ""}${unexpected.length ? `unexpected keys: ${unexpected.join(", ")}` : ""}`);
      }
    }
    for (const [k, t] of Object.entries(state)) {
      const dst = own.get(k);
      if (!dst) continue;
      if (dst.shape.join() !== t.shape.join()) fail(`loadStateDict: '${k}' has shape ${shapeStr(t.shape)} but the module expects ${shapeStr(dst.shape)}`);
      dst.copy_(t);
    }
  }
}

export const isModule = (v: unknown): v is Module => typeof v === "object" && v !== null && (v as Record<symbol, unknown>)[MODULE] === true;

/** torch's default init for Linear/Conv: U(-1/sqrt(fanIn), 1/sqrt(fanIn)) */
const uniformInit = (shape: number[], fanIn: number) => new Parameter(Tensor.rand(shape, { low: -1 / Math.sqrt(fanIn), high: 1 / Math.sqrt(fanIn) }));

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    super();
    this.weight = uniformInit([outFeatures, inFeatures], inFeatures);
    this.bias = bias ? uniformInit([outFeatures], inFeatures) : null;
  }
  forward(x: Tensor): Tensor {
    return x.linear(this.weight, this.bias ?? undefined);
  }
}

type ConvArgs = ConvOptions & { bias?: boolean };
abstract class ConvNd extends Module {
  weight: Parameter;
  bias: Parameter | null;
  protected opts: ConvOptions;
  constructor(inChannels: number, outChannels: number, kernel: number[], args: ConvArgs) {
    super();
    const groups = args.groups ?? 1;
    if (inChannels % groups || outChannels % groups) fail(`conv: ${inChannels} in and ${outChannels} out channels are not divisible by groups=${groups}`);
    const fanIn = (inChannels / groups) * kernel.reduce((a, b) => a * b, 1);
    this.weight = uniformInit([outChannels, inChannels / groups, ...kernel], fanIn);
    this.bias = args.bias === false ? null : uniformInit([outChannels], fanIn);
    this.opts = { stride: args.stride, padding: args.padding, dilation: args.dilation, groups };
  }
}
export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number, args: ConvArgs = {}) {
    super(inChannels, outChannels, [kernelSize], args);
  }
  forward(x: Tensor): Tensor {
    return x.conv1d(this.weight, this.bias ?? undefined, this.opts);
  }
}
export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | [number, number], args: ConvArgs = {}) {
    super(inChannels, outChannels, typeof kernelSize === "number" ? [kernelSize, kernelSize] : kernelSize, args);
  }
  forward(x: Tensor): Tensor {
    return x.conv2d(this.weight, this.bias ?? undefined, this.opts);
  }
}

/**
 * Batch norm over channel dim 1. In eval mode (the default) it normalizes with the running statistics.
 * In training mode (train()) it normalizes with the batch's mean and biased variance, as PyTorch does,
 * and moves the running statistics toward them: running = (1 - momentum)·running + momentum·batch, the
 * variance unbiased (n / (n - 1)) for the running estimate. A compiled train_step() updates them after
 * its guard, with the parameters.
 */
export class BatchNorm2d extends Module {
  weight: Parameter;
  bias: Parameter;
  declare runningMean: Tensor;
  declare runningVar: Tensor;
  constructor(readonly numFeatures: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    super();
    if (!(momentum >= 0 && momentum <= 1)) fail(`BatchNorm2d: momentum must be in [0, 1], got ${momentum}`);
    this.weight = new Parameter(Tensor.ones([numFeatures]));
    this.bias = new Parameter(Tensor.zeros([numFeatures]));
    this.registerBuffer("runningMean", Tensor.zeros([numFeatures]));
    this.registerBuffer("runningVar", Tensor.ones([numFeatures]));
  }
  forward(x: Tensor): Tensor {
    if (!this.training) return x.batchNorm(this.runningMean, this.runningVar, this.weight, this.bias, this.eps);
    const C = this.numFeatures;
    const axes = [0, ...x.shape.slice(2).map((_, i) => i + 2)];
    const n = x.size / C;
    if (n < 2) fail(`BatchNorm2d in training mode needs more than one value per channel, got input ${shapeStr(x.shape)} (batch statistics of one value have no variance)`);
    const mean = x.mean(axes);
    const centered = x.sub(mean.reshape([C, ...x.shape.slice(2).map(() => 1)]));
    const variance = centered.mul(centered).mean(axes);
    const m = this.momentum;
    updateBuffer(this.runningMean, () => this.runningMean.mul(1 - m).add(mean.detach().mul(m)));
    updateBuffer(this.runningVar, () => this.runningVar.mul(1 - m).add(variance.detach().mul((m * n) / (n - 1))));
    return x.batchNorm(mean, variance, this.weight, this.bias, this.eps);
  }
}

/**
 * Gives a buffer a new value computed by `next`: at once when eager (outside autograd), or, while a
 * training step is traced, as an update the step applies after its guard (so a step that fails leaves it).
 */
function updateBuffer(buffer: Tensor, next: () => Tensor): void {
  const trace = activeTrace();
  if (trace?.isParameter(buffer)) trace.deferUpdate(buffer, next);
  else noGrad(() => buffer.copy_(next()));
}

export class LayerNorm extends Module {
  weight: Parameter;
  bias: Parameter;
  readonly normalizedShape: number[];
  constructor(normalizedShape: number | number[], readonly eps = 1e-5) {
    super();
    this.normalizedShape = [normalizedShape].flat();
    this.weight = new Parameter(Tensor.ones(this.normalizedShape));
    this.bias = new Parameter(Tensor.zeros(this.normalizedShape));
  }
  forward(x: Tensor): Tensor {
    return x.layerNorm(this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

export class Embedding extends Module {
  weight: Parameter;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number) {
    super();
    this.weight = new Parameter(Tensor.randn([numEmbeddings, embeddingDim]));
  }
  forward(indices: Tensor): Tensor {
    return this.weight.embedding(indices);
  }
}

export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
  }
  override namedChildren(): [string, Module][] {
    return this.layers.map((m, i) => [String(i), m]);
  }
  forward(x: Tensor): Tensor {
    return this.layers.reduce((h, m) => m.forward(h) as Tensor, x);
  }
}

/** Parameter-free modules that apply one tensor method. */
export class ReLU extends Module { forward(x: Tensor): Tensor { return x.relu(); } }
export class ReLU6 extends Module { forward(x: Tensor): Tensor { return x.relu6(); } }
export class Sigmoid extends Module { forward(x: Tensor): Tensor { return x.sigmoid(); } }
export class Tanh extends Module { forward(x: Tensor): Tensor { return x.tanh(); } }
export class GELU extends Module { forward(x: Tensor): Tensor { return x.gelu(); } }
export class SiLU extends Module { forward(x: Tensor): Tensor { return x.silu(); } }
export class Hardswish extends Module { forward(x: Tensor): Tensor { return x.hardswish(); } }
export class Hardsigmoid extends Module { forward(x: Tensor): Tensor { return x.hardsigmoid(); } }
export class GlobalAvgPool2d extends Module { forward(x: Tensor): Tensor { return x.globalAvgPool2d(); } }
/** identity at inference */
export class Dropout extends Module { forward(x: Tensor): Tensor { return x; } }
export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) { super(); }
  forward(x: Tensor): Tensor { return x.leakyRelu(this.negativeSlope); }
}
export class Softmax extends Module {
  constructor(readonly dim = -1) { super(); }
  forward(x: Tensor): Tensor { return x.softmax(this.dim); }
}
export class LogSoftmax extends Module {
  constructor(readonly dim = -1) { super(); }
  forward(x: Tensor): Tensor { return x.logSoftmax(this.dim); }
}
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) { super(); }
  forward(x: Tensor): Tensor { return x.flatten(this.startDim, this.endDim); }
}
export class MaxPool2d extends Module {
  constructor(readonly kernelSize: number | number[], readonly opts: PoolOptions = {}) { super(); }
  forward(x: Tensor): Tensor { return x.maxPool2d(this.kernelSize, this.opts); }
}
export class AvgPool2d extends Module {
  constructor(readonly kernelSize: number | number[], readonly opts: PoolOptions = {}) { super(); }
  forward(x: Tensor): Tensor { return x.avgPool2d(this.kernelSize, this.opts); }
}

// --- tracing and state-dict files ------------------------------------------------------------------
export interface InputSpec { shape: number[]; dtype?: DType }

/** Runs `model.forward` once on symbolic inputs and returns the static graph it built. */
/** Runs `fn` with every module of `model` in eval mode (compiled inference: BatchNorm on its running statistics), then restores each mode. */
export function inEvalMode<T>(model: Module, fn: () => T): T {
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    return fn();
  } finally {
    for (const [m, training] of modes) m.training = training;
  }
}

/** Traces `model` for inference, in eval mode as torch.onnx.export does by default. */
export function traceModule(model: Module, inputs: Record<string, number[] | InputSpec>): Graph {
  const names = new Map<Tensor, string>(Object.entries(model.stateDict()).map(([k, t]) => [t, k]));
  const trace = new Trace(names);
  return inEvalMode(model, () => withTrace(trace, () => {
    const g = trace.graph;
    const symbolic = Object.entries(inputs).map(([name, spec]) => {
      const { shape, dtype = "float32" } = Array.isArray(spec) ? { shape: spec } : spec;
      if (!shape.every((d) => Number.isInteger(d) && d > 0)) fail(`input '${name}' needs a static shape of positive integers, got ${shapeStr(shape)}`);
      const v = g.addInput(name, { shape: [...shape], dtype });
      return new Tensor(v.shape, v.dtype, null, v);
    });
    if (symbolic.length === 0) fail("the model declares no inputs");
    const result = model.forward(...symbolic);
    const outputs: [string, Tensor][] = result instanceof Tensor ? [["output", result]]
      : Array.isArray(result) ? result.map((t, i) => [`output_${i}`, t]) : Object.entries(result);
    g.outputs = outputs.map(([name, t]) => {
      if (!(t instanceof Tensor)) fail(`forward() returned ${typeof t} for output '${name}'; expected a Tensor`);
      const v = t.value ?? g.addConstant({ shape: t.shape, dtype: t.dtype, data: t.data.slice() }, name);
      v.name = name;
      return v;
    });
    return g;
  }));
}

export function saveSafetensors(state: Module | Record<string, Tensor>): Uint8Array {
  const dict = isModule(state) ? state.stateDict() : state;
  return encodeSafetensors(Object.fromEntries(Object.entries(dict).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: t.data }])));
}

export function loadSafetensors(bytes: Uint8Array, source?: string): Record<string, Tensor> {
  const { tensors } = parseSafetensors(bytes, source);
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, Tensor.from(t.data, { shape: t.shape, dtype: t.dtype })]));
}
