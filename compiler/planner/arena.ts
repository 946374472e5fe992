/**
 * Static arena planning: give every buffer an offset in one arena so that buffers alive at the same step
 * never share a byte, and the arena is as small as we can make it.
 *
 * What "good" means. Minimising the arena is NP-complete (dynamic storage allocation), so we promise:
 *  1. never worse than TensorFlow Lite Micro's GreedyMemoryPlanner (greedyBySize below) on any input,
 *     because its plan is one of our candidates and we only ever keep something at least as small;
 *  2. usually at, or within a few percent of, liveLowerBound, the most bytes live at any single step.
 *     No placement beats that bound, but some inputs cannot reach it either, so it is a target, not a promise;
 *  3. deterministic: a fixed seed and a work budget counted in operations (not wall time), so the same
 *     model gets the same plan on every machine;
 *  4. fast: the work budget keeps a 500-buffer graph under ~50 ms once the JIT is warm (typically ~10 ms;
 *     the budget is only spent in full when the lower bound is out of reach).
 *
 * Why searching over orders is enough: placing buffers one by one at the lowest free offset ("first fit")
 * can reproduce any plan. Take the optimal plan, sort its buffers by offset and first-fit them in that order:
 * by induction each lands at or below its optimal offset, because every earlier conflicting buffer ends at or
 * below the optimal start. So some order is optimal, and we search orders, cheapest first:
 *  - classic priority orders (size = TFLM, area, peak load, lifetime, conflicts, first use) × {first fit,
 *    best fit}, and each priority also drives a bottom-up "skyline" placement that guesses the offset order;
 *  - if the best is above the lower bound: randomised restarts of the bottom-up placement;
 *  - if still above: local search that moves one buffer earlier in the best order and re-places the rest.
 * On branchy random DAGs this lands on the lower bound in most cases and averages ~0.1% above it, where TFLM
 * averages 7-9% (bench/planner.ts). On chain-like models (ResNet, MobileNet, U-Net, transformer…) the peak is
 * one step's working set and TFLM already reaches the bound; so do we, without running the search.
 */
import { fail } from "../errors.js";
import type { BufferRequest } from "./liveness.js";

export interface ArenaPlan {
  /** buffer id -> byte offset in the arena, a multiple of the alignment */
  offsets: Map<number, number>;
  arenaBytes: number;
  /** liveLowerBound: no plan can be smaller */
  lowerBound: number;
  /** arena size TFLite Micro's greedy planner would need; arenaBytes <= greedyBaseline always */
  greedyBaseline: number;
  /** which ordering/placement rule produced the plan, for reports */
  strategy: string;
}

const DEFAULT_ALIGNMENT = 16;
const SEED = 0x7ee9_67ad;
/** Random restarts of the bottom-up heuristic: at most this many… */
const MAX_RESTARTS = 200;
/** …each multiplying every priority by its own random factor in [1 - NOISE, 1 + NOISE]. */
const PRIORITY_NOISE = 0.5;
/** Local-search moves: at most this many. */
const MAX_MOVES = 3000;
/**
 * Each phase (restarts, local search) stops after this much work, counted in conflict visits (~40 ns each),
 * so planning time is bounded, and the plan does not depend on the machine's speed.
 */
const WORK_BUDGET = 500_000;

type PlacementRule = "first-fit" | "best-fit";

/** The planning problem in flat arrays: index i is buffers[i]. */
interface Problem {
  count: number;
  /** aligned sizes: keeping every size a multiple of the alignment keeps every offset one too */
  size: Float64Array;
  first: Float64Array;
  last: Float64Array;
  /** buffers whose lifetimes overlap i's: conflicts[conflictStart[i] .. conflictStart[i + 1]) */
  conflictStart: Int32Array;
  conflicts: Int32Array;
}

const alignUp = (bytes: number, alignment: number): number => Math.ceil(bytes / alignment) * alignment;

