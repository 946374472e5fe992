import assert from "node:assert/strict";
import { compile, loadBlob, nn, Tensor, Generator } from "../../compiler/index.js";
import type { CompileResult } from "../../compiler/compile.js";
import { traceModule } from "../../compiler/tensor/nn.js";

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
    const model = await loadBlob(res.wasm);
    const got = model.run(Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.data])));
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
