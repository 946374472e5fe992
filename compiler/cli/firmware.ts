import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseSize } from "../budget.js";
import { fail } from "../errors.js";
import { inspectWasm } from "../host/wasm-info.js";
import { BOARDS, findBoard } from "../../targets/mcu/boards.js";
import type { ImageSizes, SizeSplit } from "../../targets/mcu/build.js";

/** `teenygrad firmware MODEL.wasm --board B -o fw.elf`: argument parsing and printing over targets/mcu. */

/** a wamr-flash blob's weights: `given`, else BLOB.weights.bin beside it (compile writes it there); none for other blobs */
export function readWamrFlashWeights(blob: string, wasm: Uint8Array, given: string | undefined): Uint8Array | undefined {
  const sharedHeap = inspectWasm(wasm, blob).manifest?.weights.sharedHeap;
  const file = given ?? (sharedHeap ? `${blob.replace(/\.wasm$/, "")}.weights.bin` : undefined);
  if (!file) return undefined;
  if (!existsSync(file)) fail(`${blob}: a wamr-flash blob's weights file ${file} does not exist (compile writes it beside the blob; or give --weights)`);
  return readFileSync(file);
}

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

export function formatImageSizes(sizes: ImageSizes, budget: { ram: number; flash: number }): string {
  const row = (what: string, s: SizeSplit, limit: number) =>
    `  ${what.padEnd(6)} ${kib(s.total).padStart(10)} of ${kib(limit)}: WAMR ${kib(s.wamr)}, C library ${kib(s.libc)}, embedding ${kib(s.embedding)}, model ${kib(s.model)}`;
  return [
    row("flash", sizes.flash, budget.flash),
    row("RAM", sizes.ram, budget.ram),
    `  WAMR's pool ${kib(sizes.pool.bytes)} (in RAM above): the blob's linear memory ${kib(sizes.pool.linearMemory)} (model); WAMR's module and instance ${kib(sizes.pool.module)}, stack ${kib(sizes.pool.execEnv)}, allocator and margin ${kib(sizes.pool.overhead)}`,
  ].join("\n");
}

export function registerFirmwareCommand(program: Command): void {
  program
    .command("firmware")
    .description("build a bare-metal firmware image (ELF) that runs a blob in WAMR on a microcontroller board; fails to link when it does not fit the budget")
    .argument("<blob>", "compiled .wasm: --target wamr-flash (weights read in place from flash), or wasm-scalar (weights copied to RAM)")
    .requiredOption("-o, --output <file>", "output .elf image")
    .option("--board <name>", `board: ${Object.keys(BOARDS).join(", ")}`, "mps2-an386")
    .option("--ram <size>", "RAM budget, e.g. 256K (default: the board's)")
    .option("--flash <size>", "flash budget, e.g. 1M (default: the board's)")
    .option("--weights <file>", "a wamr-flash blob's weights (default: BLOB.weights.bin beside it)")
    .option("--aot", "run ahead-of-time code from wamrc (built from WAMR's sources against Debian's LLVM) instead of the interpreter")
    .action(async (blob: string, o) => {
      const [{ compileAot }, { buildFirmware }] = await Promise.all([import("../../targets/mcu/aot.js"), import("../../targets/mcu/build.js")]);
      const board = findBoard(o.board);
      const wasm = readFileSync(blob);
      const image = await buildFirmware(wasm, o.output, {
        board,
        engine: o.aot ? "aot" : "interpreter",
        aotModule: o.aot ? await compileAot(wasm, board.aot, blob) : undefined,
        weights: readWamrFlashWeights(blob, wasm, o.weights),
        ram: o.ram === undefined ? undefined : parseSize(o.ram),
        flash: o.flash === undefined ? undefined : parseSize(o.flash),
        source: blob,
      });
      console.log(`${blob} → ${board.name} (${board.cpu}, WAMR ${image.info.engine})`);
      console.log(formatImageSizes(image.sizes, image.info.budget));
      console.log(`wrote ${o.output}`);
    });
}
