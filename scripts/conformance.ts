// npm run conformance -- [DIR] [--all] [--filter RE] [--jobs N] [--json FILE] [--check] [--update-baseline]
// Runs the ONNX backend node tests through import → compile → Node, prints a table and a summary,
// writes a JSON report, and with --check fails when fewer core tests (with --all: fewer tests of the whole
// suite) pass than the recorded baseline.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { Command } from "commander";
import cliProgress from "cli-progress";
import { findOnnxBackendSuite, ONNX_SUITE_WHERE, type Status, type TestResult } from "../compiler/import/onnx/backend-test.js";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const BASELINE = join(ROOT, "test", "conformance-baseline.json");
const TIMEOUT_MS = 120_000;

const program = new Command()
  .argument("[dir]", "the backend test data directory (holding node/, or the node/ directory itself)")
  .option("--all", "every node test plus pytorch-converted, pytorch-operator and simple, not only CORE_TESTS.txt")
  .option("--filter <regex>", "only tests whose name matches")
  .option("--jobs <n>", "parallel workers", String(availableParallelism()))
  .option("--json <file>", "JSON report", join(ROOT, "out", "conformance.json"))
  .option("--check", "fail if fewer core tests (with --all, also fewer of all tests) pass than test/conformance-baseline.json records")
  .option("--update-baseline", "record this run's core pass count (with --all, also its pass count over the whole suite) as the baseline")
  .option("--quiet", "print only failures, the summary and missing ops")
  .parse();
const opts = program.opts<{ all?: boolean; filter?: string; jobs: string; json: string; check?: boolean; updateBaseline?: boolean; quiet?: boolean }>();

const suite = findOnnxBackendSuite(program.args[0]);
if (!suite) {
  console.error(`ONNX backend test data not found; looked in ${ONNX_SUITE_WHERE}.`);
  process.exit(2);
}

const coreList = join(suite, "CORE_TESTS.txt");
const core = existsSync(coreList) ? new Set(readFileSync(coreList, "utf8").split("\n").map((s) => s.trim()).filter(Boolean)) : null;
if (!core && !opts.all) console.warn(`no CORE_TESTS.txt in ${suite}: running every node test`);
const groups = opts.all ? ["node", "pytorch-converted", "pytorch-operator", "simple"] : ["node"];
const filter = opts.filter ? new RegExp(opts.filter) : null;
const jobs: { dir: string; name: string; group: string }[] = [];
for (const group of groups) {
  const base = join(suite, group);
  if (!existsSync(base)) continue;
  for (const name of readdirSync(base).sort()) {
    if (group === "node" && !opts.all && core && !core.has(name)) continue;
    if (filter && !filter.test(name)) continue;
    jobs.push({ dir: join(base, name), name, group });
  }
}
const label = (j: { name: string; group: string }) => (j.group === "node" ? j.name : `${j.group}/${j.name}`);

const results: (TestResult & { group: string; core: boolean })[] = [];
const bar = process.stdout.isTTY ? new cliProgress.SingleBar({ format: "{bar} {value}/{total} {name}", hideCursor: true }, cliProgress.Presets.shades_classic) : null;
bar?.start(jobs.length, 0, { name: "" });
const started = performance.now();

