import { fail } from "../errors.js";
import type { Graph, Node, Value } from "../ir/graph.js";
import { getOp } from "../ops/index.js";
import { checkNoOverlap, liveness, planArena, type ArenaPlan, type BufferRequest, type ScheduleStep } from "../planner/index.js";
import { ADDRESS_SPACE, checkAddressable } from "./limits.js";

/** Alignment of every buffer: one v128. */
export const ALIGN = 16;
/** Bytes [0, 16) hold no tensor: pointer 0 means "absent" to kernels, and the WASI entry keeps its iovec there. */
export const RESERVED_BYTES = 16;

const alignUp = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/**
 * Where every value lives in linear memory:
 *   [0, 16) reserved · weights (read-only, a data segment) · streaming state · activation arena (inputs,
 *   outputs, intermediates and scratch, planned by compiler/planner) · AssemblyScript's own static data.
 * With `weightsRegion`, the weights leave linear memory for a region at the top of the 32-bit address
 * space (WAMR's shared heap) and the state and the arena follow the reserved bytes.
 */
export interface MemoryLayout {
  address: Map<Value, number>;
  scratch: Map<Node, number>;
  weights: { offset: number; bytes: number; values: Value[]; region?: { offset: number; bytes: number } };
  /** the streaming state's region (LayoutOptions.state): zero bytes when there is none */
  state: { offset: number; bytes: number };
  /** `names`: what each buffer holds (the node that writes it first, an input, a scratch), for the plan's pictures */
  arena: { offset: number; plan: ArenaPlan; buffers: BufferRequest[]; names: Map<number, string> };
  /** first byte after the arena */
  end: number;
}

export interface LayoutOptions {
  /**
   * Values that live at given addresses outside the weights region and the arena, and their views:
   * a training blob's parameters and optimizer state, which outlive every call. A node whose output is
   * fixed writes that address (an optimizer update overwriting its parameter).
   */
  fixed?: Map<Value, number>;
  /** where the weights region starts (default: right after the reserved bytes) */
  weightsAt?: number;
  /** where the arena starts (default: right after the weights region) */
  arenaAt?: number;
  /**
   * Put the weights in a region of whole `pageBytes` pages ending at 2^32, outside linear memory (WAMR's
   * shared heap). The region keeps at least ALIGN bytes after the last weight, so no kernel pointer
   * running one element past its tensor wraps to 0.
   */
  weightsRegion?: { pageBytes: number };
  /**
   * A streaming model's state: each `value` (read by run(), fed by no host) keeps its bytes between calls in a
   * region between the weights and the arena, which no other buffer uses; `next` (written by the last nodes
   * of run()) lands on the same bytes, so the next call reads it.
   */
  state?: { value: Value; next: Value }[];
}


