import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { Generator, losses, manualSeed, nn, optim, Tensor, TeenygradError } from "../compiler/index.js";
import { compileTraining, loadTrainingBlob, type OptimizerSpec } from "../compiler/training/index.js";
import { traceModule } from "../compiler/tensor/nn.js";
import { relError, SEED } from "./helpers/compiled.js";

/**
 * Training against PyTorch 1.13 (Debian's python3-torch under /usr/bin/python3; npm run torch installs it):
 * the same small CNN — conv, BatchNorm2d in training mode, ReLU, max pooling, linear, cross-entropy — starts
 * from identical weights in both, takes three SGD or Adam steps on fresh random batches, and the losses,
 * the gradients (eager) and the updated weights and running statistics (eager and compiled) must agree.
 *
 * Tolerance 1e-5, relative to the largest magnitude of each tensor: both sides compute in float32 and
 * differ only in summation order (sums of ≤ 512 products, worst case ~512 · 2^-24 ≈ 3e-5 but in practice
 * √512 · 2^-24 ≈ 1.3e-6), so a wrong formula — biased running variance, a missing momentum, eval-mode
 * statistics, a gradient term dropped — shows up orders of magnitude above it.
 */

const PYTHON = "/usr/bin/python3";
const torchMissing = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8" }).status !== 0;
const skip = torchMissing && `${PYTHON} cannot import torch: install PyTorch with npm run torch (Debian's python3-torch)`;

const BATCH = 8, STEPS = 3, TOL = 1e-5;
const INPUT = [BATCH, 2, 8, 8];

class BnCNN extends nn.Module {
  // no conv bias: batch statistics cancel it, so its gradient is float noise that Adam would amplify
  conv = new nn.Conv2d(2, 4, 3, { padding: 1, bias: false });
  bn = new nn.BatchNorm2d(4);
  fc = new nn.Linear(4 * 4 * 4, 3);
  forward(x: Tensor): Tensor {
    return this.fc.forward(this.bn.forward(this.conv.forward(x)).relu().maxPool2d(2).flatten(1));
  }
}

const TORCH_STEPS = `
import json, sys, torch
torch.set_num_threads(1)
req = json.load(sys.stdin)
net = torch.nn.ModuleDict({"conv": torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), "bn": torch.nn.BatchNorm2d(4), "fc": torch.nn.Linear(64, 3)})
with torch.no_grad():
    for name, t in net.state_dict().items():
        if name == "bn.num_batches_tracked": continue
        src = req["state"][name.replace("running_mean", "runningMean").replace("running_var", "runningVar")]
        t.copy_(torch.tensor(src, dtype=torch.float32).reshape(t.shape))
net.train()
spec = req["optimizer"]
opt = torch.optim.SGD(net.parameters(), lr=spec["lr"], momentum=spec.get("momentum", 0), weight_decay=spec.get("weightDecay", 0)) \\
    if spec["type"] == "sgd" else torch.optim.Adam(net.parameters(), lr=spec["lr"])
def forward(x):
    h = torch.relu(net["bn"](net["conv"](x)))
    return net["fc"](torch.nn.functional.max_pool2d(h, 2).flatten(1))
steps = []
for batch in req["batches"]:
    x = torch.tensor(batch["x"], dtype=torch.float32).reshape(${JSON.stringify(INPUT)})
    y = torch.tensor(batch["y"], dtype=torch.int64)
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(forward(x), y)
    loss.backward()
    grads = {n: p.grad.flatten().tolist() for n, p in net.named_parameters()}
    opt.step()
    state = {n: t.flatten().tolist() for n, t in net.state_dict().items() if n != "bn.num_batches_tracked"}
    steps.append({"loss": loss.item(), "grads": grads, "state": state})
print(json.dumps({"version": torch.__version__, "steps": steps}))
`;

interface TorchStep { loss: number; grads: Record<string, number[]>; state: Record<string, number[]> }
const torchName = (n: string) => n.replace("runningMean", "running_mean").replace("runningVar", "running_var");

