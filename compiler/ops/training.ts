import { fail } from "../errors.js";
import { numel } from "../ir/dtype.js";
import { newHost, shapeStr } from "../ir/shape.js";
import { defineOp } from "./registry.js";

/**
 * Ops a compiled training step needs beyond the model's own: a gradient barrier, one-hot class masks
 * (cross-entropy from int32 targets) and the guard between the forward pass and the updates.
 * train_step() statuses they raise are listed in codegen/manifest.ts (TrainingManifest).
 */

/** train_step() status: the loss is NaN or infinite; returned before any parameter changes */
export const STATUS_LOSS_NOT_FINITE = 3;
/** train_step() status: a class target lies outside [0, classes); returned before any parameter changes */
export const STATUS_TARGET_OUT_OF_RANGE = 4;

// --- stopGradient: detach() while tracing; the compiled backward sends nothing through it -----------
defineOp({
  name: "stopGradient",
  infer: ([x]) => [{ shape: [...x.shape], dtype: x.dtype }],
  reference: ([x]) => [{ shape: [...x.shape], dtype: x.dtype, data: x.data.slice() }],
  view: true,
  compiledDTypes: () => true,
  notDifferentiable: "it is detach(): no gradient flows through it by definition (the compiled backward stops there)",
});

// --- oneHot: int32 class indices [...S] -> bool [...S, classes] --------------------------------------
defineOp({
  name: "oneHot",
  infer([idx], attrs) {
    const classes = attrs.classes as number;
    if (idx.dtype !== "int32") fail(`oneHot needs int32 class indices, got ${idx.dtype}`);
    if (!Number.isInteger(classes) || classes < 1) fail(`oneHot: classes must be a positive integer, got ${classes}`);
    return [{ shape: [...idx.shape, classes], dtype: "bool" }];
  },
  reference([idx], attrs) {
    const classes = attrs.classes as number;
    const out = newHost([...idx.shape, classes], "bool");
    idx.data.forEach((c, k) => {
      const cls = Number(c);
      if (!Number.isInteger(cls) || cls < 0 || cls >= classes) fail(`oneHot: class ${cls} is out of range for ${classes} classes (indices ${shapeStr(idx.shape)})`);
      out.data[k * classes + cls] = 1;
    });
    return [out];
  },
  lower(ctx, node) {
    const idx = node.inputs[0], out = node.outputs[0];
    const classes = node.attrs.classes as number, n = numel(idx.shape);
    ctx.emit(`for (let i: usize = 0; i < ${n * classes}; i++) store<u8>(${ctx.ptr(out)} + i, 0);`);
    ctx.emit(`for (let k: usize = 0; k < ${n}; k++) {`);
    ctx.emit(`const c = load<i32>(${ctx.ptr(idx)} + (k << 2));`);
    ctx.emit(`if (<u32>c >= ${classes}) return ${STATUS_TARGET_OUT_OF_RANGE};`);
    ctx.emit(`store<u8>(${ctx.ptr(out)} + k * ${classes} + <usize>c, 1);`);
    ctx.emit(`}`);
  },
  compiledDTypes: (node) => node.inputs[0].dtype === "int32",
  notDifferentiable: "it maps integer class indices to a bool mask, which carries no gradient",
});

// --- stepGuard(loss, step) -> step + 1: the line between a training step's forward pass and its updates
defineOp({
  name: "stepGuard",
  infer([loss, step]) {
    for (const [t, what] of [[loss, "loss"], [step, "step"]] as const) {
      if (numel(t.shape) !== 1 || t.dtype !== "float32") fail(`stepGuard: the ${what} must be one float32, got ${t.dtype} ${shapeStr(t.shape)}`);
    }
    return [{ shape: [...step.shape], dtype: "float32" }];
  },
  reference([loss, step]) {
    const value = Number(loss.data[0]);
    if (!Number.isFinite(value)) fail(`the loss is ${value}: training cannot go on (lower the learning rate, or check the data)`);
    return [{ shape: [...step.shape], dtype: "float32", data: new Float32Array([Number(step.data[0]) + 1]) }];
  },
  lower(ctx, node) {
    const [loss, step] = node.inputs;
    ctx.emit(`if (!isFinite<f32>(load<f32>(${ctx.ptr(loss)}))) return ${STATUS_LOSS_NOT_FINITE};`);
    ctx.emit(`store<f32>(${ctx.ptr(node.outputs[0])}, load<f32>(${ctx.ptr(step)}) + 1);`);
  },
  notDifferentiable: "it guards a training step (checks the loss, counts the step); it computes nothing to differentiate",
});