function checkedAlignment(alignment: number | undefined): number {
  const value = alignment ?? DEFAULT_ALIGNMENT;
  if (!Number.isSafeInteger(value) || value <= 0) fail(`planner: alignment must be a positive integer, got ${value}`);
  return value;
}

function describe(buffer: BufferRequest): string {
  return `buffer ${buffer.id} (${buffer.bytes} bytes, steps ${buffer.firstUse}..${buffer.lastUse})`;
}

function validateRequests(buffers: BufferRequest[]): void {
  const seen = new Set<number>();
  for (const buffer of buffers) {
    if (seen.has(buffer.id)) fail(`planner: buffer ${buffer.id} is requested twice`);
    seen.add(buffer.id);
    if (!Number.isSafeInteger(buffer.bytes) || buffer.bytes <= 0) fail(`planner: ${describe(buffer)} has no size`);
    if (!Number.isSafeInteger(buffer.firstUse) || !Number.isSafeInteger(buffer.lastUse) || buffer.firstUse > buffer.lastUse) {
      fail(`planner: ${describe(buffer)} has an invalid lifetime`);
    }
  }
}

/** Indices of buffers sorted by first use, the order every sweep over time wants. */
function byFirstUse(buffers: BufferRequest[]): number[] {
  return buffers.map((_, i) => i).sort((a, b) => buffers[a].firstUse - buffers[b].firstUse || a - b);
}

function buildProblem(buffers: BufferRequest[], alignment: number): Problem {
  const count = buffers.length;
  const size = new Float64Array(count);
  const first = new Float64Array(count);
  const last = new Float64Array(count);
  buffers.forEach((buffer, i) => {
    size[i] = alignUp(buffer.bytes, alignment);
    first[i] = buffer.firstUse;
    last[i] = buffer.lastUse;
  });

  // Sweep in order of first use, keeping the buffers still alive: each of them conflicts with the newcomer.
  const pairs: number[] = [];
  const degree = new Int32Array(count);
  let alive: number[] = [];
  for (const i of byFirstUse(buffers)) {
    alive = alive.filter((j) => last[j] >= first[i]);
    for (const j of alive) {
      pairs.push(i, j);
      degree[i]++;
      degree[j]++;
    }
    alive.push(i);
  }
  const conflictStart = new Int32Array(count + 1);
  for (let i = 0; i < count; i++) conflictStart[i + 1] = conflictStart[i] + degree[i];
  const conflicts = new Int32Array(pairs.length);
  const fill = conflictStart.slice(0, count);
  for (let p = 0; p < pairs.length; p += 2) {
    conflicts[fill[pairs[p]]++] = pairs[p + 1];
    conflicts[fill[pairs[p + 1]]++] = pairs[p];
  }
  return { count, size, first, last, conflictStart, conflicts };
}

/** Conflict visits so far: the deterministic measure of planning work. */
class WorkMeter {
  done = 0;
}

/**
 * Places buffers one at a time. A buffer only has to avoid the already placed buffers it conflicts with;
 * their byte ranges are gathered, sorted (starts and ends separately), and swept as a coverage count
 * to find the free gaps.
 */
class Placer {
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;

  constructor(
    private readonly problem: Problem,
    private readonly work: WorkMeter,
  ) {
    this.starts = new Float64Array(problem.count);
    this.ends = new Float64Array(problem.count);
  }

