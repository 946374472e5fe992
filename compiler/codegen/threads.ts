import { fail } from "../errors.js";
import type { Node } from "../ir/graph.js";
import { getOp } from "../ops/index.js";
import type { EntryProgram, EntryStatement } from "./emit.js";
import { SYNC_BYTES, SYNC_WORDS } from "./manifest.js";
import { assembleModule, Body, encodeStatements, libraryKernels, type LibraryKernels } from "./link.js";
import { concat, encodeName, EXTERNAL, readUleb, section, SECTION, uleb, type LibraryIndex, type RawSection } from "./wasm.js";

/**
 * The threaded schedule (target wasm-simd-threads): one model's big kernels split over N workers that
 * share one imported memory. Every worker calls `run_thread(tid, n, run)`, which walks the same statements:
 * a convolution, GEMM, depthwise or pooling call is cut into chunks of output channels (rows, planes, pixel
 * blocks), reached by offsetting the call's constant pointers, so the kernels are the single-threaded ones, and
 * the workers claim the chunks; every other statement runs on worker 0 alone. A step starts when the one before
 * it is done. N is a run-time argument (1..maxThreads); the chunks do not depend on it.
 */

/** Where the threaded blob keeps what its workers share besides the arena (manifest `threads`). */
export interface ThreadLayout {
  maxThreads: number;
  /** 32 bytes of i32 words: the host's start count, workers done, status, stop, workers asleep (SYNC_WORDS) */
  sync: number;
  /** workers 1..maxThreads-1 each get a scratch slot of `slotBytes` here (worker 0 uses the node's own) */
  scratch: { base: number; slotBytes: number };
  /** each worker's spin level (its own 64-byte line, after the sync words), the blob's own */
  spinLevels: number;
  /** per step, two i32 words: chunks claimed and chunks done, counted up over the runs (the blob's own) */
  steps: number;
  /** the first byte past them */
  end: number;
}

/**
 * The shared buffers above the arena (`end`): a scratch slot per extra worker, as large as the largest
 * scratch any node asks for, then the sync words. `maxThreads` workers at most may run the blob.
 */
export function threadLayout(scratchOf: Map<Node, number>, end: number, maxThreads: number, stepCount: number): ThreadLayout {
  if (!Number.isInteger(maxThreads) || maxThreads < 1 || maxThreads > 64) fail(`threads must be an integer in [1, 64], got ${maxThreads}`);
  const slotBytes = align16(Math.max(0, ...[...scratchOf.keys()].map((n) => getOp(n.op).scratchBytes?.(n) ?? 0)));
  const base = align16(end);
  const sync = base + (maxThreads - 1) * slotBytes;
  const spinLevels = Math.ceil((sync + SYNC_BYTES) / CACHE_LINE) * CACHE_LINE;
  const steps = spinLevels + maxThreads * CACHE_LINE;
  return { maxThreads, scratch: { base, slotBytes }, sync, spinLevels, steps, end: steps + 8 * stepCount };
}

const CACHE_LINE = 64;

const align16 = (n: number) => Math.ceil(n / 16) * 16;

/** the exported entry each worker calls */
export const THREAD_ENTRY = "run_thread";

/**
 * Split points are multiples of the kernels' register tiles: 4 output channels (GEMM rows, direct-conv channel
 * blocks) or 8 GEMM columns, so every sub-range computes exactly the bytes its part of the whole call computes
 * (the ragged remainder stays last, in the last worker's range).
 */
const ROWS = 4, COLUMNS = 8;

/** How a call divides: `units` along one output axis, each argument's change for a sub-range [u0, u1). */
interface Split {
  units: number;
  /** multiply-adds (or window taps) of the whole call: a small call is not worth a step of its own */
  work: number;
  align: number;
  offsets: { arg: number; bytesPerUnit: number }[];
  counts: { arg: number; perUnit: number }[];
  scratch?: number;
  /** the kernel a sub-range calls instead, with the call's arguments and then [u0·perUnit, u1·perUnit) */
  range?: { kernel: string; perUnit: number };
}

