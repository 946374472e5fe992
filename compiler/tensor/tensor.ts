import { fail } from "../errors.js";
import { DTYPES, isBigIntArray, isDType, numel, type DType, type TypedArray } from "../ir/dtype.js";
import type { Attrs, HostTensor, Value } from "../ir/graph.js";
import { hostArray, normalizeAxis, shapeStr, writeNum } from "../ir/shape.js";
import { getOp, inferTypes } from "../ops/index.js";
import { sliceLength } from "../ops/shape.js";
import { defaultGenerator, type Generator } from "./random.js";
import { activeTrace } from "./trace.js";

export type NestedArray = number | boolean | NestedArray[];
type Scalar = number;
type TensorLike = Tensor | Scalar;

export interface ConvOptions { stride?: number | number[]; padding?: number | number[]; dilation?: number | number[]; groups?: number }
export interface PoolOptions { stride?: number | number[]; padding?: number | number[]; dilation?: number | number[]; ceilMode?: boolean; countIncludePad?: boolean }

const pair = (v: number | number[] | undefined, dflt: number, n = 2): number[] =>
  v === undefined ? Array(n).fill(dflt) : typeof v === "number" ? Array(n).fill(v) : v.length === n ? [...v] : fail(`expected ${n} values, got [${v}]`);

/** How an eager tensor was made from inputs that require grad: what backward() walks. */
export interface Creator {
  op: string;
  inputs: Tensor[];
  attrs: Attrs;
  /** names the node in errors ("floor_12") */
  name: string;
}

/**
 * A tensor. Eager tensors hold host data and compute through each op's reference implementation;
 * during tracing, tensors derived from the model's inputs are symbolic and record graph nodes instead.
 * Both paths go through `apply`, so every op is defined exactly once (in compiler/ops).
 */
export class Tensor {
  /** set on parameters the optimizer may update (see nn.Parameter), and on eager results computed from them */
  requiresGrad = false;
  /** dL/d(this), accumulated by backward() on leaf tensors that require grad */
  grad: Tensor | null = null;
  /** the op that made this tensor, when an input required grad (eager mode only) */
  creator: Creator | null = null;

  constructor(
    readonly shape: number[],
    readonly dtype: DType,
    private storage: TypedArray | null,
    /** the graph value this tensor stands for while tracing */
    readonly value: Value | null = null,
  ) {}

