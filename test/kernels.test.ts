// The AssemblyScript kernel library (runtime-as/), compiled twice (SIMD and scalar) and checked
// against float64 references on seeded random shapes and data. KERNELS_SEED=<n> replays a run.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { depthwisePaddedFloats, im2colTile } from "../compiler/ops/linalg.js";
import { Arena, assertClose, compileKernels, Rng, seedFor, type KernelModule } from "./helpers/kernels-wasm.js";

const SEED = Number(process.env.KERNELS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const TOL = 1e-5;
const MATH_TOL = 2e-6;

const MATH_FUNCTIONS = ["exp", "log", "sigmoid", "tanh", "erf"] as const;
const ENTRY = `
export * from "./runtime-as/index";
import { ${MATH_FUNCTIONS.map((f) => `${f}Scalar, ${f}Vec`).join(", ")} } from "./runtime-as/vmath";

/** y[i] = fn(x[i]) through the vector (vec = 1, SIMD build only) or the scalar form; n % 4 == 0. */
export function mathMap(fn: i32, vec: i32, x: usize, y: usize, n: i32): void {
  for (let i: usize = 0; i < (<usize>n << 2); i += 16) {
    if (vec) {
      if (ASC_FEATURE_SIMD) {
        const v = v128.load(x + i);
        let r = v;
        switch (fn) {
          ${MATH_FUNCTIONS.map((f, k) => `case ${k}: r = ${f}Vec(v); break;`).join("\n          ")}
        }
        v128.store(y + i, r);
      } else {
        unreachable();
      }
    } else {
      for (let j: usize = 0; j < 16; j += 4) {
        const v = load<f32>(x + i + j);
        let r = v;
        switch (fn) {
          ${MATH_FUNCTIONS.map((f, k) => `case ${k}: r = ${f}Scalar(v); break;`).join("\n          ")}
        }
        store<f32>(y + i + j, r);
      }
    }
  }
}
`;

const builds: KernelModule[] = [await compileKernels(ENTRY, true, 64), await compileKernels(ENTRY, false, 64)];

function context(build: KernelModule, label: string, detail: unknown): string {
  return `[${build.name}] ${label} ${JSON.stringify(detail)} (KERNELS_SEED=${SEED})`;
}

// ---- float64 references ---------------------------------------------------------------------------

function erf64(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let k = 1; k < 100; k++) {
      term *= (-a * a) / k;
      const c = term / (2 * k + 1);
      sum += c;
      if (Math.abs(c) < 1e-17 * Math.abs(sum)) break;
    }
    r = (sum * 2) / Math.sqrt(Math.PI);
  } else {
    let f = 0;
    for (let k = 60; k >= 1; k--) f = k / 2 / (a + f);
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  }
  return x < 0 ? -r : r;
}

const sigmoid64 = (x: number) => 1 / (1 + Math.exp(-x));

const ACTIVATIONS: { code: number; name: string; p0: number; p1: number; f: (x: number, p0: number, p1: number) => number }[] = [
  { code: 0, name: "none", p0: 0, p1: 0, f: (x) => x },
  { code: 1, name: "relu", p0: 0, p1: 0, f: (x) => Math.max(x, 0) },
  { code: 2, name: "clamp", p0: -0.25, p1: 0.5, f: (x, a, b) => Math.min(Math.max(x, a), b) },
  { code: 3, name: "leaky", p0: 0.1, p1: 0, f: (x, a) => (x > 0 ? x : a * x) },
  { code: 4, name: "sigmoid", p0: 0, p1: 0, f: sigmoid64 },
  { code: 5, name: "tanh", p0: 0, p1: 0, f: Math.tanh },
  { code: 6, name: "silu", p0: 0, p1: 0, f: (x) => x * sigmoid64(x) },
  { code: 7, name: "hardswish", p0: 0, p1: 0, f: (x) => (x * Math.min(Math.max(x + 3, 0), 6)) / 6 },
  { code: 8, name: "gelu", p0: 0, p1: 0, f: (x) => 0.5 * x * (1 + erf64(x / Math.SQRT2)) },
  { code: 9, name: "hardsigmoid", p0: 0.2, p1: 0.5, f: (x, a, b) => Math.max(0, Math.min(1, a * x + b)) },
  { code: 10, name: "elu", p0: 1.5, p1: 0, f: (x, a) => (x > 0 ? x : a * (Math.exp(x) - 1)) },
];

interface ConvShape {
  N: number; C: number; H: number; W: number; OC: number; OH: number; OW: number;
  KH: number; KW: number; SH: number; SW: number; PH: number; PW: number; DH: number; DW: number; groups: number;
}

function conv2dRef(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null, s: ConvShape): Float64Array {
  const Cg = s.C / s.groups;
  const OCg = s.OC / s.groups;
  const y = new Float64Array(s.N * s.OC * s.OH * s.OW);
  for (let n = 0; n < s.N; n++)
    for (let oc = 0; oc < s.OC; oc++) {
      const g = Math.floor(oc / OCg);
      for (let oh = 0; oh < s.OH; oh++)
        for (let ow = 0; ow < s.OW; ow++) {
          let acc = bias ? bias[oc] : 0;
          for (let c = 0; c < Cg; c++)
            for (let kh = 0; kh < s.KH; kh++)
              for (let kw = 0; kw < s.KW; kw++) {
                const ih = oh * s.SH - s.PH + kh * s.DH;
                const iw = ow * s.SW - s.PW + kw * s.DW;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += x[((n * s.C + g * Cg + c) * s.H + ih) * s.W + iw] * w[((oc * Cg + c) * s.KH + kh) * s.KW + kw];
              }
          y[((n * s.OC + oc) * s.OH + oh) * s.OW + ow] = acc;
        }
    }
  return y;
}

