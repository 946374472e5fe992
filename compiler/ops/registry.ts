import { fail } from "../errors.js";
import type { Attrs, Graph, HostTensor, Node, TensorType, Value } from "../ir/graph.js";
import type { Tensor } from "../tensor/tensor.js";
import type { FusedStep } from "./fused.js";
import type { LoopLowering } from "./loop-ir.js";

/** Where the code generator lets an op's lowering emit kernel calls. */
export interface LowerContext {
  /** absolute byte address of a value's buffer */
  ptr(v: Value): number;
  /** absolute byte address of the node's scratch buffer (see OpDef.scratchBytes) */
  scratch(node: Node): number;
  /** emits `fn(args…);` in run(), importing fn from runtime-as/<file>.ts */
  call(file: string, fn: string, args: (number | string)[]): void;
  /** emits a call whose non-zero i32 result makes run() return `status` */
  callChecked(file: string, fn: string, args: (number | string)[], status: number): void;
  /** emits a raw statement in run() */
  emit(line: string): void;
  /** emits one generated loop for a chain of element-wise ops (a fused group, or a single op) */
  elementwise(inputs: Value[], steps: FusedStep[], out: Value): void;
}

/** A fused epilogue the gemm/conv kernels apply at store time (codes match runtime-as/act.ts). */
export interface Epilogue {
  act: number;
  p0: number;
  p1: number;
}

/**
 * How an element-wise op runs inside a generated loop: `loop` in wasm-level primitives (./loop-ir.ts) for
 * float32 and integers up to 32 bits, both code generation paths read it; `scalar` an AssemblyScript
 * template for the other types (float64, 64-bit integers) and the ops `loop` leaves out (asc compiles them).
 */
/** Target-level choices between an op's lowerings, made when the graph is optimised. */
export interface LoweringOptions {
  /**
   * int8 convolutions keep the compact qconv2d kernel rather than qconv2dPacked. On a microcontroller the
   * packed kernels cost more than they save: WAMR's interpreter holds the code in RAM (KWS's image 48 → 68 KiB),
   * and a 32-bit core pays for the scalar tiles' 64-bit pair accumulators (KWS AOT on a Cortex-M4 41 → 51 M
   * instructions; npm run bench:mcu).
   */
  compactInt8?: boolean;
  /**
   * The target builds the SIMD kernels: int8 depthwise convolutions on small planes run vectorised across
   * channels. Where it is known to be false, depthwise3x3 never vectorises across channels either, so a conv2d's
   * scratch is one padded plane instead of four (the passes set attrs.scalarKernels).
   */
  simd?: boolean;
}

export interface ElementwiseCode {
  loop?: LoopLowering;
  /** `t`: AssemblyScript type of the (last) input; `out`: of the result; args are AS expressions */
  scalar?(args: string[], attrs: Attrs, t: string, out: string): string;
  /** with `scalar`: a condition on the args under which run() stops with `status` before computing (integer division by zero) */
  fault?(args: string[], t: string): { when: string; status: number } | null;
}

/** What a gradient rule sees: the op's inputs, its output and attrs, and dL/d(output). */
export interface GradArgs {
  inputs: Tensor[];
  output: Tensor;
  attrs: Attrs;
  /** the loss's gradient with respect to the output: the output's shape and dtype */
  grad: Tensor;
  /** which inputs need a gradient; a rule may return null for the others and save the work */
  needs: boolean[];
}

/**
 * Reverse mode for one op, written with the Tensor API so it runs eagerly (loss.backward()) and, while
 * tracing, records backward graph nodes. Returns one gradient per input, shaped like that input, or
 * null where none flows (integer indices, a bool condition, an input that needs none).
 */
export type GradRule = (args: GradArgs) => (Tensor | null)[];

/**
 * One op, defined once: its shape rule, its host reference implementation (eager mode and the test
 * oracle), and how it becomes code. Exactly one of `lower`, `elementwise`, `view` or `decompose` says how.
 */
export interface OpDef {
  name: string;
  /** output types; throws a TeenygradError naming the offending shapes */
  infer(inputs: TensorType[], attrs: Attrs): TensorType[];
  reference(inputs: HostTensor[], attrs: Attrs): HostTensor[];
  /** emits kernel calls */
  lower?(ctx: LowerContext, node: Node): void;
  /** scratch bytes the lowering needs, live only during this node */
  scratchBytes?(node: Node): number;
  /** the kernel may write its output over input 0 when that input dies here */
  inPlace?: boolean;
  /** fused into generated loops by the code generator */
  elementwise?: ElementwiseCode;
  /** output aliases input 0's bytes (reshape-like): no code at all */
  view?: boolean;
  /** rewrites the node into other ops before lowering; returns the replacement outputs */
  decompose?(g: Graph, node: Node, opts: LoweringOptions): Value[];
  /** can be applied by a producing gemm/conv kernel at store time */
  epilogue?(attrs: Attrs): Epilogue | null;
  /** compiled dtypes; the default is float32 everywhere */
  compiledDTypes?(node: Node): boolean;
  /** the gradient rule; every op has this or `notDifferentiable` */
  grad?: GradRule;
  /** why no gradient flows through this op: backpropagating through it fails with this reason */
  notDifferentiable?: string;
}

const OPS = new Map<string, OpDef>();

export function defineOp(def: OpDef): OpDef {
  if (OPS.has(def.name)) throw new Error(`op ${def.name} defined twice`);
  OPS.set(def.name, def);
  return def;
}

export function getOp(name: string, nodeName?: string): OpDef {
  const def = OPS.get(name);
  if (!def) fail(`unsupported op '${name}'${nodeName ? ` (node ${nodeName})` : ""}`);
  return def;
}

export const allOps = (): OpDef[] => [...OPS.values()];

/** Output types of `op`, with the node named in any error. */
/**
 * The ops that take or give float16: those that only move elements (right on its bit patterns) and the two
 * conversions; ops compute on float16 values as float32 (the ONNX importer widens them and rounds each result).
 */
const FLOAT16_OPS = new Set(["reshape", "permute", "slice", "concat", "expand", "gather", "bitcast", "copy", "floatToHalf", "halfToFloat"]);

export function inferTypes(op: string, inputs: TensorType[], attrs: Attrs, nodeName: string): TensorType[] {
  const def = getOp(op, nodeName);
  try {
    const types = def.infer(inputs, attrs);
    // a fused group's steps were each checked when they were recorded
    if (!FLOAT16_OPS.has(op) && op !== "fused" && [...inputs, ...types].some((t) => t.dtype === "float16")) {
      fail(`float16 is a storage dtype so far: ${op} does not compute on it (${[...FLOAT16_OPS].join(", ")} take it; compute in float32 between halfToFloat and floatToHalf)`);
    }
    return types;
  } catch (e) {
    if (e instanceof Error && e.name === "TeenygradError" && !e.message.includes(nodeName)) {
      e.message = `${op} (node ${nodeName}): ${e.message}`;
    }
    throw e;
  }
}

/**
 * Sums a gradient computed in a broadcast shape back to the shape of the input that was broadcast:
 * over the leading dims the input lacked and over the dims where it had size 1.
 */
export function sumToShape(g: Tensor, shape: number[]): Tensor {
  const lead = g.ndim - shape.length;
  const axes = g.shape.map((_, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1));
  return (axes.length ? g.sum(axes, true) : g).reshape(shape);
}
