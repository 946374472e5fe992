import { fail } from "../../errors.js";
import type { DType } from "../../ir/dtype.js";
import { normalizeAxis, shapeStr } from "../../ir/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { constValues, extendHandler, identityCopy, need, registerHandlers, type OpContext } from "./ops.js";
import { markNarrow, narrowOf } from "./narrow.js";
import { onnxDType } from "./proto.js";

/**
 * Sequences and optionals for a static-shape compiler: a sequence whose length and element shapes are known
 * at import is a list of tensors, and an optional is a tensor (or sequence) or nothing, so every sequence op
 * resolves at import and none reaches the graph. Such a value travels through the importer's scope as a
 * container token: an empty tensor no op computes on, mapped here to what it holds.
 */

export type Container = { kind: "sequence"; items: Tensor[]; dtype: DType } | { kind: "optional"; item: Tensor | undefined };

const CONTAINERS = new WeakMap<Tensor, Container>();

export const containerOf = (t: Tensor | undefined): Container | undefined => (t ? CONTAINERS.get(t) : undefined);

function token(c: Container): Tensor {
  const t = Tensor.from(new Uint8Array(0), { shape: [0], dtype: "uint8" });
  CONTAINERS.set(t, c);
  return t;
}

export const sequence = (items: Tensor[], dtype: DType): Tensor => token({ kind: "sequence", items, dtype });
export const optional = (item: Tensor | undefined): Tensor => token({ kind: "optional", item });

/** Ops that take sequences or optionals as inputs; any other op given one is refused by name. */
export const CONTAINER_OPS = new Set([
  "SequenceConstruct", "SequenceEmpty", "SequenceAt", "SequenceInsert", "SequenceErase", "SequenceLength", "ConcatFromSequence",
  "SequenceMap", "Optional", "OptionalHasElement", "OptionalGetElement", "Identity", "If", "Loop",
]);

export const describeContainer = (c: Container): string => (c.kind === "sequence" ? `a sequence of ${c.items.length}` : c.item ? "an optional holding a value" : "an empty optional");

type Input = Tensor | undefined;

function seq(x: Input[], i: number, ctx: OpContext): Extract<Container, { kind: "sequence" }> {
  const c = containerOf(need(x, i, ctx));
  if (c?.kind !== "sequence") fail(`${ctx.label}: input ${i} must be a sequence, got ${c ? describeContainer(c) : "a tensor"}`);
  return c;
}

/** A sequence position known at compile time, in [-n, n) (or [-n, n] where inserting at the end is allowed). */
function position(t: Input, n: number, atEnd: boolean, ctx: OpContext): number | undefined {
  if (!t) return undefined;
  const [p] = constValues(t, "the sequence position", ctx);
  const limit = atEnd ? n : n - 1;
  if (!Number.isInteger(p) || p < -n || p > limit) fail(`${ctx.label}: position ${p} is outside a sequence of ${n} (allowed ${-n}..${limit})`);
  return p < 0 ? p + n : p;
}

function checkElement(s: { dtype: DType }, t: Tensor, ctx: OpContext): void {
  if (t.dtype !== s.dtype) fail(`${ctx.label}: a ${t.dtype} tensor cannot join a sequence of ${s.dtype}`);
}

function splitToSequence(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const axis = normalizeAxis(ctx.attrs.int("axis", 0), t.ndim);
  const n = t.shape[axis];
  let sizes: number[];
  if (!x[1]) {
    const parts = Array.from({ length: n }, (_, i) => t.slice(axis, i, i + 1));
    return sequence(ctx.attrs.int("keepdims", 1) ? parts : parts.map((p) => p.squeeze(axis)), t.dtype);
  }
  const split = constValues(x[1], "the split", ctx);
  if (x[1].ndim === 0) {
    const chunk = split[0];
    if (!(chunk > 0)) fail(`${ctx.label}: split ${chunk} must be positive`);
    sizes = Array.from({ length: Math.ceil(n / chunk) }, (_, i) => Math.min(chunk, n - i * chunk));
  } else {
    sizes = split;
    if (sizes.some((s) => s < 0) || sizes.reduce((a, b) => a + b, 0) !== n) fail(`${ctx.label}: split sizes [${sizes}] do not add up to ${n}, the size of axis ${axis} of ${shapeStr(t.shape)}`);
  }
  let at = 0;
  return sequence(sizes.map((size) => t.slice(axis, at, (at += size))), t.dtype);
}