function outSize(size: number, padBefore: number, padAfter: number, kernel: number, stride: number, dilation: number): number {
  return Math.floor((size + padBefore + padAfter - (kernel - 1) * dilation - 1) / stride) + 1;
}

/** Fixed corner cases (narrow planes, wide depthwise rows, strides, dilation, groups) and seeded random geometry. */
function randomConvShapes(rng: Rng): ConvShape[] {
  const fixed: Partial<ConvShape>[] = [
    { N: 1, C: 32, H: 9, W: 9, OC: 8, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, groups: 1 },
    { N: 2, C: 6, H: 25, W: 5, OC: 6, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, groups: 6 },
    { N: 1, C: 8, H: 5, W: 7, OC: 12, KH: 1, KW: 1, SH: 1, SW: 1, PH: 0, PW: 0, DH: 1, DW: 1, groups: 1 },
    { N: 2, C: 8, H: 3, W: 5, OC: 4, KH: 1, KW: 1, SH: 1, SW: 1, PH: 0, PW: 0, DH: 1, DW: 1, groups: 2 },
    { N: 1, C: 4, H: 1, W: 37, OC: 5, KH: 1, KW: 5, SH: 1, SW: 2, PH: 0, PW: 2, DH: 1, DW: 2, groups: 1 },
    { N: 1, C: 3, H: 16, W: 19, OC: 8, KH: 3, KW: 3, SH: 2, SW: 2, PH: 0, PW: 1, DH: 1, DW: 1, groups: 1 },
    { N: 1, C: 4, H: 11, W: 23, OC: 8, KH: 5, KW: 3, SH: 1, SW: 3, PH: 2, PW: 1, DH: 2, DW: 1, groups: 4 },
    // wide depthwise rows reach the 16-output tiles at strides 1, 2 and 3
    { N: 1, C: 3, H: 4, W: 45, OC: 3, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, groups: 3 },
    { N: 1, C: 2, H: 5, W: 50, OC: 4, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1, groups: 2 },
    { N: 1, C: 2, H: 3, W: 80, OC: 2, KH: 2, KW: 3, SH: 1, SW: 3, PH: 0, PW: 1, DH: 1, DW: 2, groups: 2 },
  ];
  const shapes: ConvShape[] = [];
  for (const f of fixed) {
    shapes.push({ ...(f as ConvShape), OH: outSize(f.H!, f.PH!, f.PH!, f.KH!, f.SH!, f.DH!), OW: outSize(f.W!, f.PW!, f.PW!, f.KW!, f.SW!, f.DW!) });
  }
  while (shapes.length < 90) {
    const depthwise = rng.next() < 0.3;
    const groups = depthwise ? rng.int(1, 6) : rng.pick([1, 1, 2, 3]);
    const Cg = depthwise ? 1 : rng.int(1, 5);
    const s = {
      N: rng.int(1, 2), C: Cg * groups, H: rng.int(1, 19), W: rng.int(1, 27), OC: groups * rng.int(1, 9),
      KH: rng.int(1, 4), KW: rng.int(1, 5), SH: rng.int(1, 3), SW: rng.int(1, 3), PH: rng.int(0, 2), PW: rng.int(0, 2),
      DH: rng.int(1, 2), DW: rng.int(1, 2), groups,
    };
    const OH = outSize(s.H, s.PH, rng.int(0, 2), s.KH, s.SH, s.DH); // bottom / right pads differ
    const OW = outSize(s.W, s.PW, rng.int(0, 2), s.KW, s.SW, s.DW);
    if (OH > 0 && OW > 0) shapes.push({ ...s, OH, OW });
  }
  return shapes;
}

// ---- tests ----------------------------------------------------------------------------------------

