import assert from "node:assert/strict";
import { SECTION, splitSections } from "../../compiler/codegen/build.js";
import { readSleb, readUleb } from "../../compiler/codegen/wasm.js";

/** [offset, end) of every active data segment of a blob */
export function dataSegments(wasm: Uint8Array): [number, number][] {
  const data = splitSections(wasm).find((s) => s.id === SECTION.data);
  if (!data) return [];
  const p = data.payload;
  const count = readUleb(p, 0);
  const segments: [number, number][] = [];
  let at = count.next;
  for (let i = 0; i < count.value; i++) {
    const flags = readUleb(p, at);
    assert.ok(flags.value === 0 || flags.value === 1, `data segment flags ${flags.value}`);
    let offset = -1;
    at = flags.next;
    if (flags.value === 0) {
      assert.equal(p[at], 0x41, "an i32.const offset");
      const off = readSleb(p, at + 1);
      offset = off.value;
      at = off.next + 1;
    }
    const size = readUleb(p, at);
    at = size.next + size.value;
    if (offset >= 0) segments.push([offset, offset + size.value]);
  }
  return segments;
}
