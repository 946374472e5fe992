/**
 * Federated learning with Flower (targets/flower): a real SuperLink and three SuperNodes on 127.0.0.1 with TLS
 * and SuperNode authentication, each ClientApp a Teenygrad training blob in wasmtime (Python), plus one run
 * in Flower's simulation engine. Needs the venv of `npm run flower`; skipped with a message without it.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { compileTraining, manualSeed, parseNpy } from "../compiler/index.js";
import MLP from "../examples/mlp.js";
import { Federation, findFlowerVenv, localRunConfig, readHistory, runLocalFederation, type FederationHistory } from "../targets/flower/federation.js";
import { writeMnistNpy } from "../targets/flower/mnist-npy.js";

const venv = findFlowerVenv();
const skip = venv ? false : "the Flower venv is missing: run `npm run flower` (scripts/install-flower.sh)";

const flat = (path: string): Float32Array => parseNpy(readFileSync(path), path).data as Float32Array;

/** every round's aggregate equals the example-weighted mean of the updates it kept, to 1e-6 */
function checkWeightedMeans(history: FederationHistory, outDir: string): void {
  for (const round of history.rounds.slice(1)) {
    const updates = round.clients!.map((c) => ({ weight: c.examples, values: flat(join(outDir, `round-${round.round}-node-${c.node}.npy`)) }));
    const aggregate = flat(join(outDir, `round-${round.round}-aggregate.npy`));
    const total = updates.reduce((n, u) => n + u.weight, 0);
    let worst = 0;
    for (let i = 0; i < aggregate.length; i++) {
      const mean = updates.reduce((s, u) => s + (u.weight / total) * u.values[i], 0);
      worst = Math.max(worst, Math.abs(mean - aggregate[i]));
    }
    assert.ok(worst <= 1e-6, `round ${round.round}: the aggregate is ${worst} away from the weighted mean of ${updates.length} updates`);
  }
}

function checkAccuracyRises(history: FederationHistory, least: number): void {
  const accuracies = history.rounds.map((r) => r.accuracy);
  for (let r = 1; r < accuracies.length; r++) assert.ok(accuracies[r] > accuracies[r - 1], `held-out accuracy fell in round ${r}: ${accuracies.join(", ")}`);
  assert.ok(accuracies.at(-1)! >= least, `final held-out accuracy ${accuracies.at(-1)} < ${least}: ${accuracies.join(", ")}`);
}

describe("Flower federation of Teenygrad training blobs", { skip }, () => {
  let dir: string, blob: string, dataDir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "teenygrad-flower-"));
    manualSeed(1);
    const { wasm } = await compileTraining(new MLP(), { inputs: { image: [32, 1, 28, 28] }, loss: "crossEntropy", optimizer: { type: "adam", lr: 1e-3 }, name: "mlp" });
    blob = join(dir, "mlp-train.wasm");
    writeFileSync(blob, wasm);
    dataDir = writeMnistNpy(join(dir, "mnist"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("deployment: TLS, authenticated SuperNodes, FedAvg to ≥ 93%, a SuperNode killed mid-round, an unregistered one refused", { timeout: 900_000 }, async () => {
    const home = join(dir, "deployment");
    mkdirSync(home);
    const federation = new Federation(venv!, home);
    try {
      federation.makeCredentials(4);
      await federation.startSuperLink({ tls: true, auth: true });
      const nodeIds = [0, 1, 2].map((i) => federation.registerSupernode(`${federation.supernodeKey(i)}.pub`));
      const supernodes = await Promise.all([0, 1, 2].map((i) => federation.startSupernode(`supernode ${i}`, { "partition-id": i, "num-partitions": 3 }, federation.supernodeKey(i))));

      // key 3 was never registered: the SuperLink refuses it and the SuperNode gives up
      const intruder = await federation.startSupernode("intruder", { "partition-id": 0, "num-partitions": 3 }, federation.supernodeKey(3));
      assert.notEqual(await intruder.exited, 0);
      assert.match(intruder.output, /Failed to activate SuperNode/);
      await federation.waitOnline(3, 180);
      assert.deepEqual(federation.onlineSupernodes().sort(), [...nodeIds].sort());

      const outDir = join(home, "out");
      const run = federation.run(localRunConfig({ blob, dataDir, outDir, clients: 3, rounds: 3, localEpochs: 3, config: { "record-updates": true, "round-timeout": 90 } }));
      // SuperNode 2 dies while its ClientApp trains in round 2
      await supernodes[2].waitFor(/round 2: training/, 600);
      supernodes[2].kill();
      assert.equal(await Promise.race([run.exited, new Promise((r) => setTimeout(() => r("timeout"), 600_000).unref())]), 0, run.output.slice(-3000));

      const history = readHistory(outDir)!;
      assert.ok(history.done);
      assert.equal(history.rounds.length, 4);
      checkAccuracyRises(history, 0.93);
      checkWeightedMeans(history, outDir);
      const [first, second] = history.rounds.slice(1);
      assert.deepEqual(first.clients!.map((c) => c.partition).sort(), [0, 1, 2]);
      // round 2 completes with the two living clients, and says which node it lost
      assert.deepEqual(second.clients!.map((c) => c.partition).sort(), [0, 1]);
      assert.ok(second.failures!.some((f) => f.stage === "train" && String(f.node) === nodeIds[2]), JSON.stringify(second.failures));
      assert.match(run.output, /train: 1 node\(s\) failed/);
      const tally = history.rounds.slice(1).map((r) => `round ${r.round}: ${(100 * r.accuracy).toFixed(2)}% (${r.clients!.length} clients, ${r.seconds!.toFixed(1)} s)`);
      console.log(`deployment, FedAvg, IID: initial ${(100 * history.rounds[0].accuracy).toFixed(2)}%; ${tally.join("; ")}`);
    } finally {
      await federation.stop();
    }
  });

  it("simulation engine: FedProx; a client whose train_step() returns 3 (NaN loss) is left out of the average", { timeout: 600_000 }, async () => {
    const home = join(dir, "simulation");
    mkdirSync(home);
    const outDir = join(home, "out");
    const history = await runLocalFederation(venv!, home, {
      blob, dataDir, outDir, clients: 3, rounds: 2, localEpochs: 3, strategy: "fedprox", simulation: true, timeoutSeconds: 540,
      config: { "record-updates": true, "fault-nan-partition": 2, "proximal-mu": 0.5 },
    });
    assert.equal(history.strategy, "fedprox");
    assert.equal(history.rounds.length, 3);
    for (const round of history.rounds.slice(1)) {
      assert.deepEqual(round.excluded!.map((c) => [c.partition, c.status]), [[2, 3]], `round ${round.round}`);
      assert.deepEqual(round.clients!.map((c) => c.partition).sort(), [0, 1]);
    }
    checkWeightedMeans(history, outDir);
    checkAccuracyRises(history, 0.9);
    console.log(`simulation, FedProx, 2 of 3 clients: ${history.rounds.map((r) => `${(100 * r.accuracy).toFixed(2)}%`).join(" → ")}`);
  });
});
