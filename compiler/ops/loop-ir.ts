/**
 * A codegen-neutral description of one element-wise step inside a generated loop: a tree of WebAssembly
 * instructions by their text-format names ("f32.add", "f32x4.splat", "i32.shr_s", "select"), operands,
 * constants and calls to the kernel library's loop helpers. The registry's ops declare their loop lowering
 * in it once; the code generator encodes it (compiler/codegen/link.ts).
 */
export type LoopExpr =
  /** an instruction applied to its operands in stack order (`select`: if-true, if-false, condition) */
  | { op: string; args: LoopExpr[] }
  /** the step's n-th argument */
  | { arg: number }
  | { f32: number }
  | { i32: number }
  /** a loop helper of the kernel library (act<code>Scalar, expVec, ...) */
  | { helper: string; args: LoopExpr[] };

export const wasmOp = (op: string, ...args: LoopExpr[]): LoopExpr => ({ op, args });
export const arg = (n: number): LoopExpr => ({ arg: n });
export const f32 = (value: number): LoopExpr => ({ f32: value });
export const i32 = (value: number): LoopExpr => ({ i32: value });
export const helper = (name: string, ...args: LoopExpr[]): LoopExpr => ({ helper: name, args });