export function layoutMemory(g: Graph, opts: LayoutOptions = {}): MemoryLayout {
  checkAddressable(g);
  const fixed = new Map(opts.fixed ?? []);
  const state = opts.state ?? [];
  // known now so that no view or in-place write treats the state as arena bytes; placed after the weights
  for (const s of state) fixed.set(s.value, 0).set(s.next, 0);
  const root = aliasRoots(g, fixed);
  const rootOf = (v: Value) => root.get(v) ?? v;

  // weights region: every constant the code reads, in first-use order
  const address = new Map<Value, number>(fixed);
  const constants = g.constants();
  const weightsBytes = constants.reduce((n, c) => n + alignUp(c.bytes), 0);
  const region = opts.weightsRegion && weightsBytes > 0 ? { bytes: Math.ceil((weightsBytes + ALIGN) / opts.weightsRegion.pageBytes) * opts.weightsRegion.pageBytes } : undefined;
  if (region && region.bytes >= ADDRESS_SPACE / 2) fail(`the weights (${weightsBytes} bytes) do not fit a shared heap in the 32-bit address space`);
  const weightsAt = region ? ADDRESS_SPACE - region.bytes : (opts.weightsAt ?? RESERVED_BYTES);
  let at = weightsAt;
  for (const c of constants) {
    address.set(c, at);
    at = alignUp(at + c.bytes);
  }
  const weights = { offset: weightsAt, bytes: at - weightsAt, values: constants, region: region && { offset: weightsAt, bytes: region.bytes } };
  const stateAt = alignUp(opts.arenaAt ?? (opts.weightsRegion ? RESERVED_BYTES : at));
  at = stateAt;
  for (const s of state) {
    fixed.set(s.value, at).set(s.next, at);
    address.set(s.value, at).set(s.next, at);
    at = alignUp(at + s.value.bytes);
  }
  const stateRegion = { offset: stateAt, bytes: at - stateAt };

  // schedule: one step per node that runs code; buffer ids are alias-root value ids
  const inArena = (v: Value) => !rootOf(v).isConstant && !fixed.has(rootOf(v));
  const steps: ScheduleStep[] = [];
  const scratchIds = new Map<Node, number>();
  const bytesById = new Map<number, number>();
  const track = (v: Value) => {
    const r = rootOf(v);
    bytesById.set(r.id, Math.max(bytesById.get(r.id) ?? 0, r.bytes, 1));
    return r.id;
  };
  let nextScratchId = -1;
  const names = new Map<number, string>();
  for (const v of g.inputs) if (inArena(v)) names.set(rootOf(v).id, `input ${v.name}`);
  for (const n of g.nodes) {
    if (getOp(n.op).view) continue;
    const reads = [...n.inputs, ...n.guard.map((c) => c.cond)];
    const step: ScheduleStep = { reads: unique(reads.filter(inArena).map(track)), writes: unique(n.outputs.filter(inArena).map(track)) };
    for (const id of step.writes) if (!names.has(id)) names.set(id, `${n.name} (${n.op})`);
    const scratch = getOp(n.op).scratchBytes?.(n) ?? 0;
    if (scratch > 0) {
      const id = nextScratchId--;
      scratchIds.set(n, id);
      names.set(id, `${n.name} (${n.op}) scratch`);
      step.scratch = [{ id, bytes: scratch }];
    }
    steps.push(step);
  }
  const pinnedStart = unique(g.inputs.map(track));
  const pinnedEnd = unique(g.outputs.filter(inArena).map(track));
  // a model that computes nothing still needs its input and output slots: one empty step holds them
  if (steps.length === 0) steps.push({ reads: [], writes: [] });
  const buffers = liveness(steps, (id) => bytesById.get(id) ?? fail(`internal: no size for buffer ${id}`), pinnedStart, pinnedEnd);
  const plan = planArena(buffers, { alignment: ALIGN });
  checkNoOverlap(buffers, plan.offsets, ALIGN);

  const arenaOffset = at;
  const placed = (id: number) => {
    const off = plan.offsets.get(id);
    if (off === undefined) fail(`internal: buffer ${id} was not planned`);
    return arenaOffset + off;
  };
  const values = [...g.inputs, ...g.nodes.flatMap((n) => n.outputs)];
  for (const v of values) if (inArena(v)) address.set(v, placed(rootOf(v).id));
  for (const v of values) if (!inArena(v)) address.set(v, address.get(rootOf(v))!);
  const scratch = new Map([...scratchIds].map(([n, id]) => [n, placed(id)]));
  const end = alignUp(arenaOffset + plan.arenaBytes);
  if (end > ADDRESS_SPACE) fail(`the model needs ${end} bytes of memory (weights ${weights.bytes}, arena ${plan.arenaBytes}), more than the 4 GiB a wasm32 blob can address`);
  return { address, scratch, weights, state: stateRegion, arena: { offset: arenaOffset, plan, buffers, names }, end };
}

/**
 * Values that share bytes: a view (reshape) shares its input's buffer, and an in-place op may write
 * its output over an input of the same shape whose whole alias group dies at that op, a graph input included.
 */
function aliasRoots(g: Graph, fixed: Map<Value, number>): Map<Value, Value> {
  const root = new Map<Value, Value>();
  const rootOf = (v: Value) => root.get(v) ?? v;
  // root → the values that share its bytes, so moving a group is linear in its size
  const members = new Map<Value, Value[]>();
  const join = (v: Value, r: Value) => {
    root.set(v, r);
    const group = members.get(r);
    if (group) group.push(v);
    else members.set(r, [v]);
  };
  for (const n of g.nodes) if (getOp(n.op).view) join(n.outputs[0], rootOf(n.inputs[0]));

  // last step reading any member of each view group
  const lastRead = new Map<Value, number>();
  g.nodes.forEach((n, i) => [...n.inputs, ...n.guard.map((c) => c.cond)].forEach((v) => lastRead.set(rootOf(v), i)));
  const outputs = new Set(g.outputs.map(rootOf));

  g.nodes.forEach((n, i) => {
    const def = getOp(n.op);
    if (!(def.inPlace || def.elementwise) || def.view) return;
    const out = n.outputs[0];
    if (fixed.has(out)) return;
    const candidates = def.elementwise || n.op === "fused" ? n.inputs : n.inputs.slice(0, 1);
    const victim = candidates.find((v) => {
      const r = rootOf(v);
      // a graph input may be overwritten too: hosts write the inputs before every run
      return (r.kind === "node" || r.kind === "input") && !fixed.has(r) && lastRead.get(r) === i && !outputs.has(r) && v.shape.join() === out.shape.join() && v.dtype === out.dtype;
    });
    if (!victim) return;
    const r = rootOf(victim);
    // the output's own view group now lives in the victim's bytes
    for (const v of members.get(out) ?? []) join(v, r);
    members.delete(out);
    join(out, r);
    lastRead.set(r, Math.max(i, lastRead.get(out) ?? i));
    if (outputs.has(out)) outputs.add(r);
  });
  return root;
}

const unique = (ids: number[]): number[] => [...new Set(ids)];
