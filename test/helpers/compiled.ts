import assert from "node:assert/strict";
import { compile, loadBlob, nn, Tensor, Generator } from "../../compiler/index.js";
import type { CompileResult } from "../../compiler/compile.js";
import { traceModule } from "../../compiler/tensor/nn.js";
import { SECTION, splitSections } from "../../compiler/codegen/build.js";
import { slotViews } from "../../compiler/host/loader.js";
import type { TypedArray } from "../../compiler/ir/dtype.js";

/** Fresh random inputs every run; the seed is printed so a failure can be replayed (TEST_SEED=…). */
export const SEED = Number(process.env.TEST_SEED ?? Date.now() % 1e9);
export const rng = new Generator(SEED);
export const randn = (...shape: number[]) => Tensor.randn(shape, { generator: rng });
export const rand = (shape: number[], low: number, high: number) => Tensor.rand(shape, { low, high, generator: rng });

/** A module whose forward is a plain function: lets a test trace any Tensor expression. */
export class FnModule extends nn.Module {
  constructor(private readonly fn: (...xs: Tensor[]) => Tensor | Record<string, Tensor>) {
    super();
  }
  forward(...xs: Tensor[]) {
    return this.fn(...xs);
  }
}

/**
 * A wamr-flash blob (its weights in WAMR's shared heap, on the compact int8 kernels) run in Node as WAMR maps it:
 * the memory widened to the whole 4 GiB address space (reserved, not committed) and the weights copied to its top,
 * where the code reads them.
 */
async function runWithSharedHeap(res: CompileResult, inputs: Record<string, TypedArray>): Promise<Record<string, TypedArray>> {
  const fullMemory = Uint8Array.from([SECTION.memory, 8, 1, 1, 0x80, 0x80, 0x04, 0x80, 0x80, 0x04]); // 65536 pages, fixed
  const sections = splitSections(res.wasm).map((s) => (s.id === SECTION.memory ? fullMemory : s.raw));
  const { instance } = await WebAssembly.instantiate(Buffer.concat([res.wasm.subarray(0, 8), ...sections]));
  const buffer = (instance.exports.memory as WebAssembly.Memory).buffer;
  new Uint8Array(buffer).set(res.weights!, 2 ** 32 - res.weights!.byteLength);
  const views = slotViews(buffer, res.manifest.inputs, "input", res.report.model);
  for (const [name, data] of Object.entries(inputs)) views[name].set(data as never);
  assert.equal((instance.exports.run as () => number)(), 0, "run() status");
  return Object.fromEntries(Object.entries(slotViews(buffer, res.manifest.outputs, "output", res.report.model)).map(([k, v]) => [k, v.slice()]));
}

/** max |a - b| / max |ref|: relative to the output's scale, so values near zero do not dominate */
export function relError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(got.length, ref.length, "length mismatch");
  let diff = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(Number(got[i]) - Number(ref[i])));
    scale = Math.max(scale, Math.abs(Number(ref[i])));
  }
  return scale === 0 ? diff : diff / scale;
}

/** every op some checkCompiled call traced or compiled: the ops test asserts it covers the registry */
export const coveredOps = new Set<string>();

export const TARGET_NAMES = ["wasm-simd", "wasm-scalar"];

/**
 * Compiles fn for each target, runs it in Node on the given inputs and checks every output against
 * eager mode (the host reference) to `tol` relative error; integer and bool outputs must match exactly.
 */
export async function checkCompiled(
  fn: (...xs: Tensor[]) => Tensor | Record<string, Tensor>,
  inputs: Record<string, Tensor>,
  opts: { tol?: number; targets?: string[] } = {},
): Promise<CompileResult[]> {
  const specs = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype }]));
  for (const n of traceModule(new FnModule(fn), specs).nodes) coveredOps.add(n.op);
  const eagerOut = fn(...Object.values(inputs));
  const expected: Record<string, Tensor> = eagerOut instanceof Tensor ? { output: eagerOut } : eagerOut;
  const results: CompileResult[] = [];
  for (const target of opts.targets ?? TARGET_NAMES) {
    const res = await compile(new FnModule(fn), specs, { target });
    for (const n of res.graph.nodes) coveredOps.add(n.op);
    const values = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.data]));
    const got = res.manifest.weights.sharedHeap ? await runWithSharedHeap(res, values) : (await loadBlob(res.wasm)).run(values);
    for (const [name, ref] of Object.entries(expected)) {
      const out = got[name];
      assert.ok(out, `${target}: output ${name} missing`);
      const msg = `${target} output '${name}' (seed ${SEED})`;
      if (ref.dtype === "float32") {
        const err = relError(out as Float32Array, ref.data as Float32Array);
        assert.ok(err <= (opts.tol ?? 1e-5), `${msg}: relative error ${err}`);
      } else assert.deepEqual(Array.from(out as Int32Array), Array.from(ref.data as Int32Array), msg);
    }
    results.push(res);
  }
  return results;
}
