/**
 * Builds the C embedding example (main.c) against WAMR's C sources (Node only; test/native.test.ts uses it).
 * The sources are the ones the native runner embeds: cargo unpacks the wamrx-sys crate, which vendors WAMR,
 * into its registry when scripts/install-engines.sh builds teenygrad-native-run. WAMR's runtime library is
 * built once with CMake and cached under the teenygrad cache, keyed by WAMR version and configuration.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fail } from "../../compiler/errors.js";
import { teenygradCacheDir } from "../wasmtime/runner.js";

/** WAMR's runtime library as firmware would build it: the fast interpreter only, no libc imports, no SIMD, no signals */
export const WAMR_CMAKE_OPTIONS = [
  "-DCMAKE_BUILD_TYPE=Release",
  "-DWAMR_BUILD_INTERP=1",
  "-DWAMR_BUILD_FAST_INTERP=1",
  "-DWAMR_BUILD_AOT=0",
  "-DWAMR_BUILD_JIT=0",
  "-DWAMR_BUILD_FAST_JIT=0",
  "-DWAMR_BUILD_LIBC_BUILTIN=0",
  "-DWAMR_BUILD_LIBC_WASI=0",
  "-DWAMR_BUILD_SIMD=0",
  "-DWAMR_BUILD_REF_TYPES=0",
  "-DWAMR_BUILD_BULK_MEMORY=1",
  // wamr-flash blobs read their weights in place as a shared heap (teenygrad_weights.h)
  "-DWAMR_BUILD_SHARED_HEAP=1",
  // software bounds checks, as on a microcontroller: no signal handler, no 8 GiB address-space reservation
  "-DWAMR_DISABLE_HW_BOUND_CHECK=1",
];

export const MAIN_C = fileURLToPath(new URL("main.c", import.meta.url));
const CARGO_LOCK = fileURLToPath(new URL("../native-runner/Cargo.lock", import.meta.url));

const run = promisify(execFile);

export interface WamrSources {
  /** the wasm-micro-runtime directory */
  root: string;
  /** from core/version.h, e.g. "2.4.3" */
  version: string;
}

/** WAMR inside the wamrx-sys crate the native runner's Cargo.lock pins; null when cargo has not fetched it */
export function findWamrSources(): WamrSources | null {
  const lock = readFileSync(CARGO_LOCK, "utf8");
  const crate = /\[\[package\]\]\nname = "wamrx-sys"\nversion = "([^"]+)"/.exec(lock);
  if (!crate) fail(`${CARGO_LOCK} does not pin wamrx-sys`);
  const registry = join(process.env.CARGO_HOME || join(homedir(), ".cargo"), "registry", "src");
  if (!existsSync(registry)) return null;
  for (const index of readdirSync(registry)) {
    const root = join(registry, index, `wamrx-sys-${crate[1]}`, "wasm-micro-runtime");
    if (existsSync(join(root, "CMakeLists.txt"))) return { root, version: wamrVersion(root) };
  }
  return null;
}

function wamrVersion(root: string): string {
  const header = readFileSync(join(root, "core", "version.h"), "utf8");
  const part = (name: string) => new RegExp(`^#define WAMR_VERSION_${name} (\\d+)`, "m").exec(header)?.[1];
  const [major, minor, patch] = ["MAJOR", "MINOR", "PATCH"].map(part);
  if (!major || !minor || !patch) fail(`${root}/core/version.h: no WAMR_VERSION_MAJOR/MINOR/PATCH`);
  return `${major}.${minor}.${patch}`;
}

/** libiwasm.a for these sources and WAMR_CMAKE_OPTIONS, built with CMake on first use; returns its path */
export async function buildWamrLibrary(sources: WamrSources): Promise<string> {
  const key = createHash("sha256").update(WAMR_CMAKE_OPTIONS.join("\n")).digest("hex").slice(0, 12);
  const dir = join(teenygradCacheDir(), "wamr", `wamr-${sources.version}-${key}`);
  const library = join(dir, "libiwasm.a");
  if (existsSync(library)) return library;
  const build = `${dir}.${process.pid}.build`;
  try {
    await tool("cmake", ["-S", sources.root, "-B", build, ...WAMR_CMAKE_OPTIONS]);
    await tool("cmake", ["--build", build, "--target", "vmlib", "--parallel"]);
    mkdirSync(dir, { recursive: true });
    // rename, so a concurrent build never sees half a library
    renameSync(join(build, "libiwasm.a"), library);
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  return library;
}

/**
 * compiles main.c with the directory holding model.h (from `teenygrad export-c`) into `output`; `reportRam`
 * builds it with RUN_MODEL_REPORT_RAM (it prints the RAM it used on stderr)
 */
export async function buildEmbedding(sources: WamrSources, library: string, headerDir: string, output: string, opts: { reportRam?: boolean } = {}): Promise<void> {
  const include = join(sources.root, "core", "iwasm", "include");
  const defines = opts.reportRam ? ["-DRUN_MODEL_REPORT_RAM", "-D_POSIX_C_SOURCE=200809L"] : [];
  await tool("cc", ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", ...defines, "-I", headerDir, "-I", include, MAIN_C, library, "-lm", "-ldl", "-lpthread", "-o", output]);
}

async function tool(command: string, args: string[]): Promise<void> {
  try {
    await run(command, args, { maxBuffer: 64 * 1024 * 1024 });
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string };
    fail(`${command} ${args.join(" ")} failed: ${err.stderr?.trim() || err.stdout?.trim() || err.message}`);
  }
}
