import { fail } from "../../errors.js";
import { normalizeAxis } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { cast, constValues, need, registerHandlers, type OpContext } from "./ops.js";

/** GatherElements, ScatterElements and TopK on the registry's gatherElements / scatterElementsAdd / topK ops (compiler/ops/indexing.ts). */

/** int32 indices for the registry op; constant ones are checked and wrapped here, at import. */
function int32Indices(idx: Tensor, size: number, axis: number, ctx: OpContext): Tensor {
  if (idx.isSymbolic) return cast(idx, "int32");
  const wrapped = constValues(idx, "indices", ctx).map((i) => {
    if (i < -size || i >= size) fail(`${ctx.label}: index ${i} is out of range for axis ${axis} of size ${size}`);
    return i < 0 ? i + size : i;
  });
  return Tensor.from(new Int32Array(wrapped), { shape: idx.shape, dtype: "int32" });
}

function gatherElements(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  const data = need(x, 0, ctx), idx = need(x, 1, ctx);
  const axis = normalizeAxis(ctx.attrs.int("axis", 0), data.ndim);
  return apply("gatherElements", [data, int32Indices(idx, data.shape[axis], axis, ctx)], { axis });
}

/**
 * ScatterElements (and opset 9's Scatter) with reduction none or add, from scatterElementsAdd: the sum of
 * the updates scattered onto zeros, added to the data (add) or taking the written positions (none, whose
 * indices the spec forbids to repeat, so each written position holds one update).
 */
function scatterElements(x: (Tensor | undefined)[], ctx: OpContext): Tensor {
  const data = need(x, 0, ctx), idx = need(x, 1, ctx), updates = need(x, 2, ctx);
  const axis = normalizeAxis(ctx.attrs.int("axis", 0), data.ndim);
  const reduction = ctx.attrs.string("reduction", "none");
  if (reduction !== "none" && reduction !== "add") fail(`${ctx.label}: reduction '${reduction}' is not supported; none and add are`);
  const positions = int32Indices(idx, data.shape[axis], axis, ctx);
  const scatter = (t: Tensor) => apply("scatterElementsAdd", [t, positions], { axis, shape: data.shape });
  const sums = scatter(updates);
  if (reduction === "add") return data.add(sums);
  return Tensor.where(scatter(Tensor.ones(updates.shape, updates.dtype)).gt(0), sums, data);
}

function topK(x: (Tensor | undefined)[], ctx: OpContext): Tensor[] {
  const t = need(x, 0, ctx);
  const axis = normalizeAxis(ctx.attrs.int("axis", -1), t.ndim);
  // K was an attribute before opset 10
  const k = ctx.opset >= 10 ? constValues(need(x, 1, ctx), "K", ctx)[0] : ctx.attrs.int("k");
  if (!Number.isInteger(k) || k < 0 || k > t.shape[axis]) fail(`${ctx.label}: K = ${k} must lie in [0, ${t.shape[axis]}] (axis ${axis})`);
  // sorted = 0 leaves the order unspecified: the sorted order is one valid answer
  const largest = ctx.opset >= 11 ? ctx.attrs.int("largest", 1) === 1 : true;
  const positions = apply("topK", [t], { k, axis, largest });
  return [apply("gatherElements", [t, positions], { axis }), cast(positions, "int64")];
}

registerHandlers({
  GatherElements: gatherElements,
  ScatterElements: scatterElements,
  Scatter: scatterElements,
  TopK: topK,
});