describe("kernel modules", () => {
  const simd = builds[0];
  const scalar = builds[1];

  test("have no imports, no memory.grow and no data segments", () => {
    for (const build of builds) {
      assert.deepEqual(WebAssembly.Module.imports(new WebAssembly.Module(build.binary)), [], build.name);
      assert.doesNotMatch(build.text, /memory\.grow/, build.name);
      assert.doesNotMatch(build.text, /\(data /, build.name);
    }
  });

  test("scalar build has no SIMD instruction, SIMD build does", () => {
    const simdOps = /\b(v128|[if](8x16|16x8|32x4|64x2))\./;
    assert.doesNotMatch(scalar.text, simdOps);
    assert.match(simd.text, simdOps);
  });

  test("exported codes match the documented numbering", () => {
    const expected: Record<string, number> = {
      ACT_NONE: 0, ACT_RELU: 1, ACT_CLAMP: 2, ACT_LEAKY: 3, ACT_SIGMOID: 4, ACT_TANH: 5, ACT_SILU: 6,
      ACT_HARDSWISH: 7, ACT_GELU: 8, ACT_HARDSIGMOID: 9, ACT_ELU: 10, BIAS_NONE: 0, BIAS_COL: 1, BIAS_ROW: 2,
      REDUCE_SUM: 0, REDUCE_MEAN: 1, REDUCE_MAX: 2, REDUCE_MIN: 3, REDUCE_PROD: 4, REDUCE_SUM_SQUARE: 5,
      REDUCE_L1: 6, REDUCE_LOG_SUM_EXP: 7,
    };
    for (const build of builds) {
      for (const [name, value] of Object.entries(expected)) assert.equal(build.exports[name].value, value, `${build.name} ${name}`);
    }
  });
});

for (const build of builds) {
  const k = build.exports;
  const setup = (label: string) => {
    const rng = new Rng(seedFor(SEED, `${build.name}/${label}`));
    return { rng, arena: new Arena(build.memory, rng) };
  };

  describe(`${build.name} build`, () => {
    test("vmath: exp, log, sigmoid, tanh, erf within 2e-6 relative, saturation and specials", () => {
      const ranges: Record<string, [number, number][]> = {
        exp: [[-87, 88.7], [-1, 1], [-1e-3, 1e-3]],
        log: [[1e-37, 1e-30], [0.5, 2], [1, 3e38]],
        sigmoid: [[-87, 87], [-4, 4], [-1e-3, 1e-3]],
        tanh: [[-12, 12], [-1, 1], [-1e-3, 1e-3]],
        erf: [[-5, 5], [-1.2, 1.2], [-1e-3, 1e-3]],
      };
      const refs: Record<string, (x: number) => number> = { exp: Math.exp, log: Math.log, sigmoid: sigmoid64, tanh: Math.tanh, erf: erf64 };
      const specials: Record<string, [number, number][]> = {
        exp: [[NaN, NaN], [Infinity, Infinity], [-Infinity, 0], [100, Infinity], [-120, 0], [0, 1], [-0, 1]],
        log: [[NaN, NaN], [Infinity, Infinity], [0, -Infinity], [-0, -Infinity], [-1, NaN], [-Infinity, NaN], [1, 0], [1e-45, Math.log(1.401298464324817e-45)]],
        sigmoid: [[NaN, NaN], [Infinity, 1], [-Infinity, 0], [100, 1], [-200, 0], [0, 0.5]],
        tanh: [[NaN, NaN], [Infinity, 1], [-Infinity, -1], [50, 1], [-50, -1], [0, 0]],
        erf: [[NaN, NaN], [Infinity, 1], [-Infinity, -1], [10, 1], [-10, -1], [0, 0]],
      };
      const { rng, arena } = setup("vmath");
      const n = 4096;
      const xAt = arena.out(n * 4);
      const yAt = arena.out(n * 4);
      const modes = build.name === "simd" ? [1, 0] : [0];
      for (const [fn, name] of MATH_FUNCTIONS.entries()) {
        for (const vec of modes) {
          for (const [lo, hi] of ranges[name]) {
            const xs = new Float32Array(n);
            const logScale = name === "log" && hi / lo > 1e3;
            for (let i = 0; i < n; i++) xs[i] = logScale ? Math.exp(rng.float(Math.log(lo), Math.log(hi))) : rng.float(lo, hi);
            new Float32Array(build.memory.buffer, xAt, n).set(xs);
            k.mathMap(fn, vec, xAt, yAt, n);
            const ys = arena.readF32(yAt, n);
            for (let i = 0; i < n; i++) {
              const ref = refs[name](xs[i]);
              const err = Math.abs(ys[i] - ref) / Math.abs(ref);
              if (!(err <= MATH_TOL || Math.abs(ys[i] - ref) < 1e-37)) {
                assert.fail(context(build, `${name}${vec ? "Vec" : "Scalar"}(${xs[i]})`, { got: ys[i], want: ref, err }));
              }
            }
          }
          const cases = specials[name];
          const xs = new Float32Array(Math.ceil(cases.length / 4) * 4);
          cases.forEach(([x], i) => (xs[i] = x));
          new Float32Array(build.memory.buffer, xAt, xs.length).set(xs);
          k.mathMap(fn, vec, xAt, yAt, xs.length);
          const ys = arena.readF32(yAt, xs.length);
          cases.forEach(([x, want], i) => {
            const ok = Number.isNaN(want) ? Number.isNaN(ys[i]) : Math.abs(ys[i] - want) <= 1e-6 * Math.abs(want) || ys[i] === want;
            assert.ok(ok, context(build, `${name}${vec ? "Vec" : "Scalar"}(${x})`, { got: ys[i], want }));
          });
        }
      }
    });

    test("actInPlace: every activation, odd lengths", () => {
      const { rng, arena } = setup("act");
      for (const act of ACTIVATIONS) {
        for (const n of [1, 3, 4, 7, 13, 64]) {
          const x = rng.floats(n, -6, 6);
          const at = arena.f32(x);
          k.actInPlace(at, n, act.code, act.p0, act.p1);
          const ref = Array.from(x, (v) => act.f(v, act.p0, act.p1));
          // floor 1: inputs are O(1), and f32 itself cannot resolve e.g. 1 + erf(-4) any better
          assertClose(arena.readF32(at, n), ref, TOL, context(build, "actInPlace", { act: act.name, n }), 1);
        }
      }
      arena.assertGuardsIntact(context(build, "actInPlace", {}));
    });

    test("gemm: hand-computed 2x2 with row bias and relu", () => {
      const { arena } = setup("gemm-hand");
      const a = arena.f32([1, 2, 3, 4]);
      const b = arena.f32([5, 6, 7, 8]);
      const bias = arena.f32([-20, 1]);
      const c = arena.out(16);
      k.gemm(a, b, c, bias, 2, 2, 2, 2, 2, 2, 2, 1, 0, 0);
      // [[19, 22], [43, 50]] + [[-20], [1]] -> relu
      assert.deepEqual(Array.from(arena.readF32(c, 4)), [0, 2, 44, 51]);
    });

    test("gemm: random shapes, strides, bias modes and activations", () => {
      const { rng, arena } = setup("gemm");
      const shapes: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [4, 8, 4], [5, 13, 3], [7, 9, 0], [13, 31, 17], [9, 300, 300]];
      for (let t = 0; t < 40; t++) shapes.push([rng.int(1, 21), rng.int(1, 37), rng.int(0, 29)]);
      for (const [i, [M, N, K]] of shapes.entries()) {
        const lda = K + rng.int(0, 3);
        const ldb = N + rng.int(0, 3);
        const ldc = N + rng.int(0, 3);
        const biasMode = i % 3;
        const act = ACTIVATIONS[i % ACTIVATIONS.length];
        const A = rng.floats(M * lda);
        const B = rng.floats(Math.max(K, 1) * ldb);
        const bias = rng.floats(Math.max(M, N));
        const aAt = arena.f32(A);
        const bAt = arena.f32(B);
        const biasAt = biasMode ? arena.f32(bias) : 0;
        const cAt = arena.out(((M - 1) * ldc + N) * 4);
        // a fused residual (laid out like C) on every other shape
        const R = i % 4 >= 2 ? rng.floats((M - 1) * ldc + N) : null;
        const resAt = R ? arena.f32(R) : 0;
        k.gemm(aAt, bAt, cAt, biasAt, M, N, K, lda, ldb, ldc, biasMode, act.code, act.p0, act.p1, resAt);
        const got: number[] = [];
        const ref: number[] = [];
        for (let r = 0; r < M; r++)
          for (let col = 0; col < N; col++) {
            let s = biasMode === 1 ? bias[col] : biasMode === 2 ? bias[r] : 0;
            for (let q = 0; q < K; q++) s += A[r * lda + q] * B[q * ldb + col];
            if (R) s += R[r * ldc + col];
            ref.push(act.f(s, act.p0, act.p1));
            got.push(arena.readF32(cAt + (r * ldc + col) * 4, 1)[0]);
          }
        const detail = { M, N, K, lda, ldb, ldc, biasMode, act: act.name, residual: !!R };
        assertClose(got, ref, TOL, context(build, "gemm", detail));
        arena.assertGuardsIntact(context(build, "gemm", detail));
      }
    });

    test("conv2d: hand-computed 2x2 kernel", () => {
      const { arena } = setup("conv-hand");
      // 3x3 image 1..9, 2x2 kernel [[1, 0], [0, -1]], bias 0.5, no pad -> x[i][j] - x[i+1][j+1] + 0.5
      const x = arena.f32([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const w = arena.f32([1, 0, 0, -1]);
      const b = arena.f32([0.5]);
      const y = arena.out(16);
      k.conv2d(x, w, b, y, 1, 1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0);
      assert.deepEqual(Array.from(arena.readF32(y, 4)), [-3.5, -3.5, -3.5, -3.5]);
      // same with pad 1 on every side, stride 2: corners see a single tap
      const y2 = arena.out(16);
      k.conv2d(x, w, 0, y2, 1, 1, 3, 3, 1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 0, 0, 0);
      // (oh, ow) = (0,0): taps (-1,-1) pad, (0,0) = 1 * -1; (0,1): (-1,1) pad, (0,2) -> -3; ...
      assert.deepEqual(Array.from(arena.readF32(y2, 4)), [-1, -3, -7, 5 - 9]);
      arena.assertGuardsIntact(context(build, "conv2d hand", {}));
    });

    test("conv2d: random geometry (groups, depthwise, dilation, strides, asymmetric pads, 1x1, conv1d)", () => {
      const { rng, arena } = setup("conv");
      const shapes = randomConvShapes(rng);
      for (const [i, s] of shapes.entries()) {
        const act = ACTIVATIONS[i % ACTIVATIONS.length];
        const x = rng.floats(s.N * s.C * s.H * s.W);
        const w = rng.floats(s.OC * (s.C / s.groups) * s.KH * s.KW);
        const bias = i % 2 ? rng.floats(s.OC) : null;
        const xAt = arena.f32(x);
        const wAt = arena.f32(w);
        const biasAt = bias ? arena.f32(bias) : 0;
        const n = s.N * s.OC * s.OH * s.OW;
        const yAt = arena.out(n * 4);
        const res = i % 4 >= 2 ? rng.floats(n) : null;
        const resAt = res ? arena.f32(res) : 0;
        k.conv2d(xAt, wAt, biasAt, yAt, s.N, s.C, s.H, s.W, s.OC, s.OH, s.OW, s.KH, s.KW, s.SH, s.SW, s.PH, s.PW, s.DH, s.DW, s.groups, act.code, act.p0, act.p1, resAt);
        const ref = Array.from(conv2dRef(x, w, bias, s), (v, o) => act.f(v + (res ? res[o] : 0), act.p0, act.p1));
        assertClose(arena.readF32(yAt, n), ref, TOL, context(build, "conv2d", { ...s, act: act.name, bias: !!bias, residual: !!res }));
        arena.assertGuardsIntact(context(build, "conv2d", s));
      }
    });

    test("conv2dIm2col: random geometry and block sizes (tails, strides, padding, groups) match conv2d's reference", () => {
      const { rng, arena } = setup("conv-im2col");
      const shapes = [
        ...randomConvShapes(rng),
        // the models' layers: KWS's stem, ResNet-8's 8x8 and stride-2 convs, a strided 1x1 shortcut
        { N: 1, C: 1, H: 49, W: 10, OC: 64, OH: 25, OW: 5, KH: 10, KW: 4, SH: 2, SW: 2, PH: 5, PW: 1, DH: 1, DW: 1, groups: 1 },
        { N: 1, C: 16, H: 8, W: 8, OC: 12, OH: 8, OW: 8, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, groups: 1 },
        { N: 1, C: 8, H: 16, W: 16, OC: 16, OH: 8, OW: 8, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1, groups: 1 },
        { N: 2, C: 6, H: 9, W: 9, OC: 8, OH: 5, OW: 5, KH: 1, KW: 1, SH: 2, SW: 2, PH: 0, PW: 0, DH: 1, DW: 1, groups: 1 },
      ];
      for (const [i, s] of shapes.entries()) {
        const act = ACTIVATIONS[i % ACTIVATIONS.length];
        const taps = (s.C / s.groups) * s.KH * s.KW;
        const pixels = s.OH * s.OW;
        // the compiler's blocks (multiples of 8, or the whole plane) and arbitrary ones with ragged last blocks
        const tile = i % 3 === 0 ? im2colTile(taps, pixels) : rng.int(1, pixels + 3);
        const x = rng.floats(s.N * s.C * s.H * s.W);
        const w = rng.floats(s.OC * taps);
        const bias = i % 2 ? rng.floats(s.OC) : null;
        const xAt = arena.f32(x);
        const wAt = arena.f32(w);
        const biasAt = bias ? arena.f32(bias) : 0;
        const scratchAt = arena.out(taps * tile * 4);
        const n = s.N * s.OC * pixels;
        const yAt = arena.out(n * 4);
        const res = i % 4 >= 2 ? rng.floats(n) : null;
        const resAt = res ? arena.f32(res) : 0;
        k.conv2dIm2col(
          xAt, wAt, biasAt, yAt, s.N, s.C, s.H, s.W, s.OC, s.OH, s.OW, s.KH, s.KW, s.SH, s.SW, s.PH, s.PW, s.DH, s.DW, s.groups,
          act.code, act.p0, act.p1, scratchAt, tile, resAt,
        );
        const ref = Array.from(conv2dRef(x, w, bias, s), (v, o) => act.f(v + (res ? res[o] : 0), act.p0, act.p1));
        assertClose(arena.readF32(yAt, n), ref, TOL, context(build, "conv2dIm2col", { ...s, tile, act: act.name, bias: !!bias, residual: !!res }));
        arena.assertGuardsIntact(context(build, "conv2dIm2col", { ...s, tile }));
      }
    });

    test("depthwise3x3: strides 1 and 2, every pad, planes 1 to 37 wide (vector tails, the narrow-plane path)", () => {
      const { rng, arena } = setup("depthwise3x3");
      const shapes: ConvShape[] = [
        { N: 1, C: 64, H: 25, W: 5, OC: 64, OH: 25, OW: 5, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, groups: 64 },
        { N: 1, C: 5, H: 3, W: 3, OC: 5, OH: 3, OW: 3, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, groups: 5 },
        { N: 1, C: 3, H: 12, W: 12, OC: 3, OH: 6, OW: 6, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1, groups: 3 },
      ];
      while (shapes.length < 60) {
        const C = rng.int(1, 9), H = rng.int(1, 20), W = rng.int(1, 37);
        const SH = rng.int(1, 2), SW = rng.int(1, 2), PH = rng.int(0, 2), PW = rng.int(0, 2);
        const OH = outSize(H, PH, rng.int(0, 2), 3, SH, 1), OW = outSize(W, PW, rng.int(0, 2), 3, SW, 1);
        if (OH > 0 && OW > 0) shapes.push({ N: rng.int(1, 2), C, H, W, OC: C, OH, OW, KH: 3, KW: 3, SH, SW, PH, PW, DH: 1, DW: 1, groups: C });
      }
      for (const [i, s] of shapes.entries()) {
        const act = ACTIVATIONS[i % ACTIVATIONS.length];
        const x = rng.floats(s.N * s.C * s.H * s.W);
        const w = rng.floats(s.C * 9);
        const bias = i % 2 ? rng.floats(s.C) : null;
        const xAt = arena.f32(x);
        const wAt = arena.f32(w);
        const biasAt = bias ? arena.f32(bias) : 0;
        const scratchAt = arena.out(4 * depthwisePaddedFloats(s.OH, s.OW, s.SH, s.SW, build.name === "simd"));
        const n = s.N * s.C * s.OH * s.OW;
        const yAt = arena.out(n * 4);
        const res = i % 4 >= 2 ? rng.floats(n) : null;
        const resAt = res ? arena.f32(res) : 0;
        k.depthwise3x3(xAt, wAt, biasAt, yAt, s.N, s.C, s.H, s.W, s.OH, s.OW, s.SH, s.SW, s.PH, s.PW, act.code, act.p0, act.p1, scratchAt, resAt);
        const ref = Array.from(conv2dRef(x, w, bias, s), (v, o) => act.f(v + (res ? res[o] : 0), act.p0, act.p1));
        assertClose(arena.readF32(yAt, n), ref, TOL, context(build, "depthwise3x3", { ...s, act: act.name, bias: !!bias, residual: !!res }));
        arena.assertGuardsIntact(context(build, "depthwise3x3", s));
      }
    });

    test("maxpool2d / avgpool2d: hand-computed", () => {
      const { arena } = setup("pool-hand");
      const x = arena.f32([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const y = arena.out(16);
      // 2x2, stride 2, pad 1 (top/left) on a 3x3 image: windows {1}, {2,3}, {4,7}, {5,6,8,9}
      k.maxpool2d(x, y, 1, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1);
      assert.deepEqual(Array.from(arena.readF32(y, 4)), [1, 3, 7, 9]);
      k.avgpool2d(x, y, 1, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1);
      assert.deepEqual(Array.from(arena.readF32(y, 4)), [1 / 4, 5 / 4, 11 / 4, 28 / 4]);
      k.avgpool2d(x, y, 1, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 0);
      assert.deepEqual(Array.from(arena.readF32(y, 4)), [1, 5 / 2, 11 / 2, 28 / 4]);
      // ceil_mode overhang past the bottom/right pad is never counted: 3x3 image, k 2, s 2, no pad, ceil -> 2x2
      k.avgpool2d(x, y, 1, 3, 3, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 1);
      assert.deepEqual(Array.from(arena.readF32(y, 4)), [12 / 4, 9 / 2, 15 / 2, 9]);
      arena.assertGuardsIntact(context(build, "pool hand", {}));
    });

    test("maxpool2d / avgpool2d: random geometry, ceil mode, asymmetric pads", () => {
      const { rng, arena } = setup("pool");
      for (let t = 0; t < 80; t++) {
        const NC = rng.int(1, 3);
        const H = rng.int(1, 14);
        const W = rng.int(1, 30);
        const KH = rng.int(1, 4);
        const KW = rng.int(1, 4);
        const SH = rng.int(1, 3);
        const SW = rng.int(1, 3);
        const PH0 = rng.int(0, KH >> 1);
        const PW0 = rng.int(0, KW >> 1);
        const ceil = rng.next() < 0.5;
        // floor mode: ONNX-style independent end pads; ceil mode: symmetric pads plus overhang
        const PH1 = ceil ? PH0 : rng.int(0, KH >> 1);
        const PW1 = ceil ? PW0 : rng.int(0, KW >> 1);
        const DH = ceil ? 1 : rng.int(1, 2);
        const DW = ceil ? 1 : rng.int(1, 2);
        const pooled = (size: number, p0: number, p1: number, kernel: number, stride: number, dilation: number) => {
          const span = size + p0 + p1 - (kernel - 1) * dilation - 1;
          if (!ceil) return Math.floor(span / stride) + 1;
          let out = Math.ceil(span / stride) + 1;
          if ((out - 1) * stride >= size + p0) out--; // the last window must start inside the input or left pad
          return out;
        };
        const OH = pooled(H, PH0, PH1, KH, SH, DH);
        const OW = pooled(W, PW0, PW1, KW, SW, DW);
        if (OH <= 0 || OW <= 0) continue;
        const x = rng.floats(NC * H * W, -3, 3);
        const xAt = arena.f32(x);
        const maxRef: number[] = [];
        const avgRef: number[][] = [[], []];
        for (let p = 0; p < NC; p++)
          for (let oh = 0; oh < OH; oh++)
            for (let ow = 0; ow < OW; ow++) {
              let m = -Infinity;
              for (let kh = 0; kh < KH; kh++)
                for (let kw = 0; kw < KW; kw++) {
                  const ih = oh * SH - PH0 + kh * DH;
                  const iw = ow * SW - PW0 + kw * DW;
                  if (ih >= 0 && ih < H && iw >= 0 && iw < W) m = Math.max(m, x[(p * H + ih) * W + iw]);
                }
              maxRef.push(m);
              const hs = oh * SH - PH0;
              const ws = ow * SW - PW0;
              const he = Math.min(hs + KH, H + PH1);
              const we = Math.min(ws + KW, W + PW1);
              let sum = 0;
              let count = 0;
              for (let ih = Math.max(hs, 0); ih < Math.min(he, H); ih++)
                for (let iw = Math.max(ws, 0); iw < Math.min(we, W); iw++) {
                  sum += x[(p * H + ih) * W + iw];
                  count++;
                }
              avgRef[0].push(sum / count);
              avgRef[1].push(sum / ((he - hs) * (we - ws)));
            }
        const detail = { NC, H, W, OH, OW, KH, KW, SH, SW, PH0, PW0, PH1, PW1, DH, DW, ceil };
        const yAt = arena.out(NC * OH * OW * 4);
        k.maxpool2d(xAt, yAt, NC, H, W, OH, OW, KH, KW, SH, SW, PH0, PW0, DH, DW);
        assertClose(arena.readF32(yAt, NC * OH * OW), maxRef, TOL, context(build, "maxpool2d", detail));
        if (DH === 1 && DW === 1) {
          for (const include of [0, 1]) {
            k.avgpool2d(xAt, yAt, NC, H, W, OH, OW, KH, KW, SH, SW, PH0, PW0, PH1, PW1, include);
            assertClose(arena.readF32(yAt, NC * OH * OW), avgRef[include], TOL, context(build, "avgpool2d", { ...detail, include }));
          }
        }
        arena.assertGuardsIntact(context(build, "pool", detail));
      }
    });

    test("maxpool2d propagates NaN", () => {
      const { arena } = setup("pool-nan");
      const x = arena.f32([1, NaN, 3, 4, 5, 6, 7, 8]);
      const y = arena.out(16);
      k.maxpool2d(x, y, 1, 1, 8, 1, 4, 1, 2, 1, 2, 0, 0, 1, 1);
      const got = arena.readF32(y, 4);
      assert.ok(Number.isNaN(got[0]));
      assert.deepEqual(Array.from(got.subarray(1)), [4, 6, 8]);
    });

    test("reduce: every kind, contiguous and strided axes", () => {
      const { rng, arena } = setup("reduce");
      const kinds: [string, (v: number[]) => number][] = [
        ["sum", (v) => v.reduce((a, b) => a + b, 0)],
        ["mean", (v) => v.reduce((a, b) => a + b, 0) / v.length],
        ["max", (v) => v.reduce((a, b) => Math.max(a, b), -Infinity)],
        ["min", (v) => v.reduce((a, b) => Math.min(a, b), Infinity)],
        ["prod", (v) => v.reduce((a, b) => a * b, 1)],
        ["sumsq", (v) => v.reduce((a, b) => a + b * b, 0)],
        ["l1", (v) => v.reduce((a, b) => a + Math.abs(b), 0)],
        ["logsumexp", (v) => { const m = Math.max(...v); return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0)); }],
      ];
      const shapes: [number, number, number][] = [[1, 1, 1], [1, 37, 1], [3, 8, 1], [2, 5, 3], [3, 7, 4], [2, 13, 9], [1, 1000, 1], [1, 3, 130]];
      for (let t = 0; t < 20; t++) shapes.push([rng.int(1, 4), rng.int(1, 40), rng.pick([1, 1, rng.int(2, 19)])]);
      for (const [outer, R, inner] of shapes) {
        for (const [kind, [name, f]] of kinds.entries()) {
          const [lo, hi] = name === "prod" ? [0.7, 1.3] : name === "logsumexp" ? [-30, 30] : [-2, 2];
          const x = rng.floats(outer * R * inner, lo, hi);
          const xAt = arena.f32(x);
          const yAt = arena.out(outer * inner * 4);
          k.reduce(xAt, yAt, outer, R, inner, kind);
          const ref: number[] = [];
          for (let o = 0; o < outer; o++)
            for (let i = 0; i < inner; i++) {
              const v: number[] = [];
              for (let r = 0; r < R; r++) v.push(x[(o * R + r) * inner + i]);
              ref.push(f(v));
            }
          assertClose(arena.readF32(yAt, outer * inner), ref, TOL, context(build, "reduce", { name, outer, R, inner }));
        }
      }
      arena.assertGuardsIntact(context(build, "reduce", {}));
    });

    test("reduce: logsumexp of all -inf is -inf, of +inf is +inf", () => {
      const { arena } = setup("reduce-inf");
      for (const inner of [1, 4, 5]) {
        const x = new Float32Array(3 * inner).fill(-Infinity);
        x[inner] = 1; // column 0 gets a finite value
        x[2 * inner + inner - 1] = Infinity; // the last column an infinite one
        const xAt = arena.f32(x);
        const yAt = arena.out(inner * 4);
        k.reduce(xAt, yAt, 1, 3, inner, 7);
        const got = arena.readF32(yAt, inner);
        const want = Array.from({ length: inner }, (_, i) => (i === inner - 1 ? Infinity : i === 0 ? 1 : -Infinity));
        assert.deepEqual(Array.from(got), want, context(build, "logsumexp inf", { inner }));
      }
    });

    test("argreduce: ties (first / last), min / max, NaN, strided axis", () => {
      const { rng, arena } = setup("argreduce");
      const ref = (v: number[], isMin: boolean, last: boolean) => {
        let best = 0;
        for (let r = 1; r < v.length; r++) {
          const a = v[r];
          const b = v[best];
          let wins = isMin ? a < b : a > b;
          if (last && a === b) wins = true;
          if (Number.isNaN(b)) wins = last && Number.isNaN(a);
          else if (Number.isNaN(a)) wins = true;
          if (wins) best = r;
        }
        return best;
      };
      const shapes: [number, number, number][] = [[1, 1, 1], [2, 9, 1], [3, 5, 4], [2, 17, 7], [1, 6, 13]];
      for (let t = 0; t < 12; t++) shapes.push([rng.int(1, 3), rng.int(1, 20), rng.pick([1, rng.int(2, 11)])]);
      for (const [outer, R, inner] of shapes) {
        for (const withNaN of [false, true]) {
          const x = Array.from({ length: outer * R * inner }, () => rng.int(0, 3)); // small ints: many ties
          if (withNaN) for (let i = 0; i < x.length; i += 3 + rng.int(0, 4)) x[i] = NaN;
          const xAt = arena.f32(x);
          const yAt = arena.out(outer * inner * 4);
          for (const isMin of [0, 1]) {
            for (const last of [0, 1]) {
              k.argreduce(xAt, yAt, outer, R, inner, isMin, last);
              const want: number[] = [];
              for (let o = 0; o < outer; o++)
                for (let i = 0; i < inner; i++) {
                  const v: number[] = [];
                  for (let r = 0; r < R; r++) v.push(x[(o * R + r) * inner + i]);
                  want.push(ref(v, !!isMin, !!last));
                }
              assert.deepEqual(Array.from(arena.readI32(yAt, outer * inner)), want, context(build, "argreduce", { outer, R, inner, isMin, last, withNaN }));
            }
          }
        }
      }
      arena.assertGuardsIntact(context(build, "argreduce", {}));
    });

    test("softmax / logSoftmax: stable for large inputs, both layouts", () => {
      const { rng, arena } = setup("softmax");
      const shapes: [number, number, number][] = [[1, 1, 1], [2, 10, 1], [3, 33, 1], [2, 7, 4], [2, 5, 9], [1, 1000, 1]];
      for (let t = 0; t < 12; t++) shapes.push([rng.int(1, 3), rng.int(1, 30), rng.pick([1, rng.int(2, 13)])]);
      for (const [outer, R, inner] of shapes) {
        for (const spread of [3, 1000]) {
          const x = rng.floats(outer * R * inner, -spread, spread);
          const xAt = arena.f32(x);
          const yAt = arena.out(x.length * 4);
          for (const log of [0, 1]) {
            k.softmax(xAt, yAt, outer, R, inner, log);
            const want = new Float64Array(x.length);
            for (let o = 0; o < outer; o++)
              for (let i = 0; i < inner; i++) {
                const at = (r: number) => (o * R + r) * inner + i;
                let m = -Infinity;
                for (let r = 0; r < R; r++) m = Math.max(m, x[at(r)]);
                let s = 0;
                for (let r = 0; r < R; r++) s += Math.exp(x[at(r)] - m);
                for (let r = 0; r < R; r++) want[at(r)] = log ? x[at(r)] - m - Math.log(s) : Math.exp(x[at(r)] - m) / s;
              }
            assertClose(arena.readF32(yAt, x.length), want, TOL, context(build, "softmax", { outer, R, inner, spread, log }));
          }
        }
      }
      arena.assertGuardsIntact(context(build, "softmax", {}));
    });

    test("layernorm: with and without gamma / beta", () => {
      const { rng, arena } = setup("layernorm");
      for (const [outer, R] of [[1, 1], [3, 5], [2, 8], [4, 37], [2, 768]] as const) {
        for (const affine of [false, true]) {
          const x = rng.floats(outer * R, -3, 5);
          const gamma = rng.floats(R, 0.5, 1.5);
          const beta = rng.floats(R);
          const xAt = arena.f32(x);
          const gAt = affine ? arena.f32(gamma) : 0;
          const bAt = affine ? arena.f32(beta) : 0;
          const yAt = arena.out(x.length * 4);
          const eps = 1e-5;
          k.layernorm(xAt, gAt, bAt, yAt, outer, R, eps);
          const want: number[] = [];
          for (let o = 0; o < outer; o++) {
            const row = Array.from(x.subarray(o * R, (o + 1) * R));
            const mean = row.reduce((a, b) => a + b, 0) / R;
            const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / R;
            row.forEach((v, j) => want.push(((v - mean) / Math.sqrt(variance + eps)) * (affine ? gamma[j] : 1) + (affine ? beta[j] : 0)));
          }
          assertClose(arena.readF32(yAt, x.length), want, TOL, context(build, "layernorm", { outer, R, affine }));
        }
      }
      arena.assertGuardsIntact(context(build, "layernorm", {}));
    });

    test("stridedCopy: transpose, slice, expand, concat, every element size", () => {
      const { rng, arena } = setup("copy");
      for (let t = 0; t < 60; t++) {
        const elemBytes = rng.pick([1, 2, 4, 4, 4, 8]);
        const dims = Array.from({ length: 6 }, () => (rng.next() < 0.4 ? 1 : rng.int(1, 5)));
        // source: a random permutation of a contiguous tensor, some dims broadcast (stride 0);
        // destination: contiguous inside a larger row pitch (slice / concat interior)
        const order = [0, 1, 2, 3, 4, 5].sort(() => rng.next() - 0.5);
        const srcStrides = new Array<number>(6);
        let pitch = 1;
        for (let j = 5; j >= 0; j--) {
          srcStrides[order[j]] = rng.next() < 0.15 ? 0 : pitch;
          pitch *= dims[order[j]];
        }
        const dstStrides = new Array<number>(6);
        let dstPitch = 1;
        for (let j = 5; j >= 0; j--) {
          dstStrides[j] = dstPitch;
          dstPitch *= dims[j] + (j === 4 ? rng.int(0, 2) : 0);
        }
        const src = new Uint8Array(pitch * elemBytes).map(() => rng.int(0, 255));
        const srcAt = arena.bytes(src);
        const dstAt = arena.out(dstPitch * elemBytes);
        const before = arena.readBytes(dstAt, dstPitch * elemBytes);
        k.stridedCopy(srcAt, dstAt, elemBytes, ...dims, ...srcStrides, ...dstStrides);
        const want = before.slice();
        const idx = [0, 0, 0, 0, 0, 0];
        const total = dims.reduce((a, b) => a * b, 1);
        for (let e = 0; e < total; e++) {
          let rest = e;
          for (let j = 5; j >= 0; j--) {
            idx[j] = rest % dims[j];
            rest = Math.floor(rest / dims[j]);
          }
          const s = idx.reduce((a, v, j) => a + v * srcStrides[j], 0);
          const d = idx.reduce((a, v, j) => a + v * dstStrides[j], 0);
          want.set(src.subarray(s * elemBytes, (s + 1) * elemBytes), d * elemBytes);
        }
        assert.deepEqual(arena.readBytes(dstAt, want.length), want, context(build, "stridedCopy", { elemBytes, dims, srcStrides, dstStrides }));
        arena.assertGuardsIntact(context(build, "stridedCopy", { dims }));
      }
    });

    test("fill32 and gatherRows", () => {
      const { rng, arena } = setup("fill-gather");
      for (const [n, bits] of [[1, 0], [7, -1], [13, 0x3f800000], [33, 0xff800000 | 0], [4, 0x01010101]] as const) {
        const at = arena.out(n * 4);
        k.fill32(at, n, bits);
        assert.deepEqual(Array.from(arena.readI32(at, n)), new Array(n).fill(bits), context(build, "fill32", { n, bits }));
      }
      const nRows = 7;
      const rowElems = 5;
      const table = rng.floats(nRows * rowElems);
      const tableAt = arena.f32(table);
      const idx = [0, 6, -1, -7, 3, 3];
      const idxAt = arena.i32(idx);
      const dstAt = arena.out(idx.length * rowElems * 4);
      assert.equal(k.gatherRows(tableAt, idxAt, dstAt, idx.length, rowElems, nRows), 0);
      const want = idx.flatMap((r) => Array.from(table.subarray(((r + nRows) % nRows) * rowElems, (((r + nRows) % nRows) + 1) * rowElems)));
      assert.deepEqual(Array.from(arena.readF32(dstAt, want.length)), want, context(build, "gatherRows", {}));
      for (const bad of [7, -8, 1 << 30]) {
        const badAt = arena.i32([1, bad]);
        const out = arena.out(2 * rowElems * 4);
        assert.equal(k.gatherRows(tableAt, badAt, out, 2, rowElems, nRows), 1, context(build, "gatherRows out of range", { bad }));
      }
      arena.assertGuardsIntact(context(build, "fill32 / gatherRows", {}));
    });
  });
}