function torchSteps(state: Record<string, Tensor>, batches: { x: Tensor; y: Tensor }[], optimizer: OptimizerSpec): TorchStep[] {
  const request = {
    state: Object.fromEntries(Object.entries(state).map(([n, t]) => [n, Array.from(t.data as Float32Array)])),
    batches: batches.map((b) => ({ x: Array.from(b.x.data as Float32Array), y: Array.from(b.y.data as Int32Array) })),
    optimizer,
  };
  const r = spawnSync(PYTHON, ["-c", TORCH_STEPS], { input: JSON.stringify(request), encoding: "utf8", maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `PyTorch failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { steps: TorchStep[] }).steps;
}

function assertClose(got: ArrayLike<number>, want: number[], what: string): void {
  const err = relError(got, want);
  assert.ok(err <= TOL, `${what}: differs from PyTorch by ${err.toExponential(2)} relative (tolerance ${TOL}, seed ${SEED})`);
}

function assertState(got: Record<string, Tensor>, want: Record<string, number[]>, what: string): void {
  for (const [name, t] of Object.entries(got)) assertClose(t.data as Float32Array, want[torchName(name)], `${what}, ${name}`);
}

describe(`training a conv + train-mode BatchNorm CNN against PyTorch (seed ${SEED})`, { skip }, () => {
  const rng = new Generator(SEED + 12);
  const batches = Array.from({ length: STEPS }, () => ({
    x: Tensor.randn(INPUT, { generator: rng }),
    y: Tensor.from(Int32Array.from({ length: BATCH }, () => Math.floor(rng.next() * 3))),
  }));
  const cases: [string, OptimizerSpec][] = [
    ["SGD with momentum and weight decay", { type: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 0.01 }],
    ["Adam", { type: "adam", lr: 0.01 }],
  ];
  for (const [what, optimizer] of cases) {
    test(`${what}: ${STEPS} steps, eager and compiled`, async () => {
      manualSeed(SEED);
      const eager = new BnCNN().train();
      // non-trivial running statistics and affine parameters, so the momentum update is really checked
      eager.bn.runningMean.copy_(Tensor.randn([4], { generator: rng }));
      eager.bn.runningVar.copy_(Tensor.rand([4], { low: 0.5, high: 2, generator: rng }));
      eager.bn.weight.copy_(Tensor.rand([4], { low: 0.5, high: 1.5, generator: rng }));
      eager.bn.bias.copy_(Tensor.randn([4], { generator: rng }));
      const compiled = new BnCNN().train();
      compiled.loadStateDict(eager.stateDict());
      const want = torchSteps(eager.stateDict(), batches, optimizer);

      const opt = optimizer.type === "sgd" ? new optim.SGD(eager.parameters(), optimizer) : new optim.Adam(eager.parameters(), optimizer);
      const { wasm } = await compileTraining(compiled, { inputs: { x: INPUT }, loss: "crossEntropy", optimizer, optimizeLevel: 1 });
      const blob = await loadTrainingBlob(wasm);
      batches.forEach(({ x, y }, s) => {
        eager.zeroGrad();
        const loss = losses.crossEntropy(eager.forward(x), y);
        loss.backward();
        assertClose([loss.item()], [want[s].loss], `eager loss, step ${s + 1}`);
        for (const [name, p] of eager.namedParameters()) assertClose(p.grad!.data as Float32Array, want[s].grads[name], `eager gradient of ${name}, step ${s + 1}`);
        opt.step();
        assertState(eager.stateDict(), want[s].state, `eager after step ${s + 1}`);

        assertClose([blob.trainStep({ x: x.data as Float32Array, target: y.data as Int32Array }).loss], [want[s].loss], `compiled loss, step ${s + 1}`);
        assertState(blob.stateDict(), want[s].state, `compiled after step ${s + 1}`);
      });
      // run() is inference: the running statistics, as PyTorch's eval mode
      const evalOut = blob.run({ x: batches[0].x.data as Float32Array }).output;
      eager.loadStateDict(blob.stateDict());
      eager.eval();
      assertClose(evalOut as Float32Array, Array.from(eager.forward(batches[0].x).data as Float32Array), "compiled run() against eager eval mode");
    });
  }
});

describe("BatchNorm2d training mode: bad input", () => {
  test("one value per channel has no batch variance: a clear error, as PyTorch raises", () => {
    assert.throws(() => new nn.BatchNorm2d(3).train().forward(Tensor.randn([1, 3, 1, 1])), (e: Error) =>
      e instanceof TeenygradError && /more than one value per channel, got input \[1, 3, 1, 1\]/.test(e.message));
  });
  test("momentum outside [0, 1] is refused", () => {
    for (const momentum of [-0.1, 1.5, NaN]) {
      assert.throws(() => new nn.BatchNorm2d(3, 1e-5, momentum), (e: Error) => e instanceof TeenygradError && /momentum must be in \[0, 1\]/.test(e.message));
    }
  });
  test("eval mode (the default) normalizes with the running statistics; train() switches every submodule", () => {
    const net = new nn.Sequential(new nn.BatchNorm2d(2));
    const bn = net.layers[0] as nn.BatchNorm2d;
    assert.equal(bn.training, false);
    const x = Tensor.randn([4, 2, 3, 3]);
    assert.deepEqual(net.forward(x).data, x.batchNorm(bn.runningMean, bn.runningVar, bn.weight, bn.bias).data);
    assert.equal(net.train().layers[0].training, true);
    assert.equal(net.eval().layers[0].training, false);
  });
  test("inference tracing uses eval mode (running statistics), as torch.onnx.export does, and restores the mode", () => {
    const net = new nn.Sequential(new nn.BatchNorm2d(2)).train();
    const g = traceModule(net, { x: [4, 2, 3, 3] });
    assert.deepEqual(g.nodes.map((n) => n.op), ["batchnorm"]);
    assert.deepEqual(g.nodes[0].inputs.slice(3).map((v) => v.name), ["0.runningMean", "0.runningVar"]);
    assert.equal(net.layers[0].training, true);
  });
});
