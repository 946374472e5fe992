/**
 * npm run bench:federated — held-out accuracy per round of Flower federations of the MNIST MLP's training
 * blob (3 clients in Flower's simulation engine, each ClientApp the blob in wasmtime): IID vs label-skewed
 * non-IID partitions, FedAvg vs FedProx, next to centralised training of the same blob on the same 8,000 digits
 * for the same number of epochs (Node, trainLoop). ROUNDS (default 5), LOCAL_EPOCHS (2), CLIENTS (3).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileTraining, loadMnist, loadTrainingBlob, manualSeed, trainLoop } from "../compiler/index.js";
import MLP from "../examples/mlp.js";
import { findFlowerVenv, runLocalFederation } from "../targets/flower/federation.js";
import { MNIST_SPLIT, writeMnistNpy } from "../targets/flower/mnist-npy.js";

const ROUNDS = Number(process.env.ROUNDS ?? 5), LOCAL_EPOCHS = Number(process.env.LOCAL_EPOCHS ?? 2), CLIENTS = Number(process.env.CLIENTS ?? 3);
const venv = findFlowerVenv();
if (!venv) {
  console.error("the Flower venv is missing: run npm run flower");
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), "teenygrad-bench-federated-"));
try {
  manualSeed(1);
  const { wasm } = await compileTraining(new MLP(), { inputs: { image: [32, 1, 28, 28] }, loss: "crossEntropy", optimizer: { type: "adam", lr: 1e-3 }, name: "mlp" });
  const blob = join(work, "mlp-train.wasm");
  writeFileSync(blob, wasm);
  const dataDir = writeMnistNpy();

  // centralised: one blob, all 8,000 digits, ROUNDS x LOCAL_EPOCHS epochs; held-out accuracy after every LOCAL_EPOCHS
  const data = loadMnist(MNIST_SPLIT);
  const central = trainLoop(await loadTrainingBlob(wasm), data.train, { epochs: ROUNDS * LOCAL_EPOCHS, seed: 1, validation: data.test });
  const columns: { name: string; accuracy: number[] }[] = [{ name: "centralised", accuracy: central.epochs.filter((e) => e.epoch % LOCAL_EPOCHS === 0).map((e) => e.validationAccuracy!) }];

  for (const nonIid of [false, true]) {
    for (const strategy of ["fedavg", "fedprox"] as const) {
      const name = `${strategy === "fedavg" ? "FedAvg" : "FedProx"} ${nonIid ? "non-IID" : "IID"}`;
      const dir = join(work, name.replace(/ /g, "-"));
      mkdirSync(dir);
      const started = performance.now();
      const history = await runLocalFederation(venv, dir, {
        blob, dataDir, outDir: join(dir, "out"), clients: CLIENTS, rounds: ROUNDS, localEpochs: LOCAL_EPOCHS, strategy, nonIid, simulation: true,
        config: { "proximal-mu": 1.0 },
      });
      columns.push({ name, accuracy: history.rounds.slice(1).map((r) => r.accuracy) });
      console.error(`${name}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
  }

  const pct = (x: number | undefined) => (x === undefined ? "-" : `${(100 * x).toFixed(2)}%`);
  console.log(`\nHeld-out accuracy (2,000 digits) per round; ${CLIENTS} clients, ${LOCAL_EPOCHS} local epochs per round, Adam 1e-3, batch 32; centralised: ${LOCAL_EPOCHS} epochs per "round" on all 8,000 digits\n`);
  console.log(`| round | ${columns.map((c) => c.name).join(" | ")} |`);
  console.log(`| --- |${columns.map(() => " --- |").join("")}`);
  for (let r = 0; r < ROUNDS; r++) console.log(`| ${r + 1} | ${columns.map((c) => pct(c.accuracy[r])).join(" | ")} |`);
  const last = (c: { accuracy: number[] }) => c.accuracy[ROUNDS - 1];
  console.log(`\nFedAvg IID after ${ROUNDS} rounds: ${((last(columns[1]) - last(columns[0])) * 100).toFixed(2)} percentage points from centralised`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
