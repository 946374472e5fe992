/**
 * `teenygrad firmware`: a bare-metal image for a microcontroller board (targets/mcu/boards.ts) that runs a blob
 * in WAMR (Node only). Built with Debian's arm-none-eabi GCC and newlib from WAMR's C sources (the ones the
 * native runner vendors, see targets/wamr/build.ts), the platform layer in platform/, the start-up code and
 * linker script in firmware/, and the C embedding every target shares (targets/wamr/main.c). WAMR's objects
 * are built once per board and configuration and cached under the teenygrad cache.
 *
 * A `wamr-flash` blob's weights stay in flash: export-c's const array, attached in place as WAMR's shared heap
 * (targets/wamr/teenygrad_weights.h), so RAM holds only the exact linear memory (arena), the loaded module and
 * the stacks. A `wasm-scalar` blob still works, but WAMR copies its data segments (the weights) into RAM.
 *
 * The linker script holds the budget: an image whose RAM or flash does not fit fails to link, and the error
 * names the region and the overflow.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { footprint } from "../../compiler/budget.js";
import { exportC } from "../../compiler/codegen/export-c.js";
import type { Manifest } from "../../compiler/codegen/manifest.js";
import { fail } from "../../compiler/errors.js";
import { inspectWasm } from "../../compiler/host/wasm-info.js";
import { findExecutable } from "../protocol.js";
import { findWamrSources, MAIN_C, type WamrSources } from "../wamr/build.js";
import { teenygradCacheDir } from "../wasmtime/runner.js";
import type { Board } from "./boards.js";
import { type PoolSize, wamrPoolSize } from "./pool.js";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const PLATFORM_DIR = join(HERE, "platform");
const FIRMWARE_DIR = join(HERE, "firmware");
const PLATFORM_HEADERS = ["platform_internal.h", "shared_heap_check.h"];

export const ARM_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm";

const run = promisify(execFile);

/** firmware.c's measurements around WAMR's entry points (the linker's --wrap) */
export const FIRMWARE_WRAPS = ["wasm_runtime_call_wasm_a", "wasm_runtime_destroy", "wasm_runtime_malloc"].map((f) => `-Wl,--wrap=${f}`);

/** how the firmware runs the blob: WAMR's fast interpreter, or ahead-of-time code from wamrc */
export type McuEngine = "interpreter" | "aot";

/** what `teenygrad run fw.elf` needs to feed the image: stored in the ELF's non-loaded .teenygrad section */
export interface FirmwareInfo {
  board: string;
  engine: McuEngine;
  budget: { ram: number; flash: number };
  manifest: Manifest;
}

export const FIRMWARE_INFO_SECTION = ".teenygrad";

/** bytes of the linked image by owner, in flash and in RAM */
export interface ImageSizes {
  flash: SizeSplit;
  ram: SizeSplit;
  /** WAMR's pool (in RAM): the linear memory, the loaded module, the interpreter's stack (targets/mcu/pool.ts) */
  pool: PoolSize;
}

export interface SizeSplit {
  total: number;
  wamr: number;
  /** newlib and libgcc */
  libc: number;
  /** start-up code, platform layer, main.c, newlib's heap and the C stack */
  embedding: number;
  /** flash: the blob (or its AOT module) and its weights; RAM: its linear memory */
  model: number;
}

export interface FirmwareOptions {
  board: Board;
  /** budgets in bytes; the board's defaults when absent */
  ram?: number;
  flash?: number;
  engine?: McuEngine;
  /** the AOT module for engine "aot" (from wamrc) */
  aotModule?: Uint8Array;
  /** a wamr-flash blob's weights (compile's OUT.weights.bin), linked into flash */
  weights?: Uint8Array;
  /** names the blob in messages */
  source?: string;
  /** WAMR's pool in bytes instead of the computed one (targets/mcu/pool.ts); one too small fails at boot, naming the shortfall */
  poolBytes?: number;
}

export interface FirmwareImage {
  path: string;
  info: FirmwareInfo;
  sizes: ImageSizes;
}

