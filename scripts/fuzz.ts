// npm run fuzz -- [--files N] [--seed S] [--jobs J] [--timeout MS] [--case I]
// Mutates real .onnx and .tflite files from the shared data (seeded: a seed and case index replay a case), takes
// each through import, graph passes, memory planning and entry generation (no asc, so 10,000 files take minutes),
// and prints a table of outcomes. Exits 1 if any case ended in anything but a plan or a TeenygradError: another
// exception, an internal error, a hang (no answer within --timeout) or a crashed worker (e.g. out of memory).
import { dirname, relative, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { Command } from "commander";
import cliProgress from "cli-progress";
import { caseHeader, findCorpus, OUTCOMES, runCase, type CaseResult, type Outcome } from "./fuzz-case.js";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const opts = new Command()
  .option("--files <n>", "how many mutated files", "10000")
  .option("--seed <s>", "the run's seed", "1")
  .option("--jobs <n>", "parallel workers", "1")
  .option("--timeout <ms>", "a case that takes longer is a hang", "20000")
  .option("--case <i>", "replay one case in this process and print it")
  .parse()
  .opts<{ files: string; seed: string; jobs: string; timeout: string; case?: string }>();
const [files, seed, jobs, timeout] = [opts.files, opts.seed, opts.jobs, opts.timeout].map(Number);

const corpus = findCorpus();
if (corpus.onnx.length + corpus.tflite.length === 0) {
  console.error("no model files: the ONNX backend suite and MLPerf Tiny models are looked for in $TEENYGRAD_DATA or ../shared/data");
  process.exit(2);
}
console.log(`${corpus.onnx.length} .onnx and ${corpus.tflite.length} .tflite seed files, seed ${seed}`);
if (opts.case !== undefined) {
  console.log(runCase(corpus, seed, Number(opts.case)));
  process.exit(0);
}

const results: CaseResult[] = [];
const bar = process.stdout.isTTY ? new cliProgress.SingleBar({ format: "{bar} {value}/{total}", hideCursor: true }, cliProgress.Presets.shades_classic) : null;
bar?.start(files, 0);
const started = performance.now();
// workers are plain JS that register tsx first, so they can load the TypeScript sources
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL("./fuzz-worker.ts", import.meta.url).href)}); });`;
const CHUNK = 250;
const chunks: [number, number][] = [];
for (let from = 0; from < files; from += CHUNK) chunks.push([from, Math.min(files, from + CHUNK)]);

await new Promise<void>((finish) => {
  let alive = 0;
  const spawn = (chunk: [number, number] | undefined) => {
    if (!chunk) {
      if (alive === 0) finish();
      return;
    }
    // a case that allocates without bound crashes its worker, not the run
    const worker = new Worker(WORKER_BOOT, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 2048 } });
    alive++;
    let [next, end] = chunk;
    let timer: NodeJS.Timeout | undefined;
    const record = (r: CaseResult) => {
      results.push(r);
      bar?.increment();
      next = r.index + 1;
    };
    const retire = (rest: [number, number] | undefined) => {
      clearTimeout(timer);
      alive--;
      void worker.terminate();
      spawn(rest ?? chunks.shift());
    };
    const lost = (outcome: Outcome, detail: string) => {
      const { format, file, mutation } = caseHeader(corpus, seed, next);
      record({ index: next, format, file, mutation, outcome, detail });
      retire(next < end ? [next, end] : undefined);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => lost("hang", `no answer within ${timeout} ms`), timeout);
    };
    worker.on("message", (m: CaseResult | { ready: true }) => {
      if ("ready" in m) {
        worker.postMessage({ corpus, seed, from: next, to: end });
        return arm();
      }
      record(m);
      if (next >= end) retire(undefined);
      else arm();
    });
    worker.on("error", (e) => lost("crash", `worker died: ${e.message}`));
  };
  for (let i = 0; i < Math.max(1, jobs); i++) spawn(chunks.shift());
});
bar?.stop();

const seconds = (performance.now() - started) / 1000;
results.sort((a, b) => a.index - b.index);

// the table: one row per format and mutation, one column per outcome
const rows = new Map<string, Record<Outcome, number>>();
for (const r of results) {
  const key = `${r.format} ${r.mutation}`;
  if (!rows.has(key)) rows.set(key, Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>);
  rows.get(key)![r.outcome]++;
}
const total = Object.fromEntries(OUTCOMES.map((o) => [o, results.filter((r) => r.outcome === o).length])) as Record<Outcome, number>;
const width = Math.max(...[...rows.keys()].map((k) => k.length), 5);
const line = (label: string, counts: Record<Outcome, number>) => `| ${label.padEnd(width)} | ${OUTCOMES.map((o) => String(counts[o]).padStart(o.length)).join(" | ")} |`;
console.log(`\n| ${"case".padEnd(width)} | ${OUTCOMES.join(" | ")} |`);
console.log(`| ${"-".repeat(width)} | ${OUTCOMES.map((o) => "-".repeat(o.length)).join(" | ")} |`);
for (const [key, counts] of [...rows].sort()) console.log(line(key, counts));
console.log(line("total", total));
console.log(`\n${results.length} cases in ${seconds.toFixed(1)} s (${((seconds * 1000) / Math.max(1, results.length)).toFixed(1)} ms each), seed ${seed}`);

const bad = results.filter((r) => r.outcome !== "planned" && r.outcome !== "TeenygradError");
for (const r of bad.slice(0, 20)) console.log(`\n${r.outcome}: case ${r.index} (${r.mutation} of ${relative(ROOT, r.file)}; replay: npm run fuzz -- --seed ${seed} --case ${r.index})\n${r.detail}`);
if (bad.length > 0) {
  console.log(`\n${bad.length} cases ended in something other than a plan or a TeenygradError`);
  process.exit(1);
}
