import { fail } from "../../errors.js";
import { shapeStr } from "../../ir/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { cast, isFloat, need, registerHandlers, scalarOf, type OpContext } from "./ops.js";

/**
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over [N, C, d1…] inputs and [N, d1…] integer
 * targets. The target class is picked with a one-hot mask (targets == class positions), not a gather:
 * an ignore_index outside [0, C) then simply matches no class instead of being an out-of-range index.
 */

type Reduction = "none" | "sum" | "mean";

interface LossOptions {
  weight?: Tensor;
  ignoreIndex?: number;
  reduction: Reduction;
}

function lossOptions(x: (Tensor | undefined)[], ctx: OpContext): LossOptions {
  const reduction = ctx.attrs.string("reduction", "mean");
  if (reduction !== "none" && reduction !== "sum" && reduction !== "mean") fail(`${ctx.label}: unknown reduction '${reduction}' (none, sum or mean)`);
  const ignoreIndex = ctx.attrs.has("ignore_index") ? ctx.attrs.int("ignore_index") : undefined;
  return { weight: x[2], ignoreIndex, reduction };
}

/** -input[n, target[n, d…], d…] · weight[target], reduced; `input` holds log-probabilities. */
function negativeLogLikelihood(input: Tensor, target: Tensor, opts: LossOptions, ctx: OpContext): Tensor {
  if (!isFloat(input.dtype)) fail(`${ctx.label}: input must be float, got ${input.dtype}`);
  if (input.ndim < 2) fail(`${ctx.label}: input ${shapeStr(input.shape)} must be [N, C, d1…]`);
  const C = input.shape[1];
  const expectedTarget = [input.shape[0], ...input.shape.slice(2)];
  if (target.shape.join() !== expectedTarget.join()) fail(`${ctx.label}: target ${shapeStr(target.shape)} must be ${shapeStr(expectedTarget)} for input ${shapeStr(input.shape)}`);
  if (opts.weight && opts.weight.shape.join() !== String(C)) fail(`${ctx.label}: weight ${shapeStr(opts.weight.shape)} must be [${C}]`);

  const alongClasses = (v: Tensor) => v.reshape([1, C, ...input.shape.slice(2).map(() => 1)]);
  const classes = cast(target, "int32").unsqueeze(1);
  const isTarget = classes.eq(alongClasses(Tensor.arange(0, C, 1, "int32")));
  const zero = scalarOf(0, input.dtype);
  const picked = Tensor.where(isTarget, input, zero).sum(1);

  // each element's weight: weight[target], 0 where the target is ignored or matches no class
  const ignoreInRange = opts.ignoreIndex !== undefined && opts.ignoreIndex >= 0 && opts.ignoreIndex < C;
  const needsWeights = opts.weight !== undefined || opts.ignoreIndex !== undefined;
  let elementWeight: Tensor | undefined;
  if (needsWeights) {
    const perClass = opts.weight ? alongClasses(cast(opts.weight, input.dtype)) : scalarOf(1, input.dtype);
    elementWeight = Tensor.where(isTarget, perClass, zero).sum(1);
    if (ignoreInRange) elementWeight = Tensor.where(cast(target, "int32").ne(scalarOf(opts.ignoreIndex!, "int32")), elementWeight, zero);
  }
  const loss = elementWeight ? picked.mul(elementWeight).neg() : picked.neg();
  if (opts.reduction === "none") return loss;
  const total = loss.sum();
  if (opts.reduction === "sum") return total;
  return elementWeight ? total.div(elementWeight.sum()) : total.div(scalarOf(loss.size, input.dtype));
}

function nllLoss(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  return negativeLogLikelihood(need(x, 0, ctx), need(x, 1, ctx), lossOptions(x, ctx), ctx);
}

function softmaxCrossEntropy(x: (Tensor | undefined)[], ctx: OpContext): Tensor[] {
  const scores = need(x, 0, ctx);
  if (scores.ndim < 2) fail(`${ctx.label}: scores ${shapeStr(scores.shape)} must be [N, C, d1…]`);
  const logProb = scores.logSoftmax(1);
  const loss = negativeLogLikelihood(logProb, need(x, 1, ctx), lossOptions(x, ctx), ctx);
  return ctx.outputs > 1 ? [loss, logProb] : [loss];
}

registerHandlers({
  NegativeLogLikelihoodLoss: nllLoss,
  SoftmaxCrossEntropyLoss: softmaxCrossEntropy,
});