  // --- creation --------------------------------------------------------------------------------
  static from(data: NestedArray | TypedArray, opts: { shape?: number[]; dtype?: DType } = {}): Tensor {
    if (ArrayBuffer.isView(data)) {
      const dtype = opts.dtype ?? dtypeOfArray(data);
      const shape = opts.shape ?? [data.length];
      if (numel(shape) !== data.length) fail(`shape ${shapeStr(shape)} needs ${numel(shape)} elements, got ${data.length}`);
      const arr = new DTYPES[dtype].array(data.length);
      (arr as Float32Array).set(data as Float32Array);
      return new Tensor([...shape], dtype, arr);
    }
    const shape = nestedShape(data);
    const flat = (Array.isArray(data) ? (data as unknown[]).flat(Infinity) : [data]) as (number | boolean)[];
    const dtype = opts.dtype ?? (typeof flat[0] === "boolean" ? "bool" : "float32");
    const arr = new DTYPES[dtype].array(flat.length);
    flat.forEach((x, i) => writeNum(arr, i, Number(x)));
    return new Tensor(opts.shape ?? shape, dtype, arr).reshapeCheck(flat.length);
  }
  static full(shape: number[], value: number, dtype: DType = "float32"): Tensor {
    const arr = hostArray(shape, dtype);
    if (isBigIntArray(arr)) arr.fill(BigInt(Math.trunc(value)));
    else arr.fill(value);
    return new Tensor([...shape], dtype, arr);
  }
  static zeros = (shape: number[], dtype: DType = "float32"): Tensor => Tensor.full(shape, 0, dtype);
  static ones = (shape: number[], dtype: DType = "float32"): Tensor => Tensor.full(shape, 1, dtype);
  static arange(start: number, end?: number, step = 1, dtype: DType = "float32"): Tensor {
    if (end === undefined) [start, end] = [0, start];
    const n = Math.max(0, Math.ceil((end - start) / step));
    const arr = new DTYPES[dtype].array(n);
    for (let i = 0; i < n; i++) writeNum(arr, i, start + i * step);
    return new Tensor([n], dtype, arr);
  }
  /** uniform in [low, high) */
  static rand(shape: number[], opts: { low?: number; high?: number; generator?: Generator } = {}): Tensor {
    const g = opts.generator ?? defaultGenerator, lo = opts.low ?? 0, hi = opts.high ?? 1;
    const arr = new Float32Array(numel(shape));
    for (let i = 0; i < arr.length; i++) arr[i] = lo + (hi - lo) * g.next();
    return new Tensor([...shape], "float32", arr);
  }
  static randn(shape: number[], opts: { mean?: number; std?: number; generator?: Generator } = {}): Tensor {
    const g = opts.generator ?? defaultGenerator;
    const arr = new Float32Array(numel(shape));
    for (let i = 0; i < arr.length; i++) arr[i] = (opts.mean ?? 0) + (opts.std ?? 1) * g.normal();
    return new Tensor([...shape], "float32", arr);
  }
  static cat(tensors: Tensor[], dim = 0): Tensor {
    return apply("concat", tensors, { axis: dim });
  }
  static where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
    const dtype = a instanceof Tensor ? a.dtype : b instanceof Tensor ? b.dtype : "float32";
    const [x, y] = [asTensor(a, dtype), asTensor(b, dtype)];
    return apply("where", [cond, x, y], {});
  }

  // --- data access -------------------------------------------------------------------------------
  get size(): number {
    return numel(this.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get isSymbolic(): boolean {
    return this.storage === null;
  }
  /** the host data (eager tensors only) */
  get data(): TypedArray {
    if (!this.storage) fail(`tensor ${this.value?.name ?? ""} ${shapeStr(this.shape)} is symbolic while tracing: its values are only known when the compiled model runs`);
    return this.storage;
  }
  host(): HostTensor {
    return { shape: this.shape, dtype: this.dtype, data: this.data };
  }
  toArray(): NestedArray {
    const flat = Array.from(this.data as Float32Array, Number);
    const build = (dim: number, off: number): NestedArray => {
      if (dim === this.shape.length) return flat[off];
      const inner = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * inner));
    };
    return build(0, 0);
  }
  item(): number {
    if (this.size !== 1) fail(`item() needs a tensor with one element, got ${shapeStr(this.shape)}`);
    return Number(this.data[0]);
  }
  /** copies another tensor's values into this one (shapes must match): how loadStateDict updates weights */
  copy_(src: Tensor): this {
    if (src.shape.join() !== this.shape.join()) fail(`cannot copy ${shapeStr(src.shape)} into ${shapeStr(this.shape)}`);
    const dst = this.data as Float32Array;
    dst.set(src.dtype === this.dtype ? (src.data as Float32Array) : Array.from(src.data as Float32Array, Number));
    return this;
  }
  /** the same data cut from the autograd graph: no gradient flows back through the result */
  detach(): Tensor {
    // while tracing, a graph node marks the cut for the compiled backward (it costs no code: a view)
    const trace = activeTrace();
    if (trace && (this.isSymbolic || trace.isParameter(this))) return apply("stopGradient", [this], {});
    return new Tensor(this.shape, this.dtype, this.storage, this.value);
  }
  /**
   * Backpropagates from this one-element loss: every leaf tensor that requires grad and that the loss
   * depends on gets dL/d(leaf) added to its `.grad` (accumulated like PyTorch; see Module.zeroGrad).
   */
  backward(): void {
    if (this.size !== 1) fail(`backward() needs a scalar loss, got a tensor of shape ${shapeStr(this.shape)}; reduce it first (e.g. .mean())`);
    if (!this.requiresGrad) fail("backward(): the loss does not depend on any tensor that requires grad (computed under noGrad(), or from detached tensors?)");
    const order = topologicalOrder(this);
    const grads = new Map<Tensor, Tensor>([[this, Tensor.ones(this.shape, this.dtype)]]);
    noGrad(() => {
      for (let i = order.length - 1; i >= 0; i--) {
        const t = order[i], g = grads.get(t);
        if (!g) continue;
        if (!t.creator) {
          t.grad = t.grad ? t.grad.add(g) : g;
          continue;
        }
        const { op, inputs, attrs, name } = t.creator;
        const def = getOp(op);
        if (!def.grad) {
          fail(`cannot backpropagate through '${op}' (node ${name}, output ${shapeStr(t.shape)}): ${def.notDifferentiable ?? "it has no gradient rule"}. ` +
            "It lies between the loss and a tensor that requires grad; detach() its input if no gradient should flow there");
        }
        const needs = inputs.map((x) => x.requiresGrad);
        const inputGrads = def.grad({ inputs, output: t, attrs, grad: g, needs });
        inputs.forEach((x, k) => {
          const gk = inputGrads[k];
          if (!needs[k] || !gk) return;
          if (gk.shape.join() !== x.shape.join()) fail(`internal: the ${op} gradient rule (node ${name}) returned ${shapeStr(gk.shape)} for input ${k} of shape ${shapeStr(x.shape)}`);
          const prev = grads.get(x);
          grads.set(x, prev ? prev.add(gk) : gk);
        });
      }
    });
  }
  toString(): string {
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype}${this.storage ? `, ${JSON.stringify(this.toArray())}` : ", symbolic"})`;
  }

  // --- element-wise ------------------------------------------------------------------------------
  add = (o: TensorLike) => this.binary("add", o);
  sub = (o: TensorLike) => this.binary("sub", o);
  mul = (o: TensorLike) => this.binary("mul", o);
  div = (o: TensorLike) => this.binary("div", o);
  pow = (o: TensorLike) => this.binary("pow", o);
  maximum = (o: TensorLike) => this.binary("maximum", o);
  minimum = (o: TensorLike) => this.binary("minimum", o);
  eq = (o: TensorLike) => this.binary("eq", o);
  ne = (o: TensorLike) => this.binary("ne", o);
  lt = (o: TensorLike) => this.binary("lt", o);
  le = (o: TensorLike) => this.binary("le", o);
  gt = (o: TensorLike) => this.binary("gt", o);
  ge = (o: TensorLike) => this.binary("ge", o);
  neg = () => this.unary("neg");
  abs = () => this.unary("abs");
  exp = () => this.unary("exp");
  log = () => this.unary("log");
  sqrt = () => this.unary("sqrt");
  reciprocal = () => this.unary("reciprocal");
  sin = () => this.unary("sin");
  cos = () => this.unary("cos");
  floor = () => this.unary("floor");
  ceil = () => this.unary("ceil");
  round = () => this.unary("round");
  sign = () => this.unary("sign");
  erf = () => this.unary("erf");
  softplus = () => this.unary("softplus");

  // --- activations -------------------------------------------------------------------------------
  relu = () => this.unary("relu");
  relu6 = () => this.clamp(0, 6);
  clamp = (min = -Infinity, max = Infinity) => this.unary("clamp", { min, max });
  leakyRelu = (alpha = 0.01) => this.unary("leakyRelu", { alpha });
  sigmoid = () => this.unary("sigmoid");
  tanh = () => this.unary("tanh");
  gelu = () => this.unary("gelu");
  silu = () => this.unary("silu");
  hardswish = () => this.unary("hardswish");
  hardsigmoid = () => this.unary("hardsigmoid", { alpha: 1 / 6, beta: 0.5 });
  elu = (alpha = 1) => this.unary("elu", { alpha });
  softmax = (dim = -1) => apply("softmax", [this], { axis: dim, log: false });
  logSoftmax = (dim = -1) => apply("softmax", [this], { axis: dim, log: true });

  // --- reductions --------------------------------------------------------------------------------
  sum = (dim?: number | number[], keepdim = false) => this.reduce("sum", dim, keepdim);
  mean = (dim?: number | number[], keepdim = false) => this.reduce("mean", dim, keepdim);
  max = (dim?: number | number[], keepdim = false) => this.reduce("max", dim, keepdim);
  min = (dim?: number | number[], keepdim = false) => this.reduce("min", dim, keepdim);
  prod = (dim?: number | number[], keepdim = false) => this.reduce("prod", dim, keepdim);
  /** int32 indices; without dim, over the flattened tensor */
  argmax = (dim?: number, keepdim = false) => this.argreduce(false, dim, keepdim);
  argmin = (dim?: number, keepdim = false) => this.argreduce(true, dim, keepdim);

  // --- shape -------------------------------------------------------------------------------------
  reshape(...shape: (number | number[])[]): Tensor {
    const want = shape.flat();
    const known = want.filter((d) => d !== -1);
    if (want.length - known.length > 1) fail(`reshape ${shapeStr(this.shape)} to ${shapeStr(want)}: at most one -1`);
    const resolved = want.map((d) => (d === -1 ? this.size / Math.max(1, numel(known)) : d));
    if (!resolved.every(Number.isInteger) || numel(resolved) !== this.size) fail(`cannot reshape ${shapeStr(this.shape)} (${this.size} elements) to ${shapeStr(want)}`);
    if (resolved.join() === this.shape.join()) return this;
    return apply("reshape", [this], { shape: resolved });
  }
  view = (...shape: (number | number[])[]) => this.reshape(...shape);
  flatten(start = 0, end = -1): Tensor {
    if (this.ndim === 0) return this.reshape(1);
    const s = normalizeAxis(start, this.ndim), e = normalizeAxis(end, this.ndim);
    return this.reshape([...this.shape.slice(0, s), numel(this.shape.slice(s, e + 1)), ...this.shape.slice(e + 1)]);
  }
  squeeze(dim?: number): Tensor {
    if (dim === undefined) return this.reshape(this.shape.filter((d) => d !== 1));
    const d = normalizeAxis(dim, this.ndim);
    return this.shape[d] === 1 ? this.reshape(this.shape.filter((_, i) => i !== d)) : this;
  }
  unsqueeze(dim: number): Tensor {
    const d = normalizeAxis(dim, this.ndim + 1);
    return this.reshape([...this.shape.slice(0, d), 1, ...this.shape.slice(d)]);
  }
  permute(...dims: (number | number[])[]): Tensor {
    const perm = dims.flat().map((d) => normalizeAxis(d, this.ndim));
    if (perm.every((p, i) => p === i)) return this;
    return apply("permute", [this], { perm });
  }
  transpose(d0 = -2, d1 = -1): Tensor {
    const perm = [...this.shape.keys()];
    const [a, b] = [normalizeAxis(d0, this.ndim), normalizeAxis(d1, this.ndim)];
    [perm[a], perm[b]] = [perm[b], perm[a]];
    return this.permute(perm);
  }
  get T(): Tensor {
    return this.permute([...this.shape.keys()].reverse());
  }
  /** python-style slice along one dim: negative indices count from the end, out-of-range ends clamp */
  slice(dim: number, start = 0, end = Infinity, step = 1): Tensor {
    const d = normalizeAxis(dim, this.ndim), n = this.shape[d];
    if (!Number.isInteger(step) || step <= 0) fail(`slice step must be a positive integer, got ${step}`);
    const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
    const starts = this.shape.map(() => 0), ends = [...this.shape], steps = this.shape.map(() => 1);
    [starts[d], ends[d], steps[d]] = [clampIdx(start), clampIdx(end), step];
    if (sliceLength(starts[d], ends[d], step) === n) return this;
    return apply("slice", [this], { starts, ends, steps });
  }
  /** torch.nn.functional.pad order: pairs for the last dim first */
  pad(pads: number[], value = 0): Tensor {
    if (pads.length % 2 || pads.length / 2 > this.ndim) fail(`pad takes pairs for at most ${this.ndim} dims, got [${pads}]`);
    const before = this.shape.map(() => 0), after = this.shape.map(() => 0);
    for (let i = 0; i < pads.length / 2; i++) [before[this.ndim - 1 - i], after[this.ndim - 1 - i]] = [pads[2 * i], pads[2 * i + 1]];
    return apply("pad", [this], { pads: [...before, ...after], value });
  }
  /** reverses the order of the elements along each given dim */
  flip(...dims: (number | number[])[]): Tensor {
    const axes = dims.flat().map((d) => normalizeAxis(d, this.ndim));
    const flipped = (i: number) => axes.includes(i);
    return apply("slice", [this], {
      starts: this.shape.map((n, i) => (flipped(i) ? n - 1 : 0)),
      ends: this.shape.map((n, i) => (flipped(i) ? -1 : n)),
      steps: this.shape.map((_, i) => (flipped(i) ? -1 : 1)),
    });
  }
  expand(...shape: (number | number[])[]): Tensor {
    const want = shape.flat();
    const full = want.map((d, i) => (d === -1 ? this.shape[i - (want.length - this.ndim)] : d));
    return apply("expand", [this], { shape: full });
  }

  // --- linear algebra and NN ---------------------------------------------------------------------
  matmul = (o: Tensor) => apply("matmul", [this, o], {});
  /** x @ weight^T + bias, with weight [out, in] as in torch */
  linear(weight: Tensor, bias?: Tensor): Tensor {
    const y = this.matmul(weight.T);
    return bias ? y.add(bias) : y;
  }
  conv2d(weight: Tensor, bias?: Tensor, opts: ConvOptions = {}): Tensor {
    const [ph, pw] = pair(opts.padding, 0);
    const attrs = { stride: pair(opts.stride, 1), pads: [ph, pw, ph, pw], dilation: pair(opts.dilation, 1), groups: opts.groups ?? 1 };
    return apply("conv2d", bias ? [this, weight, bias] : [this, weight], attrs);
  }
  /** [N, C, L] with weight [OC, C/groups, K]: conv2d over a height of 1 */
  conv1d(weight: Tensor, bias?: Tensor, opts: ConvOptions = {}): Tensor {
    if (this.ndim !== 3) fail(`conv1d input must be [N, C, L], got ${shapeStr(this.shape)}`);
    const one = (v: number | number[] | undefined, d: number) => [1, pair(v, d, 1)[0]];
    const y = this.unsqueeze(2).conv2d(weight.unsqueeze(2), bias, {
      stride: one(opts.stride, 1), padding: [0, pair(opts.padding, 0, 1)[0]], dilation: one(opts.dilation, 1), groups: opts.groups,
    });
    return y.squeeze(2);
  }
  maxPool2d(kernel: number | number[], opts: PoolOptions = {}): Tensor {
    return apply("maxpool2d", [this], this.poolAttrs(kernel, opts));
  }
  avgPool2d(kernel: number | number[], opts: PoolOptions = {}): Tensor {
    return apply("avgpool2d", [this], { ...this.poolAttrs(kernel, opts), countIncludePad: opts.countIncludePad ?? true });
  }
  globalAvgPool2d(): Tensor {
    return this.mean([2, 3], true);
  }
  batchNorm(mean: Tensor, variance: Tensor, weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
    const C = this.shape[1];
    return apply("batchnorm", [this, weight ?? Tensor.ones([C]), bias ?? Tensor.zeros([C]), mean, variance], { eps });
  }
  layerNorm(normalizedShape: number[], weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
    const axis = this.ndim - normalizedShape.length;
    if (axis < 0 || this.shape.slice(axis).join() !== normalizedShape.join()) fail(`layerNorm: normalized shape ${shapeStr(normalizedShape)} is not the end of input ${shapeStr(this.shape)}`);
    const inputs = weight ? (bias ? [this, weight, bias] : [this, weight]) : [this];
    return apply("layernorm", inputs, { axis, eps });
  }
  /** rows of this [num, dim] table picked by int32 indices */
  embedding(indices: Tensor): Tensor {
    return apply("gather", [this, indices], { axis: 0 });
  }

  // --- helpers -----------------------------------------------------------------------------------
  private unary(op: string, attrs: Attrs = {}): Tensor {
    return apply(op, [this], attrs);
  }
  private binary(op: string, o: TensorLike): Tensor {
    return apply(op, [this, asTensor(o, this.dtype)], {});
  }
  private reduce(kind: string, dim: number | number[] | undefined, keepdim: boolean): Tensor {
    const axes = dim === undefined ? undefined : [dim].flat();
    return apply("reduce", [this], { kind, axes, keepdim });
  }
  private argreduce(isMin: boolean, dim: number | undefined, keepdim: boolean): Tensor {
    const src = dim === undefined ? this.reshape(-1) : this;
    return apply("argreduce", [src], { axis: dim ?? 0, keepdim: dim === undefined ? false : keepdim, isMin, selectLast: false });
  }
  private poolAttrs(kernel: number | number[], opts: PoolOptions): Attrs {
    const k = pair(kernel, 1);
    const [ph, pw] = pair(opts.padding, 0);
    return { kernel: k, stride: opts.stride === undefined ? k : pair(opts.stride, 1), pads: [ph, pw, ph, pw], dilation: pair(opts.dilation, 1), ceilMode: opts.ceilMode ?? false };
  }
  private reshapeCheck(n: number): Tensor {
    if (numel(this.shape) !== n) fail(`shape ${shapeStr(this.shape)} needs ${numel(this.shape)} elements, got ${n}`);
    return this;
  }
}

/** A number becomes a 0-d tensor; anything else must be one of this library's tensors. */
function asTensor(x: TensorLike, dtype: DType): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x === "number") return scalar(x, dtype);
  fail(`expected a Tensor or a number, got ${x === null ? "null" : typeof x === "object" ? `${(x as object).constructor?.name ?? "an object"} (a Tensor from another copy of teenygrad?)` : typeof x}`);
}

function scalar(x: number, dtype: DType): Tensor {
  const arr = new DTYPES[dtype].array(1);
  writeNum(arr, 0, x);
  return new Tensor([], dtype, arr);
}

function dtypeOfArray(a: ArrayBufferView): DType {
  const map: [Function, DType][] = [[Float32Array, "float32"], [Float64Array, "float64"], [Int8Array, "int8"], [Uint8Array, "uint8"], [Int16Array, "int16"], [Uint16Array, "uint16"], [Int32Array, "int32"], [Uint32Array, "uint32"], [BigInt64Array, "int64"], [BigUint64Array, "uint64"]];
  const hit = map.find(([ctor]) => a instanceof ctor);
  if (!hit) fail(`unsupported typed array ${a.constructor.name}`);
  return hit[1];
}

function nestedShape(data: NestedArray): number[] {
  if (!Array.isArray(data)) return [];
  if (data.length === 0) return [0];
  const inner = nestedShape(data[0]);
  for (const d of data) {
    if (nestedShape(d).join() !== inner.join()) fail(`ragged nested array: rows of shape ${shapeStr(inner)} and ${shapeStr(nestedShape(d))}`);
  }
  return [data.length, ...inner];
}

let gradEnabled = true;
let eagerNodes = 0;

/** Runs `fn` (synchronously) without recording anything for backward(), like torch.no_grad(). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/** Tensors that require grad below `root`, each after every tensor it was computed from. */
function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>([root]);
  // iterative depth-first search: a long training graph must not overflow the call stack
  const stack: { t: Tensor; next: number }[] = [{ t: root, next: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const inputs = top.t.creator?.inputs ?? [];
    if (top.next < inputs.length) {
      const x = inputs[top.next++];
      if (x.requiresGrad && !seen.has(x)) {
        seen.add(x);
        stack.push({ t: x, next: 0 });
      }
    } else {
      stack.pop();
      order.push(top.t);
    }
  }
  return order;
}

const isFloat = (dtype: DType): boolean => dtype === "float32" || dtype === "float64";

/**
 * Runs an op eagerly, or records it when tracing and any input is symbolic. An eager result computed
 * from an input that requires grad remembers its creator for backward() (gradients flow through float
 * tensors only; a trace records no creators: its graph is what a compiled backward will differentiate).
 */
export function apply(op: string, inputs: Tensor[], attrs: Attrs): Tensor {
  const trace = activeTrace();
  if (trace && inputs.some((t) => t.isSymbolic || trace.isParameter(t))) {
    const node = trace.record(op, inputs, attrs);
    return new Tensor(node.outputs[0].shape, node.outputs[0].dtype, null, node.outputs[0]);
  }
  for (const t of inputs) if (!isDType(t.dtype)) fail(`unknown dtype ${t.dtype}`);
  inferTypes(op, inputs, attrs, op); // shape errors name both shapes before any computing
  const [out] = getOp(op).reference(inputs.map((t) => t.host()), attrs);
  const result = new Tensor(out.shape, out.dtype, out.data);
  if (gradEnabled && !trace && isFloat(out.dtype) && inputs.some((t) => t.requiresGrad)) {
    result.requiresGrad = true;
    result.creator = { op, inputs, attrs, name: `${op}_${eagerNodes++}` };
  }
  return result;
}
