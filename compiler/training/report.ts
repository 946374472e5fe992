import type { TrainingReport } from "./compile.js";

const kib = (n: number): string => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`);

/** The training blob's memory, region by region, as `teenygrad compile --train` prints it. */
export function formatTrainingReport(r: TrainingReport): string {
  const m = r.memory, a = m.arena;
  const lines = [
    `${r.model} → ${r.target}, training: ${r.optimizer.type} (lr ${r.optimizer.lr}), batch ${r.batch}`,
    `  trained        ${r.trainable.length} tensors${r.frozen.length ? `; frozen: ${r.frozen.join(", ")}` : ""}`,
    ...m.regions.map((g) => `  ${g.name.padEnd(21)} ${kib(g.bytes).padStart(10)}   ${g.what}`),
    `    run()                ${kib(a.run).padStart(10)}`,
    `    train_step()         ${kib(a.trainStep).padStart(10)}   lower bound ${kib(a.lowerBound)}, greedy-by-size ${kib(a.greedyBaseline)}`,
    `    at its fullest step: saved activations ${kib(a.peak.savedActivations)}, gradients ${kib(a.peak.gradients)}, scratch ${kib(a.peak.scratch)}, inputs/outputs ${kib(a.peak.other)}`,
    `    parameter gradients: at most ${kib(a.parameterGradients.peakLive)} live at once (keeping all until the update: ${kib(a.parameterGradients.allKept)})`,
    `  total          ${kib(m.totalBytes).padStart(10)}   in ${r.footprint.ram.pages} page(s) of linear memory (${kib(r.footprint.ram.bytes)})`,
  ];
  if (m.frozen) {
    const s = m.frozen.bytesSaved;
    lines.push(`  freezing saves ${kib(s.total).padStart(10)}   ${s.parameters ? `frozen parameters in flash ${kib(s.parameters)}, ` : ""}optimizer state ${kib(s.optimizerState)}, arena ${kib(s.arena)} (against training every parameter)`);
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  lines.push(`  code ${kib(r.codeBytes)}, wasm ${kib(r.wasmBytes)}; graphs: run() ${r.nodes.run} nodes, train_step() ${r.nodes.trainStep} nodes; compile ${r.millis.total.toFixed(0)} ms (asc ${r.millis.asc.toFixed(0)} ms)`);
  return lines.join("\n");
}
