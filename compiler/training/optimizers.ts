import { fail } from "../errors.js";
import { checkHyperparameters } from "../tensor/optim.js";
import { Tensor } from "../tensor/tensor.js";

/**
 * The compiled optimizers: PyTorch's update formulas (the same as the eager ones in tensor/optim.ts)
 * written with the Tensor API, so a training step traces them into graph nodes like any other op;
 * element-wise fusion turns each parameter's update into one or two generated loops.
 */
export type OptimizerSpec =
  | { type: "sgd"; lr: number; momentum?: number; weightDecay?: number }
  | { type: "adam" | "adamw"; lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number };

export interface UpdateContext {
  /** the learning rate: a scalar the host may change between steps */
  lr: Tensor;
  /** the step count including this step (Adam's bias corrections) */
  step: Tensor;
  /** a zero-initialised state tensor of the parameter's shape that persists across steps */
  state(slot: string): Tensor;
  /** `next` is the new value of `current` (a parameter or a state tensor): the step writes it there */
  assign(next: Tensor, current: Tensor): void;
}

export function checkOptimizer(spec: OptimizerSpec): Required<OptimizerSpec> {
  const type = spec?.type;
  if (type === "sgd") {
    const { lr, momentum = 0, weightDecay = 0 } = spec as Extract<OptimizerSpec, { type: "sgd" }>;
    checkHyperparameters("SGD", { lr, momentum, weightDecay });
    return { type, lr, momentum, weightDecay };
  }
  if (type === "adam" || type === "adamw") {
    const s = spec as Extract<OptimizerSpec, { type: "adam" | "adamw" }>;
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = type === "adamw" ? 0.01 : 0 } = s;
    checkHyperparameters(type, { lr, weightDecay, eps, betas });
    return { type, lr, betas, eps, weightDecay } as Required<OptimizerSpec>;
  }
  fail(`unknown optimizer '${String(type)}' (optimizers: sgd, adam, adamw)`);
}

/** Traces one parameter's update from its gradient; scalars shared by every parameter are cached in `shared`. */
export function traceUpdate(spec: Required<OptimizerSpec>, w: Tensor, grad: Tensor, ctx: UpdateContext, shared: Map<string, Tensor>): void {
  const once = (key: string, make: () => Tensor) => shared.get(key) ?? (shared.set(key, make()), shared.get(key)!);
  if (spec.type === "sgd") {
    // d = g + wd·w; b = μ·b + d; w -= lr·b
    let d = spec.weightDecay ? grad.add(w.mul(spec.weightDecay)) : grad;
    if (spec.momentum) {
      const buf = ctx.state("momentum_buffer");
      d = buf.mul(spec.momentum).add(d);
      ctx.assign(d, buf);
    }
    ctx.assign(w.sub(d.mul(ctx.lr)), w);
    return;
  }
  // Adam / AdamW: m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²; w -= lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + eps)
  const [b1, b2] = spec.betas;
  const decoupled = spec.type === "adamw";
  const decayed = decoupled && spec.weightDecay ? w.mul(once("decay", () => ctx.lr.mul(-spec.weightDecay).add(1))) : w;
  const g = !decoupled && spec.weightDecay ? grad.add(w.mul(spec.weightDecay)) : grad;
  const m = ctx.state("exp_avg"), v = ctx.state("exp_avg_sq");
  const m2 = m.mul(b1).add(g.mul(1 - b1));
  const v2 = v.mul(b2).add(g.mul(g).mul(1 - b2));
  ctx.assign(m2, m);
  ctx.assign(v2, v);
  const stepSize = once("stepSize", () => ctx.lr.div(Tensor.full([], b1).pow(ctx.step).neg().add(1)));
  const bias2Sqrt = once("bias2Sqrt", () => Tensor.full([], b2).pow(ctx.step).neg().add(1).sqrt());
  ctx.assign(decayed.sub(stepSize.mul(m2).div(v2.sqrt().div(bias2Sqrt).add(spec.eps))), w);
}
