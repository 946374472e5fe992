import { numel } from "../../ir/dtype.js";
import { shapeStr } from "../../ir/shape.js";
import { addParameters, requantTable } from "../../ops/quant.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { withAttrs } from "./ops-conv.js";
import { cast, extendHandler, HANDLERS, registerHandlers, spatialPads, windowInts, type Handler, type OpContext } from "./ops.js";
import { tensorFromProto, type AttributeProto, type GraphProto, type NodeProto, type TensorProto } from "./proto.js";

/**
 * ONNX int8 models on the integer kernels (compiler/ops/quant.ts), as TFLite int8 models run:
 * 1. `fuseQdq` rewrites the QDQ form onnxruntime's quantize_static writes (DequantizeLinear → Conv / Gemm / MatMul /
 *    Add / pooling → QuantizeLinear) into the operator form (QLinearConv, QLinearMatMul and com.microsoft's QGemm,
 *    QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool; MaxPool on int8), as onnxruntime's own QDQ fusion does.
 * 2. The operator-form handlers lower int8 and uint8 (as q − 128) operands to qconv2d, qfullyConnected, qadd,
 *    qavgpool2d and qmaxpool2d; what they cannot (weight zero points, broadcasting adds, per-axis activations…) is
 *    emulated in float32 as before, and the import notes say which nodes and why.
 * Requantization is TFLite's fixed point on the real multiplier x_scale·w_scale/y_scale (float32, as onnxruntime
 * computes it); onnxruntime multiplies in float and rounds half to even, so an output may land one step apart.
 */

const UINT8 = 2, INT8 = 3, INT32 = 6;
const EIGHT_BIT = [UINT8, INT8];

/** What the import of one model did with its quantized nodes, for the compile report's notes. */
const record = { mode: "integer" as "integer" | "dequantize", integer: new Map<string, number>(), emulated: [] as string[], unfused: [] as string[] };

/** Starts an import: quantized nodes go to the integer kernels, or ("dequantize") are all emulated in float32. */
export function startQuantNotes(mode: "integer" | "dequantize" = "integer"): void {
  record.mode = mode;
  record.integer.clear();
  record.emulated.length = 0;
  record.unfused.length = 0;
}

export function takeQuantNotes(): string[] {
  const notes: string[] = [];
  const list = (items: string[]) => items.slice(0, 8).join("; ") + (items.length > 8 ? `; … ${items.length - 8} more` : "");
  if (record.integer.size) notes.push(`int8 model: on integer kernels: ${[...record.integer].map(([op, n]) => `${op} ×${n}`).join(", ")}`);
  if (record.emulated.length) notes.push(`quantized nodes emulated in float32 (no integer kernel for them): ${list(record.emulated)}`);
  if (record.unfused.length) notes.push(`QDQ nodes left as DequantizeLinear → float32 → QuantizeLinear: ${list(record.unfused)}`);
  if (record.mode === "dequantize") notes.push("quantized nodes emulated in float32 as requested (quantized: \"dequantize\")");
  startQuantNotes();
  return notes;
}

// --- 1. QDQ → operator form ----------------------------------------------------------------------------

interface Quantized {
  q: string;
  scale: string;
  zeroPoint: string;
  axis: number;
}

