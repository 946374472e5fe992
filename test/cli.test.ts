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
