import { fail } from "../../errors.js";
import { shapeStr } from "../../ir/shape.js";
import { getOp } from "../../ops/index.js";
import { Tensor } from "../../tensor/tensor.js";
import { activeTrace } from "../../tensor/trace.js";
import { containerOf } from "./ops-sequence.js";
import { modelInputsBehind, need, registerHandlers, type OpContext } from "./ops.js";

/**
 * Control flow for a static-shape compiler. `If` on a compile-time condition imports only the taken
 * branch (the condition folds once the inputs it depends on are pinned with --const); on a run-time
 * condition both branches are planned and their outputs selected element-wise, which needs equal output
 * shapes: when a branch does more than element-wise work, its nodes are guarded by the condition and
 * run() skips the branch not taken; cheap branches are both computed. `Loop` and `Scan` are unrolled
 * over a trip count known at compile time.
 */

/** Unrolling beyond this many iterations would make a graph no device wants; such loops are refused. */
const MAX_UNROLLED_ITERATIONS = 4096;

type Input = Tensor | undefined;

const pinHint = (t: Tensor): string => {
  const inputs = modelInputsBehind(t);
  return inputs.length ? `; it depends on ${inputs.map((n) => `'${n}'`).join(", ")}: pin ${inputs.length > 1 ? "them" : "it"} with ${inputs.map((n) => `--const ${n}=FILE.npy|VALUE`).join(" ")}` : "";
};

function truth(t: Tensor, what: string, ctx: OpContext): boolean | Tensor {
  if (t.size !== 1) fail(`${ctx.label}: ${what} must have one element, got shape ${shapeStr(t.shape)}`);
  return t.isSymbolic ? t.reshape([]) : Number(t.data[0]) !== 0;
}

function ifOp(x: Input[], ctx: OpContext): Tensor[] {
  const cond = truth(need(x, 0, ctx), "the condition", ctx);
  if (typeof cond === "boolean") return ctx.subgraph(cond ? "then_branch" : "else_branch", []);
  // the nodes each branch records: the graph grows by appending
  const nodes = activeTrace()?.graph.nodes ?? fail(`internal: ${ctx.label} imports outside a trace`);
  const start = nodes.length;
  const yes = ctx.subgraph("then_branch", []);
  const middle = nodes.length;
  const no = ctx.subgraph("else_branch", []);
  const branches = [nodes.slice(start, middle), nodes.slice(middle)];
  if (branches.some((b) => b.some((n) => !getOp(n.op).elementwise && !getOp(n.op).view))) {
    // real control flow: the outer condition first, so nested Ifs nest their conditions
    branches.forEach((b, i) => b.forEach((n) => (n.guard = [{ cond: cond.value!, when: i === 0 }, ...n.guard])));
  }
  if (yes.length !== no.length) fail(`${ctx.label}: the branches have ${yes.length} and ${no.length} outputs`);
  return yes.map((a, i) => {
    const b = no[i];
    if (containerOf(a) || containerOf(b)) fail(`${ctx.label}: the condition is only known at run time and output ${i} is a sequence or an optional, which cannot be selected element-wise${pinHint(need(x, 0, ctx))}`);
    if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) {
      fail(`${ctx.label}: the condition is only known at run time and output ${i} differs between the branches (then ${a.dtype} ${shapeStr(a.shape)}, else ${b.dtype} ${shapeStr(b.shape)}), so it cannot be selected element-wise${pinHint(need(x, 0, ctx))}`);
    }
    return Tensor.where(cond, a, b);
  });
}

