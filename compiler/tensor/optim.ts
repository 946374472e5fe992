import { fail } from "../errors.js";
import { shapeStr } from "../ir/shape.js";

/**
 * The checks PyTorch's optimizers make, plus finiteness: an infinite or NaN learning rate, weight decay or
 * eps would turn every weight into NaN or infinity at the first step.
 */
export function checkHyperparameters(name: string, h: { lr: number; momentum?: number; weightDecay?: number; eps?: number; betas?: readonly number[] }): void {
  const valid = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;
  if (!valid(h.lr)) fail(`${name}: invalid learning rate ${h.lr} (a finite number >= 0)`);
  if (h.momentum !== undefined && !valid(h.momentum)) fail(`${name}: invalid momentum ${h.momentum} (a finite number >= 0)`);
  if (h.weightDecay !== undefined && !valid(h.weightDecay)) fail(`${name}: invalid weight decay ${h.weightDecay} (a finite number >= 0)`);
  if (h.eps !== undefined && !valid(h.eps)) fail(`${name}: invalid eps ${h.eps} (a finite number >= 0)`);
  if (h.betas !== undefined && !(h.betas.length === 2 && h.betas.every((b) => valid(b) && b < 1))) fail(`${name}: betas must be two numbers in [0, 1), got [${h.betas}]`);
}
import type { Tensor } from "./tensor.js";

/**
 * Optimizers with PyTorch's update formulas. step() updates each parameter's float32 host data in place
 * from its .grad; per-parameter state is plain Float32Arrays (the layout a compiled training step mirrors).
 */
abstract class Optimizer {
  readonly params: Tensor[];

  constructor(params: Iterable<Tensor>) {
    this.params = [...params];
    if (this.params.length === 0) fail("optimizer got an empty parameter list");
    for (const p of this.params) if (p.dtype !== "float32") fail(`optimizers update float32 parameters, got a ${p.dtype} tensor of shape ${shapeStr(p.shape)}`);
  }

  /** updates every parameter that has a gradient; the others are left as they are */
  step(): void {
    for (const p of this.params) if (p.grad) this.update(p, p.data as Float32Array, p.grad.data as Float32Array);
  }

  /** drops the parameters' gradients (PyTorch's zero_grad(set_to_none=True)) */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  protected abstract update(p: Tensor, w: Float32Array, g: Float32Array): void;
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  /** L2 penalty added to the gradient */
  weightDecay?: number;
}

/** torch.optim.SGD (no dampening, no Nesterov): d = g + wd·w; b = μ·b + d (b = d on the first step); w -= lr·b */
export class SGD extends Optimizer {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  /** the momentum buffer of each parameter, from its first step on */
  readonly momentumBuffers = new Map<Tensor, Float32Array>();

  constructor(params: Iterable<Tensor>, { lr, momentum = 0, weightDecay = 0 }: SGDOptions) {
    super(params);
    checkHyperparameters("SGD", { lr, momentum, weightDecay });
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
  }

  protected update(p: Tensor, w: Float32Array, g: Float32Array): void {
    let buf = this.momentumBuffers.get(p);
    // a zero buffer makes the first step's μ·0 + d equal PyTorch's b = d
    if (!buf && this.momentum) this.momentumBuffers.set(p, (buf = new Float32Array(w.length)));
    for (let i = 0; i < w.length; i++) {
      let d = g[i] + this.weightDecay * w[i];
      if (buf) {
        buf[i] = this.momentum * buf[i] + d;
        d = buf[i];
      }
      w[i] -= this.lr * d;
    }
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Adam: L2 penalty added to the gradient; AdamW: decoupled decay w *= 1 - lr·wd */
  weightDecay?: number;
}

/** Adam's per-parameter state: the step count and the first and second moment estimates. */
export interface AdamState {
  step: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

/**
 * torch.optim.Adam / AdamW (amsgrad off): m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
 * w -= lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + eps).
 */
abstract class AdamBase extends Optimizer {
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly state = new Map<Tensor, AdamState>();

  constructor(name: string, params: Iterable<Tensor>, opts: AdamOptions, defaultWeightDecay: number, private readonly decoupled: boolean) {
    super(params);
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = defaultWeightDecay } = opts;
    checkHyperparameters(name, { lr, weightDecay, eps, betas });
    this.lr = lr;
    this.betas = [betas[0], betas[1]];
    this.eps = eps;
    this.weightDecay = weightDecay;
  }

  protected update(p: Tensor, w: Float32Array, g: Float32Array): void {
    let s = this.state.get(p);
    if (!s) this.state.set(p, (s = { step: 0, expAvg: new Float32Array(w.length), expAvgSq: new Float32Array(w.length) }));
    s.step++;
    const [b1, b2] = this.betas;
    const stepSize = this.lr / (1 - b1 ** s.step), bias2Sqrt = Math.sqrt(1 - b2 ** s.step);
    const decay = this.decoupled ? 1 - this.lr * this.weightDecay : 1;
    const l2 = this.decoupled ? 0 : this.weightDecay;
    const { expAvg: m, expAvgSq: v } = s;
    for (let i = 0; i < w.length; i++) {
      w[i] *= decay;
      const gi = g[i] + l2 * w[i];
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      w[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bias2Sqrt + this.eps);
    }
  }
}

/** torch.optim.Adam: weight decay (default 0) is an L2 term added to the gradient. */
export class Adam extends AdamBase {
  constructor(params: Iterable<Tensor>, opts: AdamOptions = {}) {
    super("Adam", params, opts, 0, false);
  }
}

/** torch.optim.AdamW: weight decay (default 0.01) shrinks the weights directly, before the Adam step. */
export class AdamW extends AdamBase {
  constructor(params: Iterable<Tensor>, opts: AdamOptions = {}) {
    super("AdamW", params, opts, 0.01, true);
  }
}