/** The kernels that split, by their parameter lists (runtime-as/); any other call runs on worker 0. */
export function kernelSplit(fn: string, a: number[]): Split | null {
  // optional pointers (bias, the fused residual laid out like the output) are 0 when absent and stay 0
  const pointers = (args: number[], bytesPerUnit: number) => args.filter((arg) => a[arg] !== 0).map((arg) => ({ arg, bytesPerUnit }));
  if (fn === "conv2d" || fn === "conv2dIm2col") {
    const [, , , , N, C, H, W, OC, OH, OW, KH, KW] = a;
    const groups = a[19];
    if (N !== 1) return null;
    const scratch = fn === "conv2dIm2col" ? 23 : undefined;
    const residual = fn === "conv2dIm2col" ? 25 : 23;
    const work = OC * OH * OW * (C / groups) * KH * KW;
    if (groups === 1) {
      // by output pixels (8 at a time, the GEMM tile's width): a chunk of channels would repeat the plane's whole im2col copy
      if (fn === "conv2dIm2col" && OH * OW >= 2 * COLUMNS) {
        return { work, units: OH * OW, align: COLUMNS, offsets: [], counts: [], scratch, range: { kernel: "conv2dIm2colPixels", perUnit: 1 } };
      }
      return { work, units: OC, align: ROWS, offsets: [{ arg: 1, bytesPerUnit: C * KH * KW * 4 }, ...pointers([2], 4), ...pointers([3, residual], OH * OW * 4)], counts: [{ arg: 8, perUnit: 1 }], scratch };
    }
    // the direct kernel's masked tiles read within the whole input tensor (inputStart/inputEnd in runtime-as/conv.ts):
    // a group range would narrow that and send border columns down another path, with other roundings
    if (fn === "conv2d") return null;
    const Cg = C / groups, OCg = OC / groups;
    return {
      work, units: groups, align: 1, scratch,
      offsets: [{ arg: 0, bytesPerUnit: Cg * H * W * 4 }, { arg: 1, bytesPerUnit: OCg * Cg * KH * KW * 4 }, ...pointers([2], OCg * 4), ...pointers([3, residual], OCg * OH * OW * 4)],
      counts: [{ arg: 5, perUnit: Cg }, { arg: 8, perUnit: OCg }, { arg: 19, perUnit: 1 }],
    };
  }
  if (fn === "conv2dWinograd") {
    // (x, u, bias, y, N, C, H, W, K, OH, OW, PH, PW, act, p0, p1, scratch, block, res): u is [K][16][C], so a range
    // of output channels is a contiguous slice of it; each worker transforms the whole input again (~15-20%)
    const [, , , , N, C, , , K, OH, OW] = a;
    if (N !== 1) return null;
    return { work: K * OH * OW * C * 9, units: K, align: ROWS, offsets: [{ arg: 1, bytesPerUnit: 16 * C * 4 }, ...pointers([2], 4), ...pointers([3, 18], OH * OW * 4)], counts: [{ arg: 8, perUnit: 1 }], scratch: 16 };
  }
  if (fn === "depthwise3x3") {
    const [, , , , N, , H, W, OH, OW] = a;
    if (N !== 1) return null;
    return { work: a[5] * OH * OW * 9, units: a[5], align: 1, offsets: [{ arg: 0, bytesPerUnit: H * W * 4 }, { arg: 1, bytesPerUnit: 36 }, ...pointers([2], 4), ...pointers([3, 18], OH * OW * 4)], counts: [{ arg: 5, perUnit: 1 }], scratch: 17 };
  }
  if (fn === "gemm") {
    const [, , , , M, N, K, lda, , ldc, biasMode] = a;
    const work = M * N * K;
    // rows when there are enough of them, else columns (a batch-1 Linear is one row)
    if (M >= 2 * ROWS) return { work, units: M, align: ROWS, offsets: [{ arg: 0, bytesPerUnit: lda * 4 }, ...pointers([2, 14], ldc * 4), ...(biasMode === 2 ? [{ arg: 3, bytesPerUnit: 4 }] : [])], counts: [{ arg: 4, perUnit: 1 }] };
    if (N >= 2 * COLUMNS) return { work, units: N, align: COLUMNS, offsets: [{ arg: 1, bytesPerUnit: 4 }, ...pointers([2, 14], 4), ...(biasMode === 1 ? [{ arg: 3, bytesPerUnit: 4 }] : [])], counts: [{ arg: 5, perUnit: 1 }] };
    return null;
  }
  if (fn === "maxpool2d" || fn === "avgpool2d") {
    const [, , , H, W, OH, OW, KH, KW] = a;
    return { work: a[2] * OH * OW * KH * KW, units: a[2], align: 1, offsets: [{ arg: 0, bytesPerUnit: H * W * 4 }, { arg: 1, bytesPerUnit: OH * OW * 4 }], counts: [{ arg: 2, perUnit: 1 }] };
  }
  return null;
}

/**
 * Calls with fewer multiply-adds than this run on worker 0 with their neighbours: a few microseconds of work,
 * about what waiting for a step costs when a worker has to be woken.
 */
export const MIN_PARALLEL_WORK = 32768;

