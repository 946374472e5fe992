// GEMM and conv2d throughput of the AssemblyScript kernels, SIMD vs scalar build, best of several
// timed reps (GFLOP/s counts a multiply-add as 2). Run: npm run bench:kernels [-- --cases depthwise] (the cases whose
// name contains that text)
import { compileAssemblyScript } from "../compiler/codegen/asc.js";
import { convGeometry, depthwisePaddedFloats, im2colTile } from "../compiler/ops/linalg.js";
import { winogradBlock, winogradScratchBytes } from "../compiler/ops/winograd.js";

const PAGES = 256; // 16 MiB: three 512x512 matrices plus the conv tensors
const ENTRY = `export * from "./runtime-as/index";`;

interface Case {
  name: string;
  flops: number;
  /** float counts of the buffers the case needs, in call order */
  buffers: number[];
  run: (k: Record<string, any>, at: number[]) => void;
}

function gemmCase(n: number): Case {
  return {
    name: `gemm ${n}x${n}x${n}`,
    flops: 2 * n * n * n,
    buffers: [n * n, n * n, n * n],
    run: (k, [a, b, c]) => k.gemm(a, b, c, 0, n, n, n, n, n, n, 0, 0, 0, 0),
  };
}

/** `im2col`: through conv2dIm2col with the compiler's tile for the layer, else the direct conv2d. */
function convCase(
  name: string, C: number, OC: number, H: number, W: number, K: number | [number, number], stride: number, pad: number | [number, number], groups: number, im2col = false,
): Case {
  const [KH, KW] = typeof K === "number" ? [K, K] : K;
  const [PH, PW] = typeof pad === "number" ? [pad, pad] : pad;
  const OH = Math.floor((H + 2 * PH - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * PW - KW) / stride) + 1;
  const taps = (C / groups) * KH * KW;
  const tile = im2colTile(taps, OH * OW);
  return {
    name: `${name}${im2col ? " im2col" : ""}`,
    flops: 2 * OC * OH * OW * taps,
    buffers: [C * H * W, OC * taps, OC, OC * OH * OW, im2col ? taps * tile : 0],
    run: im2col
      ? (k, [x, w, b, y, scratch]) => k.conv2dIm2col(x, w, b, y, 1, C, H, W, OC, OH, OW, KH, KW, stride, stride, PH, PW, 1, 1, groups, 1, 0, 0, scratch, tile)
      : (k, [x, w, b, y]) => k.conv2d(x, w, b, y, 1, C, H, W, OC, OH, OW, KH, KW, stride, stride, PH, PW, 1, 1, groups, 1, 0, 0),
  };
}

/** A dense conv both ways: the compiler picks one per layer from these numbers. */
const bothPaths = (
  name: string, C: number, OC: number, H: number, W: number, K: number | [number, number], stride: number, pad: number | [number, number],
): Case[] => [convCase(name, C, OC, H, W, K, stride, pad, 1), convCase(name, C, OC, H, W, K, stride, pad, 1, true)];

/**
 * A dense 3x3 stride-1 conv through Winograd F(2x2, 3x3), with the compiler's block of tiles; GFLOP/s count the
 * direct convolution's multiply-adds (the effective rate), so it compares with the other two paths.
 */
function winogradCase(name: string, C: number, OC: number, H: number, W: number, pad: number): Case {
  const g = convGeometry([1, C, H, W], [OC, C, 3, 3], { stride: [1, 1], pads: [pad, pad, pad, pad], dilation: [1, 1], groups: 1 });
  const block = winogradBlock(g);
  return {
    name: `${name} winograd`,
    flops: 2 * OC * g.OH * g.OW * C * 9,
    buffers: [C * H * W, OC * 16 * C, OC, OC * g.OH * g.OW, winogradScratchBytes(g) / 4],
    run: (k, [x, u, b, y, scratch]) => k.conv2dWinograd(x, u, b, y, 1, C, H, W, OC, g.OH, g.OW, pad, pad, 1, 0, 0, scratch, block, 0),
  };
}

/** A dense 3x3 stride-1 conv through all three kernels. */
const threePaths = (name: string, C: number, OC: number, H: number, W: number): Case[] => [
  ...bothPaths(name, C, OC, H, W, 3, 1, 1), winogradCase(name, C, OC, H, W, 1),
];