  /**
   * Where `buffer` goes under `rule`, given that exactly the buffers b with rank[b] < placedRank are placed.
   * (rank is a position in the placement order, so one array serves both the order and "is it placed".)
   */
  fit(buffer: number, rank: Int32Array, placedRank: number, offsets: Float64Array, rule: PlacementRule): number {
    const { size, conflictStart, conflicts } = this.problem;
    const { starts, ends } = this;
    let placedCount = 0;
    for (let c = conflictStart[buffer]; c < conflictStart[buffer + 1]; c++) {
      const other = conflicts[c];
      if (rank[other] < placedRank) {
        starts[placedCount] = offsets[other];
        ends[placedCount] = offsets[other] + size[other];
        placedCount++;
      }
    }
    // Visiting the conflicts, sorting the placed ones, and a fixed cost per call worth about eight visits.
    this.work.done += conflictStart[buffer + 1] - conflictStart[buffer] + placedCount + 8;
    if (placedCount === 0) return 0;
    sortPrefix(starts, placedCount);
    sortPrefix(ends, placedCount);

    // Coverage sweep: free gaps are where no placed byte range is open.
    const wanted = size[buffer];
    let chosen = -1;
    let chosenLength = Infinity;
    let open = 0;
    let freeFrom = 0;
    let s = 0;
    let e = 0;
    while (s < placedCount) {
      if (ends[e] <= starts[s]) {
        if (--open === 0) freeFrom = ends[e];
        e++;
        continue;
      }
      if (open === 0) {
        const length = starts[s] - freeFrom;
        if (length >= wanted && length < chosenLength) {
          chosen = freeFrom;
          chosenLength = length;
          if (rule === "first-fit") break;
        }
      }
      open++;
      s++;
    }
    // No gap fits: go on top of everything, which ends at the largest end.
    return chosen >= 0 ? chosen : ends[placedCount - 1];
  }

  /**
   * (Re)places order[from..] given that order[..from) already sit at their offsets; position[b] is b's
   * index in order. Gives up as soon as a buffer would end above `ceiling` (the local search rejects such
   * a plan anyway, and most of its tries are rejected) and returns that buffer's index, else order.length.
   */
  placeFrom(order: Int32Array, position: Int32Array, offsets: Float64Array, from: number, rule: PlacementRule, ceiling = Infinity): number {
    const { size } = this.problem;
    for (let k = from; k < order.length; k++) {
      const buffer = order[k];
      offsets[buffer] = this.fit(buffer, position, k, offsets, rule);
      if (offsets[buffer] + size[buffer] > ceiling) return k;
    }
    return order.length;
  }
}

/** Sorts values[0..count) ascending: insertion sort for the few conflicts typical of a schedule, native beyond. */
function sortPrefix(values: Float64Array, count: number): void {
  if (count > 24) {
    values.subarray(0, count).sort();
    return;
  }
  for (let i = 1; i < count; i++) {
    const value = values[i];
    let j = i - 1;
    while (j >= 0 && values[j] > value) {
      values[j + 1] = values[j];
      j--;
    }
    values[j + 1] = value;
  }
}

function peakOf(problem: Problem, offsets: Float64Array): number {
  let peak = 0;
  for (let i = 0; i < problem.count; i++) peak = Math.max(peak, offsets[i] + problem.size[i]);
  return peak;
}

function positionsOf(order: Int32Array): Int32Array {
  const position = new Int32Array(order.length);
  order.forEach((buffer, k) => (position[buffer] = k));
  return position;
}

interface Placement {
  order: Int32Array;
  offsets: Float64Array;
  peak: number;
}

function place(problem: Problem, placer: Placer, order: Int32Array, rule: PlacementRule): Placement {
  const offsets = new Float64Array(problem.count);
  placer.placeFrom(order, positionsOf(order), offsets, 0, rule);
  return { order, offsets, peak: peakOf(problem, offsets) };
}

function toOffsetMap(buffers: BufferRequest[], offsets: Float64Array): Map<number, number> {
  return new Map(buffers.map((buffer, i) => [buffer.id, offsets[i]]));
}

/**
 * TFLite Micro's GreedyMemoryPlanner: sort by size descending (ties by first use), place each at the lowest
 * offset where it fits among already placed buffers whose lifetimes overlap. Sizes are rounded up to the
 * alignment first, as TFLM's allocator does before handing them to its planner.
 */
export function greedyBySize(buffers: BufferRequest[], alignment?: number): { offsets: Map<number, number>; arenaBytes: number } {
  validateRequests(buffers);
  const problem = buildProblem(buffers, checkedAlignment(alignment));
  const greedy = place(problem, new Placer(problem, new WorkMeter()), orderBy(problem, problem.size), "first-fit");
  return { offsets: toOffsetMap(buffers, greedy.offsets), arenaBytes: greedy.peak };
}