type Step = { parallel: Extract<EntryStatement, { kind: "call" }>; split: Split } | { serial: EntryStatement[] };

/** The statements in order, consecutive worker-0 statements together in one step. */
export function threadSteps(program: EntryProgram): Step[] {
  const steps: Step[] = [];
  for (const s of program.run) {
    const split = s.kind === "call" && s.status === undefined ? kernelSplit(s.fn, s.args) : null;
    if (split && split.units >= 2 && split.work >= MIN_PARALLEL_WORK) steps.push({ parallel: s as Extract<EntryStatement, { kind: "call" }>, split });
    else {
      const last = steps[steps.length - 1];
      if (last && "serial" in last) last.serial.push(s);
      else steps.push({ serial: [s] });
    }
  }
  return steps;
}

// 0xfe atomics: opcode, then a memarg (natural alignment 2, a static offset)
const atomic = (b: Body, op: number, offset: number) => b.bytes(0xfe, op, 2, ...uleb(offset));
const ATOMIC = { notify: 0x00, wait32: 0x01, load: 0x10, store: 0x17, add: 0x1e };
/**
 * Rounds a worker spins on a step's done count before it sleeps in memory.atomic.wait32, at spin level 0 (80 µs
 * here). Longer than a futex wake-up: a worker that sleeps wakes late, its partner then waits past its own
 * budget and sleeps at the next step, and so on (20,000 rounds slept at 20 of VWW's 28 steps a run).
 * But a spinner may hold the core the worker it waits for needs (a loaded machine, more threads than cores):
 * each sleep raises the worker's level by 2 (the budget halves per level, down to SPINS >> MAX_SPIN_LEVEL),
 * each wait that ends while spinning lowers it by 1.
 */
const SPINS = 200_000;
const MAX_SPIN_LEVEL = 6;

/**
 * Builds the threaded module from the kernel library: run_thread(tid, n, run) -> i32 (worker 0 returns the
 * first non-zero status of its statements), one function per run of worker-0 statements, and the waits. A
 * parallel step is cut into n chunks (aligned sub-ranges: more would cost the GEMMs their reuse of the input),
 * which the workers claim, so a worker that is late (asleep at the run's start, descheduled) leaves its chunk to
 * the others; step k starts when every chunk of step k − 1 is done. Per step, a claim and a done count only grow:
 * in run number `run` each worker claims until a claim fails, so the step's claims so far are run · 2n.
 */
