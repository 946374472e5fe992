/**
 * Byte-level mutations of a model file for the fuzz tests and `npm run fuzz`: each takes the file and a source of
 * random integers (`int(n)` in [0, n)) and returns a mutated copy.
 */
export type Mutator = (bytes: Uint8Array, int: (n: number) => number) => Uint8Array;

/** 32-bit words a corrupt or hostile file likes to hold: sizes, counts, offsets and float attributes at their edges */
const SPECIAL_WORDS = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 16, 0x7fc00000 /* NaN */, 0x7f800000 /* +Inf */, 0x58635fa9 /* 1e15 as f32 */];

export const MUTATORS: [string, Mutator][] = [
  ["truncate", (b, int) => b.slice(0, int(b.length))],
  ["flip bits", (b, int) => {
    const m = b.slice();
    for (let k = 1 + int(8); k > 0; k--) m[int(m.length)] ^= 1 << int(8);
    return m;
  }],
  ["overwrite bytes", (b, int) => {
    const m = b.slice();
    const at = int(m.length);
    for (let k = 0; k < 1 + int(16) && at + k < m.length; k++) m[at + k] = int(256);
    return m;
  }],
  ["overwrite a header word", (b, int) => {
    // a TFLite file's root offset, vtable offsets and vector lengths, an ONNX file's first fields, live in the first few hundred bytes
    const m = b.slice();
    if (m.length >= 8) new DataView(m.buffer).setInt32(4 * int(Math.min(64, m.length / 4 - 1)), int(2 ** 32) - 2 ** 31, true);
    return m;
  }],
  ["write a special word", (b, int) => {
    const m = b.slice();
    if (m.length >= 4) new DataView(m.buffer).setInt32(int(m.length - 3), SPECIAL_WORDS[int(SPECIAL_WORDS.length)], true);
    return m;
  }],
  ["splice in random bytes", (b, int) => {
    const at = int(b.length + 1);
    const junk = Uint8Array.from({ length: 1 + int(64) }, () => int(256));
    return new Uint8Array([...b.subarray(0, at), ...junk, ...b.subarray(at)]);
  }],
  ["random bytes after the identifier", (b, int) => {
    const m = Uint8Array.from({ length: 8 + int(512) }, () => int(256));
    m.set(b.subarray(0, 8));
    return m;
  }],
];
