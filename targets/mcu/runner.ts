/**
 * Boots a firmware image (targets/mcu/build.ts) in QEMU and runs its blob once (Node only): the inputs' raw
 * bytes go in as the semihosting file inputs.bin, the outputs come back as outputs.bin, and the image reports
 * the SysTick ticks run() took. Under -icount every instruction advances virtual time by the same amount, so
 * the ticks give the instructions executed: deterministic, and instructions, not cycles.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fail } from "../../compiler/errors.js";
import type { TypedArray } from "../../compiler/ir/dtype.js";
import type { InputValues } from "../../compiler/host/loader.js";
import { bytesOf, checkedInputs, findExecutable, splitOutputs } from "../protocol.js";
import { findWamrSources } from "../wamr/build.js";
import { findBoard, ticksToInstructions } from "./boards.js";
import { ARM_PACKAGES, buildFirmware, findArmGcc, FIRMWARE_INFO_SECTION, type FirmwareInfo } from "./build.js";
import { readElfSection } from "./elf.js";

const run = promisify(execFile);

/** an emulated run may take minutes for a large model in the interpreter; a hang must still end */
const QEMU_TIMEOUT_MS = 10 * 60 * 1000;

export interface QemuRun {
  outputs: Record<string, TypedArray>;
  /** instructions executed inside run() */
  instructions: number;
  /** WAMR's pool: its size and the most of it ever in use */
  pool: { bytes: number; highmark: number };
  /** the deepest the C stack went, and newlib's heap in use, from start-up to exit */
  stackUsed: number;
  heapUsed: number;
}

/** the inputs' raw bytes, in manifest order, as the file firmware.c reads as its stdin */
export async function writeInputsFile(dir: string, arrays: TypedArray[]): Promise<void> {
  await writeFile(join(dir, "inputs.bin"), Buffer.concat(arrays.map((a) => bytesOf(a))));
}

/** what firmware.c reports on stderr: the ticks run() took, and WAMR's pool size and high-water mark */
export function parseFirmwareReport(stderr: string, what: string): { ticks: number; pool: { bytes: number; highmark: number } } {
  const ticks = /^teenygrad-firmware: run-ticks 0x([0-9a-f]+)$/m.exec(stderr);
  const pool = /^teenygrad-firmware: pool-bytes (\d+) pool-highmark (\d+)$/m.exec(stderr);
  if (!ticks || !pool) fail(`${what}: reported no run time or pool use:\n${stderr.trim()}`);
  return { ticks: Number(BigInt(`0x${ticks[1]}`)), pool: { bytes: Number(pool[1]), highmark: Number(pool[2]) } };
}

/** firmware.c's report of an allocation WAMR's pool could not serve, as a sentence naming the shortfall; or null */
export function poolShortfall(stderr: string): string | null {
  const short = /^teenygrad-firmware: pool-short request (\d+) free (\d+)$/m.exec(stderr);
  const pool = /^teenygrad-firmware: pool-bytes (\d+) pool-highmark (\d+)$/m.exec(stderr);
  if (!short) return null;
  const [request, free] = [Number(short[1]), Number(short[2])];
  // the block needs its header and rounding (targets/mcu/pool.ts)
  const missing = Math.ceil((request + 4) / 8) * 8 - free;
  const size = pool ? ` of ${pool[1]} bytes` : "";
  const why = missing > 0 ? `at least ${missing} bytes short` : `fragmented: ${free} bytes are free but not in one block`;
  return `WAMR's pool${size} ran out at boot: a request for ${request} bytes failed with ${free} free, ${why}; the image's pool is sized by targets/mcu/pool.ts (WAMR_MCU_COSTS), which under-counts this module`;
}

/** the record `teenygrad firmware` stores in the image: board, engine, budget, the blob's manifest */
export function readFirmwareInfo(elf: Uint8Array, source: string): FirmwareInfo {
  const section = readElfSection(elf, FIRMWARE_INFO_SECTION, source);
  if (!section) fail(`${source}: no ${FIRMWARE_INFO_SECTION} section: not an image from \`teenygrad firmware\``);
  return JSON.parse(new TextDecoder().decode(section)) as FirmwareInfo;
}

export function findQemu(): string | null {
  return findExecutable("TEENYGRAD_QEMU_ARM", ["qemu-system-arm"]);
}

