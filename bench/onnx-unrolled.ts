/**
 * Compile time of unrolled recurrent ONNX models: one LSTM node over T steps (the importer unrolls it), for sequence
 * lengths from 8 to 8x the size of a streaming wake-word model (T = 42 imports to ~800 nodes, T = 336 to ~6,400), to show
 * that each stage grows linearly. A process's first compile also loads binaryen and the kernel library: a warm-up
 * compile of a 1-step model pays that first and is printed apart. Prints the graph's nodes before and after the passes,
 * kernel calls, and the time by stage (one compile each; a shared machine: ±30%). `--asc` compiles the entry with asc
 * instead of linking it with the kernel library. Then, as a user runs it, the bundled CLI (`npm run build` first):
 * `node dist/bin.js compile` of the 42-step model (813 imported nodes) and `--help`, each in a fresh process, wall
 * clock and CPU time (user + system of the whole process, its worker threads included), three runs each.
 * Run: npm run bench:onnx-unrolled [-- [--asc] T…]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { compile, importOnnx } from "../compiler/index.js";
import { onnxModel } from "../test/helpers/onnx-model.js";

const HIDDEN = 32, FEATURES = 16;
const args = process.argv.slice(2);
const codegen = args.includes("--asc") ? "asc" : "kernel-library";
const steps = args.map(Number).filter((n) => n > 0);

function lstm(T: number): Uint8Array {
  const weights = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.2);
  return onnxModel({
    inputs: [{ name: "x", shape: [T, 1, FEATURES] }],
    outputs: [{ name: "y", shape: [T, 1, 1, HIDDEN] }],
    initializers: [
      { name: "W", dims: [1, 4 * HIDDEN, FEATURES], floats: weights(4 * HIDDEN * FEATURES, 1) },
      { name: "R", dims: [1, 4 * HIDDEN, HIDDEN], floats: weights(4 * HIDDEN * HIDDEN, 2) },
      { name: "B", dims: [1, 8 * HIDDEN], floats: weights(8 * HIDDEN, 3) },
    ],
    nodes: [{ op: "LSTM", inputs: ["x", "W", "R", "B"], outputs: ["y"], attrs: { hidden_size: HIDDEN } }],
  });
}

const warmUp = performance.now();
await compile(importOnnx(lstm(1)).graph, {}, { name: "lstm-1", codegen });
console.log(`first compile in this process (a 1-step model; loads binaryen${codegen === "asc" ? " and asc" : " and the kernel library"}): ${(performance.now() - warmUp).toFixed(0)} ms\n`);

console.log(`| steps | imported nodes | nodes after passes | kernel calls | import ms | trace+passes ms | plan ms | entry and ${codegen === "asc" ? "asc" : "link"} ms | total ms |`);
console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const T of steps.length ? steps : [8, 21, 42, 84, 168, 336]) {
  const t0 = performance.now();
  const { graph } = importOnnx(lstm(T));
  const imported = performance.now() - t0, importedNodes = graph.nodes.length;
  const { report } = await compile(graph, {}, { name: `lstm-${T}`, codegen });
  const m = report.millis;
  const ms = (x: number) => x.toFixed(0);
  console.log(`| ${T} | ${importedNodes} | ${report.nodes} | ${report.kernelCalls} | ${ms(imported)} | ${ms(m.trace + m.passes)} | ${ms(m.plan)} | ${ms(m.total - m.trace - m.passes - m.plan)} | ${ms(imported + m.total)} |`);
}

// the bundled CLI in fresh processes; an --import hook prints the process's CPU time as it exits
const BIN = resolve(dirname(new URL(import.meta.url).pathname), "..", "dist", "bin.js");
const CPU_HOOK = `data:text/javascript,import{writeSync}from"node:fs";process.on("exit",()=>{const u=process.cpuUsage();writeSync(2,"\\ncpu-us "+(u.user+u.system)+"\\n")})`;
if (!existsSync(BIN)) {
  console.log(`\n${BIN} not found: run npm run build for the CLI rows`);
} else {
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-unrolled-"));
  const model = join(dir, "lstm-42.onnx");
  writeFileSync(model, lstm(42));
  const runs: [string, string[]][] = [
    [`node dist/bin.js compile lstm-42.onnx (${importOnnx(lstm(42)).graph.nodes.length} imported nodes)`, ["compile", model, "-o", join(dir, "lstm-42.wasm")]],
    ["node dist/bin.js --help", ["--help"]],
  ];
  console.log("\n| bundled CLI, a fresh process each run | wall s (3 runs) | CPU s, user + system (3 runs) |");
  console.log("| --- | ---: | ---: |");
  for (const [label, cliArgs] of runs) {
    const wall: number[] = [], cpu: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ["--import", CPU_HOOK, BIN, ...cliArgs], { encoding: "utf8" });
      wall.push((performance.now() - t0) / 1000);
      const used = /cpu-us (\d+)/.exec(r.stderr);
      if (r.status !== 0 || !used) throw new Error(`${label}: exit ${r.status}\n${r.stderr}`);
      cpu.push(Number(used[1]) / 1e6);
    }
    const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
    console.log(`| ${label} | ${range(wall)} | ${range(cpu)} |`);
  }
}