/**
 * Bytes live at each distinct first-use step (load only rises where some buffer starts, so the maximum over
 * any lifetime is reached at one of these). Returned with those steps, ascending.
 */
function loadAtStarts(problem: Problem): { steps: number[]; load: Float64Array } {
  const { count, size, first, last } = problem;
  const steps = [...new Set(first)].sort((a, b) => a - b);
  const load = new Float64Array(steps.length);
  for (let i = 0; i < count; i++) {
    for (let k = lowerIndex(steps, first[i]); k < steps.length && steps[k] <= last[i]; k++) load[k] += size[i];
  }
  return { steps, load };
}

function maxOf(values: Float64Array): number {
  let max = 0;
  for (const value of values) max = Math.max(max, value);
  return max;
}

function lowerIndex(sorted: number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle] < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Largest total (aligned) bytes live at any one step: no placement can do better. */
export function liveLowerBound(buffers: BufferRequest[], alignment?: number): number {
  validateRequests(buffers);
  return maxOf(loadAtStarts(buildProblem(buffers, checkedAlignment(alignment))).load);
}

/**
 * Bottom-up ("skyline") placement: repeatedly place, among all unplaced buffers, one whose lowest free offset
 * is lowest, preferring higher `priority` on ties. It builds the arena in layers from offset 0 up, like the
 * offset-sorted order that reproduces an optimal plan (see the top comment), guessing that order greedily.
 * Placements come out in ascending offset, so no gap below the current floor can still fit a buffer that is
 * not placed yet (it would have been placed there first): a buffer's lowest offset is simply the highest
 * end among its placed neighbours, and placing a buffer only has to raise its neighbours to its end.
 * For the same reason, first-fitting the returned order reproduces the returned offsets.
 */
function bottomUp(problem: Problem, priority: Float64Array, work: WorkMeter): Placement {
  const { count, size, conflictStart, conflicts } = problem;
  const placed = new Uint8Array(count);
  // The lowest offset each unplaced buffer could take now; its offset once placed.
  const offsets = new Float64Array(count);
  const heap = new BufferHeap(offsets, priority);
  const order = new Int32Array(count);
  let peak = 0;
  for (let k = 0; k < count; k++) {
    const buffer = heap.pop();
    placed[buffer] = 1;
    order[k] = buffer;
    const top = offsets[buffer] + size[buffer];
    peak = Math.max(peak, top);
    for (let c = conflictStart[buffer]; c < conflictStart[buffer + 1]; c++) {
      const other = conflicts[c];
      if (!placed[other] && offsets[other] < top) {
        offsets[other] = top;
        heap.raised(other);
      }
    }
  }
  // Each conflict is visited once; a heap pop or sift costs about log2(count) steps (clz32 keeps it exact).
  work.done += conflicts.length + count * (32 - Math.clz32(count));
  return { order, offsets, peak };
}

/**
 * Indexed binary min-heap of the unplaced buffers keyed by (lowest offset, higher priority, lower index).
 * Keys live in the caller's arrays; a buffer whose offset was raised is sifted down in place, so the heap
 * never holds more than one entry per buffer.
 */
class BufferHeap {
  private readonly heap: Int32Array;
  /** where each buffer sits in `heap` */
  private readonly slot: Int32Array;
  private length: number;

  /** Holds every buffer, heapified bottom-up in linear time. */
  constructor(
    private readonly offsets: Float64Array,
    private readonly priority: Float64Array,
  ) {
    const count = offsets.length;
    this.length = count;
    this.heap = Int32Array.from({ length: count }, (_, i) => i);
    this.slot = this.heap.slice();
    for (let at = (count >> 1) - 1; at >= 0; at--) this.siftDown(at, this.heap[at]);
  }

  private compare(a: number, b: number): number {
    return this.offsets[a] - this.offsets[b] || this.priority[b] - this.priority[a] || a - b;
  }

