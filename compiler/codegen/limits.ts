import { fail } from "../errors.js";
import type { Graph, Node, Value } from "../ir/graph.js";
import { shapeStr } from "../ir/shape.js";

/** A wasm32 blob addresses 2^32 bytes of linear memory: no tensor, and no kernel argument, may be larger. */
export const ADDRESS_SPACE = 2 ** 32;

const typed = (v: Value) => `${v.dtype}${shapeStr(v.shape)}`;
/** op, node and shapes, for messages about one node */
export const describeNode = (n: Node): string =>
  `node ${n.name} (${n.op}: ${n.inputs.map(typed).join(", ") || "no inputs"} -> ${n.outputs.map(typed).join(", ")})`;

const addressable = (v: Value): boolean => v.shape.every((d) => Number.isSafeInteger(d) && d >= 0) && v.bytes < ADDRESS_SPACE;
const tooLarge = (v: Value) => `${typed(v)} takes ${v.bytes} bytes, more than the 4 GiB a wasm32 blob can address`;

/** Refuses, before any code is generated, a graph with a tensor that no wasm32 memory could hold. */
export function checkAddressable(g: Graph): void {
  for (const v of g.inputs) if (!addressable(v)) fail(`input '${v.name}' ${tooLarge(v)}`);
  for (const c of g.constants()) if (!addressable(c)) fail(`constant '${c.name}' ${tooLarge(c)}`);
  for (const n of g.nodes) {
    const big = n.outputs.find((v) => !addressable(v));
    if (big) fail(`${describeNode(n)}: its output ${tooLarge(big)}`);
  }
}

/** A kernel's integer parameters are i32 or u32: a larger constant (a stride of 1e15) cannot be passed. */
export function checkKernelArguments(n: Node, fn: string, args: (number | string)[]): void {
  const bad = args.find((a) => typeof a === "number" && Number.isInteger(a) && (a < -(2 ** 31) || a >= ADDRESS_SPACE));
  if (bad !== undefined) fail(`${describeNode(n)}: ${fn}() would take the constant ${bad}, which does not fit the kernel's 32-bit parameter (an attribute such as a stride, pad or size is out of range)`);
}
