import { fail } from "../errors.js";
import { DTYPES } from "../ir/dtype.js";
import type { Value } from "../ir/graph.js";
import { broadcastStrides } from "../ir/shape.js";
import type { FusedStep } from "../ops/fused.js";
import { getOp } from "../ops/registry.js";

/**
 * Generates one loop nest for a chain of element-wise ops (a fused group, or a single op).
 * Dims that are contiguous for every operand are merged; the innermost dim runs in f32x4 lanes with a
 * scalar tail when every operand is float32 and every op has a SIMD form. Inputs broadcast along the
 * innermost dim are loaded once per row and splatted.
 */
export function emitElementwise(ptr: (v: Value) => number, inputs: Value[], steps: FusedStep[], out: Value): string[] {
  const shape = out.shape;
  const operands = [...inputs.map((v) => broadcastStrides(v.shape, shape)), broadcastStrides(shape, shape)];
  const { dims, strides } = collapse(shape, operands);
  const rank = dims.length;
  const inner = dims[rank - 1];
  const types = [...inputs, out].map((v) => DTYPES[v.dtype].as);
  const bytes = [...inputs, out].map((v) => DTYPES[v.dtype].bytes);
  const vectorizable = types.every((t) => t === "f32") && steps.every((s) => getOp(s.op).elementwise?.vector) && inner >= 4;

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
      const fault = vector ? null : ew.fault?.(args, t);
      if (fault) code.push(`if (${fault.when}) return ${fault.status};`);
      // every temporary is declared with its type: AssemblyScript keeps small integers unwrapped otherwise
      code.push(vector ? `const t${i} = ${ew.vector!(args, s.attrs)};` : `const t${i}: ${out} = <${out}>(${ew.scalar(args, s.attrs, t, out)});`);
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