/** Loop(M, cond, v_initial…): body(i, cond, v…) → (cond, v…, scan outputs…), unrolled. */
function loop(x: Input[], ctx: OpContext): Tensor[] {
  const [tripInput, condInput, ...initial] = x;
  const carried = initial.map((t, i) => t ?? fail(`${ctx.label}: loop-carried input ${i} is missing`));
  const trips = tripInput ? constTrips(tripInput, ctx) : Infinity;
  let keepGoing = condInput ? truth(condInput, "the initial condition", ctx) : true;
  if (typeof keepGoing !== "boolean") fail(`${ctx.label}: the loop condition is only known at run time, so the loop cannot be unrolled${pinHint(condInput!)}`);
  let state = carried;
  const scans: Tensor[][] = [];
  let i = 0;
  for (; i < trips && keepGoing; i++) {
    if (i >= MAX_UNROLLED_ITERATIONS) fail(`${ctx.label}: the loop runs more than ${MAX_UNROLLED_ITERATIONS} iterations; unrolling it is refused`);
    const iteration = Tensor.from(new BigInt64Array([BigInt(i)]), { shape: [], dtype: "int64" });
    const out = ctx.subgraph("body", [iteration, Tensor.full([], 1, "bool"), ...state]);
    if (out.length < 1 + state.length) fail(`${ctx.label}: the body returns ${out.length} outputs, fewer than 1 + ${state.length} loop-carried values`);
    const next = truth(out[0], "the body's condition output", ctx);
    if (typeof next !== "boolean") {
      if (trips === Infinity) fail(`${ctx.label}: the loop condition is computed at run time and there is no trip count, so the loop cannot be unrolled${pinHint(out[0])}`);
      fail(`${ctx.label}: the body's condition is computed at run time, so the loop cannot be unrolled to a static trip count${pinHint(out[0])}`);
    }
    keepGoing = next;
    state = out.slice(1, 1 + state.length);
    out.slice(1 + state.length).forEach((s, k) => (scans[k] ??= []).push(s.unsqueeze(0)));
  }
  const scanCount = ctx.outputs - carried.length;
  const scanOutputs = Array.from({ length: Math.max(0, scanCount) }, (_, k) => {
    if (!scans[k]) fail(`${ctx.label}: scan output ${k} after zero iterations has no static shape`);
    return scans[k].length === 1 ? scans[k][0] : Tensor.cat(scans[k], 0);
  });
  return [...state, ...scanOutputs];
}

function constTrips(t: Tensor, ctx: OpContext): number {
  if (t.isSymbolic) fail(`${ctx.label}: the trip count is only known at run time, so the loop cannot be unrolled${pinHint(t)}`);
  const n = Number(t.data[0]);
  if (!Number.isFinite(n) || n < 0) fail(`${ctx.label}: trip count ${n} is not a non-negative integer`);
  return n;
}

/** Scan (opset 9+): states carried through the body, scan inputs sliced and scan outputs stacked along their axes. */
function scan(x: Input[], ctx: OpContext): Tensor[] {
  if (ctx.opset < 9) fail(`${ctx.label}: Scan before opset 9 (batched, with sequence_lens) is not supported`);
  const all = x.map((t, i) => t ?? fail(`${ctx.label}: input ${i} is missing`));
  const nScan = ctx.attrs.int("num_scan_inputs");
  const states = all.slice(0, all.length - nScan), inputs = all.slice(all.length - nScan);
  const inAxes = ctx.attrs.ints("scan_input_axes", inputs.map(() => 0)).map((a, i) => (a < 0 ? a + inputs[i].ndim : a));
  const inDirs = ctx.attrs.ints("scan_input_directions", inputs.map(() => 0));
  const lengths = new Set(inputs.map((t, i) => t.shape[inAxes[i]]));
  if (lengths.size !== 1) fail(`${ctx.label}: the scan inputs have different sequence lengths (${[...lengths].join(", ")})`);
  const T = [...lengths][0];
  if (T > MAX_UNROLLED_ITERATIONS) fail(`${ctx.label}: ${T} scan steps; unrolling more than ${MAX_UNROLLED_ITERATIONS} is refused`);
  const nOut = ctx.outputs - states.length;
  let state = states;
  const steps: Tensor[][] = Array.from({ length: nOut }, () => []);
  for (let t = 0; t < T; t++) {
    const slices = inputs.map((s, i) => {
      const at = inDirs[i] === 1 ? T - 1 - t : t;
      return s.slice(inAxes[i], at, at + 1).squeeze(inAxes[i]);
    });
    const out = ctx.subgraph("body", [...state, ...slices]);
    state = out.slice(0, states.length);
    out.slice(states.length).forEach((o, k) => steps[k].push(o));
  }
  const outAxes = ctx.attrs.ints("scan_output_axes", steps.map(() => 0));
  const outDirs = ctx.attrs.ints("scan_output_directions", steps.map(() => 0));
  const stacked = steps.map((parts, k) => {
    if (!parts.length) fail(`${ctx.label}: scan output ${k} of zero steps has no static shape`);
    const rank = parts[0].ndim + 1;
    const axis = outAxes[k] < 0 ? outAxes[k] + rank : outAxes[k];
    const ordered = outDirs[k] === 1 ? [...parts].reverse() : parts;
    const lifted = ordered.map((p) => p.unsqueeze(axis));
    return lifted.length === 1 ? lifted[0] : Tensor.cat(lifted, axis);
  });
  return [...state, ...stacked];
}

registerHandlers({ If: ifOp, Loop: loop, Scan: scan });
