import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseNpy } from "../compiler/host/npy.js";
import { availableEngines, type Engine } from "../targets/engines.js";
import { NATIVE_RUNNER_VERSION } from "../targets/native-runner/runner.js";

/**
 * The published package, as a user gets it: `npm pack`, the tarball installed (offline, from the npm cache)
 * into a fresh `npm init -y` project (CommonJS) and a fresh ES-module project, then every README code block
 * run there: the blocks are the files in examples/readme/ (README and files must agree), and cli.sh is every
 * command of the README's walkthrough, each engine included.
 */

const repo = resolve(import.meta.dirname, "..");
const snippets = join(repo, "examples", "readme");
const CI = Boolean(process.env.CI);

/** `<!-- examples/readme/NAME -->` then a fenced block: the README shows that file verbatim */
function readmeBlocks(): Map<string, string> {
  const readme = readFileSync(join(repo, "README.md"), "utf8");
  const blocks = new Map<string, string>();
  for (const m of readme.matchAll(/<!-- (examples\/readme\/[\w.-]+) -->\n```\w*\n([\s\S]*?)```\n/g)) blocks.set(m[1], m[2]);
  return blocks;
}

test("every file in examples/readme/ is a README code block, verbatim", () => {
  const blocks = readmeBlocks();
  const files = readdirSync(snippets).map((f) => `examples/readme/${f}`);
  assert.deepEqual([...blocks.keys()].sort(), files.sort());
  for (const file of files) assert.equal(blocks.get(file), readFileSync(join(repo, file), "utf8"), `${file} differs from its README block`);
});

test("the native runner's version matches its crate", () => {
  const cargo = readFileSync(join(repo, "targets/native-runner/Cargo.toml"), "utf8");
  assert.equal(/^version = "(.*)"$/m.exec(cargo)?.[1], NATIVE_RUNNER_VERSION);
});

/** the engine a cli.sh line needs, when it names one */
const engineOf = (line: string): Engine | null => (/--engine (\w+)/.exec(line)?.[1] as Engine | undefined) ?? null;

describe("the packed package in a fresh project", { timeout: 1_500_000 }, () => {
  let dir: string;
  let tarball: string;
  const engines = availableEngines([]); // every engine installed (no features: the native ones too)

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "teenygrad-pkg-"));
    execFileSync("npm", ["pack", "--pack-destination", dir], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] }); // prepack builds dist/
    tarball = join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz"))!);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("CI has every engine", { skip: !CI && "not under CI" }, () => {
    assert.deepEqual([...engines].sort(), ["chromium", "node", "wamr", "wasm3", "wasmtime"]);
  });

  for (const kind of ["commonjs", "module"] as const) {
    test(`${kind} project: every README snippet and command works, with every engine installed`, () => {
      const project = join(dir, kind);
      mkdirSync(project);
      const sh = (cmd: string, args: string[]) => {
        const r = spawnSync(cmd, args, { cwd: project, encoding: "utf8" });
        assert.equal(r.status, 0, `${kind}: ${cmd} ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
        return r.stdout;
      };
      sh("npm", ["init", "-y"]);
      if (kind === "module") sh("npm", ["pkg", "set", "type=module"]);
      sh("npm", ["i", tarball, "--prefer-offline", "--no-audit", "--no-fund"]);

      // the README: in a CommonJS project, a program with top-level await is an .mts file; mlp.ts is a model
      // module, which `teenygrad compile` loads as an ES module whatever the project's type
      const rename = (f: string) => (kind === "commonjs" && f.endsWith(".ts") && f !== "mlp.ts" ? f.replace(/\.ts$/, ".mts") : f);
      for (const f of readdirSync(snippets)) copyFileSync(join(snippets, f), join(project, rename(f)));
      if (kind === "module") {
        // the snippets type-check against the package's declarations
        sh(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--types", "node", "--typeRoots", join(repo, "node_modules/@types"), "--skipLibCheck", "mlp.ts", "digit.ts", "library.ts", "training.ts"]);
      }

      // cli.sh, then train.sh: every command of the README's walkthroughs
      const commands = ["cli.sh", "train.sh"].flatMap((f) => readFileSync(join(snippets, f), "utf8").trim().split("\n"));
      const said: Record<string, string> = {}; // each subcommand's last output
      for (const line of commands.map((l) => (kind === "commonjs" ? l.replace("digit.ts", "digit.mts") : l))) {
        const engine = engineOf(line);
        if (engine && !engines.includes(engine)) {
          assert.ok(!CI, `CI lacks the ${engine} engine`);
          continue; // this machine lacks the engine (npm run engines / npm run chromium)
        }
        const [cmd, ...args] = line.split(" ");
        const out = sh(cmd, args);
        said[args[1]] = out;
        if (args[1] === "--version") assert.equal(out.trim(), JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version);
      }
      assert.ok(readdirSync(snippets).filter((f) => f.endsWith(".sh")).every((f) => ["cli.sh", "train.sh"].includes(f)));
      // every engine's answer: bit-identical for one build, the scalar and relaxed builds within 1e-5 of SIMD
      const output = (engine: string) => parseNpy(readFileSync(join(project, "out", engine, "output.npy"))).data as Float32Array;
      const simd = output("node");
      assert.equal(simd.length, 10);
      for (const engine of ["wasmtime", "chromium", "wamr", "wasm3", "relaxed"].filter((e) => existsSync(join(project, "out", e)))) {
        const exact = engine === "wasmtime" || engine === "chromium";
        output(engine).forEach((v, i) => assert.ok(exact ? Object.is(v, simd[i]) : Math.abs(v - simd[i]) <= 1e-5 * Math.max(1, Math.abs(simd[i])), `${engine}[${i}] = ${v}, node ${simd[i]}`));
      }
      assert.match(readFileSync(join(project, "mlp.h"), "utf8"), /^#define MODEL_MEMORY_PAGES 7u$/m);
      assert.match(readFileSync(join(project, "plan.svg"), "utf8"), /^<svg/);
      // one epoch of `teenygrad train` on 2,000 digits
      assert.ok(Number(/held-out (\S+)%/.exec(said.train)?.[1]) > 80, said.train);

      // library.ts: the blob's answer is eager mode's
      const library = sh("npx", ["tsx", rename("library.ts")]).replace(/\s+/g, " ");  // console.log spreads long arrays over lines
      const numbers = (label: string) => {
        const list = new RegExp(`${label} \\[([^\\]]*)\\]`).exec(library)?.[1];
        assert.ok(list, `library.ts printed no ${label} values: ${library}`);
        return list.split(",").map(Number);
      };
      const [blob, eager] = [numbers("blob"), numbers("eager")];
      assert.equal(blob.length, 10);
      blob.forEach((v, i) => assert.ok(Math.abs(v - eager[i]) <= 1e-5, `library.ts: element ${i}: ${v} vs ${eager[i]}`));
      assert.deepEqual(numbers("worker float32 \\[1,10\\]"), blob, "the worker's answer is the blob's");

      // training.ts: two epochs on 2,000 digits learn something and write a checkpoint
      const printed = sh("npx", ["tsx", rename("training.ts")]);
      const accuracy = Number(/held-out accuracy (\S+)/.exec(printed)?.[1]);
      assert.ok(accuracy > 0.8, `held-out accuracy ${accuracy}:\n${printed}`);
      assert.ok(existsSync(join(project, "net.safetensors")));
    });
  }
});