  pop(): number {
    const first = this.heap[0];
    const last = this.heap[--this.length];
    if (this.length > 0) this.siftDown(0, last);
    return first;
  }

  /** Call after raising the buffer's offset (its key only ever grows). */
  raised(buffer: number): void {
    this.siftDown(this.slot[buffer], buffer);
  }

  /** Puts `buffer` at `hole` or below, moving smaller children up. */
  private siftDown(hole: number, buffer: number): void {
    const { heap, slot, length } = this;
    for (;;) {
      let child = 2 * hole + 1;
      if (child >= length) break;
      if (child + 1 < length && this.compare(heap[child + 1], heap[child]) < 0) child++;
      if (this.compare(buffer, heap[child]) <= 0) break;
      heap[hole] = heap[child];
      slot[heap[hole]] = hole;
      hole = child;
    }
    heap[hole] = buffer;
    slot[buffer] = hole;
  }
}

/** Per-buffer priorities for the orderings below; each is a classic heuristic that wins on some graph shapes. */
function priorities(problem: Problem, steps: number[], load: Float64Array): Record<string, Float64Array> {
  const { count, size, first, last, conflictStart } = problem;
  const lifetime = (i: number) => last[i] - first[i] + 1;
  // The heaviest step a buffer lives through: buffers at the peak are the ones that decide the arena.
  const peakLoad = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    for (let k = lowerIndex(steps, first[i]); k < steps.length && steps[k] <= last[i]; k++) {
      peakLoad[i] = Math.max(peakLoad[i], load[k]);
    }
  }
  // For integer keys, a fraction below 1/2 breaks ties towards larger buffers without outweighing the key.
  const largest = maxOf(size);
  const sizeFraction = (bytes: number) => bytes / (2 * largest);
  return {
    size,
    area: Float64Array.from(size, (bytes, i) => bytes * lifetime(i)),
    "peak-load": peakLoad,
    lifetime: Float64Array.from(size, (bytes, i) => lifetime(i) + sizeFraction(bytes)),
    conflicts: Float64Array.from(size, (bytes, i) => conflictStart[i + 1] - conflictStart[i] + sizeFraction(bytes)),
    "first-use": Float64Array.from(size, (bytes, i) => -first[i] + sizeFraction(bytes)),
  };
}

/** Buffers by descending priority, ties by first use then index. */
function orderBy(problem: Problem, priority: Float64Array): Int32Array {
  const { first } = problem;
  return Int32Array.from({ length: problem.count }, (_, i) => i).sort(
    (a, b) => priority[b] - priority[a] || first[a] - first[b] || a - b,
  );
}

/** mulberry32: tiny, fast, and seeded, so the search is reproducible (also used by the planner's tests and bench). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random restarts of the bottom-up heuristic, each with every priority scaled by its own random factor,
 * cycling through the base priorities: cheap (no sorting) and good at escaping the one bad tie-break that
 * can strand a buffer above the rest. Returns the best plan found if it beats `best`.
 */
function randomRestarts(problem: Problem, bases: Float64Array[], best: Placement, lowerBound: number, work: WorkMeter, random: () => number): { plan: Placement; restart: number } | undefined {
  let found: { plan: Placement; restart: number } | undefined;
  let peak = best.peak;
  const workLimit = work.done + WORK_BUDGET;
  for (let restart = 1; restart <= MAX_RESTARTS && peak > lowerBound && work.done < workLimit; restart++) {
    const base = bases[restart % bases.length];
    const noisy = base.map((value) => value * (1 + PRIORITY_NOISE * (2 * random() - 1)));
    const plan = bottomUp(problem, noisy, work);
    if (plan.peak < peak) {
      found = { plan, restart };
      peak = plan.peak;
    }
  }
  return found;
}

