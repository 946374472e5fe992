import { fail } from "../errors.js";
import { DTYPES } from "../ir/dtype.js";
import type { Value } from "../ir/graph.js";
import { broadcastStrides } from "../ir/shape.js";
import { floatLiteral } from "../ops/elementwise.js";
import type { FusedStep } from "../ops/fused.js";
import { arg, isLoopType, type LoopExpr, type LoopType } from "../ops/loop-ir.js";
import { getOp } from "../ops/registry.js";

/**
 * Generates one loop nest for a chain of element-wise ops (a fused group, or a single op), in
 * AssemblyScript for the asc fallback: each step's loop lowering (ops/loop-ir.ts) written out, or its
 * template for the types the lowering leaves out. Dims that are contiguous for every operand are merged;
 * the innermost dim runs in f32x4 lanes with a scalar tail when every operand is float32 and every op has a
 * SIMD form. Inputs broadcast along the innermost dim are loaded once per row and splatted.
 */
export function emitElementwise(ptr: (v: Value) => number, inputs: Value[], steps: FusedStep[], out: Value): string[] {
  const shape = out.shape;
  const operands = [...inputs.map((v) => broadcastStrides(v.shape, shape)), broadcastStrides(shape, shape)];
  const { dims, strides } = collapse(shape, operands);
  const rank = dims.length;
  const inner = dims[rank - 1];
  const types = [...inputs, out].map((v) => DTYPES[v.dtype].as);
  const bytes = [...inputs, out].map((v) => DTYPES[v.dtype].bytes);
  const vectorizable = types.every((t) => t === "f32") && steps.every((s) => s.dtype === "float32" && getOp(s.op).elementwise?.loop?.vector) && inner >= 4;

  const lines: string[] = [`// loop: ${steps.map((s) => s.op).join(" -> ")} over ${JSON.stringify(shape)}`, "{"];
  // outer loops, and each operand's row pointer
  for (let d = 0; d < rank - 1; d++) lines.push(`for (let i${d}: usize = 0; i${d} < ${dims[d]}; i${d}++) {`);
  const ptrs = [...inputs, out].map((v, k) => {
    const terms = [`<usize>${ptr(v)}`];
    for (let d = 0; d < rank - 1; d++) if (strides[k][d]) terms.push(`i${d} * ${strides[k][d] * bytes[k]}`);
    lines.push(`const p${k} = ${terms.join(" + ")};`);
    return `p${k}`;
  });
  const innerStride = strides.map((s) => s[rank - 1]);
  const at = (k: number, j: string) => (innerStride[k] ? `${ptrs[k]} + (${j} << ${Math.log2(bytes[k])})` : ptrs[k]);
  const outK = inputs.length;

  const body = (vector: boolean): string[] => {
    const vals: string[] = inputs.map((_, k) => `a${k}`);
    const code: string[] = inputs.map((_, k) =>
      vector
        ? innerStride[k] ? `const a${k} = v128.load(${at(k, "j")});` : `const a${k} = f32x4.splat(load<f32>(${ptrs[k]}));`
        : `const a${k}: ${types[k]} = load<${types[k]}>(${at(k, "j")});`,
    );
    const valTypes = [...types.slice(0, inputs.length)];
    steps.forEach((s, i) => {
      const ew = getOp(s.op).elementwise!;
      const args = s.args.map((a) => vals[a]);
      const t = valTypes[s.args[s.args.length - 1]], out = DTYPES[s.dtype].as;
      const placeholders = s.args.map((_, n) => arg(n));
      const argTypes = s.args.map((a) => (vector ? "v128" : valTypes[a]));
      if (vector) {
        code.push(`const t${i} = ${render(ew.loop!.vector!(placeholders, s.attrs), args, argTypes)};`);
      } else {
        const lowered = isLoopType(t) && isLoopType(out) ? ew.loop?.scalar(placeholders, s.attrs, t, out) : undefined;
        const fault = lowered ? ew.loop?.fault?.(placeholders, t as LoopType) : ew.fault?.(args, t);
        if (fault) code.push(`if (${typeof fault.when === "string" ? fault.when : render(fault.when, args, argTypes)}) return ${fault.status};`);
        const scalar = lowered ? render(lowered, args, argTypes) : ew.scalar?.(args, s.attrs, t, out) ?? fail(`internal: element-wise ${s.op} has no code for ${t}`);
        // every temporary is declared with its type: AssemblyScript keeps small integers unwrapped otherwise
        code.push(`const t${i}: ${out} = <${out}>(${scalar});`);
      }
      vals.push(`t${i}`);
      valTypes.push(out);
    });
    const result = vals[vals.length - 1];
    code.push(vector ? `v128.store(${at(outK, "j")}, ${result});` : `store<${types[outK]}>(${at(outK, "j")}, <${types[outK]}>${result});`);
    return code;
  };

  lines.push(`let j: usize = 0;`);
  if (vectorizable) {
    lines.push(`if (ASC_FEATURE_SIMD) {`, `for (; j + 4 <= ${inner}; j += 4) {`, ...body(true), `}`, `}`);
  }
  lines.push(`for (; j < ${inner}; j++) {`, ...body(false), `}`);
  for (let d = 0; d < rank - 1; d++) lines.push(`}`);
  lines.push(`}`);
  return lines;
}