// workers are plain JS that register tsx first, so they can load the TypeScript sources
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL("./conformance-worker.ts", import.meta.url).href)}); });`;

await new Promise<void>((finish) => {
  let next = 0, alive = 0;
  const spawn = () => {
    const worker = new Worker(WORKER_BOOT, { eval: true });
    alive++;
    let current: (typeof jobs)[number] | null = null;
    let timer: NodeJS.Timeout | undefined;
    const record = (r: TestResult) => {
      clearTimeout(timer);
      results.push({ ...r, name: label(current!), group: current!.group, core: current!.group === "node" && (core?.has(current!.name) ?? true) });
      bar?.increment(1, { name: current!.name });
      current = null;
    };
    const retire = () => {
      alive--;
      void worker.terminate();
      if (next < jobs.length) spawn();
      else if (alive === 0) finish();
    };
    const feed = () => {
      if (next >= jobs.length) return retire();
      current = jobs[next++];
      const job = current;
      // a hung test is recorded and its worker replaced
      timer = setTimeout(() => {
        record({ name: job.name, status: "error", detail: `timed out after ${TIMEOUT_MS / 1000} s`, millis: TIMEOUT_MS });
        retire();
      }, TIMEOUT_MS);
      worker.postMessage({ dir: job.dir, name: job.name });
    };
    worker.on("message", (r: TestResult | { ready: true }) => {
      // the first job goes out once the worker has loaded the compiler, so its boot never counts against a test's timeout
      if ("ready" in r) return feed();
      if (!current) return;
      record(r);
      feed();
    });
    worker.on("error", (e) => {
      if (current) record({ name: current.name, status: "error", detail: `worker crashed: ${e.message}`, millis: 0 });
      retire();
    });
  };
  const n = Math.max(1, Math.min(Number(opts.jobs) || 1, jobs.length));
  if (jobs.length === 0) finish();
  for (let i = 0; i < n; i++) spawn();
});
bar?.stop();
results.sort((a, b) => a.name.localeCompare(b.name));

const STATUSES: Status[] = ["pass", "fail", "unsupported", "error"];
if (!opts.quiet) for (const r of results) console.log(`${r.status.padEnd(11)} ${r.name.padEnd(60)} ${r.detail}`);
else for (const r of results) if (r.status === "fail" || r.status === "error") console.log(`${r.status.padEnd(11)} ${r.name.padEnd(60)} ${r.detail}`);

const count = (rs: typeof results, s: Status) => rs.filter((r) => r.status === s).length;
console.log("\n" + ["suite".padEnd(20), ...STATUSES.map((s) => s.padStart(12)), "total".padStart(8), "pass %".padStart(8)].join(""));
const summary: Record<string, Record<string, number>> = {};
for (const [name, rs] of [["core (CORE_TESTS)", results.filter((r) => r.core)], ...groups.filter((g) => g !== "node" || opts.all).map((g) => [g, results.filter((r) => r.group === g)] as const)] as const) {
  if (!rs.length) continue;
  const row = Object.fromEntries(STATUSES.map((s) => [s, count(rs, s)]));
  summary[name] = { ...row, total: rs.length };
  console.log([name.padEnd(20), ...STATUSES.map((s) => String(row[s]).padStart(12)), String(rs.length).padStart(8), `${((100 * row.pass) / rs.length).toFixed(1)}%`.padStart(8)].join(""));
}

// what the unsupported tests lack, most common first
const reasons = new Map<string, number>();
for (const r of results) if (r.status === "unsupported") {
  const ops = [...r.detail.matchAll(/^\s*(\S+) ×\d+/gm)].map((m) => m[1]);
  const key = ops.length ? `missing op ${ops.join(", ")}` : r.detail.replace(/'[^']*'/g, "'…'").replace(/node \S+/g, "node …").slice(0, 120);
  reasons.set(key, (reasons.get(key) ?? 0) + 1);
}
if (reasons.size) {
  console.log("\nunsupported, by reason:");
  for (const [reason, n] of [...reasons].sort((a, b) => b[1] - a[1])) console.log(`${String(n).padStart(5)}  ${reason}`);
}
const seconds = (performance.now() - started) / 1000;
const corePass = results.filter((r) => r.core && r.status === "pass").length;
const frozenPasses = results.filter((r) => r.status === "pass" && r.frozen?.length);
console.log(`\n${frozenPasses.length} passes fixed some inputs at compile time (shape-deciding inputs of a static-shape runtime); ${frozenPasses.filter((r) => r.runtimeInputs === 0).length} of them had no run-time input left`);
console.log(`\n${results.length} tests in ${seconds.toFixed(0)} s: ${STATUSES.map((s) => `${count(results, s)} ${s}`).join(", ")}; core passes ${corePass}`);

mkdirSync(dirname(resolve(opts.json)), { recursive: true });
writeFileSync(resolve(opts.json), JSON.stringify({ suite, seconds, summary, results }, null, 1) + "\n");
console.log(`report: ${resolve(opts.json)}`);

// the whole suite's count is only meaningful for an unfiltered --all run
const allPass = opts.all && !filter ? count(results, "pass") : undefined;
interface Baseline { corePass: number; of: number; allPass?: number; allOf?: number }
if (opts.updateBaseline) {
  const previous = JSON.parse(readFileSync(BASELINE, "utf8")) as Baseline;
  const baseline: Baseline = allPass === undefined ? { ...previous, corePass, of: results.filter((r) => r.core).length } : { corePass, of: results.filter((r) => r.core).length, allPass, allOf: results.length };
  writeFileSync(BASELINE, JSON.stringify(baseline, null, 2) + "\n");
  console.log(`baseline: ${corePass} core passes${allPass === undefined ? "" : `, ${allPass} of all ${results.length}`} recorded in ${BASELINE}`);
}
if (opts.check) {
  const baseline = JSON.parse(readFileSync(BASELINE, "utf8")) as Baseline;
  const below = [
    corePass < baseline.corePass && `${corePass} core tests pass, below the recorded ${baseline.corePass}`,
    allPass !== undefined && baseline.allPass !== undefined && allPass < baseline.allPass && `${allPass} of all tests pass, below the recorded ${baseline.allPass}`,
  ].filter(Boolean);
  if (below.length) {
    console.error(`FAIL: ${below.join("; ")}`);
    process.exit(1);
  }
  console.log(`check: ${corePass} core passes >= the recorded ${baseline.corePass}${allPass !== undefined && baseline.allPass !== undefined ? `; ${allPass} of all >= the recorded ${baseline.allPass}` : ""}`);
}
