import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { fail } from "../errors.js";

export interface AscOptions {
  simd: boolean;
  /** also relaxed SIMD (ASC_FEATURE_RELAXED_SIMD): fused multiply-add in the kernels */
  relaxedSimd?: boolean;
  optimizeLevel?: 0 | 1 | 2 | 3;
  shrinkLevel?: 0 | 1 | 2;
  /** Appended after the base flags, e.g. ["--initialMemory", "4", "--maximumMemory", "4", "--memoryBase", "1024"]. */
  flags?: string[];
}

const ENTRY_FILE = "entry.ts";
const OUT_FILE = "entry.wasm";
const RUNTIME_DIR = "runtime-as";

let packageRootCache: string | undefined;

/** Walks up from this module (source tree or bundled dist/) to the package.json named "teenygrad". */
function packageRoot(): string {
  if (packageRootCache) return packageRootCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "teenygrad") {
      return (packageRootCache = dir);
    }
    const parent = dirname(dir);
    if (parent === dir) fail(`cannot find the teenygrad package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export function runtimeAsDir(): string {
  return join(packageRoot(), RUNTIME_DIR);
}

let baseFlagsCache: string[] | undefined;

/** asconfig.json "options" as asc argv: the single source of the compiler flags every model uses. */
function baseFlags(): string[] {
  if (baseFlagsCache) return baseFlagsCache;
  const path = join(packageRoot(), "asconfig.json");
  const options: Record<string, unknown> = JSON.parse(readFileSync(path, "utf8")).options ?? {};
  const argv: string[] = [];
  for (const [name, value] of Object.entries(options)) {
    if (typeof value === "boolean") {
      if (value) argv.push(`--${name}`);
    } else if (Array.isArray(value)) {
      for (const item of value) argv.push(`--${name}`, String(item));
    } else {
      argv.push(`--${name}`, String(value));
    }
  }
  return (baseFlagsCache = argv);
}

/** The asc flags of a build: asconfig.json's, then the options' overrides (later flags win in asc's parser). */
export function ascFlags(opts: AscOptions): string[] {
  const argv = [...baseFlags()];
  if (opts.optimizeLevel !== undefined) argv.push("--optimizeLevel", String(opts.optimizeLevel));
  if (opts.shrinkLevel !== undefined) argv.push("--shrinkLevel", String(opts.shrinkLevel));
  argv.push(opts.simd ? "--enable" : "--disable", "simd");
  if (opts.relaxedSimd) argv.push("--enable", "relaxed-simd");
  if (opts.flags) argv.push(...opts.flags);
  return argv;
}

/** Kernel sources read once per process: a model build compiles many entries against the same library. */
const runtimeSourceCache = new Map<string, string | null>();

function readRuntimeSource(relativePath: string): string | null {
  let text = runtimeSourceCache.get(relativePath);
  if (text === undefined) {
    const file = join(packageRoot(), relativePath);
    text = existsSync(file) ? readFileSync(file, "utf8") : null;
    runtimeSourceCache.set(relativePath, text);
  }
  return text;
}

/**
 * Compile an entry module (source text, virtual file "entry.ts") that imports kernels as
 * `import { gemm } from "./runtime-as/gemm";`. Nothing touches the disk except reading runtime-as/.
 */
export async function compileAssemblyScript(
  entrySource: string,
  opts: AscOptions,
): Promise<{ binary: Uint8Array<ArrayBuffer>; millis: number }> {
  const argv = [ENTRY_FILE, "--outFile", OUT_FILE, "--noColors", ...ascFlags(opts)];

  let binary: Uint8Array<ArrayBuffer> | undefined;
  let diagnostics = "";
  const collect = (chunk: Uint8Array | string) => {
    diagnostics += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
  };
  // loaded on first use: asc and binaryen take about a second to load, which `teenygrad --help`, `run` and `inspect` need not pay
  const { default: asc } = await import("assemblyscript/asc");
  const start = performance.now();
  const result = await asc.main(argv, {
    readFile(filename) {
      const path = filename.replace(/\\/g, "/").replace(/^\.\//, "");
      if (path === ENTRY_FILE) return entrySource;
      if (path.startsWith(`${RUNTIME_DIR}/`)) return readRuntimeSource(path);
      // asconfig.json (already folded into argv) and node_modules probes resolve to nothing.
      return null;
    },
    writeFile(filename, contents) {
      // a private copy: the emitted bytes may be a view into binaryen's heap
      if (filename === OUT_FILE && typeof contents !== "string") binary = new Uint8Array(contents);
    },
    listFiles: () => [],
    stdout: { write: collect },
    stderr: { write: collect },
  });
  const millis = performance.now() - start;
  const output = binary; // a const, so the check below narrows it (binary is assigned in a callback)
  if (result.error || !output) {
    fail(`AssemblyScript compilation failed: ${result.error?.message ?? "no binary produced"}\n${diagnostics.trim()}`);
  }
  return { binary: output, millis };
}