export function linkThreadedEntry(lib: LibraryIndex, program: EntryProgram, opts: { simd: boolean; threads: ThreadLayout }): Uint8Array {
  if (program.wasi) fail("target wasm-simd-threads builds reactor blobs only (its workers share an imported memory): drop --wasi");
  const kernels = libraryKernels(lib);
  const { sync, scratch } = opts.threads;
  const word = (w: number) => sync + 4 * w;
  const steps = threadSteps(program);
  if (opts.threads.end < opts.threads.steps + 8 * steps.length) fail(`internal: the thread layout has room for fewer than ${steps.length} steps`);
  const claims = (k: number) => opts.threads.steps + 8 * k, dones = (k: number) => claims(k) + 4;
  const serials = steps.filter((s): s is { serial: EntryStatement[] } => "serial" in s);
  // own functions: 0 run_thread, 1 awaitCount, 2 countDone, then the serial blocks
  const AWAIT = 1, DONE = 2, SERIAL = 3;

  // awaitCount(address, target, tid): until the i32 at address reaches target (wrapping), spinning first
  const awaitCount = new Body(3);
  {
    const b = awaitCount, value = b.local("i32"), spins = b.local("i32"), level = b.local("i32"), budget = b.local("i32"), slept = b.local("i32");
    const levelAddress = () => b.paramGet(2).constant("i32", 6).bytes(0x74); // tid · 64, the memarg adds spinLevels
    levelAddress().bytes(0x28, 2, ...uleb(opts.threads.spinLevels)).localSet(level); // i32.load
    b.constant("i32", SPINS).localGet(level).bytes(0x76).localSet(budget); // SPINS >> level
    b.bytes(0x02, 0x40, 0x03, 0x40); // block loop
    b.paramGet(0);
    atomic(b, ATOMIC.load, 0);
    b.localSet(value);
    b.localGet(value).paramGet(1).bytes(0x6b).constant("i32", 0).bytes(0x4e, 0x0d, 1); // br_if (value - target >= 0) out
    b.localGet(spins).constant("i32", 1).bytes(0x6a).localSet(spins);
    b.localGet(spins).localGet(budget).bytes(0x4a, 0x04, 0x40); // if spins > budget: sleep until notified
    b.constant("i32", 1).localSet(slept);
    b.constant("i32", 0).constant("i32", 1);
    atomic(b, ATOMIC.add, word(SYNC_WORDS.sleepers));
    b.bytes(0x1a);
    b.paramGet(0).localGet(value).bytes(0x42, 0x7f); // i64.const -1: no timeout
    atomic(b, ATOMIC.wait32, 0);
    b.bytes(0x1a);
    b.constant("i32", 0).constant("i32", -1);
    atomic(b, ATOMIC.add, word(SYNC_WORDS.sleepers));
    b.bytes(0x1a, 0x0b);
    b.bytes(0x0c, 0); // br loop
    b.bytes(0x0b, 0x0b); // end loop, end block
    // level = slept ? min(level + 2, MAX_SPIN_LEVEL) : level - (level != 0)
    levelAddress();
    b.localGet(level).constant("i32", 2).bytes(0x6a).constant("i32", MAX_SPIN_LEVEL);
    b.localGet(level).constant("i32", 2).bytes(0x6a).constant("i32", MAX_SPIN_LEVEL).bytes(0x48, 0x1b);
    b.localGet(level).localGet(level).constant("i32", 0).bytes(0x47, 0x6b);
    b.localGet(slept).bytes(0x1b);
    b.bytes(0x36, 2, ...uleb(opts.threads.spinLevels)); // i32.store
  }

  // countDone(address): one more chunk done; wake the sleepers, if any. A sleeper counts itself before wait32
  // re-reads the count, all sequentially consistent: either this load sees it, or its wait sees the new count
  const countDone = new Body(1);
  {
    const b = countDone;
    b.paramGet(0).constant("i32", 1);
    atomic(b, ATOMIC.add, 0);
    b.bytes(0x1a);
    b.constant("i32", 0);
    atomic(b, ATOMIC.load, word(SYNC_WORDS.sleepers));
    b.bytes(0x04, 0x40);
    b.paramGet(0).constant("i32", -1);
    atomic(b, ATOMIC.notify, 0);
    b.bytes(0x1a, 0x0b);
  }

  const run = new Body(3);
  const tid = 0, n = 1, runIndex = 2;
  const status = run.local("i32"), start = run.local("i32"), end = run.local("i32"), per = run.local("i32"), chunk = run.local("i32");
  // awaitCount(dones(k), (run + 1) · chunks of step k (1 for worker 0's statements, else n), tid)
  const awaitStep = (k: number) => {
    run.constant("i32", dones(k)).paramGet(runIndex).constant("i32", 1).bytes(0x6a);
    if ("parallel" in steps[k]) run.paramGet(n).bytes(0x6c);
    run.paramGet(tid).callOwn(AWAIT);
  };
  let serialIndex = 0;
  steps.forEach((step, k) => {
    if (k > 0) awaitStep(k - 1);
    if ("serial" in step) {
      // if (tid == 0) { s = serial(); if (status == 0) status = s; countDone }
      run.paramGet(tid).bytes(0x45, 0x04, 0x40);
      run.callOwn(SERIAL + serialIndex++).localSet(end);
      run.localGet(end).localGet(status).localGet(status).bytes(0x45, 0x1b).localSet(status); // select(end, status, status == 0)
      run.constant("i32", dones(k)).callOwn(DONE);
      run.bytes(0x0b);
      return;
    }
    // per = ceil(aligned chunks / n) · align: the units of one chunk
    const aligned = Math.ceil(step.split.units / step.split.align);
    run.constant("i32", aligned).paramGet(n).bytes(0x6a).constant("i32", 1).bytes(0x6b).paramGet(n).bytes(0x6e);
    run.constant("i32", step.split.align).bytes(0x6c).localSet(per);
    run.bytes(0x02, 0x40, 0x03, 0x40); // block loop
    // chunk = claims(k)++ - run · 2n; out when chunk >= n (unsigned)
    run.constant("i32", 0).constant("i32", 1);
    atomic(run, ATOMIC.add, claims(k));
    run.paramGet(runIndex).paramGet(n).constant("i32", 1).bytes(0x74, 0x6c, 0x6b).localSet(chunk);
    run.localGet(chunk).paramGet(n).bytes(0x4f, 0x0d, 1);
    encodeParallelCall(run, step.parallel, step.split, kernels, { tid, chunk, start, end, per, scratch });
    run.constant("i32", dones(k)).callOwn(DONE);
    run.bytes(0x0c, 0, 0x0b, 0x0b); // br loop, end loop, end block
  });
  // worker 0 returns when the last step is done: the host reads the outputs after it
  if (steps.length) {
    run.paramGet(tid).bytes(0x45, 0x04, 0x40);
    awaitStep(steps.length - 1);
    run.bytes(0x0b);
  }
  run.localGet(status);

  const serialBodies = serials.map((s) => {
    const b = new Body();
    encodeStatements(s.serial, b, kernels, opts);
    b.constant("i32", 0);
    return { params: [], results: ["i32" as const], body: b };
  });
  return assembleModule(lib, [
    { params: ["i32", "i32", "i32"], results: ["i32"], body: run, export: THREAD_ENTRY },
    { params: ["i32", "i32", "i32"], results: [], body: awaitCount },
    { params: ["i32"], results: [], body: countDone },
    ...serialBodies,
  ]);
}

