import { fail } from "../errors.js";
import { shapeStr } from "../ir/shape.js";
import { apply, Tensor } from "./tensor.js";

/**
 * Loss functions, composed from registry ops so that loss.backward() differentiates them and a traced
 * training step records the same ops. Each returns the mean over the batch (or over the elements).
 */

function requireSameShape(loss: string, a: Tensor, aName: string, b: Tensor, bName: string): void {
  if (a.shape.join() !== b.shape.join()) fail(`${loss}: ${aName} ${shapeStr(a.shape)} and ${bName} ${shapeStr(b.shape)} must have the same shape`);
}

/** Cross entropy from unnormalised logits [N, C] and int32 class indices [N] (torch's F.cross_entropy). */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  if (logits.ndim !== 2 || targets.ndim !== 1 || targets.shape[0] !== logits.shape[0]) {
    fail(`crossEntropy needs logits [N, C] and targets [N], got logits ${shapeStr(logits.shape)} and targets ${shapeStr(targets.shape)}`);
  }
  if (targets.dtype !== "int32") fail(`crossEntropy: targets must be int32 class indices, got ${targets.dtype}`);
  const C = logits.shape[1];
  if (!targets.isSymbolic) {
    const bad = (targets.data as Int32Array).find((t) => t < 0 || t >= C);
    if (bad !== undefined) fail(`crossEntropy: target ${bad} is out of range for ${C} classes`);
  }
  // each row's target log-probability, picked by a one-hot mask: log-softmax keeps large logits finite
  const oneHot = apply("oneHot", [targets], { classes: C });
  return Tensor.where(oneHot, logits.logSoftmax(1), 0).sum(1).mean().neg();
}

/** Mean squared error. */
export function mse(pred: Tensor, target: Tensor): Tensor {
  requireSameShape("mse", pred, "prediction", target, "target");
  const diff = pred.sub(target);
  return diff.mul(diff).mean();
}

/**
 * Binary cross entropy from logits x and targets y in [0, 1] (torch's BCEWithLogitsLoss):
 * softplus(x) - x·y = log(1 + eˣ) - x·y, which never overflows (softplus is x itself above 20) and
 * whose gradient is σ(x) - y everywhere (no kink at 0, unlike the max(x, 0) formulation).
 */
export function bceWithLogits(logits: Tensor, targets: Tensor): Tensor {
  requireSameShape("bceWithLogits", logits, "logits", targets, "targets");
  return logits.softplus().sub(logits.mul(targets)).mean();
}
