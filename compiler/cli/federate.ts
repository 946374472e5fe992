import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { fail } from "../errors.js";
import { inspectWasm } from "../host/wasm-info.js";
import { shapeStr } from "../ir/shape.js";
import { FLWR_VERSION, findFlowerVenv, runLocalFederation, type FederationHistory, type RoundRecord } from "../../targets/flower/federation.js";
import { writeMnistNpy } from "../../targets/flower/mnist-npy.js";

/** `teenygrad federate BLOB …`: a whole Flower federation on this machine (targets/flower), a table per round. */

const integer = (flag: string, least: number) => (text: string): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < least) fail(`${flag} expects an integer ≥ ${least}, got '${text}'`);
  return n;
};

const mib = (bytes: number | undefined): string => (bytes === undefined ? "-" : `${(bytes / 2 ** 20).toFixed(2)} MiB`);
const pct = (x: number | null | undefined): string => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(2)}%`);

export function formatRounds(history: FederationHistory): string {
  const header = ["round", "train loss", "held-out loss", "held-out acc", "clients", "excluded", "failed", "bytes sent", "seconds"];
  const row = (r: RoundRecord) => [
    String(r.round), r["train-loss"] == null ? "-" : r["train-loss"].toFixed(4), r.loss.toFixed(4), pct(r.accuracy),
    r.clients ? String(r.clients.length) : "-", r.excluded ? String(r.excluded.length) : "-", r.failures ? String(r.failures.length) : "-",
    r["bytes-down"] === undefined ? "-" : mib(r["bytes-down"] + (r["bytes-up"] ?? 0)), r.seconds === undefined ? "-" : r.seconds.toFixed(1),
  ];
  const rows = [header, ...history.rounds.map(row)];
  const widths = header.map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => (c ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join("  "));
  lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  const notes = history.rounds.flatMap((r) => [
    ...(r.excluded ?? []).map((c) => `round ${r.round}: client ${c.partition} (node ${c.node}) left out of the average: train_step() status ${c.status}`),
    ...(r.failures ?? []).map((f) => `round ${r.round}: node ${f.node} failed in ${f.stage}: ${f.reason}`),
  ]);
  return [...lines, ...notes].join("\n");
}

export function registerFederateCommand(program: Command): void {
  program
    .command("federate")
    .description("federated learning on this machine with Flower: a SuperLink (TLS) and one authenticated SuperNode per client, each training the blob in wasmtime on its share of the MNIST digits")
    .argument("<blob>", "training blob from compile --train (a classifier of [batch, 1, 28, 28] digits)")
    .option("--clients <n>", "SuperNodes, one data partition each", integer("--clients", 1), 3)
    .option("--rounds <n>", "federated rounds", integer("--rounds", 1), 5)
    .option("--local-epochs <n>", "epochs each client trains per round", integer("--local-epochs", 1), 2)
    .option("--non-iid", "label-skewed partitions (Dirichlet α = 0.5 per class) instead of IID")
    .option("--strategy <name>", "fedavg or fedprox", "fedavg")
    .option("--proximal-mu <mu>", "FedProx's μ", (t: string) => (Number(t) >= 0 ? Number(t) : fail(`--proximal-mu expects a number ≥ 0, got '${t}'`)), 1)
    .option("--simulation", "Flower's simulation engine instead of SuperLink and SuperNode processes")
    .option("--out <dir>", "where the ServerApp writes history.json", "federation-out")
    .action(async (blobPath: string, o) => {
      if (o.strategy !== "fedavg" && o.strategy !== "fedprox") fail(`--strategy: fedavg or fedprox, got '${o.strategy}'`);
      const manifest = inspectWasm(readFileSync(blobPath), blobPath).manifest;
      if (!manifest?.training) fail(`${blobPath}: not a training blob (compile it with teenygrad compile --train)`);
      const input = manifest.inputs[0];
      if (manifest.inputs.length !== 1 || input.shape.slice(1).join() !== "1,28,28") fail(`${blobPath}: federate trains on 28x28 digits, but the model takes ${manifest.inputs.map((s) => `${s.name} ${shapeStr(s.shape)}`).join(", ")}`);
      const venv = findFlowerVenv() ?? fail(`Flower ${FLWR_VERSION} is not installed: run npm run flower (or set TEENYGRAD_FLOWER_VENV)`);
      const outDir = resolve(o.out);
      mkdirSync(outDir, { recursive: true });
      rmSync(join(outDir, "history.json"), { force: true });
      const work = mkdtempSync(join(tmpdir(), "teenygrad-federate-"));
      console.log(`${o.simulation ? "Flower simulation" : `SuperLink on 127.0.0.1 (TLS) and ${o.clients} authenticated SuperNodes`}: ${o.strategy}, ${o.nonIid ? "non-IID (Dirichlet 0.5)" : "IID"} partitions of 8,000 digits, ${o.rounds} rounds of ${o.localEpochs} local epochs; held out: 2,000 digits`);
      const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: "rounds |{bar}| {value}/{total} | held-out accuracy {acc}", hideCursor: true }, cliProgress.Presets.shades_classic) : null;
      bar?.start(o.rounds, 0, { acc: "-" });
      try {
        const history = await runLocalFederation(venv, work, {
          blob: blobPath, dataDir: writeMnistNpy(), outDir, clients: o.clients, rounds: o.rounds, localEpochs: o.localEpochs,
          strategy: o.strategy, nonIid: o.nonIid, simulation: o.simulation, config: { "proximal-mu": o.proximalMu },
          onRound: (h) => bar?.update(h.rounds.length - 1, { acc: pct(h.rounds.at(-1)!.accuracy) }),
        });
        bar?.stop();
        console.log(formatRounds(history));
        console.log(`wrote ${join(outDir, "history.json")}`);
      } finally {
        bar?.stop();
        rmSync(work, { recursive: true, force: true });
      }
    });
}
