import { fail } from "../errors.js";
import { DTYPES, isBigIntArray, numel, type DType, type TypedArray } from "./dtype.js";
import type { HostTensor } from "./graph.js";

export const shapeStr = (s: readonly number[]): string => `[${s.join(", ")}]`;

export function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

/** numpy broadcasting of any number of shapes; the error names every shape. */
export function broadcastShapes(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s[s.length - rank + i] ?? 1;
      if (k === 1) continue;
      if (d !== 1 && d !== k) fail(`shapes ${shapes.map(shapeStr).join(" and ")} cannot be broadcast together`);
      d = k;
    }
    out.push(d);
  }
  return out;
}

/** Strides (in elements) that read `shape` as if it were broadcast to `target` (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const st = stridesOf(shape);
  const off = target.length - shape.length;
  return target.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : st[i - off]));
}

export function normalizeAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) fail(`axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

/** The largest tensor computed on the host (eager mode, constant folding): a corrupt model asking for more gets an error, not an out-of-memory crash. */
export const MAX_HOST_ELEMENTS = 2 ** 26;

export function hostArray(shape: readonly number[], dtype: DType): TypedArray {
  const n = numel(shape);
  if (!(n <= MAX_HOST_ELEMENTS)) fail(`a ${shapeStr(shape)} ${dtype} tensor (${n} elements) exceeds the ${MAX_HOST_ELEMENTS} elements teenygrad computes on the host`);
  return new DTYPES[dtype].array(n);
}

export function newHost(shape: number[], dtype: DType): HostTensor {
  return { shape, dtype, data: hostArray(shape, dtype) };
}

/** Reads element i as a JS number whatever the dtype. */
export const readNum = (data: TypedArray, i: number): number => Number(data[i]);

export function writeNum(data: TypedArray, i: number, x: number): void {
  if (isBigIntArray(data)) data[i] = BigInt(Math.trunc(x));
  else data[i] = x;
}

/** Maps `fn` over the broadcast of the inputs; the kernel of every element-wise reference. */
export function broadcastMap(inputs: HostTensor[], dtype: DType, fn: (xs: number[]) => number): HostTensor {
  const shape = broadcastShapes(...inputs.map((t) => t.shape));
  const out = newHost(shape, dtype);
  const n = numel(shape);
  const strides = inputs.map((t) => broadcastStrides(t.shape, shape));
  const idx = new Array<number>(shape.length).fill(0);
  const offs = new Array<number>(inputs.length).fill(0);
  const xs = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < inputs.length; k++) xs[k] = readNum(inputs[k].data, offs[k]);
    writeNum(out.data, i, fn(xs));
    // odometer increment of the multi-index, updating each input's offset incrementally
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < inputs.length; k++) offs[k] += strides[k][d];
      if (idx[d] < shape[d]) break;
      for (let k = 0; k < inputs.length; k++) offs[k] -= strides[k][d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Gathers `src` through per-dimension source strides into a new contiguous tensor (permute, slice, expand). */
export function gatherStrided(src: HostTensor, shape: number[], strides: number[], start: number): HostTensor {
  const out = newHost(shape, src.dtype);
  const n = numel(shape);
  const idx = new Array<number>(shape.length).fill(0);
  let off = start;
  for (let i = 0; i < n; i++) {
    (out.data as Float32Array)[i] = (src.data as Float32Array)[off];
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]++;
      off += strides[d];
      if (idx[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}