/** why firmware cannot be built and run here (the missing tool or sources), or null when it can */
export function missingMcuTools(): string | null {
  if (!findArmGcc() || !findQemu()) return `arm-none-eabi-gcc or qemu-system-arm not found (Debian: ${ARM_PACKAGES}; npm run mcu)`;
  if (!findWamrSources()) return "WAMR's sources (the wamrx-sys crate) are not in cargo's registry (npm run engines)";
  return null;
}

/** Boots the image at `elfPath` with these inputs and returns its outputs and what it measured. */
export async function runInQemu(elfPath: string, inputs: InputValues): Promise<QemuRun> {
  const info = readFirmwareInfo(new Uint8Array(await readFile(elfPath)), elfPath);
  const board = findBoard(info.board);
  const qemu = findQemu() ?? fail(`qemu-system-arm not found: install Debian's ${ARM_PACKAGES} (or npm run mcu), or set TEENYGRAD_QEMU_ARM`);
  const arrays = checkedInputs(info.manifest, inputs, elfPath);
  const dir = await mkdtemp(join(tmpdir(), "teenygrad-qemu-"));
  try {
    await writeInputsFile(dir, arrays);
    const args = [
      "-M", board.qemu.machine, "-cpu", board.qemu.cpu,
      "-display", "none", "-monitor", "none", "-serial", "none",
      "-semihosting-config", "enable=on,target=native",
      "-icount", `shift=${board.qemu.icountShift},align=off,sleep=off`,
      "-kernel", elfPath,
    ];
    let stderr: string;
    try {
      // semihosting's console (the image's stderr) is QEMU's stdout
      const result = await run(qemu, args, { cwd: dir, timeout: QEMU_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
      stderr = `${result.stdout}${result.stderr}`;
    } catch (e) {
      const err = e as Error & { stdout?: string; stderr?: string; killed?: boolean };
      const said = `${err.stdout ?? ""}${err.stderr ?? ""}`.trim();
      if (err.killed) fail(`${elfPath}: QEMU did not finish within ${QEMU_TIMEOUT_MS / 60000} minutes`);
      const shortfall = poolShortfall(said);
      if (shortfall) fail(`${elfPath} failed on ${board.name}: ${shortfall}`);
      fail(`${elfPath} failed on ${board.name} (QEMU): ${said.split("\n").filter((l) => !l.startsWith("teenygrad-firmware: run-ticks")).join("; ") || err.message}`);
    }
    const report = parseFirmwareReport(stderr, elfPath);
    const used = /^teenygrad-firmware: stack-used (\d+) heap-used (\d+)$/m.exec(stderr) ?? fail(`${elfPath}: reported no stack or heap use:\n${stderr.trim()}`);
    const outputs = splitOutputs(info.manifest.outputs, new Uint8Array(await readFile(join(dir, "outputs.bin"))), `${board.name} (${elfPath})`);
    return { outputs, instructions: ticksToInstructions(board, report.ticks), pool: report.pool, stackUsed: Number(used[1]), heapUsed: Number(used[2]) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** the engines that boot firmware: an image from `teenygrad firmware`, or a blob built into one on the fly */
export type QemuEngine = "qemu" | "qemu-cortex-m4";

/** the board `qemu-cortex-m4` builds a blob's image for */
export const CORTEX_M4_BOARD = "mps2-an386";

/**
 * Runs once on a QEMU engine: "qemu" boots `image` (an ELF from `teenygrad firmware`); "qemu-cortex-m4" builds
 * the blob (with `weights` for a wamr-flash blob) into an image for mps2-an386 first, with the board's whole
 * memory as the budget (to check a budget, build with `teenygrad firmware --ram --flash`).
 */
export async function runOnQemuEngine(engine: QemuEngine, image: Uint8Array, inputs: InputValues, source: string, weights?: Uint8Array): Promise<QemuRun> {
  const dir = await mkdtemp(join(tmpdir(), "teenygrad-firmware-"));
  try {
    const elf = join(dir, "firmware.elf");
    if (engine === "qemu") {
      if (weights) fail(`${source}: a firmware image holds its weights; give no weights file`);
      await writeFile(elf, image);
    } else {
      const board = findBoard(CORTEX_M4_BOARD);
      await buildFirmware(image, elf, { board, ram: board.ram.maxBytes, flash: board.flash.maxBytes, weights, source });
    }
    return await runInQemu(elf, inputs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
