import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

/**
 * The published package, as a user gets it: build, `npm pack`, install the tarball into a fresh project,
 * and compile a model whose weights came from loadStateDict through `import { nn, Tensor, compile }`.
 */
test("the packed package compiles a model through its public API and matches eager mode", { timeout: 300_000 }, () => {
  const repo = resolve(import.meta.dirname, "..");
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-pkg-"));
  const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  run("npm", ["run", "build"], repo);
  run("npm", ["pack", "--pack-destination", dir], repo);
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"))!;
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "user-project", private: true, type: "module", dependencies: { teenygrad: `file:./${tarball}` } }));
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], dir);

  writeFileSync(join(dir, "main.ts"), `
import { nn, Tensor, compile, loadBlob } from "teenygrad";
class Net extends nn.Module {
  fc1 = new nn.Linear(6, 5);
  fc2 = new nn.Linear(5, 3);
  forward(x: Tensor): Tensor { return this.fc2.forward(this.fc1.forward(x).tanh()).softmax(-1); }
}
const net = new Net();
const values = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(i * k + 1));
net.loadStateDict({
  "fc1.weight": Tensor.from(values(30, 0.7), { shape: [5, 6] }), "fc1.bias": Tensor.from(values(5, 1.3)),
  "fc2.weight": Tensor.from(values(15, 0.3), { shape: [3, 5] }), "fc2.bias": Tensor.from(values(3, 2.1)),
});
const x = Tensor.from(values(12, 0.5), { shape: [2, 6] });
const eager = net.forward(x);
const { wasm } = await compile(net, { x: [2, 6] });
const out = (await loadBlob(wasm)).run({ x: x.data }).output;
console.log(JSON.stringify({ eager: Array.from(eager.data as Float32Array), compiled: Array.from(out as Float32Array) }));
`);
  // types resolve from the package's declarations
  run(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--skipLibCheck", "main.ts"], dir);
  const { eager, compiled } = JSON.parse(run(process.execPath, ["--import", "tsx", "main.ts"], dir));
  assert.equal(compiled.length, 6);
  compiled.forEach((v: number, i: number) => assert.ok(Math.abs(v - eager[i]) <= 1e-6, `element ${i}: ${v} vs ${eager[i]}`));
  assert.match(run(join(dir, "node_modules/.bin/teenygrad"), ["--help"], dir), /compile/);
});
