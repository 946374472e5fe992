import type { Attrs } from "../ir/graph.js";

/**
 * A codegen-neutral description of one element-wise step inside a generated loop: a tree of WebAssembly
 * instructions by their text-format names ("f32.add", "f32x4.splat", "i32.shr_s", "select"), operands,
 * constants and calls to the kernel library's loop helpers. Every op in it is pure, so a code generator may
 * compute an operand where it is used or keep it in a local. The registry's ops declare their loop lowering
 * in it once; the code generator encodes it directly (codegen/link.ts) or writes it as AssemblyScript for
 * the asc fallback (codegen/elementwise.ts).
 */
export type LoopExpr =
  /** an instruction applied to its operands in stack order (`select`: if-true, if-false, condition) */
  | { op: string; args: LoopExpr[] }
  /** the step's n-th argument */
  | { arg: number }
  | { f32: number }
  | { i32: number }
  /** `cond ? then : otherwise`, evaluating only one side (where the other could trap) */
  | { cond: LoopExpr; then: LoopExpr; otherwise: LoopExpr; type: "i32" | "f32" }
  /** a loop helper of the kernel library: activation `act` (codes of runtime-as/act.ts), or a vmath function */
  | { helper: "act" | "exp" | "log" | "erf"; form: "Scalar" | "Vec"; act?: number; args: LoopExpr[] }
  /** a scalar function of the runtime (runtime-as/common.ts), by its exported name, returning `type` */
  | { kernel: string; args: LoopExpr[]; type: "i32" | "f32" };

/**
 * How an element-wise op runs inside a generated loop. `t` is the loop type of the (last) input and `out`
 * that of the result, both keys of LOOP_TYPES (integers live in i32 and are wrapped to their type by the
 * lowering where they could leave it); undefined: not for these types (asc writes the op's template).
 */
export interface LoopLowering {
  scalar(args: LoopExpr[], attrs: Attrs, t: LoopType, out: LoopType): LoopExpr | undefined;
  /** the f32x4 form, on float32 only; absent: a loop containing this op runs scalar */
  vector?(args: LoopExpr[], attrs: Attrs): LoopExpr;
  /** a condition on the scalar args under which run() stops with `status` before computing (integer division by zero) */
  fault?(args: LoopExpr[], t: LoopType): { when: LoopExpr; status: number } | null;
}

/** the types a generated loop holds (AssemblyScript names): f32, and integers up to 32 bits (bool as u8) in i32 */
export const LOOP_TYPES = {
  f32: { bytes: 4, signed: true }, i8: { bytes: 1, signed: true }, u8: { bytes: 1, signed: false }, i16: { bytes: 2, signed: true },
  u16: { bytes: 2, signed: false }, i32: { bytes: 4, signed: true }, u32: { bytes: 4, signed: false },
} as const;
export type LoopType = keyof typeof LOOP_TYPES;
export const isLoopType = (t: string): t is LoopType => t in LOOP_TYPES;

export const wasmOp = (op: string, ...args: LoopExpr[]): LoopExpr => ({ op, args });
export const arg = (n: number): LoopExpr => ({ arg: n });
export const f32 = (value: number): LoopExpr => ({ f32: value });
export const i32 = (value: number): LoopExpr => ({ i32: value });
export const kernelCall = (kernel: string, type: "i32" | "f32", ...args: LoopExpr[]): LoopExpr => ({ kernel, args, type });

/** an i32 holding any integer result, wrapped to the integer type `out` (sign- or zero-extended) */
export function wrapTo(out: LoopType, x: LoopExpr): LoopExpr {
  const bits = 32 - 8 * LOOP_TYPES[out].bytes;
  if (!bits) return x;
  return LOOP_TYPES[out].signed ? wasmOp("i32.shr_s", wasmOp("i32.shl", x, i32(bits)), i32(bits)) : wasmOp("i32.and", x, i32(2 ** (32 - bits) - 1));
}
