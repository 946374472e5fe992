import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Target } from "../../targets/index.js";
import { fail } from "../errors.js";
import { ascFlags, compileAssemblyScript, runtimeAsDir, type AscOptions } from "./asc.js";
import { WASI_IMPORTS, WASI_TRANSFER } from "./emit.js";
import { indexLibrary, SECTION, splitSections, type LibraryIndex } from "./wasm.js";

/**
 * The kernel library: every kernel of runtime-as/ compiled once per target with asc (all exported), cached
 * in ${TEENYGRAD_CACHE:-~/.cache/teenygrad}/kernel-library. A model's blob is this library plus an entry
 * function built directly as WebAssembly (./link.ts), so compiling a model runs no AssemblyScript.
 */

/** Exported helpers the entry calls besides the kernels (the WASI command's I/O). */
export const LIBRARY_TRANSFER = "__transfer";
export const LIBRARY_EXIT = "__proc_exit";

/** Every non-inline `export function` of runtime-as/*.ts (the inline helpers cannot be exported). */
function kernelExports(): { file: string; names: string[] }[] {
  return runtimeFiles()
    .filter((f) => f !== "index.ts")
    .map((f) => ({ file: f.replace(/\.ts$/, ""), names: [...readFileSync(join(runtimeAsDir(), f), "utf8").matchAll(/^export function (\w+)\(/gm)].map((m) => m[1]) }))
    .filter((e) => e.names.length > 0);
}

const runtimeFiles = (): string[] => readdirSync(runtimeAsDir()).filter((f) => f.endsWith(".ts")).sort();

/**
 * The inline helpers generated element-wise loops call, as exported functions of the library. Each
 * activation gets its own pair (act is a constant there, so asc folds actScalar's switch away): a blob
 * keeps only the activations its loops use. The vector forms exist only in SIMD builds (no v128 otherwise).
 */
function loopHelpers(simd: boolean): string[] {
  const helpers = (name: string, args: string, call: (form: "Scalar" | "Vec") => string) => [
    `export function ${loopHelper(`${name}Scalar`)}(x: f32${args}): f32 { return ${call("Scalar")}; }`,
    ...(simd ? [`export function ${loopHelper(`${name}Vec`)}(x: v128${args}): v128 { return ${call("Vec")}; }`] : []),
  ];
  const codes = [...readFileSync(join(runtimeAsDir(), "act.ts"), "utf8").matchAll(/^export const ACT_\w+: i32 = (\d+);/gm)].map((m) => Number(m[1]));
  return [
    `import { actScalar${simd ? ", actVec" : ""} } from "./runtime-as/act";`,
    `import { expScalar, logScalar, erfScalar${simd ? ", expVec, logVec, erfVec" : ""} } from "./runtime-as/vmath";`,
    ...codes.flatMap((code) => helpers(`act${code}`, ", p0: f32, p1: f32", (form) => `act${form}(x, ${code}, p0, p1)`)),
    ...["exp", "log", "erf"].flatMap((fn) => helpers(fn, "", (form) => `${fn}${form}(x)`)),
  ];
}

/** The library's export name of a loop helper */
export const loopHelper = (name: string): string => `__${name}`;

export function librarySource(simd: boolean): string {
  return [
    "// The teenygrad kernel library: every kernel, exported so a model's entry can call it.",
    ...kernelExports().map((e) => `export { ${e.names.join(", ")} } from "./runtime-as/${e.file}";`),
    ...loopHelpers(simd),
    "",
    ...WASI_IMPORTS,
    ...WASI_TRANSFER.map((l) => l.replace(/^function transfer\(/, `export function ${LIBRARY_TRANSFER}(`)),
    `export function ${LIBRARY_EXIT}(code: i32): void { proc_exit(code); }`,
  ].join("\n") + "\n";
}

export function libraryAscOptions(target: Target, optimizeLevel?: 0 | 1 | 2 | 3): AscOptions {
  return { simd: target.simd, relaxedSimd: target.relaxedSimd, optimizeLevel, flags: target.features.includes("bulk-memory") ? [] : ["--disable", "bulk-memory"] };
}

function toolVersion(pkg: string): string {
  const require = createRequire(import.meta.url);
  return JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), "utf8")).version;
}

const keys = new Map<string, string>();

/**
 * Hash of everything the library's bytes depend on: the kernel sources, the asc flags and the compilers' versions.
 * Computed once per options in a process: it reads every runtime-as file, and every compile asks for it.
 */
export function libraryKey(opts: AscOptions): string {
  const id = JSON.stringify(opts);
  let key = keys.get(id);
  if (key === undefined) keys.set(id, (key = hashLibraryInputs(opts)));
  return key;
}

function hashLibraryInputs(opts: AscOptions): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify([toolVersion("assemblyscript"), toolVersion("binaryen"), ascFlags(opts)]));
  hash.update(librarySource(opts.simd));
  for (const f of runtimeFiles()) hash.update(`\0${f}\0`).update(readFileSync(join(runtimeAsDir(), f)));
  return hash.digest("hex").slice(0, 32);
}

export const libraryCacheDir = (): string => join(process.env.TEENYGRAD_CACHE || join(homedir(), ".cache", "teenygrad"), "kernel-library");

const inProcess = new Map<string, Promise<KernelLibrary>>();

export interface KernelLibrary {
  binary: Uint8Array;
  key: string;
  /** its functions, types, imports, globals and exports with every index immediate located, for linking */
  index: LibraryIndex;
  /** asc time spent building it now: 0 when it came from the cache */
  ascMillis: number;
}

/** The kernel library for a target: from this process, else the disk cache, else built with asc and cached. */
export function kernelLibrary(target: Target, optimizeLevel?: 0 | 1 | 2 | 3): Promise<KernelLibrary> {
  const opts = libraryAscOptions(target, optimizeLevel);
  const key = libraryKey(opts);
  let lib = inProcess.get(key);
  if (!lib) {
    lib = loadOrBuild(key, opts);
    lib.catch(() => inProcess.delete(key));
    inProcess.set(key, lib);
  }
  return lib;
}

async function loadOrBuild(key: string, opts: AscOptions): Promise<KernelLibrary> {
  const file = join(libraryCacheDir(), `${key}.wasm`);
  if (existsSync(file)) {
    const binary = new Uint8Array(readFileSync(file));
    return { binary, key, index: indexLibrary(binary), ascMillis: 0 };
  }
  const { binary, millis } = await compileAssemblyScript(librarySource(opts.simd), opts);
  if (splitSections(binary).some((s) => s.id === SECTION.data)) fail("internal: the kernel library has static data, which would overlap a model's memory layout");
  mkdirSync(libraryCacheDir(), { recursive: true });
  const partial = `${file}.${process.pid}.tmp`; // written whole, then renamed: concurrent compiles never read half a file
  writeFileSync(partial, binary);
  renameSync(partial, file);
  return { binary, key, index: indexLibrary(binary), ascMillis: millis };
}
