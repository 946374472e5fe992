/**
 * Compile time of unrolled recurrent ONNX models: one LSTM node over T steps (the importer unrolls it), for a few
 * sequence lengths up to an ~800-node imported graph (T = 42), the size of a streaming wake-word model. Prints the graph's
 * nodes before and after the passes, kernel calls, and the compile time by stage (one compile each; a shared machine: ±30%).
 * Run: npm run bench:onnx-unrolled [-- T…]
 */
import { compile, importOnnx } from "../compiler/index.js";
import { onnxModel } from "../test/helpers/onnx-model.js";

const HIDDEN = 32, FEATURES = 16;
const steps = process.argv.slice(2).map(Number).filter((n) => n > 0);

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

console.log("| steps | ONNX import ms | imported nodes | nodes after passes | kernel calls | trace+passes ms | plan ms | asc ms | total ms |");
console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const T of steps.length ? steps : [8, 21, 42]) {
  const t0 = performance.now();
  const { graph } = importOnnx(lstm(T));
  const imported = performance.now() - t0, importedNodes = graph.nodes.length;
  const { report } = await compile(graph, {}, { name: `lstm-${T}` });
  const m = report.millis;
  console.log(`| ${T} | ${imported.toFixed(0)} | ${importedNodes} | ${report.nodes} | ${report.kernelCalls} | ${(m.trace + m.passes).toFixed(0)} | ${m.plan.toFixed(0)} | ${m.asc.toFixed(0)} | ${m.total.toFixed(0)} |`);
}