/** $TEENYGRAD_ARM_GCC, else arm-none-eabi-gcc on PATH; its ar and objcopy sit beside it */
export function findArmGcc(): string | null {
  return findExecutable("TEENYGRAD_ARM_GCC", ["arm-none-eabi-gcc"]);
}

interface ArmTools {
  gcc: string;
  ar: string;
  objcopy: string;
}

/** the cross toolchain, or a failure naming the Debian packages to install */
function armTools(): ArmTools {
  const gcc = findArmGcc() ?? fail(`arm-none-eabi-gcc not found: firmware needs Debian's ${ARM_PACKAGES} (apt-get install -y ${ARM_PACKAGES}, or npm run mcu)`);
  const sibling = (tool: string) => gcc.replace(/gcc$/, tool);
  return { gcc, ar: sibling("ar"), objcopy: sibling("objcopy") };
}

/** the WAMR sources, fetching nothing: cargo puts them in its registry (scripts/install-engines.sh) */
export function requireWamrSources(): WamrSources {
  const sources = findWamrSources();
  if (!sources) fail("WAMR's sources (the wamrx-sys crate) are not in cargo's registry: run `cargo fetch --locked --manifest-path targets/native-runner/Cargo.toml` or npm run engines");
  return sources;
}

/** Builds the firmware image for `blob` into `output` (an ELF file). */
export async function buildFirmware(blob: Uint8Array, output: string, opts: FirmwareOptions): Promise<FirmwareImage> {
  const { board } = opts;
  const source = opts.source ?? "<blob>";
  const engine = opts.engine ?? "interpreter";
  const budget = { ram: opts.ram ?? board.ram.bytes, flash: opts.flash ?? board.flash.bytes };
  if (budget.ram > board.ram.maxBytes) fail(`--ram ${budget.ram}: ${board.name} has ${board.ram.maxBytes} bytes of RAM`);
  if (budget.flash > board.flash.maxBytes) fail(`--flash ${budget.flash}: ${board.name} has ${board.flash.maxBytes} bytes of flash`);
  const info = inspectWasm(blob, source);
  const manifest = info.manifest ?? fail(`${source}: no teenygrad.manifest custom section: not a teenygrad blob`);
  if (info.features.includes("simd128")) fail(`${source}: WAMR on ${board.name} has no SIMD; compile with --target wamr-flash (weights read in place from flash)`);
  if (manifest.weights.sharedHeap && !opts.weights) fail(`${source}: a wamr-flash blob keeps its weights apart: give its weights file (compile writes OUT.weights.bin)`);
  if (!manifest.weights.embedded && !manifest.weights.sharedHeap) fail(`${source}: firmware needs the weights in flash: compile with --target wamr-flash (or wasm-scalar without --weights-file)`);
  if (engine === "aot" && !opts.aotModule) fail(`${source}: the "aot" engine needs the module wamrc compiled`);
  const tools = armTools();
  const sources = requireWamrSources();
  const library = await buildWamrLibrary(boardLibrary(tools, board, sources, engine === "aot"), sources);

  const dir = mkdtempSync(join(tmpdir(), "teenygrad-firmware-"));
  try {
    const header = exportC(blob, { source: basename(source), weights: opts.weights });
    writeFileSync(join(dir, "model.h"), engine === "aot" ? withModuleBytes(header, opts.aotModule!) : header);
    writeFileSync(join(dir, "memory.ld"), memoryScript(board, budget));
    const moduleBytes = engine === "aot" ? opts.aotModule!.length : blob.length;
    // main.c's interpreter stack is the compiler's MODEL_STACK_BYTES
    const computed = wamrPoolSize(info, manifest, engine, footprint(blob.length, info, manifest).ram.stack, opts.aotModule?.length);
    const pool = opts.poolBytes === undefined ? computed : { ...computed, bytes: opts.poolBytes };
    const poolBytes = pool.bytes;
    const include = wamrIncludes(sources, PLATFORM_DIR);
    const cflags = [...board.cflags, "-std=gnu99", "-O2", "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Werror"];
    const objects: string[] = [];
    const compile = async (file: string, extra: string[] = []) => {
      const object = join(dir, `${basename(file, ".c")}.o`);
      await tool(tools.gcc, [...cflags, ...extra, ...include, "-I", dir, "-c", file, "-o", object]);
      objects.push(object);
    };
    await compile(join(FIRMWARE_DIR, "startup.c"), [`-DFIRMWARE_SYSTICK_HZ=${board.qemu.systickHz}u`]);
    await compile(join(FIRMWARE_DIR, "firmware.c"));
    // the interpreter stack is main.c's default, the compiler's MODEL_STACK_BYTES
    await compile(MAIN_C, ["-Dmain=embedding_main", `-DRUN_MODEL_POOL_BYTES=${poolBytes}u`]);
    const map = join(dir, "firmware.map");
    const linked = join(dir, "firmware.elf");
    try {
      await run(tools.gcc, [
        ...board.cflags, "--specs=nano.specs", "--specs=rdimon.specs", "-nostartfiles",
        "-Wl,--gc-sections", `-Wl,-Map=${map}`, "-L", dir, "-T", join(FIRMWARE_DIR, "firmware.ld"),
        ...FIRMWARE_WRAPS,
        ...objects, library, "-lm", "-o", linked,
      ], { maxBuffer: 64 * 1024 * 1024 });
    } catch (e) {
      const stderr = (e as { stderr?: string }).stderr ?? String(e);
      const overflows = [...stderr.matchAll(/region `(\w+)' overflowed by (\d+) bytes/g)];
      if (overflows.length === 0) fail(`linking the firmware for ${source} failed:\n${stderr.trim()}`);
      const what = overflows.map(([, region, bytes]) => overflowMessage(region, Number(bytes), budget, pool, moduleBytes + (opts.weights?.length ?? 0)));
      fail(`${source} does not fit ${board.name}: ${what.join("; ")}`);
    }
    const firmwareInfo: FirmwareInfo = { board: board.name, engine, budget, manifest };
    const infoFile = join(dir, "info.json");
    writeFileSync(infoFile, JSON.stringify(firmwareInfo));
    // a section that is never loaded: it costs the device nothing
    await tool(tools.objcopy, ["--add-section", `${FIRMWARE_INFO_SECTION}=${infoFile}`, "--set-section-flags", `${FIRMWARE_INFO_SECTION}=noload,readonly`, linked, output]);
    return { path: output, info: firmwareInfo, sizes: imageSizes(readFileSync(map, "utf8"), board, pool) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function overflowMessage(region: string, bytes: number, budget: { ram: number; flash: number }, pool: PoolSize, flashBytes: number): string {
  if (region === "RAM") {
    return `RAM (${kib(budget.ram)}) overflowed by ${kib(bytes)} (${bytes} bytes): WAMR's pool alone takes ${kib(pool.bytes)}, of which ${kib(pool.linearMemory)} is the blob's linear memory`;
  }
  return `${region === "FLASH" ? "flash" : region} (${kib(budget.flash)}) overflowed by ${kib(bytes)} (${bytes} bytes): the module and its weights alone are ${kib(flashBytes)}`;
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

function memoryScript(board: Board, budget: { ram: number; flash: number }): string {
  const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;
  return [
    `/* ${board.name}, written by teenygrad firmware */`,
    "MEMORY",
    "{",
    `    FLASH (rx) : ORIGIN = ${hex(board.flash.origin)}, LENGTH = ${budget.flash}`,
    `    RAM (rwx) : ORIGIN = ${hex(board.ram.origin)}, LENGTH = ${budget.ram}`,
    "}",
    `__heap_bytes = ${board.heapBytes};`,
    `__stack_bytes = ${board.stackBytes};`,
    "",
  ].join("\n");
}

/** the header with the AOT module in place of the blob's bytes (the tensor tables stay the blob's) */
export function withModuleBytes(header: string, module: Uint8Array): string {
  const size = /^#define MODEL_WASM_BYTES \d+u$/m;
  const array = /^static const uint8_t model_wasm\[MODEL_WASM_BYTES\] TEENYGRAD_ALIGNED = \{\n[^}]*\};$/m;
  if (!size.test(header) || !array.test(header)) fail("export-c's header no longer has MODEL_WASM_BYTES and const model_wasm[]: update targets/mcu/build.ts");
  const rows: string[] = [];
  for (let at = 0; at < module.length; at += 16) rows.push(`    ${Array.from(module.subarray(at, at + 16), (b) => `0x${b.toString(16).padStart(2, "0")}`).join(", ")},`);
  return header
    .replace(size, `#define MODEL_WASM_BYTES ${module.length}u`)
    .replace(array, () => `/* wamrc's AOT module in place of the blob */\nstatic const uint8_t model_wasm[MODEL_WASM_BYTES] TEENYGRAD_ALIGNED = {\n${rows.join("\n")}\n};`);
}

/** WAMR's compile-time configuration on a microcontroller: as targets/wamr/build.ts's, or AOT alone */
function wamrDefines(board: Board, aot: boolean): string[] {
  return [
    `-D${board.wamrTargetDefine}`,
    `-DBUILD_TARGET="${board.wamrTarget}"`,
    "-DBH_MALLOC=wasm_runtime_malloc",
    "-DBH_FREE=wasm_runtime_free",
    "-DBH_PLATFORM_TEENYGRAD_MCU",
    `-DWASM_ENABLE_INTERP=${aot ? 0 : 1}`,
    `-DWASM_ENABLE_FAST_INTERP=${aot ? 0 : 1}`,
    `-DWASM_ENABLE_AOT=${aot ? 1 : 0}`,
    "-DWASM_ENABLE_JIT=0",
    "-DWASM_ENABLE_FAST_JIT=0",
    "-DWASM_ENABLE_LIBC_BUILTIN=0",
    "-DWASM_ENABLE_LIBC_WASI=0",
    "-DWASM_ENABLE_SIMD=0",
    "-DWASM_ENABLE_REF_TYPES=0",
    "-DWASM_ENABLE_BULK_MEMORY=1",
    // memory.copy and memory.fill (WAMR 2.4 splits them from the rest of bulk memory)
    "-DWASM_ENABLE_BULK_MEMORY_OPT=1",
    "-DWASM_ENABLE_SHARED_MEMORY=0",
    // wamr-flash blobs read their weights in place from flash as a shared heap (targets/wamr/teenygrad_weights.h)
    "-DWASM_ENABLE_SHARED_HEAP=1",
    "-DWASM_ENABLE_MULTI_MODULE=0",
    "-DWASM_ENABLE_MINI_LOADER=0",
    "-DWASM_ENABLE_THREAD_MGR=0",
    "-DWASM_DISABLE_HW_BOUND_CHECK=1",
    "-DWASM_DISABLE_STACK_HW_BOUND_CHECK=1",
    "-DWASM_DISABLE_WAKEUP_BLOCKING_OP=1",
    // a table of native entry points for calling AOT functions quickly, 768 bytes of RAM (.data): one call to run() needs none
    "-DWASM_ENABLE_QUICK_AOT_ENTRY=0",
  ];
}

/** WAMR's include directories, with the platform layer's (platform_internal.h) */
export function wamrIncludes(sources: WamrSources, platformDir: string): string[] {
  const dirs = ["core/iwasm/include", "core/iwasm/common", "core/iwasm/interpreter", "core/iwasm/aot", "core/iwasm/compilation", "core/shared/utils", "core/shared/utils/uncommon", "core/shared/mem-alloc", "core/shared/platform/include", "core"];
  return [...dirs.flatMap((d) => ["-I", join(sources.root, d)]), "-I", platformDir];
}

/**
 * WAMR's C sources for a configuration (the files WAMR's CMake would pick): the common runtime with this
 * architecture's invokeNative and the shared heap's natives, an interpreter, the AOT runtime and its relocations when asked, the allocator,
 * the utilities, and the platform layer's files.
 */
export function wamrSourceFiles(sources: WamrSources, config: { invokeNative: string; interpreter?: "fast" | "classic"; aotReloc?: string; platform: string[] }): string[] {
  const core = (path: string) => join(sources.root, "core", path);
  const common = ["wasm_application", "wasm_blocking_op", "wasm_c_api", "wasm_exec_env", "wasm_loader_common", "wasm_memory", "wasm_native", "wasm_runtime_common", "wasm_shared_memory"];
  const utils = ["bh_assert", "bh_bitmap", "bh_common", "bh_hashmap", "bh_leb128", "bh_list", "bh_log", "bh_queue", "bh_vector", "runtime_timer"];
  return [
    ...common.map((f) => core(`iwasm/common/${f}.c`)),
    core(`iwasm/common/arch/${config.invokeNative}`),
    // every configuration has WASM_ENABLE_SHARED_HEAP (wamr-flash's weights), which registers these natives
    core("iwasm/libraries/shared-heap/shared_heap_wrapper.c"),
    ...(config.interpreter ? ["wasm_loader", "wasm_runtime", `wasm_interp_${config.interpreter}`].map((f) => core(`iwasm/interpreter/${f}.c`)) : []),
    ...(config.aotReloc ? [...["aot_intrinsic", "aot_loader", "aot_runtime"].map((f) => core(`iwasm/aot/${f}.c`)), core(`iwasm/aot/arch/${config.aotReloc}`)] : []),
    ...["ems_alloc", "ems_gc", "ems_hmu", "ems_kfc"].map((f) => core(`shared/mem-alloc/ems/${f}.c`)),
    core("shared/mem-alloc/mem_alloc.c"),
    ...utils.map((f) => core(`shared/utils/${f}.c`)),
    ...config.platform,
  ];
}

/** a build of WAMR's sources into one static library: for the board (arm-none-eabi) or for this machine */
export interface WamrLibrarySpec {
  /** names the cache entry, e.g. "mps2-an386-interp" */
  name: string;
  cc: string;
  cxx?: string;
  ar: string;
  /** for every file: code generation, defines, include directories */
  cflags: string[];
  /** added for the files whose names (without directory) are the keys */
  fileCflags?: Record<string, string[]>;
  /** added for C++ files */
  cxxflags?: string[];
  files: string[];
}

/**
 * The library for `spec`, built on first use two files at a time (the machine is shared) and cached by WAMR's
 * version, the flags, the files and the contents of our own files among them.
 */
export async function buildWamrLibrary(spec: WamrLibrarySpec, sources: WamrSources): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify({ ...spec, files: spec.files.map((f) => basename(f)) }));
  for (const file of spec.files) if (file.startsWith(HERE)) hash.update(readFileSync(file));
  // the platform layer's headers, for the builds that include them
  if (spec.cflags.includes(PLATFORM_DIR)) for (const header of PLATFORM_HEADERS) hash.update(readFileSync(join(PLATFORM_DIR, header)));
  const dir = join(teenygradCacheDir(), "wamr", `wamr-${sources.version}-${spec.name}-${hash.digest("hex").slice(0, 12)}`);
  const library = join(dir, "libiwasm.a");
  if (existsSync(library)) return library;
  const build = `${dir}.${process.pid}.build`;
  mkdirSync(build, { recursive: true });
  try {
    const objects = spec.files.map((f, i) => join(build, `${i}-${basename(f).replace(/\.(c|s|cpp)$/, "")}.o`));
    const compile = (file: string, object: string) => file.endsWith(".cpp")
      ? tool(spec.cxx ?? fail(`${spec.name}: no C++ compiler for ${file}`), [...spec.cflags, ...(spec.cxxflags ?? []), "-c", file, "-o", object])
      : tool(spec.cc, [...spec.cflags, ...(spec.fileCflags?.[basename(file)] ?? []), "-c", file, "-o", object]);
    for (let i = 0; i < spec.files.length; i += 2) {
      await Promise.all(spec.files.slice(i, i + 2).map((f, j) => compile(f, objects[i + j])));
    }
    await tool(spec.ar, ["rcs", join(build, "libiwasm.a"), ...objects]);
    mkdirSync(dir, { recursive: true });
    // rename, so a concurrent build never sees half a library
    renameSync(join(build, "libiwasm.a"), library);
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  return library;
}

function boardLibrary(tools: ArmTools, board: Board, sources: WamrSources, aot: boolean): WamrLibrarySpec {
  return {
    name: `${board.name}-${aot ? "aot" : "interp"}`,
    cc: tools.gcc,
    ar: tools.ar,
    cflags: [...board.cflags, "-std=gnu99", "-O2", "-ffunction-sections", "-fdata-sections", ...wamrDefines(board, aot), ...wamrIncludes(sources, PLATFORM_DIR)],
    // the fast interpreter tests for the shared heap inline (see the header)
    fileCflags: { "wasm_interp_fast.c": ["-include", join(PLATFORM_DIR, "shared_heap_check.h")] },
    // one engine per image: the interpreter, or the AOT runtime alone (flash is scarce)
    files: wamrSourceFiles(sources, { invokeNative: board.invokeNative, interpreter: aot ? undefined : "fast", aotReloc: aot ? board.aotReloc : undefined, platform: [join(PLATFORM_DIR, "mcu_platform.c")] }),
  };
}

/**
 * Splits the linked image by owner from the linker's map: every input section's address, size and object.
 * .data counts in RAM and (its initial image) in flash; the model's flash is its blob (or AOT module) and weights,
 * its RAM its linear memory inside WAMR's pool.
 */
export function imageSizes(map: string, board: Board, pool: PoolSize): ImageSizes {
  const flash: SizeSplit = { total: 0, wamr: 0, libc: 0, embedding: 0, model: 0 };
  const ram: SizeSplit = { total: 0, wamr: 0, libc: 0, embedding: 0, model: 0 };
  const body = map.slice(map.indexOf("Linker script and memory map"));
  // an input section: " .name 0xADDR 0xSIZE object", the name possibly alone on the line before
  const input = /^ (\.[^\s]+|COMMON)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$/gm;
  const flat = body.replace(/^ (\.[^\s]+)\n\s+(0x)/gm, " $1 $2");
  for (const [, name, address, size, object] of flat.matchAll(input)) {
    const bytes = parseInt(size, 16);
    const at = parseInt(address, 16);
    if (bytes === 0 || name.startsWith(".debug") || name.startsWith(".comment") || name.startsWith(".ARM.attributes")) continue;
    const owner: keyof Omit<SizeSplit, "total"> = /libiwasm\.a/.test(object) ? "wamr"
      : /lib(c|m|g|gcc|rdimon|c_nano|g_nano|rdimon_nano)\.a|crt/.test(object) ? "libc"
      : /^\.rodata\.model_(wasm|weights)$/.test(name) ? "model"
      : "embedding";
    const inRam = at >= board.ram.origin && at < board.ram.origin + board.ram.maxBytes;
    if (inRam) {
      ram[owner] += bytes;
      if (name.startsWith(".data")) flash[owner] += bytes;
    } else if (at >= board.flash.origin && at < board.flash.origin + board.flash.maxBytes) flash[owner] += bytes;
  }
  // the pool is main.c's array: split it into the linear memory (model) and the rest (WAMR's)
  ram.embedding -= pool.bytes;
  ram.wamr += pool.bytes - pool.linearMemory;
  ram.model += pool.linearMemory;
  ram.embedding += board.heapBytes + board.stackBytes;
  for (const split of [flash, ram]) split.total = split.wamr + split.libc + split.embedding + split.model;
  return { flash, ram, pool };
}

export async function tool(command: string, args: string[]): Promise<void> {
  try {
    await run(command, args, { maxBuffer: 64 * 1024 * 1024 });
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string };
    fail(`${command} ${args.join(" ")} failed: ${err.stderr?.trim() || err.stdout?.trim() || err.message}`);
  }
}
