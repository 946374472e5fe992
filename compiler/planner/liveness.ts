import { fail } from "../errors.js";

/** One step of the schedule (one kernel call) in execution order. ids are buffer ids. */
export interface ScheduleStep {
  reads: number[];
  writes: number[];
  scratch?: { id: number; bytes: number }[];
}

/** A buffer the arena must hold from step firstUse to step lastUse, both inclusive. */
export interface BufferRequest {
  id: number;
  bytes: number;
  firstUse: number;
  lastUse: number;
}

function checkedBytes(id: number, bytes: number, what: string): number {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    fail(`planner: ${what} ${id} has no size (got ${String(bytes)} bytes; expected a positive integer)`);
  }
  return bytes;
}

/**
 * Liveness: a buffer lives from the step that first writes it to the last step that reads it.
 * pinnedStart ids (graph inputs) live from step 0; pinnedEnd ids (graph outputs) live to the last step.
 * A buffer written but never read still occupies its step. Scratch lives only in its step.
 * Throws TeenygradError if a buffer is read before written (and is not pinnedStart), or has no size.
 * Requests come out in order of first appearance (pinned inputs first), so plans are reproducible.
 */
export function liveness(
  steps: ScheduleStep[],
  bytesOf: (id: number) => number,
  pinnedStart: number[],
  pinnedEnd: number[],
): BufferRequest[] {
  const lastStep = Math.max(0, steps.length - 1);
  const requests: BufferRequest[] = [];
  const byId = new Map<number, BufferRequest>();
  const scratchIds = new Set<number>();

  const open = (id: number, step: number): BufferRequest => {
    const request = { id, bytes: checkedBytes(id, bytesOf(id), "buffer"), firstUse: step, lastUse: step };
    byId.set(id, request);
    requests.push(request);
    return request;
  };

  for (const id of pinnedStart) if (!byId.has(id)) open(id, 0);

  steps.forEach((step, index) => {
    // Reads come first: a kernel that reads and writes the same id needs it written by an earlier step.
    for (const id of step.reads) {
      const request = byId.get(id);
      if (!request) fail(`planner: step ${index} reads buffer ${id} before any step writes it`);
      if (scratchIds.has(id)) fail(`planner: step ${index} reads buffer ${id}, which is another step's scratch`);
      request.lastUse = index;
    }
    for (const id of step.writes) {
      if (scratchIds.has(id)) fail(`planner: step ${index} writes buffer ${id}, which is another step's scratch`);
      const request = byId.get(id) ?? open(id, index);
      request.lastUse = Math.max(request.lastUse, index);
    }
    for (const { id, bytes } of step.scratch ?? []) {
      if (byId.has(id)) fail(`planner: scratch id ${id} at step ${index} is already used by another buffer or scratch`);
      const request = { id, bytes: checkedBytes(id, bytes, "scratch"), firstUse: index, lastUse: index };
      byId.set(id, request);
      scratchIds.add(id);
      requests.push(request);
    }
  });

  for (const id of pinnedEnd) {
    const request = byId.get(id);
    if (!request) fail(`planner: graph output ${id} is never written by any step`);
    if (scratchIds.has(id)) fail(`planner: graph output ${id} is a step's scratch`);
    request.lastUse = lastStep;
  }
  return requests;
}
