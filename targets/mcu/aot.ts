/**
 * WAMR ahead of time (Node only): wamrc built from the vendored sources against Debian's LLVM (llvm-15-dev or
 * newer), which compiles a blob for the board's core (thumbv7em) or for this machine (x86-64); and a host build
 * of the C embedding with WAMR's interpreter or AOT runtime, which times run() on this machine so that the
 * AOT/interpreter ratio is measured here too. Both are built on first use and cached under the teenygrad cache.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { exportC } from "../../compiler/codegen/export-c.js";
import { fail } from "../../compiler/errors.js";
import type { TypedArray } from "../../compiler/ir/dtype.js";
import type { InputValues } from "../../compiler/host/loader.js";
import { inspectWasm } from "../../compiler/host/wasm-info.js";
import { checkedInputs, findExecutable, splitOutputs } from "../protocol.js";
import { MAIN_C, type WamrSources } from "../wamr/build.js";
import { parseFirmwareReport, writeInputsFile } from "./runner.js";
import { buildWamrLibrary, FIRMWARE_WRAPS, requireWamrSources, tool, wamrIncludes, wamrSourceFiles, withModuleBytes, type WamrLibrarySpec } from "./build.js";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const WAMRC_C = join(HERE, "wamrc", "wamrc.c");
const HOST_C = join(HERE, "wamrc", "host.c");
const FIRMWARE_C = join(HERE, "firmware", "firmware.c");
const LLVM_VERSIONS = [19, 18, 17, 16, 15];
export const LLVM_PACKAGES = "llvm-15-dev (or llvm-16-dev … llvm-19-dev) and g++, which npm run mcu installs";

const run = promisify(execFile);

/** $TEENYGRAD_LLVM_CONFIG, else Debian's llvm-config-NN (newest first), else llvm-config; null when none */
export function findLlvmConfig(): string | null {
  return findExecutable("TEENYGRAD_LLVM_CONFIG", [...LLVM_VERSIONS.map((v) => `llvm-config-${v}`), "llvm-config"]);
}

/** the architecture, CPU and ABI wamrc compiles for */
export interface AotTarget {
  target: string;
  cpu: string;
  abi: string;
}

export const HOST_AOT_TARGET: AotTarget = { target: "x86_64", cpu: "generic", abi: "gnu" };

/** WAMR's configuration on this machine (Linux, x86-64): the firmware's features, software bounds checks */
function hostDefines(extra: string[]): string[] {
  return [
    "-DBUILD_TARGET_X86_64", '-DBUILD_TARGET="X86_64"', "-DBH_PLATFORM_LINUX", "-D_GNU_SOURCE", "-DWASM_HAVE_MREMAP=1",
    "-DBH_MALLOC=wasm_runtime_malloc", "-DBH_FREE=wasm_runtime_free",
    "-DWASM_ENABLE_JIT=0", "-DWASM_ENABLE_FAST_JIT=0", "-DWASM_ENABLE_LIBC_BUILTIN=0", "-DWASM_ENABLE_LIBC_WASI=0",
    "-DWASM_ENABLE_BULK_MEMORY=1", "-DWASM_ENABLE_SHARED_MEMORY=0", "-DWASM_ENABLE_THREAD_MGR=0", "-DWASM_ENABLE_MULTI_MODULE=0",
    "-DWASM_DISABLE_HW_BOUND_CHECK=1", "-DWASM_DISABLE_STACK_HW_BOUND_CHECK=1",
    // wamr-flash blobs read their weights in place as a shared heap (targets/wamr/teenygrad_weights.h)
    "-DWASM_ENABLE_SHARED_HEAP=1",
    ...extra,
  ];
}

function hostPlatformFiles(sources: WamrSources): string[] {
  const platform = (f: string) => join(sources.root, "core", "shared", "platform", f);
  return [platform("linux/platform_init.c"), ...["blocking_op", "malloc", "memmap", "sleep", "thread", "time"].map((f) => platform(`common/posix/posix_${f}.c`))];
}

function hostSpec(sources: WamrSources, name: string, defines: string[], extra: { files?: string[]; cflags?: string[]; cxxflags?: string[]; interpreter: "fast" | "classic"; aot: boolean }): WamrLibrarySpec {
  return {
    name,
    cc: "gcc",
    cxx: "g++",
    ar: "ar",
    cflags: ["-O2", ...hostDefines(defines), ...wamrIncludes(sources, join(sources.root, "core", "shared", "platform", "linux")), ...(extra.cflags ?? [])],
    cxxflags: extra.cxxflags,
    files: [
      ...wamrSourceFiles(sources, { invokeNative: "invokeNative_em64.s", interpreter: extra.interpreter, aotReloc: extra.aot ? "aot_reloc_x86_64.c" : undefined, platform: hostPlatformFiles(sources) }),
      ...(extra.files ?? []),
    ],
  };
}

