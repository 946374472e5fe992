import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { compile, importOnnx, loadBlob } from "../compiler/index.js";
import { randn, relError, rng, SEED } from "./helpers/compiled.js";
import { onnxModel } from "./helpers/onnx-model.js";
import { findOnnxPython, NO_ONNX_PYTHON } from "./helpers/onnx-reference.js";

/** ONNX operators composed in the importer, compiled once, against plain JS references and hand-computed values. */

function matmulRef(a: Float32Array, b: Float32Array, B: number, M: number, K: number, N: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < B; n++) for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += a[n * M * K + i * K + k] * b[n * K * N + k * N + j];
    out.push(s);
  }
  return out;
}

/** causal single-head attention, scale 1/sqrt(H) */
function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, Sq: number, Skv: number, H: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < Sq; i++) {
    const scores = Array.from({ length: Skv }, (_, j) => (j <= i ? [0, 1].reduce((s, h) => s + q[i * H + h] * k[j * H + h], 0) / Math.sqrt(H) : -Infinity));
    const m = Math.max(...scores), e = scores.map((s) => Math.exp(s - m)), z = e.reduce((a, b) => a + b, 0);
    for (let h = 0; h < H; h++) out.push(e.reduce((s, w, j) => s + (w / z) * v[j * H + h], 0));
  }
  return out;
}

test("Einsum, IsNaN, IsInf, BitShift, CumProd, integer MatMul and Attention compile and match references", { timeout: 300_000 }, async () => {
  const bytes = onnxModel({
    inputs: [
      { name: "a", shape: [2, 3, 4] }, { name: "b", shape: [2, 4, 5] }, { name: "sq", shape: [3, 3] }, { name: "f", shape: [4] },
      { name: "u", shape: [3], dtype: "uint8" }, { name: "s", shape: [3], dtype: "uint8" }, { name: "c", shape: [4] },
      { name: "i", shape: [2, 3], dtype: "int32" }, { name: "j", shape: [3, 2], dtype: "int32" },
      { name: "q", shape: [1, 1, 2, 2] }, { name: "k", shape: [1, 1, 3, 2] }, { name: "v", shape: [1, 1, 3, 2] },
    ],
    outputs: ["mm", "diag", "nan", "inf", "posinf", "shl", "shr", "cp", "imm", "att"].map((name) => ({ name, shape: [1] })),
    initializers: [{ name: "axis", dims: [], ints: [0] }],
    nodes: [
      { op: "Einsum", inputs: ["a", "b"], outputs: ["mm"], attrs: { equation: "bij,bjk->bik" } },
      { op: "Einsum", inputs: ["sq"], outputs: ["diag"], attrs: { equation: "ii->i" } },
      { op: "IsNaN", inputs: ["f"], outputs: ["nan"] },
      { op: "IsInf", inputs: ["f"], outputs: ["inf"] },
      { op: "IsInf", inputs: ["f"], outputs: ["posinf"], attrs: { detect_negative: 0 } },
      { op: "BitShift", inputs: ["u", "s"], outputs: ["shl"], attrs: { direction: "LEFT" } },
      { op: "BitShift", inputs: ["u", "s"], outputs: ["shr"], attrs: { direction: "RIGHT" } },
      { op: "CumProd", inputs: ["c", "axis"], outputs: ["cp"] },
      { op: "MatMul", inputs: ["i", "j"], outputs: ["imm"] },
      { op: "Attention", inputs: ["q", "k", "v"], outputs: ["att"], attrs: { is_causal: 1 } },
    ],
    opset: 23,
  });
  const model = await loadBlob((await compile(importOnnx(bytes).graph)).wasm);
  const [a, b, sq, q, k, v] = [[2, 3, 4], [2, 4, 5], [3, 3], [1, 1, 2, 2], [1, 1, 3, 2], [1, 1, 3, 2]].map((s) => randn(...s).data as Float32Array);
  const out = model.run({
    a, b, sq, q, k, v, f: new Float32Array([1, NaN, Infinity, -Infinity]), u: new Uint8Array([16, 255, 1]), s: new Uint8Array([1, 1, 3]),
    c: new Float32Array([1, 2, 3, 4]), i: new Int32Array([1, -2, 3, 4, 5, -6]), j: new Int32Array([7, 8, -9, 10, 11, 12]),
  });
  const list = (name: string) => Array.from(out[name] as ArrayLike<number>, Number);
  assert.ok(relError(out.mm as Float32Array, matmulRef(a, b, 2, 3, 4, 5)) < 1e-5, `seed ${SEED}`);
  assert.deepEqual(list("diag"), [sq[0], sq[4], sq[8]]);
  assert.deepEqual(list("nan"), [0, 1, 0, 0]);
  assert.deepEqual(list("inf"), [0, 0, 1, 1]);
  assert.deepEqual(list("posinf"), [0, 0, 1, 0]);
  assert.deepEqual(list("shl"), [32, 254, 8]);
  assert.deepEqual(list("shr"), [8, 127, 0]);
  assert.deepEqual(list("cp"), [1, 2, 6, 24]);
  assert.deepEqual(list("imm"), [1 * 7 - 2 * -9 + 3 * 11, 1 * 8 - 2 * 10 + 3 * 12, 4 * 7 + 5 * -9 - 6 * 11, 4 * 8 + 5 * 10 - 6 * 12]);
  assert.ok(relError(out.att as Float32Array, attentionRef(q, k, v, 2, 3, 2)) < 1e-5, `seed ${SEED}`);
});