/** Depthwise 3x3 (stride 1 or 2, pad 1) through conv2d and through depthwise3x3's padded plane. */
function depthwiseCases(C: number, H: number, W: number, stride: number): Case[] {
  const OH = Math.floor((H - 1) / stride) + 1, OW = Math.floor((W - 1) / stride) + 1;
  const name = `depthwise 3x3${stride > 1 ? ` s${stride}` : ""} ${C}ch @${H}x${W}`;
  const padded = depthwisePaddedFloats(OH, OW, stride, stride);
  return [convCase(name, C, C, H, W, 3, stride, 1, C), {
    name: `${name} padded`,
    flops: 2 * C * OH * OW * 9,
    buffers: [C * H * W, C * 9, C, C * OH * OW, padded],
    run: (k, [x, w, b, y, scratch]) => k.depthwise3x3(x, w, b, y, 1, C, H, W, OH, OW, stride, stride, 1, 1, 1, 0, 0, scratch),
  }];
}

const only = process.argv.includes("--cases") ? process.argv[process.argv.indexOf("--cases") + 1] : "";
const cases: Case[] = ([
  gemmCase(64),
  gemmCase(256),
  gemmCase(512),
  ...threePaths("conv 3x3 32->32 @32x32", 32, 32, 32, 32),
  ...threePaths("conv 3x3 16->16 @32x32", 16, 16, 32, 32),
  ...threePaths("conv 3x3 32->32 @16x16", 32, 32, 16, 16),
  ...threePaths("conv 3x3 64->64 @8x8", 64, 64, 8, 8),
  ...bothPaths("conv 3x3 s2 32->64 @32x32", 32, 64, 32, 32, 3, 2, 1),
  ...bothPaths("conv 3x3 s2 32->64 @16x16", 32, 64, 16, 16, 3, 2, 1),
  ...threePaths("conv 3x3 64->64 @56x56", 64, 64, 56, 56),
  ...bothPaths("stem 10x4 s2 1->64 @49x10", 1, 64, 49, 10, [10, 4], 2, [5, 1]),
  ...bothPaths("stem 3x3 s2 3->8 @96x96", 3, 8, 96, 96, 3, 2, 1),
  ...depthwiseCases(64, 25, 5, 1),
  ...depthwiseCases(64, 56, 56, 1),
  ...depthwiseCases(8, 48, 48, 1),
  ...depthwiseCases(16, 48, 48, 2),
  ...depthwiseCases(32, 24, 24, 1),
  ...depthwiseCases(128, 6, 6, 1),
  ...depthwiseCases(256, 3, 3, 1),
  convCase("pointwise 1x1 64->64 @25x5", 64, 64, 25, 5, 1, 1, 0, 1),
] as Case[]).filter((c) => c.name.includes(only));

async function measure(simd: boolean): Promise<{ compileMillis: number; gflops: number[] }> {
  const { binary, millis } = await compileAssemblyScript(ENTRY, {
    simd,
    flags: ["--initialMemory", String(PAGES), "--maximumMemory", String(PAGES)],
  });
  const { instance } = await WebAssembly.instantiate(binary, {});
  const k = instance.exports as Record<string, any>;
  const memory = k.memory as WebAssembly.Memory;
  const gflops: number[] = [];
  for (const c of cases) {
    let next = 1024;
    const at = c.buffers.map((floats) => {
      if (floats === 0) return 0;
      const offset = next;
      const view = new Float32Array(memory.buffer, offset, floats);
      for (let i = 0; i < floats; i++) view[i] = Math.random() - 0.5;
      next += floats * 4 + 64;
      return offset;
    });
    const reps = Math.max(1, Math.round(2e7 / c.flops)); // ~20 MFLOP per timed batch
    // warm-up: V8 starts wasm in its baseline compiler and tiers hot functions up in the background
    for (const until = performance.now() + 300; performance.now() < until; ) c.run(k, at);
    let best = Infinity;
    for (let trial = 0; trial < 15; trial++) {
      const start = performance.now();
      for (let r = 0; r < reps; r++) c.run(k, at);
      best = Math.min(best, (performance.now() - start) / reps);
    }
    gflops.push(c.flops / best / 1e6);
  }
  return { compileMillis: millis, gflops };
}

const simd = await measure(true);
const scalar = await measure(false);
// the first compile in a process also warms up asc itself; a model build pays the warm figure
const warm = await compileAssemblyScript(ENTRY, { simd: true });
const width = Math.max(...cases.map((c) => c.name.length));
console.log(`${"GFLOP/s".padEnd(width)}  ${"SIMD".padStart(7)}  ${"scalar".padStart(7)}  speedup`);
for (const [i, c] of cases.entries()) {
  console.log(
    `${c.name.padEnd(width)}  ${simd.gflops[i].toFixed(1).padStart(7)}  ${scalar.gflops[i].toFixed(1).padStart(7)}  ${(simd.gflops[i] / scalar.gflops[i]).toFixed(1).padStart(6)}x`,
  );
}
console.log(
  `\ncompile of the full kernel set (-O3): SIMD ${simd.compileMillis.toFixed(0)} ms cold, ${warm.millis.toFixed(0)} ms warm; scalar ${scalar.compileMillis.toFixed(0)} ms`,
);