function concatFromSequence(x: Input[], ctx: OpContext): Tensor {
  const s = seq(x, 0, ctx);
  if (!s.items.length) fail(`${ctx.label}: the sequence is empty, so there is nothing to concatenate`);
  const stack = ctx.attrs.int("new_axis", 0) === 1;
  const rank = s.items[0].ndim + (stack ? 1 : 0);
  const axis = normalizeAxis(ctx.attrs.int("axis"), rank);
  const parts = stack ? s.items.map((t) => t.unsqueeze(axis)) : s.items;
  return markNarrow(parts.length === 1 ? identityCopy(parts[0]) : Tensor.cat(parts, axis), narrowOf(s.items[0]));
}

/** SequenceMap: the body once per element; the other sequence inputs go element by element, tensors whole. */
function sequenceMap(x: Input[], ctx: OpContext): Tensor[] {
  const first = seq(x, 0, ctx);
  const n = first.items.length;
  const args = x.map((t, i) => {
    const c = containerOf(t);
    if (c?.kind === "sequence" && c.items.length !== n) fail(`${ctx.label}: input ${i} is a sequence of ${c.items.length}, input 0 one of ${n}`);
    if (c && c.kind !== "sequence") fail(`${ctx.label}: input ${i} is ${describeContainer(c)}; SequenceMap takes sequences and tensors`);
    return c ? c.items : need(x, i, ctx);
  });
  const results: Tensor[][] = Array.from({ length: ctx.outputs }, () => []);
  for (let k = 0; k < n; k++) {
    const out = ctx.subgraph("body", args.map((a) => (Array.isArray(a) ? a[k] : a)));
    if (out.length !== ctx.outputs) fail(`${ctx.label}: the body returns ${out.length} outputs, the node has ${ctx.outputs}`);
    out.forEach((t, j) => results[j].push(t));
  }
  // an empty sequence maps to empty sequences of the body's declared element types
  const declared = ctx.attrs.graph("body").output ?? [];
  return results.map((items, j) => sequence(items, items[0]?.dtype ?? onnxDType(declared[j]?.type?.tensor_type?.elem_type, `${ctx.label} body output ${j}`)));
}

registerHandlers({
  SequenceEmpty: (_x, ctx) => sequence([], onnxDType(ctx.attrs.int("dtype", 1), `${ctx.label}: dtype`)),
  SequenceConstruct: (x, ctx) => {
    const items = x.map((_, i) => need(x, i, ctx));
    if (!items.length) fail(`${ctx.label}: SequenceConstruct needs at least one input`);
    items.forEach((t) => checkElement(items[0], t, ctx));
    return sequence(items, items[0].dtype);
  },
  SequenceAt: (x, ctx) => {
    const s = seq(x, 0, ctx);
    if (!s.items.length) fail(`${ctx.label}: the sequence is empty`);
    // the element itself, keeping its narrow type (a graph output gets its own buffer at the end of the import)
    return s.items[position(need(x, 1, ctx), s.items.length, false, ctx)!];
  },
  SequenceInsert: (x, ctx) => {
    const s = seq(x, 0, ctx);
    const t = need(x, 1, ctx);
    checkElement(s, t, ctx);
    const at = position(x[2], s.items.length, true, ctx) ?? s.items.length;
    return sequence([...s.items.slice(0, at), t, ...s.items.slice(at)], s.dtype);
  },
  SequenceErase: (x, ctx) => {
    const s = seq(x, 0, ctx);
    if (!s.items.length) fail(`${ctx.label}: cannot erase from an empty sequence`);
    const at = position(x[1], s.items.length, false, ctx) ?? s.items.length - 1;
    return sequence(s.items.filter((_, i) => i !== at), s.dtype);
  },
  SequenceLength: (x, ctx) => Tensor.from(new BigInt64Array([BigInt(seq(x, 0, ctx).items.length)]), { shape: [], dtype: "int64" }),
  SplitToSequence: splitToSequence,
  ConcatFromSequence: concatFromSequence,
  SequenceMap: sequenceMap,
  Optional: (x) => optional(x[0]),
  OptionalHasElement: (x) => {
    const c = containerOf(x[0]);
    const has = x[0] !== undefined && (c?.kind !== "optional" || c.item !== undefined);
    return Tensor.full([], has ? 1 : 0, "bool");
  },
  OptionalGetElement: (x, ctx) => {
    const t = need(x, 0, ctx);
    const c = containerOf(t);
    if (c?.kind !== "optional") return c ? t : identityCopy(t);
    if (!c.item) fail(`${ctx.label}: the optional is empty, so it has no element to get`);
    return c.item;
  },
});

// Identity passes a sequence or an optional through as it is
extendHandler("Identity", (base) => (x, ctx) => (containerOf(x[0]) ? x[0]! : base(x, ctx)));