/**
 * Local search over the order of the best plan so far. A move takes one buffer and moves it to an earlier
 * position, preferring buffers that touch the current peak (placing them sooner lets them sink lower);
 * only the suffix from the moved position on is re-placed. A move is kept when it does not make
 * (peak, overhang) worse, where overhang is the bytes sticking out above the lower bound: it gives the
 * search a gradient, and accepting ties lets it drift across plateaus. Improves `best` in place and
 * returns the number of moves kept.
 */
function localSearch(problem: Problem, placer: Placer, best: Placement, rule: PlacementRule, lowerBound: number, work: WorkMeter, random: () => number): number {
  const { count, size } = problem;
  // The trial plan; outside a move it equals `best`.
  const order = best.order.slice();
  const offsets = best.offsets.slice();
  const position = positionsOf(order);
  // Peak and overhang of best.order[0..k), so a move only sums over the suffix it re-placed.
  const prefixPeak = new Float64Array(count + 1);
  const prefixOverhang = new Float64Array(count + 1);
  const peakBuffers: number[] = [];
  const summarize = (from: number) => {
    for (let k = from; k < count; k++) {
      const end = offsets[order[k]] + size[order[k]];
      prefixPeak[k + 1] = Math.max(prefixPeak[k], end);
      prefixOverhang[k + 1] = prefixOverhang[k] + Math.max(0, end - lowerBound);
    }
    peakBuffers.length = 0;
    for (let k = 1; k < count; k++) if (offsets[order[k]] + size[order[k]] === prefixPeak[count]) peakBuffers.push(order[k]);
  };
  summarize(0);
  let kept = 0;
  const workLimit = work.done + WORK_BUDGET;

  for (let move = 0; move < MAX_MOVES && prefixPeak[count] > lowerBound && work.done < workLimit; move++) {
    const peak = prefixPeak[count];
    const buffer = peakBuffers.length > 0 && random() < 0.6
      ? peakBuffers[Math.floor(random() * peakBuffers.length)]
      : order[1 + Math.floor(random() * (count - 1))];
    const from = position[buffer];
    // Mostly short hops (cheap: only the suffix is re-placed), sometimes a jump anywhere earlier.
    const to = random() < 0.5 ? Math.max(0, from - 1 - Math.floor(random() * 8)) : Math.floor(random() * from);

    // Shift order[to..from) right by one and drop the buffer in at `to`.
    order.copyWithin(to + 1, to, from);
    order[to] = buffer;
    for (let k = to; k <= from; k++) position[order[k]] = k;
    const stoppedAt = placer.placeFrom(order, position, offsets, to, rule, peak);

    if (stoppedAt === count) {
      let newPeak = prefixPeak[to];
      let newOverhang = prefixOverhang[to];
      for (let k = to; k < count; k++) {
        const end = offsets[order[k]] + size[order[k]];
        newPeak = Math.max(newPeak, end);
        newOverhang += Math.max(0, end - lowerBound);
      }
      if (newPeak < peak || newOverhang <= prefixOverhang[count]) {
        best.order.set(order.subarray(to, from + 1), to);
        for (let k = to; k < count; k++) best.offsets[order[k]] = offsets[order[k]];
        summarize(to);
        kept++;
        continue;
      }
    }
    // Undo: restore the order, then the offsets of every buffer the try re-placed.
    order.set(best.order.subarray(to, from + 1), to);
    for (let k = to; k <= from; k++) position[order[k]] = k;
    for (let k = to, last = Math.min(count - 1, Math.max(from, stoppedAt)); k <= last; k++) offsets[order[k]] = best.offsets[order[k]];
  }
  best.peak = prefixPeak[count];
  return kept;
}