/** if (start < units) kernel(arguments of chunk `chunk`: the units [start, end) = [chunk · per, min(start + per, units))) */
function encodeParallelCall(
  b: Body,
  call: Extract<EntryStatement, { kind: "call" }>,
  split: Split,
  kernels: LibraryKernels,
  at: { tid: number; chunk: number; start: number; end: number; per: number; scratch: ThreadLayout["scratch"] },
): void {
  const name = split.range?.kernel ?? call.fn;
  const fn = kernels.kernel(name);
  const type = kernels.typeOf(fn);
  const passed = call.args.length + (split.range ? 2 : 0);
  if (type.params.length !== passed) fail(`internal: ${name} takes ${type.params.length} arguments, the entry passes ${passed}`);
  b.localGet(at.chunk).localGet(at.per).bytes(0x6c).localSet(at.start);
  b.localGet(at.start).constant("i32", split.units).bytes(0x48, 0x04, 0x40); // if (start < units)
  b.localGet(at.start).localGet(at.per).bytes(0x6a).localSet(at.end);
  b.localGet(at.end).constant("i32", split.units).localGet(at.end).constant("i32", split.units).bytes(0x48, 0x1b).localSet(at.end);
  call.args.forEach((value, i) => {
    const offset = split.offsets.find((o) => o.arg === i);
    const count = split.counts.find((c) => c.arg === i);
    if ((offset || count || split.scratch === i) && type.params[i] !== "i32") fail(`internal: ${call.fn} argument ${i} is not an i32`);
    if (offset && value !== 0) {
      b.constant("i32", value).localGet(at.start).constant("i32", offset.bytesPerUnit).bytes(0x6c, 0x6a);
    } else if (count) {
      b.localGet(at.end).localGet(at.start).bytes(0x6b);
      if (count.perUnit !== 1) b.constant("i32", count.perUnit).bytes(0x6c);
    } else if (split.scratch === i) {
      // worker 0 keeps the node's scratch, worker t ≥ 1 uses slot t - 1
      b.constant("i32", value);
      b.constant("i32", at.scratch.base - at.scratch.slotBytes).paramGet(at.tid).constant("i32", at.scratch.slotBytes).bytes(0x6c, 0x6a);
      b.paramGet(at.tid).bytes(0x45, 0x1b);
    } else b.constant(type.params[i], value);
  });
  if (split.range) {
    b.localGet(at.start).constant("i32", split.range.perUnit).bytes(0x6c);
    b.localGet(at.end).constant("i32", split.range.perUnit).bytes(0x6c);
  }
  b.callLibrary(fn);
  if (type.results.length) b.bytes(0x1a);
  b.bytes(0x0b);
}

/**
 * Turns the module's own memory (initial == maximum `pages`) into an import `env.memory` of a shared memory
 * of that size, which the host creates once and gives every worker.
 */
export function importSharedMemory(sections: RawSection[], pages: number): Uint8Array[] {
  const memoryImport = concat([encodeName("env"), encodeName("memory"), [EXTERNAL.memory, 0x03], uleb(pages), uleb(pages)]);
  const imports = sections.find((s) => s.id === SECTION.import);
  const importSection = imports
    ? (() => {
        const count = readUleb(imports.payload, 0);
        return section(SECTION.import, concat([uleb(count.value + 1), imports.payload.subarray(count.next), memoryImport]));
      })()
    : section(SECTION.import, concat([uleb(1), memoryImport]));
  const out: Uint8Array[] = [];
  for (const s of sections) {
    if (s.id === SECTION.import) out.push(importSection);
    else if (s.id === SECTION.memory) continue;
    else {
      // the import section goes right after the type section
      out.push(s.raw);
      if (s.id === SECTION.type && !imports) out.push(importSection);
    }
  }
  return out;
}
