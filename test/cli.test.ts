import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { encodeNpy, parseNpy } from "../compiler/index.js";
import { availableEngines } from "../targets/engines.js";
import { randn } from "./helpers/compiled.js";
import { addOneModel } from "./helpers/host-models.js";

/** The CLI end to end: compile a model file, run the blob on .npy inputs in each engine, inspect it. */
test("teenygrad compile → run → inspect", { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-cli-"));
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "compiler/cli/bin.ts", ...args], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const blob = join(dir, "cnn.wasm");
  const printed = cli("compile", "examples/cnn.ts", "-o", blob, "--target", "wasm-scalar", "--report", join(dir, "report.json"), "--plan", join(dir, "plan.svg"));
  assert.match(printed, /arena .* lower bound .* greedy-by-size baseline/);
  const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8"));
  assert.equal(report.target, "wasm-scalar");
  assert.ok(report.arena.bytes <= report.arena.greedyBaseline);
  assert.match(readFileSync(join(dir, "plan.svg"), "utf8"), /^<svg/);

  writeFileSync(join(dir, "x.npy"), encodeNpy("float32", [1, 1, 28, 28], randn(1, 1, 28, 28).data));
  const results = availableEngines().map((engine) => {
    const out = join(dir, engine);
    assert.match(cli("run", blob, "--input", `image=${join(dir, "x.npy")}`, "--out", out, "--engine", engine), /output: 10 values/);
    return parseNpy(readFileSync(join(out, "output.npy")));
  });
  for (const r of results) {
    assert.deepEqual(r.shape, [1, 10]);
    assert.deepEqual(Array.from(r.data as Float32Array), Array.from(results[0].data as Float32Array), "engines agree bit for bit");
  }

  const info = JSON.parse(cli("inspect", blob, "--json"));
  assert.deepEqual(info.imports, []);
  assert.equal(info.memory.initial, info.memory.maximum);
  assert.equal(info.instructionCounts.simd128, 0);
  assert.match(cli("inspect", blob), /imports: none/);
});

test("run --out: an uncreatable or existing-file path is a clear error, never a hang; --version prints the package's", { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-cli-out-"));
  const blob = join(dir, "add1.wasm"), x = join(dir, "x.npy");
  writeFileSync(blob, addOneModel(5).bytes);
  writeFileSync(x, encodeNpy("float32", [5], new Float32Array(5)));
  const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "compiler/cli/bin.ts", ...args], { encoding: "utf8", timeout: 60_000 });
  for (const [out, message] of [
    ["/proc/teenygrad/out", /^error: --out \/proc\/teenygrad\/out: cannot create \/proc\/teenygrad: ENOENT$/m],
    [x, new RegExp(`^error: --out ${x}: ${x} exists and is not a directory$`, "m")],
    [join(x, "sub"), new RegExp(`^error: --out ${x}/sub: ${x} exists and is not a directory$`, "m")],
  ] as const) {
    const r = cli("run", blob, "--input", `x=${x}`, "--out", out);
    assert.equal(r.status, 1, `--out ${out}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const ok = cli("run", blob, "--input", `x=${x}`, "--out", join(dir, "a", "b"));
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(Array.from(parseNpy(readFileSync(join(dir, "a", "b", "y.npy"))).data as Float32Array), [1, 1, 1, 1, 1]);
  const version = cli("--version");
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync("package.json", "utf8")).version);
});

/** compile --train and train on .npy files, numpy's int64 labels included; bad data and flags fail naming the problem. */
test("teenygrad compile --train → train --data; wrong shapes, unknown names and --epochs -1 are refused", { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-cli-train-"));
  const run = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "compiler/cli/bin.ts", ...args], { encoding: "utf8" });
  const blob = join(dir, "mlp-train.wasm");
  const compiled = run("compile", "--train", "examples/mlp.ts", "--batch", "4", "--optimizer", "sgd", "--lr", "0.01", "-o", blob);
  assert.equal(compiled.status, 0, compiled.stderr);
  const file = (name: string, dtype: "float32" | "int64", shape: number[], data: Float32Array | BigInt64Array) => {
    writeFileSync(join(dir, name), encodeNpy(dtype, shape, data));
    return join(dir, name);
  };
  const images = file("x.npy", "float32", [8, 1, 28, 28], randn(8, 1, 28, 28).data as Float32Array);
  const squeezed = file("squeezed.npy", "float32", [8, 28, 28], randn(8, 28, 28).data as Float32Array);
  const labels = file("y.npy", "int64", [8], BigInt64Array.from([0, 1, 2, 3, 4, 5, 6, 9].map(BigInt)));
  const out = join(dir, "trained.safetensors");
  for (const x of [images, squeezed]) {
    const ok = run("train", blob, "--data", `image=${x}`, "--data", `target=${labels}`, "--epochs", "2", "-o", out);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /4 steps/);
  }
  const refused = (args: string[], message: RegExp) => {
    const r = run("train", blob, ...args, "-o", out);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  };
  const wrong = file("wrong.npy", "float32", [8, 28, 29], randn(8, 28, 29).data as Float32Array);
  refused(["--data", `image=${wrong}`, "--data", `target=${labels}`], /the file holds \[8, 28, 29\], but 'image' takes examples of \[1, 28, 28\]/);
  refused(["--data", `pixels=${images}`, "--data", `target=${labels}`], /no input or target 'pixels' \(it takes image, target\)/);
  refused(["--data", `image=${images}`, "--data", `target=${labels}`, "--epochs", "-1"], /--epochs expects a positive integer, got '-1'/);
  const bigLabels = file("big.npy", "int64", [8], BigInt64Array.from([0, 1, 2, 3, 4, 5, 6, 2 ** 32 + 1].map(BigInt)));
  refused(["--data", `image=${images}`, "--data", `target=${bigLabels}`], /'target' is int32, but element 7 is 4294967297/);
});
