import type { Graph } from "../ir/graph.js";

/** the index operand of each op that range-checks int32 indices at run time (status 2) */
const INDEX_INPUT: Record<string, number> = { gather: 1, gatherElements: 1, scatterAdd: 1, scatterElementsAdd: 1 };

/**
 * An int64 index narrowed to int32 for such an op would wrap (2^32 + 1 becomes 1) and pass the op's range
 * check, gathering the wrong row with status 0. Clamping it to int32's range first keeps an out-of-range
 * index out of range, so run() returns status 2. Rewrites every int64 → int32 cast read only as an index;
 * returns how many.
 */
export function saturateIndexCasts(g: Graph): number {
  const uses = g.consumers();
  let rewritten = 0;
  for (const node of [...g.nodes]) {
    if (node.op !== "cast" || node.attrs.to !== "int32" || node.inputs[0].dtype !== "int64") continue;
    const narrowed = node.outputs[0];
    const readers = uses.get(narrowed) ?? [];
    const onlyIndex = readers.every((r) => r.inputs.findIndex((v) => v === narrowed) === INDEX_INPUT[r.op] && r.inputs.lastIndexOf(narrowed) === INDEX_INPUT[r.op]);
    if (readers.length === 0 || !onlyIndex || g.outputs.includes(narrowed)) continue;
    const bound = (value: bigint, what: string) => g.addConstant({ shape: [], dtype: "int64", data: new BigInt64Array([value]) }, `${node.name}_${what}`);
    const low = g.insertBefore(node, "maximum", [node.inputs[0], bound(-(2n ** 31n), "int32_min")]);
    const high = g.insertBefore(node, "minimum", [low.outputs[0], bound(2n ** 31n - 1n, "int32_max")]);
    node.inputs = [high.outputs[0]];
    rewritten++;
  }
  return rewritten;
}