/** Rewrites the graph's QDQ groups in place; groups it cannot fuse stay as they are and are noted. */
export function fuseQdq(graph: GraphProto, source: string, baseDir?: string): void {
  const nodes = graph.node ?? [];
  if (!nodes.some((n) => n.op_type === "DequantizeLinear")) return;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? "", t]));
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name));
  const values = (name: string) => Array.from(tensorFromProto(inits.get(name)!, `${source}: initializer`, baseDir).data as ArrayLike<number>, Number);
  const typeOf = (name: string) => inits.get(name)?.data_type;
  const intAttr = (n: NodeProto, name: string, def: number) => Number(n.attribute?.find((a) => a.name === name)?.i ?? def);
  const standard = (n: NodeProto | undefined, op: string) => n?.op_type === op && (!n.domain || n.domain === "ai.onnx");

  /** The quantized tensor behind a DequantizeLinear output, when its scale and zero point are constants. */
  const dequantized = (name: string | undefined): Quantized | null => {
    const n = name ? producer.get(name) : undefined;
    if (!n || !standard(n, "DequantizeLinear") || intAttr(n, "block_size", 0) !== 0) return null;
    const [q, scale, zeroPoint] = n.input ?? [];
    return inits.has(scale) && zeroPoint && inits.has(zeroPoint) ? { q, scale, zeroPoint, axis: intAttr(n, "axis", 1) } : null;
  };
  const perTensor = (d: Quantized) => numel((inits.get(d.scale)!.dims ?? []).map(Number)) === 1;
  /** why a dequantized activation cannot be an int8 kernel operand, or null */
  const activationProblem = (d: Quantized | null, what: string): string | null => {
    if (!d) return `${what} is not a DequantizeLinear output with constant scale and zero point`;
    if (inits.has(d.q)) return `${what} is a constant`;
    if (!EIGHT_BIT.includes(typeOf(d.zeroPoint)!)) return `${what} is not int8 or uint8`;
    return perTensor(d) ? null : `${what} is quantized per axis`;
  };
  /** why a dequantized weight cannot be an int8 kernel operand, or null */
  const weightProblem = (d: Quantized | null, what: string): string | null => {
    if (!d || !inits.has(d.q)) return `${what} is not a dequantized constant`;
    if (typeOf(d.q) !== INT8) return `${what} is not int8`;
    return values(d.zeroPoint).some((z) => z !== 0) ? `${what} has nonzero zero points` : null;
  };
  /** The QuantizeLinear that alone reads `name` (through a Relu the output's clamp already does), with the nodes it replaces. */
  const quantizedOutput = (name: string): { out: Quantized; replaced: NodeProto[] } | string => {
    const only = (v: string) => (!graphOutputs.has(v) && consumers.get(v)?.length === 1 ? consumers.get(v)![0] : undefined);
    let next = only(name);
    const replaced: NodeProto[] = [];
    if (standard(next, "Relu")) {
      replaced.push(next!);
      next = only(next!.output![0]);
    }
    if (!next || !standard(next, "QuantizeLinear") || intAttr(next, "block_size", 0) !== 0) return "its output is not quantized by one QuantizeLinear";
    const [, scale, zeroPoint] = next.input ?? [];
    const out = { q: next.output![0], scale, zeroPoint, axis: 1 };
    if (!inits.has(scale) || !zeroPoint || !inits.has(zeroPoint) || !perTensor(out)) return "its output's scale and zero point are not per-tensor constants";
    if (!EIGHT_BIT.includes(typeOf(zeroPoint)!)) return "its output is not int8 or uint8";
    // relu before the quantization is the clamp at the zero point; it is exact to drop when that is the type's minimum
    if (replaced.length && values(zeroPoint)[0] !== (typeOf(zeroPoint) === INT8 ? -128 : 0)) return "a Relu whose output zero point is not the type's minimum";
    return { out, replaced: [...replaced, next] };
  };
  const sameGrid = (a: Quantized, b: Quantized) => values(a.scale)[0] === values(b.scale)[0] && values(a.zeroPoint)[0] === values(b.zeroPoint)[0];
  const attribute = (n: NodeProto, drop: string[] = []) => (n.attribute ?? []).filter((a) => !drop.includes(a.name));

  /** The int32 bias on the accumulator's scale x_scale·w_scale: the model's own when it already is on it. */
  const biasOn = (bias: Quantized | null, x: Quantized, w: Quantized, channels: number): string | null => {
    if (!bias || !inits.has(bias.q) || typeOf(bias.q) !== INT32) return null;
    const xs = values(x.scale)[0], ws = values(w.scale), bs = values(bias.scale), bz = values(bias.zeroPoint), bq = values(bias.q);
    if (bq.length !== channels) return null;
    const target = Array.from({ length: channels }, (_, k) => Math.fround(xs * ws[ws.length === 1 ? 0 : k]));
    const at = (a: number[], k: number) => a[a.length === 1 ? 0 : k];
    if (target.every((t, k) => Math.abs(at(bs, k) - t) <= 1e-6 * t && at(bz, k) === 0)) return bias.q;
    const data = Int32Array.from(bq, (v, k) => Math.round(((v - at(bz, k)) * at(bs, k)) / target[k]));
    const name = `${bias.q}/on_accumulator_scale`;
    const proto: TensorProto = { name, dims: [String(channels)], data_type: INT32, raw_data: new Uint8Array(data.buffer) };
    graph.initializer = [...(graph.initializer ?? []), proto];
    inits.set(name, proto);
    return name;
  };

  const fused = new Map<NodeProto, NodeProto>();
  const removed = new Set<NodeProto>();
  const unfused = (n: NodeProto, why: string) => record.unfused.push(`${n.op_type} '${n.name || n.output?.[0]}': ${why}`);
  const ms = (op_type: string, n: NodeProto, input: string[], out: string, attrs: AttributeProto[]): NodeProto => ({ op_type, domain: "com.microsoft", name: n.name, input, output: [out], attribute: attrs });

  for (const n of nodes) {
    if (n.domain && n.domain !== "ai.onnx") continue;
    const ins = n.input ?? [];
    if (!["Conv", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool", "GlobalAveragePool"].includes(n.op_type) || !ins.some((i) => dequantized(i))) continue;
    if ((n.output ?? []).length !== 1) {
      unfused(n, "it has more than one output");
      continue;
    }
    const output = quantizedOutput(n.output![0]);
    if (typeof output === "string") {
      unfused(n, output);
      continue;
    }
    const { out, replaced } = output;
    const x = dequantized(ins[0]);
    const problem = activationProblem(x, "the input");
    if (problem) {
      unfused(n, problem);
      continue;
    }
    const a = x!;
    let node: NodeProto | string;
    switch (n.op_type) {
      case "Conv":
      case "Gemm":
      case "MatMul": {
        const w = dequantized(ins[1]);
        const bad = weightProblem(w, "the weight");
        if (bad) {
          node = bad;
          break;
        }
        // the axis of the weights that indexes output channels, which per-axis scales must follow
        const dims = inits.get(w!.q)!.dims!.map(Number);
        const channelAxis = n.op_type === "Conv" || (n.op_type === "Gemm" && intAttr(n, "transB", 0)) ? 0 : 1;
        const channels = dims[channelAxis];
        const bias = ins[2] ? biasOn(dequantized(ins[2]), a, w!, channels) : "";
        if (!perTensor(w!) && (w!.axis + dims.length) % dims.length !== channelAxis) node = `the weight is quantized along axis ${w!.axis}, not its output channels`;
        else if (bias === null) node = "the bias is not a dequantized int32 constant of one value per output channel";
        else if (n.op_type === "Conv") node = { op_type: "QLinearConv", name: n.name, input: [a.q, a.scale, a.zeroPoint, w!.q, w!.scale, w!.zeroPoint, out.scale, out.zeroPoint, ...(bias ? [bias] : [])], output: [out.q], attribute: attribute(n) };
        else if (n.op_type === "MatMul") node = { op_type: "QLinearMatMul", name: n.name, input: [a.q, a.scale, a.zeroPoint, w!.q, w!.scale, w!.zeroPoint, out.scale, out.zeroPoint], output: [out.q], attribute: [] };
        else if (n.attribute?.some((t) => (t.name === "alpha" || t.name === "beta") && t.f !== undefined && t.f !== 1)) node = "alpha or beta is not 1";
        else node = ms("QGemm", n, [a.q, a.scale, a.zeroPoint, w!.q, w!.scale, w!.zeroPoint, bias, out.scale, out.zeroPoint], out.q, attribute(n, ["alpha", "beta"]));
        break;
      }
      case "Add": {
        const b = dequantized(ins[1]);
        node = activationProblem(b, "the second input") ?? ms("QLinearAdd", n, [a.q, a.scale, a.zeroPoint, b!.q, b!.scale, b!.zeroPoint, out.scale, out.zeroPoint], out.q, []);
        break;
      }
      case "MaxPool":
        node = sameGrid(a, out) ? { op_type: "MaxPool", name: n.name, input: [a.q], output: [out.q], attribute: attribute(n) } : "its input and output grids differ";
        break;
      default:
        node = ms(n.op_type === "AveragePool" ? "QLinearAveragePool" : "QLinearGlobalAveragePool", n, [a.q, a.scale, a.zeroPoint, out.scale, out.zeroPoint], out.q, attribute(n));
    }
    if (typeof node === "string") {
      unfused(n, node);
      continue;
    }
    fused.set(n, node);
    for (const r of replaced) removed.add(r);
  }
  // the fused nodes take the operators' places; DequantizeLinear nodes nothing reads any more go
  let kept = nodes.filter((n) => !removed.has(n)).map((n) => fused.get(n) ?? n);
  const read = new Set([...kept.flatMap((n) => n.input ?? []), ...graphOutputs]);
  kept = kept.filter((n) => !standard(n, "DequantizeLinear") || (n.output ?? []).some((o) => read.has(o)));
  graph.node = kept;
}

// --- 2. operator form → integer kernels ----------------------------------------------------------------

type Input = Tensor | undefined;
/** The integer lowering of a node, or why it has none. */
type Lowering = (x: Input[], ctx: OpContext) => Tensor | string;

/** A node lowered to integer kernels when it can be, else emulated by `emulate` and noted. */
function integerOr(op: string, lower: Lowering, emulate: Handler): Handler {
  return (x, ctx) => {
    if (record.mode === "dequantize") return emulate(x, ctx);
    const y = lower(x, ctx);
    if (typeof y !== "string") {
      record.integer.set(op, (record.integer.get(op) ?? 0) + 1);
      return y;
    }
    record.emulated.push(`${ctx.label.replace(/^.*?: /, "")}: ${y}`);
    return emulate(x, ctx);
  };
}

const isConst = (t: Input): t is Tensor => !!t && !t.isSymbolic;
const numbers = (t: Tensor): number[] => Array.from(t.data as ArrayLike<number>, Number);

/**
 * A uint8 activation runs on the int8 kernels as q − 128 on zero point zp − 128 (exact: every integer product and
 * requantization sees the same q − zp). Each uint8 tensor's int8 twin is made once; a kernel's uint8 output is its
 * int8 result shifted back, which dead-code elimination drops when only kernels read it.
 */
const INT8_TWIN = new WeakMap<Tensor, Tensor>();
const UINT8_SHIFT = 128;
function int8Twin(q: Tensor): Tensor {
  if (q.dtype === "int8") return q;
  let twin = INT8_TWIN.get(q);
  if (!twin) INT8_TWIN.set(q, (twin = cast(cast(q, "float32").sub(UINT8_SHIFT), "int8")));
  return twin;
}
/** The op's result in the output's type: the int8 kernel's own, or uint8 with the int8 one as its twin. */
function inOutputType(y: Tensor, unsigned: boolean): Tensor {
  if (!unsigned) return y;
  const u = cast(cast(y, "float32").add(UINT8_SHIFT), "uint8");
  INT8_TWIN.set(u, y);
  return u;
}

/** A per-tensor 8-bit grid from a constant scale and zero point, with the zero point the int8 kernels see, or why not. */
function gridOf(scale: Input, zeroPoint: Input, what: string): { scale: number; zeroPoint: number; unsigned: boolean } | string {
  if (!zeroPoint) return `${what} has no zero point (uint8 zero by default, not supported)`;
  if (zeroPoint.dtype !== "int8" && zeroPoint.dtype !== "uint8") return `${what} is ${zeroPoint.dtype}, not int8 or uint8`;
  if (!isConst(scale) || !isConst(zeroPoint)) return `${what}'s scale or zero point is computed`;
  if (scale.size !== 1 || zeroPoint.size !== 1) return `${what} is quantized per axis`;
  const unsigned = zeroPoint.dtype === "uint8";
  return { scale: numbers(scale)[0], zeroPoint: numbers(zeroPoint)[0] - (unsigned ? UINT8_SHIFT : 0), unsigned };
}

/** The int8 activation operand (a uint8 one's twin) with its grid, or why it is not one. */
function activation(q: Input, scale: Input, zeroPoint: Input, what: string): { q: Tensor; scale: number; zeroPoint: number } | string {
  if (!q || (q.dtype !== "int8" && q.dtype !== "uint8")) return `${what} is ${q?.dtype}, not int8 or uint8`;
  const grid = gridOf(scale, zeroPoint, what);
  if (typeof grid === "string") return grid;
  if (grid.unsigned !== (q.dtype === "uint8")) return `${what} is ${q.dtype} but its zero point ${zeroPoint!.dtype}`;
  return { q: int8Twin(q), scale: grid.scale, zeroPoint: grid.zeroPoint };
}

/** Constant symmetric int8 weights with per-tensor or per-channel (`channels`) scales, or why not. */
function weights(w: Input, scale: Input, zeroPoint: Input, channels: (w: Tensor) => number): { w: Tensor; scales: number[] } | string {
  if (!isConst(w) || w.dtype !== "int8") return "the weights are not an int8 constant";
  if (!isConst(scale) || (zeroPoint && !isConst(zeroPoint))) return "the weights' scale or zero point is computed";
  if (zeroPoint && numbers(zeroPoint).some((z) => z !== 0)) return "the weights have nonzero zero points (the integer kernels take symmetric weights)";
  const n = channels(w), s = numbers(scale);
  if (s.length !== 1 && s.length !== n) return `the weights' scale has ${s.length} values for ${n} output channels`;
  return { w, scales: s.length === 1 ? new Array(n).fill(s[0]) : s };
}

/** An int32 bias of `n` values, zeros when absent, or why not. */
function biasOf(bias: Input, n: number): Tensor | string {
  if (!bias) return Tensor.from(new Int32Array(n), { shape: [n], dtype: "int32" });
  if (!isConst(bias) || bias.dtype !== "int32" || bias.size !== n) return `the bias is not a constant int32 of ${n} values`;
  return bias.ndim === 1 ? bias : bias.reshape([n]);
}

/** TFLite's (multiplier, shift) table for the real multipliers in_scale·w_scale/out_scale, each computed in float32 as onnxruntime does. */
function requantization(inScale: number, wScales: number[], outScale: number, ctx: OpContext): Tensor {
  const f = Math.fround;
  const table = requantTable(wScales.map((s) => f(f(f(inScale) * f(s)) / f(outScale))), ctx.label);
  return Tensor.from(table.data, { shape: table.shape, dtype: "int32" });
}

const FULL_RANGE = { actMin: -128, actMax: 127 };

const lowerConv: Lowering = ([input, xScale, xZero, w, wScale, wZero, yScale, yZero, bias], ctx) => {
  if (!input || input.ndim !== 4) return `a ${input ? input.ndim - 2 : "?"}-d convolution (the int8 kernel is 2-d)`;
  const x = activation(input, xScale, xZero, "the input");
  if (typeof x === "string") return x;
  const y = gridOf(yScale, yZero, "the output");
  if (typeof y === "string") return y;
  const wt = weights(w, wScale, wZero, (t) => t.shape[0]);
  if (typeof wt === "string") return wt;
  const OC = wt.w.shape[0];
  const b = biasOf(bias, OC);
  if (typeof b === "string") return b;
  const kernel = windowInts(ctx.attrs.ints("kernel_shape", wt.w.shape.slice(2)), "kernel_shape", ctx);
  const strides = windowInts(ctx.attrs.ints("strides", [1, 1]), "strides", ctx);
  const dilations = windowInts(ctx.attrs.ints("dilations", [1, 1]), "dilations", ctx);
  const pads = spatialPads(ctx, input.shape.slice(2), kernel, strides, dilations);
  const attrs = { stride: strides, pads, dilation: dilations, groups: ctx.attrs.int("group", 1), inZp: x.zeroPoint, outZp: y.zeroPoint, ...FULL_RANGE };
  return inOutputType(apply("qconv2d", [x.q, wt.w, b, requantization(x.scale, wt.scales, y.scale, ctx)], attrs), y.unsigned);
};

/** y = requantize(bias + (a − a_zp)·wᵀ) with w [N, K] on the fully connected kernel; a's leading dims are its rows. */
function fullyConnected(a: Input, aScale: Input, aZero: Input, w: Tensor, scales: number[], bias: Input, yScale: Input, yZero: Input, ctx: OpContext): Tensor | string {
  const x = activation(a, aScale, aZero, "A");
  if (typeof x === "string") return x;
  const y = gridOf(yScale, yZero, "the output");
  if (typeof y === "string") return y;
  const [N, K] = w.shape;
  if (x.q.ndim < 2 || x.q.shape[x.q.ndim - 1] !== K) return `A ${shapeStr(x.q.shape)} does not have rows of ${K}`;
  const b = biasOf(bias, N);
  if (typeof b === "string") return b;
  const rows = x.q.size / K;
  const product = apply("qfullyConnected", [x.q.ndim === 2 ? x.q : x.q.reshape([rows, K]), w, b, requantization(x.scale, scales, y.scale, ctx)], { inZp: x.zeroPoint, outZp: y.zeroPoint, ...FULL_RANGE });
  return inOutputType(x.q.ndim === 2 ? product : product.reshape([...x.q.shape.slice(0, -1), N]), y.unsigned);
}

/** A constant [K, N] matrix as the fully connected kernel's [N, K] rows. */
const transposed = (b: Tensor): Tensor => {
  const [K, N] = b.shape, src = b.data as Int8Array;
  return Tensor.from(Int8Array.from({ length: K * N }, (_, i) => src[(i % K) * N + Math.floor(i / K)]), { shape: [N, K], dtype: "int8" });
};

const lowerMatMul: Lowering = ([a, aScale, aZero, b, bScale, bZero, yScale, yZero], ctx) => {
  if (!b || b.ndim !== 2) return "B is not a matrix";
  const wt = weights(b, bScale, bZero, (t) => t.shape[1]);
  if (typeof wt === "string") return wt;
  return fullyConnected(a, aScale, aZero, transposed(wt.w), wt.scales, undefined, yScale, yZero, ctx);
};

const lowerQGemm: Lowering = ([a, aScale, aZero, b, bScale, bZero, c, yScale, yZero], ctx) => {
  if (!yScale) return "the output is float (no y_scale)";
  if (ctx.attrs.int("transA", 0) !== 0 || ctx.attrs.float("alpha", 1) !== 1) return "transA or alpha is set";
  if (!a || a.ndim !== 2 || !b || b.ndim !== 2) return "A or B is not a matrix";
  const transB = ctx.attrs.int("transB", 0) === 1;
  const wt = weights(b, bScale, bZero, (t) => t.shape[transB ? 0 : 1]);
  if (typeof wt === "string") return wt;
  return fullyConnected(a, aScale, aZero, transB ? wt.w : transposed(wt.w), wt.scales, c, yScale, yZero, ctx);
};

const lowerAdd: Lowering = ([a, aScale, aZero, b, bScale, bZero, yScale, yZero]) => {
  const x1 = activation(a, aScale, aZero, "A"), x2 = activation(b, bScale, bZero, "B"), y = gridOf(yScale, yZero, "the output");
  if (typeof x1 === "string") return x1;
  if (typeof x2 === "string") return x2;
  if (typeof y === "string") return y;
  if (x1.q.shape.join() !== x2.q.shape.join()) return `A ${shapeStr(x1.q.shape)} and B ${shapeStr(x2.q.shape)} broadcast (the int8 add takes one shape)`;
  const attrs = { aZp: x1.zeroPoint, bZp: x2.zeroPoint, outZp: y.zeroPoint, ...addParameters(x1.scale, x2.scale, y.scale), ...FULL_RANGE };
  return inOutputType(apply("qadd", [x1.q, x2.q], attrs), y.unsigned);
};

/** Pooling on the int8 kernels, which keep the input's grid: the output's must be the same. */
function lowerPool(kind: "qavgpool2d" | "qmaxpool2d", global: boolean): Lowering {
  return (x, ctx) => {
    const stored = x[0];
    if (!stored || stored.ndim !== 4) return "not a 2-d pooling";
    const unsigned = stored.dtype === "uint8";
    if (kind === "qavgpool2d") {
      const [, xScale, xZero, yScale, yZero] = x;
      const a = activation(stored, xScale, xZero, "the input"), y = gridOf(yScale, yZero, "the output");
      if (typeof a === "string") return a;
      if (typeof y === "string") return y;
      if (y.unsigned !== unsigned) return "its input and output types differ";
      if (ctx.attrs.int("channels_last", 0) !== 0) return "channels_last";
      if (a.scale !== y.scale || a.zeroPoint !== y.zeroPoint) {
        if (!global && (ctx.attrs.ints("pads", [0, 0, 0, 0]).some((p) => p !== 0) || ctx.attrs.string("auto_pad", "NOTSET") !== "NOTSET" || ctx.attrs.int("ceil_mode", 0) !== 0)) return "its input and output grids differ and its windows may reach into padding";
        return inOutputType(rescaledAverage(a, y, ctx, global), unsigned);
      }
    } else if (ctx.outputs > 1) return "the Indices output";
    const input = int8Twin(stored);
    if (global) return inOutputType(apply(kind, [input], { kernel: input.shape.slice(2), stride: [1, 1], pads: [0, 0, 0, 0], ...FULL_RANGE }), unsigned);
    const kernel = windowInts(ctx.attrs.ints("kernel_shape"), "kernel_shape", ctx);
    const strides = windowInts(ctx.attrs.ints("strides", [1, 1]), "strides", ctx);
    if (ctx.attrs.ints("dilations", [1, 1]).some((d) => d !== 1)) return "dilated pooling";
    if (ctx.attrs.int("ceil_mode", 0) !== 0 || ctx.attrs.int("storage_order", 0) !== 0) return "ceil_mode or storage_order is set";
    if (kind === "qavgpool2d" && ctx.attrs.int("count_include_pad", 0) !== 0) return "count_include_pad (the int8 kernel averages the cells inside the input)";
    const pads = spatialPads(ctx, input.shape.slice(2), kernel, strides, [1, 1]);
    return inOutputType(apply(kind, [input], { kernel, stride: strides, pads, ...FULL_RANGE }), unsigned);
  };
}

/**
 * An average onto another grid: a depthwise convolution with ones (exact int32 window sums of q − zp) requantized by
 * x_scale/(y_scale·count); windows must not reach into padding, where the count would vary.
 */
function rescaledAverage(a: { q: Tensor; scale: number; zeroPoint: number }, y: { scale: number; zeroPoint: number }, ctx: OpContext, global: boolean): Tensor {
  const [, C, H, W] = a.q.shape;
  const kernel = global ? [H, W] : windowInts(ctx.attrs.ints("kernel_shape"), "kernel_shape", ctx);
  const stride = global ? [1, 1] : windowInts(ctx.attrs.ints("strides", [1, 1]), "strides", ctx);
  const dilation = global ? [1, 1] : ctx.attrs.ints("dilations", [1, 1]);
  const pads = global ? [0, 0, 0, 0] : spatialPads(ctx, [H, W], kernel, stride, dilation);

  const count = kernel[0] * kernel[1];
  const ones = Tensor.from(new Int8Array(C * count).fill(1), { shape: [C, 1, ...kernel], dtype: "int8" });
  const attrs = { stride, pads, dilation, groups: C, inZp: a.zeroPoint, outZp: y.zeroPoint, ...FULL_RANGE };
  return apply("qconv2d", [a.q, ones, biasOf(undefined, C) as Tensor, requantization(a.scale, new Array(C).fill(1 / count), y.scale, ctx)], attrs);
}

// float32 emulation of com.microsoft's operator-form nodes: dequantize the inputs, the float op, quantize the output
const dequantize = (q: Input, scale: Input, zeroPoint: Input, ctx: OpContext, axis = 1): Tensor => HANDLERS.DequantizeLinear([q, scale, zeroPoint], withAttrs(ctx, { axis })) as Tensor;
const quantize = (y: Tensor, scale: Input, zeroPoint: Input, ctx: OpContext): Tensor => HANDLERS.QuantizeLinear([y, scale, zeroPoint], withAttrs(ctx, {})) as Tensor;
const emulatedPool = (float: string): Handler => ([x, xs, xz, ys, yz], ctx) => quantize(HANDLERS[float]([dequantize(x, xs, xz, ctx)], ctx) as Tensor, ys, yz, ctx);
const emulatedAdd: Handler = ([a, as, az, b, bs, bz, ys, yz], ctx) => quantize(dequantize(a, as, az, ctx).add(dequantize(b, bs, bz, ctx)), ys, yz, ctx);
const emulatedQGemm: Handler = ([a, as, az, b, bs, bz, c, ys, yz], ctx) => {
  const transB = ctx.attrs.int("transB", 0) === 1;
  const bias = c && as && bs ? cast(c, "float32").mul(as.mul(bs)) : undefined;
  // QGemm's alpha, transA and transB are Gemm's (its beta is 1)
  const y = HANDLERS.Gemm([dequantize(a, as, az, ctx), dequantize(b, bs, bz, ctx, transB ? 0 : 1), bias], ctx) as Tensor;
  return ys ? quantize(y, ys, yz, ctx) : y;
};

extendHandler("QLinearConv", (base) => integerOr("QLinearConv", lowerConv, base));
extendHandler("QLinearMatMul", (base) => integerOr("QLinearMatMul", lowerMatMul, base));
extendHandler("MaxPool", (base) => (x, ctx) => ((x[0]?.dtype === "int8" || x[0]?.dtype === "uint8") && record.mode === "integer" ? integerOr("MaxPool", lowerPool("qmaxpool2d", false), base)(x, ctx) : base(x, ctx)));
// an 8-bit per-tensor dequantization is the dequantize kernel (exact: (q − zp)·scale in float32, as ONNX defines it)
extendHandler("DequantizeLinear", (base) => (x, ctx) => {
  const [q, scale, zeroPoint] = x;
  const grid = record.mode === "integer" && (q?.dtype === "int8" || q?.dtype === "uint8") && q.isSymbolic && ctx.attrs.int("block_size", 0) === 0 ? gridOf(scale, zeroPoint, "x") : "not 8-bit";
  // the kernel takes positive finite scales; others keep the float32 emulation
  if (typeof grid === "string" || !(grid.scale > 0 && Number.isFinite(grid.scale)) || grid.unsigned !== (q!.dtype === "uint8")) return base(x, ctx);
  return apply("dequantize", [int8Twin(q!)], { scale: grid.scale, zeroPoint: grid.zeroPoint });
});
registerHandlers({
  "com.microsoft.QGemm": integerOr("QGemm", lowerQGemm, emulatedQGemm),
  "com.microsoft.QLinearAdd": integerOr("QLinearAdd", lowerAdd, emulatedAdd),
  "com.microsoft.QLinearAveragePool": integerOr("QLinearAveragePool", lowerPool("qavgpool2d", false), emulatedPool("AveragePool")),
  "com.microsoft.QLinearGlobalAveragePool": integerOr("QLinearGlobalAveragePool", lowerPool("qavgpool2d", true), emulatedPool("GlobalAveragePool")),
});