/** Drops unit dims and merges neighbours that are contiguous for every operand. */
export function collapse(shape: number[], operands: number[][]): { dims: number[]; strides: number[][] } {
  const dims: number[] = [];
  const strides: number[][] = operands.map(() => []);
  shape.forEach((n, d) => {
    if (n === 1) return;
    const last = dims.length - 1;
    if (last >= 0 && operands.every((st, k) => strides[k][last] === st[d] * n)) {
      dims[last] *= n;
      operands.forEach((st, k) => (strides[k][last] = st[d]));
    } else {
      dims.push(n);
      operands.forEach((st, k) => strides[k].push(st[d]));
    }
  });
  if (dims.length === 0) return { dims: [1], strides: operands.map(() => [0]) };
  if (strides.some((st) => st[st.length - 1] > 1)) fail("internal: element-wise operand is not contiguous in its last dimension");
  return { dims, strides };
}

/** AssemblyScript operators of the i32 and f32 instructions loop lowerings use, with the type their operands are read as */
const OPERATORS: Record<string, [string, string]> = {
  "i32.add": ["+", "i32"], "i32.sub": ["-", "i32"], "i32.mul": ["*", "i32"], "i32.div_s": ["/", "i32"], "i32.div_u": ["/", "u32"],
  "i32.rem_s": ["%", "i32"], "i32.rem_u": ["%", "u32"], "i32.and": ["&", "i32"], "i32.or": ["|", "i32"], "i32.xor": ["^", "i32"],
  "i32.shl": ["<<", "i32"], "i32.shr_s": [">>", "i32"], "i32.shr_u": [">>>", "i32"], "i32.eq": ["==", "i32"], "i32.ne": ["!=", "i32"],
  "i32.lt_s": ["<", "i32"], "i32.lt_u": ["<", "u32"], "i32.gt_s": [">", "i32"], "i32.gt_u": [">", "u32"],
  "i32.le_s": ["<=", "i32"], "i32.le_u": ["<=", "u32"], "i32.ge_s": [">=", "i32"], "i32.ge_u": [">=", "u32"],
  "f32.add": ["+", "f32"], "f32.sub": ["-", "f32"], "f32.mul": ["*", "f32"], "f32.div": ["/", "f32"],
  "f32.eq": ["==", "f32"], "f32.ne": ["!=", "f32"], "f32.lt": ["<", "f32"], "f32.gt": [">", "f32"], "f32.le": ["<=", "f32"], "f32.ge": [">=", "f32"],
};
/** one-operand instructions as AssemblyScript expressions of the operand */
const UNARY: Record<string, (a: string) => string> = {
  "i32.eqz": (a) => `(<i32>(${a}) == 0)`, "f32.neg": (a) => `(-<f32>(${a}))`,
  "f32.convert_i32_s": (a) => `<f32>(<i32>(${a}))`, "f32.convert_i32_u": (a) => `<f32>(<u32>(${a}))`,
  "i32.trunc_sat_f32_s": (a) => `<i32>(<f32>(${a}))`, // a saturating conversion: asc's targets all have nontrapping-f2i
  "i32.reinterpret_f32": (a) => `reinterpret<i32>(<f32>(${a}))`, "f32.reinterpret_i32": (a) => `reinterpret<f32>(<i32>(${a}))`,
  ...Object.fromEntries(["abs", "sqrt", "ceil", "floor", "nearest", "trunc"].map((f) => [`f32.${f}`, (a: string) => `${f}<f32>(${a})`])),
};
const FLOAT_BUILTINS: Record<string, string> = { "f32.min": "min<f32>", "f32.max": "max<f32>", "f32.copysign": "copysign<f32>" };

/** The value type of a lowering's result: i32 (integers, bools), f32 or v128. */
function typeOf(e: LoopExpr, argTypes: string[]): string {
  if ("arg" in e) return argTypes[e.arg] === "f32" || argTypes[e.arg] === "v128" ? argTypes[e.arg] : "i32";
  if ("f32" in e) return "f32";
  if ("i32" in e) return "i32";
  if ("cond" in e) return e.type;
  if ("helper" in e) return e.form === "Vec" ? "v128" : "f32";
  if ("kernel" in e) return e.type;
  if (e.op === "select") return typeOf(e.args[0], argTypes);
  const [prefix] = e.op.split(".");
  return prefix === "f32x4" ? "v128" : /\.(eqz?|ne|[lg][te])(_[su])?$/.test(e.op) ? "i32" : prefix;
}

/** A loop lowering as an AssemblyScript expression over the step's argument expressions. */
function render(e: LoopExpr, args: string[], argTypes: string[]): string {
  const r = (x: LoopExpr) => render(x, args, argTypes);
  if ("arg" in e) return args[e.arg];
  if ("f32" in e) return floatLiteral(e.f32);
  if ("i32" in e) return `<i32>${e.i32}`;
  if ("cond" in e) return `(<bool>(${r(e.cond)}) ? <${e.type}>(${r(e.then)}) : <${e.type}>(${r(e.otherwise)}))`;
  if ("helper" in e) {
    const [x, ...rest] = e.args.map(r);
    return e.helper === "act" ? `act${e.form}(${[x, e.act, ...rest].join(", ")})` : `${e.helper}${e.form}(${x})`;
  }
  const a = e.args.map(r);
  if ("kernel" in e) return `${e.kernel}(${a.join(", ")})`;
  if (e.op === "select") return `select<${typeOf(e, argTypes)}>(${a[0]}, ${a[1]}, <bool>(${a[2]}))`;
  if (e.op.startsWith("f32x4.")) return `${e.op}(${a.join(", ")})`;
  if (OPERATORS[e.op]) {
    const [op, t] = OPERATORS[e.op];
    return `(<${t}>(${a[0]}) ${op} <${t}>(${a[1]}))`;
  }
  if (UNARY[e.op]) return UNARY[e.op](a[0]);
  if (FLOAT_BUILTINS[e.op]) return `${FLOAT_BUILTINS[e.op]}(${a.join(", ")})`;
  return fail(`internal: no AssemblyScript form of instruction ${e.op}`);
}