/** Offsets (multiples of alignment, default 16) in one arena. arenaBytes <= greedyBaseline always. */
export function planArena(buffers: BufferRequest[], opts?: { alignment?: number }): ArenaPlan {
  validateRequests(buffers);
  const alignment = checkedAlignment(opts?.alignment);
  const problem = buildProblem(buffers, alignment);
  const { steps, load } = loadAtStarts(problem);
  const lowerBound = maxOf(load);
  if (problem.count === 0) return { offsets: new Map(), arenaBytes: 0, lowerBound, greedyBaseline: 0, strategy: "empty" };
  const work = new WorkMeter();
  const placer = new Placer(problem, work);

  // TFLite Micro's plan comes first, so any tie keeps it, and every later plan must be strictly smaller.
  let best = place(problem, placer, orderBy(problem, problem.size), "first-fit");
  let bestRule: PlacementRule = "first-fit";
  let strategy = "size/first-fit (TFLM greedy)";
  const greedyBaseline = best.peak;
  const consider = (candidate: Placement, rule: PlacementRule, name: string) => {
    if (candidate.peak < best.peak) {
      best = candidate;
      bestRule = rule;
      strategy = name;
    }
  };

  // Every phase stops as soon as a plan reaches the lower bound: nothing can beat it.
  const bases = Object.entries(priorities(problem, steps, load));
  for (const [name, priority] of bases) {
    if (best.peak === lowerBound) break;
    const byPriority = orderBy(problem, priority);
    const skyline = bottomUp(problem, priority, work);
    if (name !== "size") consider(place(problem, placer, byPriority, "first-fit"), "first-fit", `${name}/first-fit`);
    consider(place(problem, placer, byPriority, "best-fit"), "best-fit", `${name}/best-fit`);
    consider(skyline, "first-fit", `bottom-up ${name}`);
    consider(place(problem, placer, skyline.order, "best-fit"), "best-fit", `bottom-up ${name}/best-fit`);
  }

  const random = seededRandom(SEED ^ problem.count);
  if (best.peak > lowerBound) {
    const restarted = randomRestarts(problem, bases.map(([, priority]) => priority), best, lowerBound, work, random);
    if (restarted) consider(restarted.plan, "first-fit", `bottom-up random restart ${restarted.restart}`);
  }
  if (best.peak > lowerBound) {
    const before = best.peak;
    const kept = localSearch(problem, placer, best, bestRule, lowerBound, work, random);
    if (best.peak < before) strategy += ` + local search (${kept} moves)`;
  }

  const offsets = toOffsetMap(buffers, best.offsets);
  // A wrong plan silently corrupts inference on the device; this check is cheap next to planning.
  checkNoOverlap(buffers, offsets, alignment);
  return { offsets, arenaBytes: best.peak, lowerBound, greedyBaseline, strategy };
}

/**
 * Throws TeenygradError naming both buffers (ids, byte ranges, step ranges) if two simultaneously live
 * buffers overlap in memory, or an offset is misaligned/missing. Byte ranges use the real (unaligned) sizes:
 * with aligned offsets that is the same test as with aligned sizes, and it is the one that matters.
 */
export function checkNoOverlap(buffers: BufferRequest[], offsets: Map<number, number>, alignment?: number): void {
  validateRequests(buffers);
  const align = checkedAlignment(alignment);
  for (const buffer of buffers) {
    const offset = offsets.get(buffer.id);
    if (offset === undefined) fail(`planner: ${describe(buffer)} has no offset`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % align !== 0) {
      fail(`planner: ${describe(buffer)} has offset ${offset}, not a non-negative multiple of ${align}`);
    }
  }
  const range = (buffer: BufferRequest) => {
    const start = offsets.get(buffer.id)!;
    return `bytes [${start}, ${start + buffer.bytes})`;
  };
  let alive: BufferRequest[] = [];
  for (const i of byFirstUse(buffers)) {
    const buffer = buffers[i];
    const start = offsets.get(buffer.id)!;
    alive = alive.filter((other) => other.lastUse >= buffer.firstUse);
    for (const other of alive) {
      const otherStart = offsets.get(other.id)!;
      if (start < otherStart + other.bytes && otherStart < start + buffer.bytes) {
        fail(
          `planner: buffers ${other.id} and ${buffer.id} overlap in memory while both are live: ` +
            `${describe(other)} at ${range(other)}, ${describe(buffer)} at ${range(buffer)}`,
        );
      }
    }
    alive.push(buffer);
  }
}
