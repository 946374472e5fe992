/** Reads one section of an ELF32 little-endian file (the firmware's .teenygrad record) without a toolchain. */
import { fail } from "../../compiler/errors.js";

export function readElfSection(elf: Uint8Array, name: string, source: string): Uint8Array | null {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const isElf32Le = elf.length >= 52 && view.getUint32(0, false) === 0x7f454c46 && elf[4] === 1 && elf[5] === 1;
  if (!isElf32Le) fail(`${source}: not a 32-bit little-endian ELF file`);
  const sectionTable = view.getUint32(32, true);
  const entrySize = view.getUint16(46, true);
  const count = view.getUint16(48, true);
  const namesIndex = view.getUint16(50, true);
  if (sectionTable + count * entrySize > elf.length) fail(`${source}: truncated ELF section table`);
  const header = (i: number) => {
    const at = sectionTable + i * entrySize;
    return { name: view.getUint32(at, true), offset: view.getUint32(at + 16, true), size: view.getUint32(at + 20, true) };
  };
  const names = header(namesIndex);
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    const section = header(i);
    const start = names.offset + section.name;
    const end = elf.indexOf(0, start);
    if (decoder.decode(elf.subarray(start, end)) === name) return elf.subarray(section.offset, section.offset + section.size);
  }
  return null;
}