/** wamrc for these sources and this LLVM, built on first use (a few minutes: LLVM's headers are heavy) */
export async function buildWamrc(): Promise<string> {
  const llvmConfig = findLlvmConfig() ?? fail(`wamrc needs LLVM's development files: install Debian's ${LLVM_PACKAGES}`);
  const sources = requireWamrSources();
  const llvm = async (flag: string) => (await run(llvmConfig, [flag])).stdout.trim().split(/\s+/).filter(Boolean);
  const version = (await llvm("--version"))[0];
  const compilation = join(sources.root, "core", "iwasm", "compilation");
  const compiler = [compilation, join(compilation, "simd")].flatMap((d) => readdirSync(d).filter((f) => /\.(c|cpp)$/.test(f)).map((f) => join(d, f)));
  // the compiler loads the wasm with the classic interpreter's loader, as WAMR's own wamrc does
  const spec = hostSpec(sources, `wamrc-llvm${version}`, [
    "-DWASM_ENABLE_WAMR_COMPILER=1", "-DWASM_ENABLE_INTERP=1", "-DWASM_ENABLE_FAST_INTERP=0", "-DWASM_ENABLE_AOT=1",
    "-DWASM_ENABLE_SIMD=1", "-DWASM_ENABLE_REF_TYPES=1", "-DWASM_ENABLE_CUSTOM_NAME_SECTION=1", "-DWASM_ENABLE_TAIL_CALL=1",
    // memory.copy and memory.fill, which IC and VWW use (WAMR 2.4 splits them from the rest of bulk memory)
    "-DWASM_ENABLE_BULK_MEMORY_OPT=1",
  ], {
    interpreter: "classic",
    aot: true,
    files: [...compiler, WAMRC_C],
    cflags: ["-std=gnu99", ...(await llvm("--cflags"))].filter((f) => f !== "-std=c11"),
    cxxflags: ["-fno-rtti", ...(await llvm("--cxxflags"))],
  });
  const library = await buildWamrLibrary(spec, sources);
  const wamrc = join(dirname(library), "wamrc");
  if (existsSync(wamrc)) return wamrc;
  const linking = `${wamrc}.${process.pid}`;
  await tool("g++", ["-Wl,--whole-archive", library, "-Wl,--no-whole-archive", ...(await llvm("--ldflags")), ...(await llvm("--libs")), ...(await llvm("--system-libs")), "-lpthread", "-lm", "-ldl", "-o", linking]);
  renameSync(linking, wamrc);
  return wamrc;
}

/** the blob compiled ahead of time by wamrc for `target` (opt level 3) */
export async function compileAot(wasm: Uint8Array, target: AotTarget, source: string): Promise<Uint8Array> {
  const wamrc = await buildWamrc();
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-wamrc-"));
  try {
    writeFileSync(join(dir, "model.wasm"), wasm);
    try {
      await run(wamrc, [target.target, target.cpu, target.abi, "3", join(dir, "model.wasm"), join(dir, "model.aot")], { maxBuffer: 16 * 1024 * 1024 });
    } catch (e) {
      fail(`wamrc (${target.target}) cannot compile ${source}: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
    }
    return new Uint8Array(readFileSync(join(dir, "model.aot")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface HostRun {
  outputs: Record<string, TypedArray>;
  /** wall-clock nanoseconds of run() */
  nanos: number;
}

/**
 * Runs the blob once on this machine through the C embedding (main.c, with the firmware's measuring wrapper):
 * in WAMR's fast interpreter, or as wamrc's x86-64 AOT module; `weights` for a wamr-flash blob.
 */
export async function runOnHost(wasm: Uint8Array, inputs: InputValues, engine: "interpreter" | "aot", source: string, weights?: Uint8Array): Promise<HostRun> {
  const sources = requireWamrSources();
  const manifest = inspectWasm(wasm, source).manifest ?? fail(`${source}: not a teenygrad blob`);
  const aot = engine === "aot";
  const library = await buildWamrLibrary(hostSpec(sources, `host-${engine}`, [
    "-DWASM_ENABLE_INTERP=1", "-DWASM_ENABLE_FAST_INTERP=1", `-DWASM_ENABLE_AOT=${aot ? 1 : 0}`, "-DWASM_ENABLE_SIMD=0", "-DWASM_ENABLE_REF_TYPES=0", "-DWASM_ENABLE_BULK_MEMORY_OPT=1",
  ], { interpreter: "fast", aot }), sources);
  const dir = mkdtempSync(join(tmpdir(), "teenygrad-host-"));
  try {
    const header = exportC(wasm, { source, weights });
    writeFileSync(join(dir, "model.h"), aot ? withModuleBytes(header, await compileAot(wasm, HOST_AOT_TARGET, source)) : header);
    const exe = join(dir, "run-model");
    const cflags = ["-O2", "-std=gnu99", "-I", dir, "-I", join(sources.root, "core", "iwasm", "include")];
    await tool("gcc", [...cflags, "-Dmain=embedding_main", "-c", MAIN_C, "-o", join(dir, "main.o")]);
    await tool("gcc", [...cflags, ...FIRMWARE_WRAPS, HOST_C, FIRMWARE_C, join(dir, "main.o"), library, "-lm", "-lpthread", "-ldl", "-o", exe]);
    await writeInputsFile(dir, checkedInputs(manifest, inputs, source));
    let stderr: string;
    try {
      stderr = (await run(exe, [], { cwd: dir })).stderr;
    } catch (e) {
      fail(`${source} on this machine (WAMR ${engine}): ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
    }
    // host.c's ticks are nanoseconds
    const nanos = parseFirmwareReport(stderr, `${source} on this machine`).ticks;
    return { outputs: splitOutputs(manifest.outputs, new Uint8Array(await readFile(join(dir, "outputs.bin"))), source), nanos };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