test("Unique and the window functions fold to constants at import", () => {
  const bytes = onnxModel({
    inputs: [],
    outputs: ["y", "first", "inverse", "counts", "hann"].map((name) => ({ name, shape: [1] })),
    initializers: [{ name: "x", dims: [6], floats: [2, 1, 1, 3, 4, 3] }, { name: "size", dims: [], ints: [4] }],
    nodes: [
      { op: "Unique", inputs: ["x"], outputs: ["y", "first", "inverse", "counts"] },
      { op: "HannWindow", inputs: ["size"], outputs: ["hann"] },
    ],
  });
  const values = Object.fromEntries(importOnnx(bytes).graph.outputs.map((o) => [o.name, Array.from(o.data as ArrayLike<number | bigint>, Number)]));
  assert.deepEqual(values.y, [1, 2, 3, 4]);
  assert.deepEqual(values.first, [1, 0, 3, 4]);
  assert.deepEqual(values.inverse, [1, 0, 0, 2, 3, 2]);
  assert.deepEqual(values.counts, [2, 1, 2, 1]);
  assert.ok(relError(new Float32Array(values.hann), [0, 0.5, 1, 0.5]) < 1e-6);
});

/** numpy's float16 conversions and arithmetic on the given bytes (`script` reads them from stdin, writes its result's bytes). */
function numpy(script: string, input: Uint8Array): Uint8Array {
  const python = findOnnxPython();
  if (!python) throw new Error(NO_ONNX_PYTHON);
  const r = spawnSync(python, ["-c", `import sys, numpy as np\nraw = sys.stdin.buffer.read()\n${script}\nsys.stdout.buffer.write(out.tobytes())`], { input, maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`numpy failed: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}
const bytesOf = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

test("float16: Cast both ways and per-op rounding, compiled, are bit-exact with numpy", { timeout: 300_000 }, async () => {
  // every half bit pattern; float32s at the rounding edges (ties to even, subnormal ties, 65504/65520, NaN, -0) and random ones over the whole range
  const every = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const edges = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -25, 2 ** -26, 2 ** -14 - 2 ** -25, 65504, 65519.99, 65520, -65520, 1e-10, -0, NaN, Infinity, -Infinity, 0.1, -2.5e-5];
  const random = Array.from({ length: 4096 }, () => (rng.next() - 0.5) * 2 ** Math.floor(rng.next() * 60 - 30));
  const x = new Float32Array([...edges, ...random]);
  const N = x.length, H = 4096;
  const a = every.slice(0x3000, 0x3000 + H), b = Uint16Array.from({ length: H }, () => (rng.next() * 0x7bff) | ((rng.next() < 0.5 ? 0x8000 : 0)));
  const bytes = onnxModel({
    inputs: [{ name: "x", shape: [N] }, { name: "every", shape: [65536], dtype: "float16" }, { name: "a", shape: [H], dtype: "float16" }, { name: "b", shape: [H], dtype: "float16" }],
    outputs: [{ name: "half", shape: [N], dtype: "float16" }, { name: "wide", shape: [65536] }, { name: "prod", shape: [H], dtype: "float16" }],
    nodes: [
      { op: "Cast", inputs: ["x"], outputs: ["half"], attrs: { to: 10 } },
      { op: "Cast", inputs: ["every"], outputs: ["wide"], attrs: { to: 1 } },
      { op: "Add", inputs: ["a", "b"], outputs: ["sum"] },
      { op: "Mul", inputs: ["sum", "a"], outputs: ["prod"] },
    ],
  });
  const half = new Uint16Array(numpy("out = np.frombuffer(raw, np.float32).astype(np.float16)", bytesOf(x)).buffer);
  const wide = new Uint32Array(numpy("out = np.frombuffer(raw, np.float16).astype(np.float32)", bytesOf(every)).buffer);
  const prod = new Uint16Array(numpy(`h = np.frombuffer(raw, np.float16); a, b = h[:${H}], h[${H}:]\nout = (a + b) * a`, bytesOf(new Uint16Array([...a, ...b]))).buffer);
  const differ = (got: ArrayLike<number>, want: ArrayLike<number>, nan: (w: number) => boolean) =>
    Array.from(want, (w, i) => (got[i] === w || (nan(w) && nan(got[i])) ? -1 : i)).filter((i) => i >= 0);
  const halfNaN = (h: number) => (h & 0x7fff) > 0x7c00, floatNaN = (f: number) => (f & 0x7fffffff) > 0x7f800000;
  // the loops built directly against the kernel library, and the same entry compiled with asc
  for (const codegen of ["kernel-library", "asc"] as const) {
    const model = await loadBlob((await compile(importOnnx(bytes).graph, {}, { codegen })).wasm);
    const out = model.run({ x, every, a, b });
    assert.ok(out.half instanceof Uint16Array && out.prod instanceof Uint16Array);
    assert.deepEqual(differ(out.half as Uint16Array, half, halfNaN), [], `Cast float→float16 differs from numpy (seed ${SEED})`);
    const got = out.wide as Float32Array;
    assert.deepEqual(differ(new Uint32Array(got.buffer, got.byteOffset, got.length), wide, floatNaN), [], "Cast float16→float differs from numpy");
    assert.deepEqual(differ(out.prod as Uint16Array, prod, halfNaN), [], `(a + b) * a in float16 differs from numpy (seed ${SEED})`);
    // hand-computed: the tie 1 + 2^-11 rounds to even (1.0), 1 + 3·2^-11 up; 2^-25 (half the smallest subnormal) to 0, 3·2^-25 to 2·2^-24; 65520 to infinity
    assert.deepEqual([...(out.half as Uint16Array).slice(0, 5)], [0x3c00, 0x3c02, 0x0000, 0x0002, 0x0000]);
    assert.equal((out.half as Uint16Array)[8], 0x7c00);
  }
});

test("bfloat16, float8, float8e8m0, float4e2m1, 4- and 2-bit integers: Cast there and back and packed initializers match onnx.reference", { timeout: 300_000 }, async () => {
  const python = findOnnxPython();
  if (!python) throw new Error(NO_ONNX_PYTHON);
  // the formats' edges (largest values and the ties beyond them, subnormals, infinities, NaN, -0) and random values over a wide range
  const edges = [448, 464, 465, 480, 240, 248, 57344, 61440, 61439, 1e6, -1e6, Infinity, -Infinity, NaN, -0, 1e-7, -1e-7, 2 ** -9, 2 ** -10, 1.5 * 2 ** -10, 3 * 2 ** -11, 0.25, 0.75, 5, -5.5, 6.5, 3.4e38, 1e-40];
  const random = Array.from({ length: 2000 }, () => (rng.next() < 0.5 ? -1 : 1) * rng.next() * 2 ** Math.floor(rng.next() * 40 - 20));
  const x = new Float32Array([...edges, ...random]);
  const n = Float32Array.from({ length: 64 }, (_, i) => (i - 32) / 2);
  // float → 4-/2-bit integer truncates; beyond the range ml_dtypes gives 0 ("invalid value"), the ONNX backend data wraps (as here): compared in range only
  const intRange: Record<string, [number, number]> = { out_int4: [-8, 7], out_uint4: [0, 15], out_int2: [-2, 1], out_uint2: [0, 3] };
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-narrow-"));
  try {
    writeFileSync(join(dir, "x.bin"), bytesOf(x));
    writeFileSync(join(dir, "n.bin"), bytesOf(n));
    const r = spawnSync(python, [join(import.meta.dirname, "helpers", "onnx_narrow_types.py"), ...["x.bin", "n.bin", "model.onnx", "expected.bin"].map((f) => join(dir, f))], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`onnx_narrow_types.py failed: ${r.stderr}`);
    const names = r.stdout.trim().split(",");
    const expected = new Float32Array(readFileSync(join(dir, "expected.bin")).buffer.slice(0));
    const model = await loadBlob((await compile(importOnnx(readFileSync(join(dir, "model.onnx"))).graph)).wasm);
    const out = model.run({ x, n });
    let at = 0;
    for (const name of names) {
      const got = out[name] as Float32Array;
      const want = expected.subarray(at, at + got.length);
      at += got.length;
      const range = intRange[name], given = range ? n : x;
      const compared = (i: number) => !range || (Math.trunc(n[i]) >= range[0] && Math.trunc(n[i]) <= range[1]);
      const bad = Array.from(want, (w, i) => (!compared(i) || Object.is(w, got[i]) || (Number.isNaN(w) && Number.isNaN(got[i])) ? -1 : i)).filter((i) => i >= 0);
      assert.deepEqual(bad.slice(0, 5).map((i) => [given[i], got[i], want[i]]), [], `${name} differs from onnx.reference (seed ${SEED})`);
    }
    assert.equal(at, expected.length);
    // hand-computed: e4m3fn saturates 464 (a tie) and 480 to 448, without saturation 480 is NaN; int4 wraps -9 to 7 and uint2 -3 to 1 (test_cast_FLOAT_to_INT4/UINT2)
    assert.deepEqual([...(out.out_e4m3fn_1 as Float32Array).slice(0, 4)], [448, 448, 448, 448]);
    assert.ok(Number.isNaN((out.out_e4m3fn_0 as Float32Array)[3]));
    assert.equal((out.out_int4 as Float32Array)[32 - 18], 7);
    assert.equal((out.out_uint2 as Float32Array)[32 - 6], 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
