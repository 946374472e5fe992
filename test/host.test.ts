import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TeenygradError } from "../compiler/errors.js";
import { DTYPES, floatToHalf, halfToFloat, type DType, type TypedArray } from "../compiler/ir/dtype.js";
import { MANIFEST_SECTION } from "../compiler/codegen/manifest.js";
import { encodeNpy, parseNpy } from "../compiler/host/npy.js";
import { encodeSafetensors, parseSafetensors } from "../compiler/host/safetensors.js";
import { inspectWasm, parseManifest } from "../compiler/host/wasm-info.js";
import { loadBlob } from "../compiler/host/loader.js";
import { loadBlobInWorker } from "../compiler/host/worker.js";
import { Tensor } from "../compiler/tensor/tensor.js";
import {
  F, addOneModel, assemble, int64Model, manifestFor, manifestSection, rng, separateWeightsModel, slot, trappingModel,
  wasiAddOneCommand,
} from "./helpers/host-models.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { findOnnxBackendSuite, ONNX_SUITE_WHERE } from "../compiler/import/onnx/backend-test.js";
import { decodeTensor, storedTensor } from "../compiler/import/onnx/proto.js";

// ---- helpers

const ALL_DTYPES = Object.keys(DTYPES) as DType[];
const SHAPES = [[], [0], [1], [7], [3, 5], [2, 0, 3], [2, 3, 4], [1, 1, 1, 13]];

function throwsTeenygrad(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TeenygradError, `expected a TeenygradError, got ${(e as Error)?.stack ?? e}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

async function rejectsTeenygrad(promise: Promise<unknown>, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof TeenygradError, `expected a TeenygradError, got ${(e as Error)?.stack ?? e}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

/** runs fn; a TeenygradError is fine, anything else fails the test with the case that caused it */
function parsesOrTeenygrad(fn: () => unknown, what: string): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof TeenygradError) return false;
    assert.fail(`${what}: threw ${(e as Error)?.stack ?? e} instead of a TeenygradError`);
  }
}

function randomData(dtype: DType, count: number, random: () => number): TypedArray {
  const data = new DTYPES[dtype].array(count);
  for (let i = 0; i < count; i++) {
    if (dtype === "int64" || dtype === "uint64") (data as BigInt64Array)[i] = BigInt.asIntN(64, BigInt(Math.floor(random() * 2 ** 53)) * 4099n - 2n ** 62n);
    else if (dtype === "bool") data[i] = random() < 0.5 ? 1 : 0;
    else if (dtype === "float32" || dtype === "float64") data[i] = [NaN, -0, Infinity, 1e-40][i] ?? (random() - 0.5) * 1e6;
    else data[i] = Math.floor(random() * 2 ** 32); // wraps into the integer type
  }
  return data;
}

const bytesOf = (a: TypedArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const concat = (...parts: ArrayLike<number>[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

function assertSameArray(actual: TypedArray, expected: TypedArray, what: string): void {
  assert.equal(actual.constructor, expected.constructor, `${what}: array type`);
  assert.deepEqual(bytesOf(actual), bytesOf(expected), `${what}: bytes`);
}

// ---- .npy

/** a .npy file from a header text; version 1 uses a 16-bit header length, 2 and 3 a 32-bit one */
function npyFile(header: string, data: ArrayLike<number>, major = 1): Uint8Array {
  const length = major === 1 ? [header.length & 0xff, header.length >> 8] : [header.length & 0xff, header.length >> 8, 0, 0];
  return concat([0x93], ascii("NUMPY"), [major, 0], length, ascii(header), data);
}

describe("npy", () => {
  test("round trips every dtype and shape", () => {
    const random = rng(1);
    for (const dtype of ALL_DTYPES) {
      for (const shape of SHAPES) {
        const data = randomData(dtype, shape.reduce((a, b) => a * b, 1), random);
        const file = encodeNpy(dtype, shape, data);
        assert.equal(file.length % 64, (data.byteLength) % 64, "data starts 64-byte aligned");
        const back = parseNpy(file, "rt.npy");
        assert.equal(back.dtype, dtype);
        assert.deepEqual(back.shape, shape);
        assertSameArray(back.data, data, `${dtype}[${shape}]`);
      }
    }
  });

  test("writes exactly what np.save writes", () => {
    // np.save(f, np.arange(3, dtype=np.float32)): header padded with spaces to 128 bytes, ending in "\n"
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }".padEnd(117) + "\n";
    const expected = concat([0x93], ascii("NUMPY"), [1, 0, 0x76, 0], ascii(header), bytesOf(new Float32Array([0, 1, 2])));
    assert.equal(expected.length, 128 + 12);
    assert.deepEqual(encodeNpy("float32", [3], new Float32Array([0, 1, 2])), expected);
    // a 0-d int64 scalar: shape () gets no growth padding
    const scalar = encodeNpy("int64", [], new BigInt64Array([-5n]));
    assert.match(new TextDecoder().decode(scalar.subarray(10, scalar.length - 8)), /^\{'descr': '<i8', 'fortran_order': False, 'shape': \(\), \} +\n$/);
  });

  test("reads headers written by other writers", () => {
    // old numpy: 16-byte alignment, no growth padding; double quotes and no trailing comma are valid Python too
    const old = npyFile("{'descr': '<i2', 'fortran_order': False, 'shape': (2, 2), }    \n", bytesOf(new Int16Array([1, -2, 3, -4])));
    assert.deepEqual([...parseNpy(old).data], [1, -2, 3, -4]);
    const quoted = npyFile('{"shape":(2,),"fortran_order":False,"descr":"|u1"}\n', [7, 250]);
    assert.deepEqual(parseNpy(quoted), { dtype: "uint8", shape: [2], data: new Uint8Array([7, 250]) });
    const bool = npyFile("{'descr': '|b1', 'fortran_order': False, 'shape': (3,)}\n", [1, 0, 1]);
    assert.equal(parseNpy(bool).dtype, "bool");
    // versions 2.0 and 3.0 only widen the header length field
    for (const major of [2, 3]) {
      const file = npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n", bytesOf(new Float64Array([2.5])), major);
      assert.deepEqual([...parseNpy(file).data], [2.5]);
    }
  });

  test("converts big-endian data", () => {
    const i2 = npyFile("{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }\n", [0x01, 0x02, 0xff, 0xfe, 0x00, 0x05]);
    assert.deepEqual([...parseNpy(i2).data], [258, -2, 5]);
    const f8 = npyFile("{'descr': '>f8', 'fortran_order': False, 'shape': (), }\n", [0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(parseNpy(f8), { dtype: "float64", shape: [], data: new Float64Array([1.5]) });
    const i8 = npyFile("{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }\n", [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
    assert.deepEqual([...parseNpy(i8).data], [-2n]);
    const f4 = npyFile("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", [0xc0, 0x20, 0, 0]);
    assert.deepEqual([...parseNpy(f4).data], [-2.5]);
  });

  test("converts fortran order to C order", () => {
    const f2 = npyFile("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }\n", bytesOf(new Int32Array([1, 4, 2, 5, 3, 6])));
    assert.deepEqual([...parseNpy(f2).data], [1, 2, 3, 4, 5, 6]);
    // element (i, j, k) = 100i + 10j + k, stored column-major: offset i + 2j + 6k
    const column = new Float32Array(24);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) column[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
    const parsed = parseNpy(npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }\n", bytesOf(column)));
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expected.push(100 * i + 10 * j + k);
    assert.deepEqual([...parsed.data], expected);
    // big-endian and fortran together, and an empty fortran array
    const both = npyFile("{'descr': '>i2', 'fortran_order': True, 'shape': (2, 2), }\n", [0, 1, 0, 3, 0, 2, 0, 4]);
    assert.deepEqual([...parseNpy(both).data], [1, 2, 3, 4]);
    assert.equal(parseNpy(npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (0, 3), }\n", [])).data.length, 0);
  });

  test("rejects bad files with messages naming the file and the problem", () => {
    const good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
    const data = bytesOf(new Float32Array([1, 2]));
    const cases: [Uint8Array, RegExp][] = [
      [ascii("PK\x03\x04 this is a zip"), /not a \.npy file/],
      [new Uint8Array(0), /not a \.npy file/],
      [concat([0x93], ascii("NUMPY"), [4, 0, 0, 0]), /unsupported format version 4\.0/],
      [concat([0x93], ascii("NUMPY"), [1, 0, 0xff, 0], ascii(good)), /truncated header/],
      [npyFile(good, data.subarray(0, 7)), /truncated data: float32\[2\] needs 8 bytes, file has 7/],
      [npyFile(good, concat(data, [0])), /1 unexpected trailing bytes/],
      [npyFile("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n", data), /unsupported dtype '<c8'/],
      [npyFile("{'descr': '<U5', 'fortran_order': False, 'shape': (2,), }\n", data), /unsupported dtype '<U5'/],
      [npyFile("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n", data), /unsupported dtype '\|O'/],
      [npyFile("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }\n", data), /unsupported dtype '\|f4'/],
      [npyFile("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", data), /structured/],
      [npyFile("[1, 2]\n", data), /header is not a dict/],
      [npyFile("{'descr': '<f4', 'shape': (2,), }\n", data), /no 'fortran_order' key/],
      [npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", data), /unexpected header keys 'x'/],
      [npyFile("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }\n", data), /'fortran_order' must be True or False/],
      [npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", data), /'shape' must be a tuple of non-negative integers/],
      [npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }\n", data), /malformed header/],
      [npyFile("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", data), /duplicate key 'descr'/],
      [npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } extra\n", data), /malformed header.*after the dict/],
      [npyFile("(".repeat(5000), data), /nested too deeply/],
      [npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", data), /too large/],
      [npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n", data), /too large/],
    ];
    for (const [file, pattern] of cases) throwsTeenygrad(() => parseNpy(file, "weights/w.npy"), new RegExp(`\\(weights/w\\.npy\\).*${pattern.source}`, "s"));
  });

  test("encodeNpy rejects mismatched data", () => {
    throwsTeenygrad(() => encodeNpy("float32", [2, 2], new Float32Array(3)), /shape \[2, 2\] has 4 elements but the data has 3/);
    throwsTeenygrad(() => encodeNpy("float32", [2], new Float64Array(2)), /float32 data must be a Float32Array, got Float64Array/);
    throwsTeenygrad(() => encodeNpy("int32", [-1], new Int32Array(0)), /bad dimension -1/);
  });

  test("every truncation, bit flip and random file fails cleanly", () => {
    const file = encodeNpy("int16", [2, 3], new Int16Array([1, 2, 3, 4, 5, 6]));
    for (let n = 0; n < file.length; n++) throwsTeenygrad(() => parseNpy(file.subarray(0, n), "cut.npy"), /\(cut\.npy\)/);
    for (let i = 0; i < file.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = file.slice();
        flipped[i] ^= 1 << bit;
        parsesOrTeenygrad(() => parseNpy(flipped), `bit ${bit} of byte ${i}`);
      }
    }
    const random = rng(7);
    for (let k = 0; k < 500; k++) {
      const junk = Uint8Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256));
      if (k % 2) junk.set([0x93, ...ascii("NUMPY"), 1, 0].slice(0, junk.length));
      parsesOrTeenygrad(() => parseNpy(junk), `random file ${k}`);
    }
  });
});

// ---- .safetensors

function stFile(header: string, data: ArrayLike<number> = []): Uint8Array {
  const json = new TextEncoder().encode(header);
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(json.length), true);
  return concat(length, json, data);
}

describe("float16", () => {
  test("converts hand-computed values, rounding once to nearest even", () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [-0, 0x8000], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -24, 0x0001], [2 ** -25, 0], [3 * 2 ** -25, 0x0002], [2 ** -14 - 2 ** -25, 0x0400], // subnormal ties and the carry into the normals
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -40, 0x3c01], // a float64 just above a tie rounds up: no double rounding
    ];
    for (const [x, bits] of cases) assert.equal(floatToHalf(x), bits, `floatToHalf(${x})`);
    assert.ok(Number.isNaN(halfToFloat(floatToHalf(NaN))));
    for (let bits = 0; bits < 0x10000; bits++) {
      const x = halfToFloat(bits);
      if (!Number.isNaN(x)) assert.equal(floatToHalf(x), bits, `bits 0x${bits.toString(16)} round trip`);
    }
  });

  test("matches numpy's casts in the ONNX backend data", (t) => {
    const suite = findOnnxBackendSuite();
    if (!suite) return t.skip(`ONNX backend test data not found (${ONNX_SUITE_WHERE})`);
    const read = (test: string, file: string) => {
      const path = join(suite, "node", test, "test_data_set_0", file);
      return storedTensor(decodeTensor(readFileSync(path), path), path);
    };
    const [toHalfIn, toHalfOut] = [read("test_cast_FLOAT_to_FLOAT16", "input_0.pb"), read("test_cast_FLOAT_to_FLOAT16", "output_0.pb")];
    assert.equal(toHalfOut.dtype, "float16");
    toHalfIn.data.forEach((x, i) => {
      const [ours, numpy] = [floatToHalf(Number(x)), Number(toHalfOut.data[i])];
      if (Number.isNaN(Number(x))) assert.ok(Number.isNaN(halfToFloat(numpy)));
      else assert.equal(ours, numpy, `element ${i}: ${x}`);
    });
    const [fromHalfIn, fromHalfOut] = [read("test_cast_FLOAT16_to_FLOAT", "input_0.pb"), read("test_cast_FLOAT16_to_FLOAT", "output_0.pb")];
    assert.equal(fromHalfIn.dtype, "float16");
    fromHalfIn.data.forEach((bits, i) => assert.ok(Object.is(halfToFloat(Number(bits)), Number(fromHalfOut.data[i])), `element ${i}: 0x${bits.toString(16)}`));
  });

  test("a graph that computes on float16 fails clearly; moving its bits works", () => {
    const x = Tensor.from(new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x0001]), { shape: [2, 2], dtype: "float16" });
    assert.deepEqual([...x.permute([1, 0]).host().data], [0x3c00, 0x7c00, 0xc000, 0x0001]);
    throwsTeenygrad(() => x.add(x), /float16 is a storage dtype so far: add does not compute on it/);
  });
});

describe("safetensors", () => {
  test("round trips every dtype and shape, with metadata", () => {
    const random = rng(2);
    const tensors: Record<string, { dtype: DType; shape: number[]; data: TypedArray }> = {};
    ALL_DTYPES.forEach((dtype, d) => SHAPES.forEach((shape, s) => {
      tensors[`layer${s}.${dtype}.${d}`] = { dtype, shape, data: randomData(dtype, shape.reduce((a, b) => a * b, 1), random) };
    }));
    const metadata = { format: "pt", note: "ünïcode ✓" };
    const file = encodeSafetensors(tensors, metadata);
    const back = parseSafetensors(file, "rt.safetensors");
    assert.deepEqual(back.metadata, metadata);
    assert.deepEqual(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      assert.equal(back.tensors[name].dtype, t.dtype);
      assert.deepEqual(back.tensors[name].shape, t.shape);
      assertSameArray(back.tensors[name].data, t.data, name);
    }
  });

  test("writes the reference implementation's bytes", () => {
    // from the reference crate's own tests: one F32 [1, 2, 3] tensor "attn.0" holding 0..5 (header is 64 bytes)
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    assert.equal(header.length, 64);
    const data = new Float32Array([0, 1, 2, 3, 4, 5]);
    assert.deepEqual(encodeSafetensors({ "attn.0": { dtype: "float32", shape: [1, 2, 3], data } }), stFile(header, bytesOf(data)));
    // an empty file is "{}" padded with spaces to 8 bytes; metadata goes first
    assert.deepEqual(encodeSafetensors({}), stFile("{}      "));
    assert.deepEqual(encodeSafetensors({}, { framework: "pt" }), stFile('{"__metadata__":{"framework":"pt"}}     '));
  });

  test("orders tensors widest dtype first, then by name, so every tensor is aligned", () => {
    const t = (dtype: DType, n: number) => ({ dtype, shape: [n], data: new DTYPES[dtype].array(n) });
    const file = encodeSafetensors({ b: t("uint8", 3), a: t("float32", 1), z: t("int64", 1), c: t("bool", 1), y: t("float32", 2), d: t("int16", 1) });
    const length = Number(new DataView(file.buffer).getBigUint64(0, true));
    assert.equal(length % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + length)));
    assert.deepEqual(Object.keys(header), ["z", "a", "y", "d", "b", "c"]);
    assert.deepEqual(header.a.data_offsets, [8, 12]);
    assert.deepEqual(header.c.data_offsets, [25, 26]);
    assert.equal(file.length, 8 + length + 26);
  });

  test("a tensor named __proto__ is an ordinary tensor", () => {
    const tensors = JSON.parse('{"__proto__": 1}');
    Object.defineProperty(tensors, "__proto__", { value: { dtype: "int8", shape: [1], data: new Int8Array([9]) }, enumerable: true });
    const back = parseSafetensors(encodeSafetensors(tensors));
    assert.deepEqual([...Object.getOwnPropertyDescriptor(back.tensors, "__proto__")!.value.data], [9]);
    assert.equal(Object.getPrototypeOf(back.tensors), Object.prototype);
  });

  test("rejects bad files with messages naming the file, tensor and problem", () => {
    const f32 = (offsets: string, shape = "[2]") => `"t":{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}`;
    const eight = new Uint8Array(8);
    const big = new Uint8Array(8);
    new DataView(big.buffer).setBigUint64(0, 2n ** 63n, true);
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(5), /truncated: 5 bytes/],
      [big, /exceeds the 100000000-byte limit/],
      [concat([100, 0, 0, 0, 0, 0, 0, 0], ascii("{}")), /truncated header: declares 100 bytes, 2 present/],
      [stFile(" {}"), /must be a JSON object starting with "\{"/],
      [stFile('{"a"'), /not valid UTF-8 JSON/],
      [concat([3, 0, 0, 0, 0, 0, 0, 0], [0x7b, 0xff, 0x7d]), /not valid UTF-8 JSON/],
      [stFile("{}x"), /not valid UTF-8 JSON/],
      [stFile(`{${f32("[0,8]")}}`, eight.subarray(0, 4)), /tensor "t" bytes \[0, 8\) run past the 4-byte data buffer/],
      [stFile(`{${f32("[0,8]")}}`, concat(eight, [1, 2])), /2 trailing bytes after the last tensor/],
      [stFile(`{${f32("[0,4]")}}`, eight), /tensor "t": float32\[2\] needs 8 bytes but data_offsets \[0, 4\] span 4/],
      [stFile(`{${f32("[8,0]")}}`, eight), /end before they begin/],
      [stFile(`{${f32("[0,-8]")}}`, eight), /data_offsets must be \[begin, end\]/],
      [stFile(`{${f32("[0,8,9]")}}`, eight), /data_offsets must be \[begin, end\]/],
      [stFile(`{${f32("[0,8]", "[2.5]")}}`, eight), /shape must be an array of non-negative integers/],
      [stFile(`{${f32("[0,8]", '"2"')}}`, eight), /shape must be an array/],
      [stFile('{"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}', eight.subarray(0, 4)), /tensor "t": unsupported dtype "BF16"/],
      [stFile('{"t":[1,2]}'), /tensor "t": entry must be an object/],
      [stFile(`{${f32("[0,8]")},"u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), /tensor "u" bytes \[4, 8\) overlap the previous tensor/],
      [stFile(`{${f32("[4,12]")}}`, concat(eight, [0, 0, 0, 0])), /gap in the data buffer: bytes \[0, 4\) before tensor "t"/],
      [stFile('{"__metadata__":{"a":1}}'), /__metadata__ "a" must be a string/],
      [stFile('{"__metadata__":[]}'), /__metadata__ must be an object/],
      [stFile("[]"), /must be a JSON object starting with/],
      [stFile('{"t":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', eight), /too large/],
    ];
    for (const [file, pattern] of cases) {
      throwsTeenygrad(() => parseSafetensors(file, "model.safetensors"), new RegExp(`\\(model\\.safetensors\\).*${pattern.source}`, "s"));
    }
  });

  test("encodeSafetensors rejects mismatched tensors", () => {
    throwsTeenygrad(() => encodeSafetensors({ w: { dtype: "float32", shape: [3], data: new Float32Array(2) } }), /tensor "w" shape \[3\] has 3 elements, data has 2/);
    throwsTeenygrad(() => encodeSafetensors({ w: { dtype: "int64", shape: [1], data: new Int32Array(1) } }), /tensor "w" \(int64\) needs a BigInt64Array, got Int32Array/);
    throwsTeenygrad(() => encodeSafetensors({ __metadata__: { dtype: "int8", shape: [0], data: new Int8Array(0) } }), /reserved/);
    throwsTeenygrad(() => encodeSafetensors({}, { n: 1 as unknown as string }), /metadata "n" must be a string/);
  });

  test("every truncation, bit flip and random file fails cleanly", () => {
    const file = encodeSafetensors({
      a: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) },
      b: { dtype: "int8", shape: [3], data: new Int8Array([1, 2, 3]) },
    }, { k: "v" });
    for (let n = 0; n < file.length; n++) throwsTeenygrad(() => parseSafetensors(file.subarray(0, n), "cut.safetensors"), /\(cut\.safetensors\)/);
    let parsedAfterFlip = 0;
    for (let i = 0; i < file.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = file.slice();
        flipped[i] ^= 1 << bit;
        if (parsesOrTeenygrad(() => parseSafetensors(flipped), `bit ${bit} of byte ${i}`)) parsedAfterFlip++;
      }
    }
    assert.ok(parsedAfterFlip > 0, "flips in tensor data still parse"); // data bytes carry no structure
    const random = rng(11);
    for (let k = 0; k < 500; k++) {
      const junk = Uint8Array.from({ length: Math.floor(random() * 120) }, () => Math.floor(random() * 256));
      if (k % 2 && junk.length > 9) {
        junk.set([junk.length - 8, 0, 0, 0, 0, 0, 0, 0, 0x7b]); // plausible length and "{"
      }
      parsesOrTeenygrad(() => parseSafetensors(junk), `random file ${k}`);
    }
  });
});

// ---- wasm-info

const info = (wat: string, features: number = F.MVP) => inspectWasm(assemble(wat, features), "t.wasm");

describe("wasm-info", () => {
  test("reports exactly the features the code uses", () => {
    const cases: [string, string, number, string[]][] = [
      ["mvp", `(module (func (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))`, F.MVP, []],
      ["simd128", `(module (func (param v128) (result v128) (f32x4.add (local.get 0) (local.get 0))))`, F.SIMD128, ["simd128"]],
      ["memory.copy/fill", `(module (memory 1 1) (func
          (memory.copy (i32.const 0) (i32.const 8) (i32.const 4)) (memory.fill (i32.const 0) (i32.const 0) (i32.const 4))))`,
        F.BulkMemory | F.BulkMemoryOpt, ["bulk-memory"]],
      ["passive data", `(module (memory 1 1) (data $d "abc") (func (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3)) (data.drop $d)))`,
        F.BulkMemory | F.BulkMemoryOpt, ["bulk-memory"]],
      ["sign-ext", `(module (func (param i32) (result i32) (i32.extend8_s (local.get 0))))`, F.SignExt, ["sign-ext"]],
      ["nontrapping-fptoint", `(module (func (param f32) (result i32) (i32.trunc_sat_f32_s (local.get 0))))`,
        F.NontrappingFPToInt, ["nontrapping-fptoint"]],
      ["threads", `(module (memory 1 1 shared) (func (result i32) (i32.atomic.rmw.add (i32.const 0) (i32.const 1))))`,
        F.Atomics, ["threads"]],
      ["multivalue", `(module (func (result i32 i32) (i32.const 1) (i32.const 2)))`, F.Multivalue, ["multivalue"]],
      ["reference-types", `(module (func (param externref) (result i32) (ref.is_null (local.get 0))))`,
        F.ReferenceTypes, ["reference-types"]],
      ["tail-call", `(module (func $f (result i32) (return_call $f)))`, F.TailCall, ["tail-call"]],
      ["relaxed-simd", `(module (func (param v128) (result v128) (f32x4.relaxed_madd (local.get 0) (local.get 0) (local.get 0))))`,
        F.SIMD128 | F.RelaxedSIMD, ["relaxed-simd", "simd128"]],
      ["mutable-globals", `(module (global $g (mut i32) (i32.const 0)) (export "g" (global $g)))`, F.MutableGlobals, ["mutable-globals"]],
      ["extended-const", `(module (import "e" "b" (global $b i32)) (global i32 (i32.add (global.get $b) (i32.const 8))))`,
        F.ExtendedConst, ["extended-const"]],
      ["multimemory", `(module (memory $a 1 1) (memory $b 1 1) (func (result i32) (i32.load $b (i32.const 0))))`,
        F.MultiMemory, ["multimemory"]],
    ];
    for (const [name, wat, features, expected] of cases) assert.deepEqual(info(wat, features).features, expected, name);
  });

  test("decodes every simd128 and relaxed-simd opcode", () => {
    const w = (s: string) => s.trim().split(/\s+/);
    const ops = (type: string, names: string) => w(names).map((o) => `${type}.${o}`);
    const unary = [
      "v128.not", ...ops("i8x16", "abs neg popcnt"), ...ops("i16x8", "abs neg"), ...ops("i32x4", "abs neg"), ...ops("i64x2", "abs neg"),
      ...ops("f32x4", "abs neg sqrt ceil floor trunc nearest"), ...ops("f64x2", "abs neg sqrt ceil floor trunc nearest"),
      ...ops("i16x8", "extend_low_i8x16_s extend_low_i8x16_u extend_high_i8x16_s extend_high_i8x16_u extadd_pairwise_i8x16_s extadd_pairwise_i8x16_u"),
      ...ops("i32x4", "extend_low_i16x8_s extend_low_i16x8_u extend_high_i16x8_s extend_high_i16x8_u extadd_pairwise_i16x8_s extadd_pairwise_i16x8_u"),
      ...ops("i64x2", "extend_low_i32x4_s extend_low_i32x4_u extend_high_i32x4_s extend_high_i32x4_u"),
      ...ops("i32x4", "trunc_sat_f32x4_s trunc_sat_f32x4_u trunc_sat_f64x2_s_zero trunc_sat_f64x2_u_zero"),
      ...ops("f32x4", "convert_i32x4_s convert_i32x4_u demote_f64x2_zero"), ...ops("f64x2", "convert_low_i32x4_s convert_low_i32x4_u promote_low_f32x4"),
    ];
    const compare = "eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u";
    const binary = [
      ...ops("v128", "and andnot or xor"), "i8x16.swizzle",
      ...ops("i8x16", compare), ...ops("i16x8", compare), ...ops("i32x4", compare), ...ops("i64x2", "eq ne lt_s gt_s le_s ge_s"),
      ...ops("f32x4", "eq ne lt gt le ge"), ...ops("f64x2", "eq ne lt gt le ge"),
      ...ops("i8x16", "narrow_i16x8_s narrow_i16x8_u add add_sat_s add_sat_u sub sub_sat_s sub_sat_u min_s min_u max_s max_u avgr_u"),
      ...ops("i16x8", "narrow_i32x4_s narrow_i32x4_u add add_sat_s add_sat_u sub sub_sat_s sub_sat_u mul min_s min_u max_s max_u avgr_u q15mulr_sat_s"),
      ...ops("i16x8", "extmul_low_i8x16_s extmul_low_i8x16_u extmul_high_i8x16_s extmul_high_i8x16_u"),
      ...ops("i32x4", "add sub mul min_s min_u max_s max_u dot_i16x8_s extmul_low_i16x8_s extmul_low_i16x8_u extmul_high_i16x8_s extmul_high_i16x8_u"),
      ...ops("i64x2", "add sub mul extmul_low_i32x4_s extmul_low_i32x4_u extmul_high_i32x4_s extmul_high_i32x4_u"),
      ...ops("f32x4", "add sub mul div min max pmin pmax"), ...ops("f64x2", "add sub mul div min max pmin pmax"),
    ];
    const lanes = ["i8x16", "i16x8", "i32x4", "i64x2"];
    const loads = ops("v128", "load load8x8_s load8x8_u load16x4_s load16x4_u load32x2_s load32x2_u load8_splat load16_splat load32_splat load64_splat load32_zero load64_zero");
    const memLanes: [string, number][] = [["8", 15], ["16", 7], ["32", 3], ["64", 1]];
    const body = [
      ...unary.map((o) => `(drop (${o} (local.get $v)))`),
      ...binary.map((o) => `(drop (${o} (local.get $v) (local.get $v)))`),
      "(drop (v128.bitselect (local.get $v) (local.get $v) (local.get $v)))",
      "(drop (v128.any_true (local.get $v)))",
      ...lanes.flatMap((t) => [`(drop (${t}.all_true (local.get $v)))`, `(drop (${t}.bitmask (local.get $v)))`]),
      ...lanes.flatMap((t) => ["shl", "shr_s", "shr_u"].map((o) => `(drop (${t}.${o} (local.get $v) (local.get $i)))`)),
      ...["i8x16 $i", "i16x8 $i", "i32x4 $i", "i64x2 $l", "f32x4 $f", "f64x2 $d"].map((s) => `(drop (${s.split(" ")[0]}.splat (local.get ${s.split(" ")[1]})))`),
      ...["i8x16.extract_lane_s 15", "i8x16.extract_lane_u 15", "i16x8.extract_lane_s 7", "i16x8.extract_lane_u 7", "i32x4.extract_lane 3",
        "i64x2.extract_lane 1", "f32x4.extract_lane 3", "f64x2.extract_lane 1"].map((o) => `(drop (${o} (local.get $v)))`),
      ...["i8x16 15 $i", "i16x8 7 $i", "i32x4 3 $i", "i64x2 1 $l", "f32x4 3 $f", "f64x2 1 $d"].map((s) => {
        const [t, lane, x] = s.split(" ");
        return `(drop (${t}.replace_lane ${lane} (local.get $v) (local.get ${x})))`;
      }),
      ...loads.map((o) => `(drop (${o} offset=253 (local.get $i)))`),
      "(v128.store offset=252 (local.get $i) (local.get $v))",
      ...memLanes.map(([b, lane]) => `(drop (v128.load${b}_lane ${lane} (local.get $i) (local.get $v)))`),
      ...memLanes.map(([b, lane]) => `(v128.store${b}_lane ${lane} (local.get $i) (local.get $v))`),
      "(drop (v128.const i8x16 0xfd 0xfc 0xfe 0xc0 0x41 0x40 0 0 0 0 0 0 0 0 0 0))",
      "(drop (i8x16.shuffle 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16 (local.get $v) (local.get $v)))",
    ];
    assert.equal(body.length, 256 - 20, "every opcode 0x00..0xff except the 20 reserved ones");
    const simd = info(`(module (memory 1 1) (func (param $v v128) (param $i i32) (param $l i64) (param $f f32) (param $d f64)
      ${body.join("\n")}))`, F.SIMD128);
    assert.deepEqual(simd.features, ["simd128"]);
    assert.equal(simd.instructionCounts.simd128, body.length);

    const relaxed = [
      "(drop (i8x16.relaxed_swizzle (local.get $v) (local.get $v)))",
      ...ops("i32x4", "relaxed_trunc_f32x4_s relaxed_trunc_f32x4_u relaxed_trunc_f64x2_s_zero relaxed_trunc_f64x2_u_zero").map((o) => `(drop (${o} (local.get $v)))`),
      ...[...ops("f32x4", "relaxed_madd relaxed_nmadd"), ...ops("f64x2", "relaxed_madd relaxed_nmadd"), ...lanes.map((t) => `${t}.relaxed_laneselect`),
        "i32x4.relaxed_dot_i8x16_i7x16_add_s"].map((o) => `(drop (${o} (local.get $v) (local.get $v) (local.get $v)))`),
      ...[...ops("f32x4", "relaxed_min relaxed_max"), ...ops("f64x2", "relaxed_min relaxed_max"), "i16x8.relaxed_q15mulr_s",
        "i16x8.relaxed_dot_i8x16_i7x16_s"].map((o) => `(drop (${o} (local.get $v) (local.get $v)))`),
    ];
    assert.equal(relaxed.length, 0x114 - 0x100);
    const r = info(`(module (func (param $v v128) ${relaxed.join("\n")}))`, F.SIMD128 | F.RelaxedSIMD);
    assert.deepEqual(r.features, ["relaxed-simd", "simd128"]);
    assert.deepEqual([r.instructionCounts.relaxedSimd, r.instructionCounts.simd128], [relaxed.length, 0]);
  });

  test("immediates and data that look like prefixes are not features", () => {
    // 253 = LEB 0xfd 0x01, 252 = 0xfc 0x01, 254 = 0xfe 0x01, 192 = 0xc0 0x01; f32/f64 constants with such bytes
    const locals = Array.from({ length: 260 }, (_, i) => `(local $l${i} i32)`).join(" ");
    const wat = `(module
      (memory 1 1)
      (global $g (mut i32) (i32.const 253))
      (data (i32.const 252) "\\fd\\fc\\fe\\c0\\c1\\c2\\c3\\c4\\40")
      (func $f (param i32) (result i32)
        ${locals}
        (local.set $l253 (i32.const 253))
        (local.set $l252 (i64.eqz (i64.const 0xfefdfcc0c4)))
        (drop (f32.const 0x1.fafdfcp+0))
        (drop (f64.const 0x1.fdfcfefdc0c1cp+0))
        (drop (i32.load offset=253 align=4 (i32.const 254)))
        (i32.store16 offset=64768 (i32.const 192) (local.get $l254))
        (global.set $g (local.get $l253))
        (block $a (block $b (br_table $a $b $a (local.get 0))))
        (drop (memory.size))
        (local.get $l254))
      (export "run" (func $f)))`;
    const result = info(wat);
    assert.deepEqual(result.features, []);
    assert.equal(result.usesMemoryGrow, false);
    assert.equal(result.instructionCounts.simd128, 0);
  });

  test("reports sections, imports, exports, memory, sizes and the manifest", () => {
    const manifest = manifestFor({ inputs: [slot("x", 0, 4)], outputs: [slot("y", 16, 4)], pages: 2 });
    const bytes = assemble(`(module
      (import "env" "log" (func $log (param i32)))
      (import "env" "mem" (memory 2 2))
      (data (i32.const 64) "0123456789")
      (func $run (export "run") (result i32) (drop (memory.grow (i32.const 0))) (call $log (i32.const 1)) (i32.const 0))
      (export "memory" (memory 0)))`, F.MVP, { ...manifestSection(manifest), "producers": new Uint8Array(3) });
    const result = inspectWasm(bytes, "blob.wasm");
    assert.deepEqual(result.imports, [{ module: "env", name: "log", kind: "func" }, { module: "env", name: "mem", kind: "memory" }]);
    assert.deepEqual(result.exports, [{ name: "run", kind: "func" }, { name: "memory", kind: "memory" }]);
    assert.deepEqual(result.memory, { initial: 2, maximum: 2, imported: true });
    assert.deepEqual(result.manifest, manifest);
    assert.deepEqual(result.customSections.map((s) => s.name), [MANIFEST_SECTION, "producers"]);
    assert.deepEqual(result.customSections[1], { name: "producers", bytes: 3 });
    assert.deepEqual(result.sections.map((s) => s.name), ["type", "import", "function", "export", "code", "data", "custom", "custom"]);
    assert.equal(result.usesMemoryGrow, true);
    assert.equal(result.instructionCounts.memoryGrow, 1);
    assert.equal(result.dataBytes, 10);
    assert.equal(result.codeBytes, result.sections.find((s) => s.name === "code")!.bytes);
    assert.deepEqual(inspectWasm(assemble("(module)")).memory, null);
  });

  test("hand-assembled binaries: LEB128 edge cases and clear errors", () => {
    const header = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
    const sections = (...parts: number[][]) => Uint8Array.from([...header, ...parts.flat()]);
    const type = [1, 4, 1, 0x60, 0, 0];
    const func = [3, 2, 1, 0];
    const memory = [5, 3, 1, 0, 1];
    // body: no locals; i32.const 0 x3; memory.copy 0 0; end
    const body = [0, 0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 0x0a, 0, 0, 0x0b];
    const code = (bodyBytes: number[], size: number[] = [bodyBytes.length]) => [10, 1 + size.length + bodyBytes.length, 1, ...size, ...bodyBytes];

    const copy = sections(type, func, memory, code(body));
    assert.ok(WebAssembly.validate(copy));
    assert.deepEqual(inspectWasm(copy).features, ["bulk-memory"]);
    assert.deepEqual(inspectWasm(Uint8Array.from(header)).sections, []);
    // a non-minimal LEB128 (12 as 0x8c 0x00) is valid
    const padded = sections(type, func, memory, code(body, [0x8c, 0x00]));
    assert.ok(WebAssembly.validate(padded));
    assert.deepEqual(inspectWasm(padded).features, ["bulk-memory"]);

    const bad: [Uint8Array, RegExp][] = [
      [ascii("hello world"), /missing the \\0asm magic/],
      [Uint8Array.from([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]), /unsupported binary version 2/],
      [Uint8Array.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]), /a component, not a core module/],
      [sections(type, func, memory, code(body, [0x8c, 0x80, 0x80, 0x80, 0x80, 0x00])), /u32 LEB128 too (long|large)/],
      [sections(type, func, memory, code(body, [0x8c, 0x80, 0x80, 0x80, 0x10])), /u32 LEB128 too large/],
      [sections([14, 0]), /unknown or unsupported section id 14/],
      [sections(memory, type), /type section is duplicated or out of order/],
      [sections(type, type), /type section is duplicated or out of order/],
      [sections([1, 9, 1, 0x60, 0, 0]), /type section of 9 bytes runs past the end/],
      [sections([1, 5, 1, 0x60, 0, 0, 0]), /type section has 1 unread bytes/],
      [sections(type, func), /declares 1 functions but there is no code section/],
      [sections(type, [3, 3, 2, 0, 0], code(body)), /code section has 1 bodies but the function section declares 2/],
      [sections(type, func, memory, code([0, 0x06, 0x40, 0x0b, 0x0b])), /unknown or unsupported opcode 0x06/],
      [sections(type, func, code([0, 0xfd, 0x9a, 0x01, 0x0b])), /unknown or unsupported opcode 0xfd 154/],
      [sections([1, 5, 1, 0x60, 1, 0x7b, 0], func, code([0, 0x20, 0, 0xfd, 0x15, 16, 0x1a, 0x0b])), /lane index 16 out of range \(16 lanes\)/],
      [sections(type, func, code([0, 0x41, 0, 0x28, 2, 0, 0x1a, 0x0b])), /memory access needs memory 0, but 0 defined/],
      [sections(type, func, code([0, 0x0c, 1, 0x0b])), /branch to label 1 but only 1 blocks are open/],
      [sections(type, func, code([0, 0x20, 0, 0x1a, 0x0b])), /local index 0 out of range/],
      [sections(type, func, code([0, 0x01, 0x0b, 0x01])), /function body 0 has 1 bytes after its final end/],
      [sections(type, func, code([0, 0x01])), /unexpected end of data/],
      [sections(type, func, code([0, 0x05, 0x0b])), /else without a matching if/],
      [sections(type, func, memory, code([0, 0x41, 0, 0xfc, 0x09, 0, 0x0b])), /memory.init\/data.drop need a datacount section/],
      [sections([1, 4, 1, 0x5f, 0, 0]), /unsupported type form 0x5f/],
      [sections([5, 3, 1, 0x08, 1]), /unsupported memory limits flags 0x08/],
      [sections([5, 4, 1, 1, 2, 1]), /memory maximum 1 is below its initial size 2/],
      [sections([7, 5, 1, 1, 0x78, 0, 0]), /export "x" refers to func 0, but there are 0/],
      [sections([0, 3, 5, 0x61, 0x62]), /needs 5 bytes/],
    ];
    for (const [bytes, pattern] of bad) {
      throwsTeenygrad(() => inspectWasm(bytes, "hand.wasm"), new RegExp(`^corrupt \\.wasm \\(hand\\.wasm\\): .*${pattern.source}`));
    }
  });

  test("every truncation, bit flip and random module fails cleanly, and nothing V8 accepts is rejected", () => {
    const wat = `(module
      (type $pair (func (param i32) (result i32 i32)))
      (memory 1 1) (table 2 funcref) (elem (i32.const 0) $a $b)
      (global $g (mut i32) (i32.const 7))
      (data (i32.const 16) "\\fd\\fc\\01\\02")
      (func $a (param $x i32) (result i32)
        (local $v v128)
        (local.set $v (f32x4.mul (v128.load offset=16 (local.get $x)) (f32x4.splat (f32.const 1.5))))
        (v128.store (i32.const 32) (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v) (local.get $v)))
        (memory.copy (i32.const 0) (i32.const 16) (i32.const 4))
        (if (result i32) (local.get $x)
          (then (i32.extend8_s (global.get $g)))
          (else (call_indirect (param i32) (result i32) (local.get $x) (i32.const 1)))))
      (func $b (param i32) (result i32) (i32.trunc_sat_f32_s (f32.convert_i32_s (local.get 0))))
      (func $c (type $pair) (block (result i32 i32) (local.get 0) (local.get 0)))
      (export "a" (func $a)) (export "memory" (memory 0)))`;
    const bytes = assemble(wat, F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt | F.SignExt | F.NontrappingFPToInt | F.Multivalue);
    assert.deepEqual(inspectWasm(bytes).features, ["bulk-memory", "multivalue", "nontrapping-fptoint", "sign-ext", "simd128"]);

    const check = (candidate: Uint8Array, what: string) => {
      const parsed = parsesOrTeenygrad(() => inspectWasm(candidate, "fuzz.wasm"), what);
      if (WebAssembly.validate(candidate as BufferSource)) assert.ok(parsed, `${what}: V8 accepts this module but inspectWasm rejected it`);
    };
    for (let n = 0; n < bytes.length; n++) check(bytes.subarray(0, n), `truncated to ${n} bytes`);
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = bytes.slice();
        flipped[i] ^= 1 << bit;
        check(flipped, `bit ${bit} of byte ${i}`);
      }
    }
    const random = rng(3);
    for (let k = 0; k < 2000; k++) {
      const junk = Uint8Array.from({ length: 8 + Math.floor(random() * 64) }, () => Math.floor(random() * 256));
      if (k % 4) junk.set([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
      check(junk, `random module ${k}`);
    }
  });

  test("parseManifest validates what a host needs", () => {
    const good = manifestFor({ inputs: [slot("x", 0, 4)], outputs: [slot("y", 16, 4)], pages: 1 });
    assert.deepEqual(parseManifest(JSON.stringify(good)), good);
    const mutate = (f: (m: any) => void) => {
      const m = structuredClone(good);
      f(m);
      return JSON.stringify(m);
    };
    const cases: [string, RegExp][] = [
      ["{", /not valid UTF-8 JSON/],
      ["[]", /not a JSON object/],
      [mutate((m) => (m.format = "onnx")), /format is "onnx"/],
      [mutate((m) => (m.version = 2)), /unsupported version 2/],
      [mutate((m) => (m.flavour = "emscripten")), /flavour must be "reactor" or "wasi"/],
      [mutate((m) => delete m.weights), /missing "weights" object/],
      [mutate((m) => (m.weights.embedded = "yes")), /weights.embedded must be true or false/],
      // inspect, export-c and the footprint read these
      [mutate((m) => delete m.arena), /missing "arena" object/],
      [mutate((m) => delete m.arena.lowerBound), /arena.lowerBound must be a non-negative integer, got undefined/],
      [mutate((m) => delete m.memory), /missing "memory" object/],
      [mutate((m) => (m.memory.pages = "2")), /memory.pages must be a non-negative integer/],
      [mutate((m) => (m.memory.bytes = 10)), /memory.bytes 10 is not memory.pages \d+ × 65536/],
      [mutate((m) => delete m.outputs), /"outputs" must be an array/],
      [mutate((m) => (m.inputs[0].dtype = "bfloat16")), /inputs\[0\] "x": unknown dtype "bfloat16"/],
      [mutate((m) => (m.inputs[0].shape = [-4])), /inputs\[0\] "x": shape must be an array of non-negative integers/],
      [mutate((m) => (m.inputs[0].offset = 1.5)), /inputs\[0\] "x": offset must be a non-negative integer/],
      [mutate((m) => (m.outputs[0].bytes = 12)), /outputs\[0\] "y": bytes is 12 but float32\[4\] takes 16/],
      [mutate((m) => m.inputs.push(m.inputs[0])), /inputs\[1\] "x": duplicate name/],
      [mutate((m) => (m.inputs[0].name = "")), /inputs\[0\] has no name/],
    ];
    for (const [json, pattern] of cases) throwsTeenygrad(() => parseManifest(json, "m.wasm"), new RegExp(`^bad manifest \\(m\\.wasm\\): .*${pattern.source}`));
    // inside a blob
    const blob = assemble("(module)", F.MVP, { [MANIFEST_SECTION]: ascii('{"format":"teenygrad"') });
    throwsTeenygrad(() => inspectWasm(blob, "b.wasm"), /^bad manifest \(b\.wasm\): not valid UTF-8 JSON/);
  });
});

// ---- loader

describe("loader", () => {
  test("runs a model through zero-copy views", async () => {
    const { bytes, manifest } = addOneModel(5);
    const model = await loadBlob(bytes, { source: "add1.wasm" });
    assert.deepEqual(model.manifest, manifest);
    const y = model.run({ x: [1, 2, 3, 4.5, 0.5] });
    assert.deepEqual([...y.y], [2, 3, 4, 5.5, 1.5]);
    assert.equal(y.y, model.outputs.y, "run returns the output views themselves");
    assert.equal(y.y.buffer, model.memory.buffer);
    assert.equal(model.inputs.x.byteOffset, 0);
    // the caller may write the input view directly and run without arguments
    (model.inputs.x as Float32Array).set([10, 20, 30, 40, 50]);
    assert.deepEqual([...model.run().y], [11, 21, 31, 41, 51]);
    // typed arrays of other element types convert like TypedArray.set
    assert.deepEqual([...model.run({ x: new Int32Array([1, 1, 1, 1, 1]) }).y], [2, 2, 2, 2, 2]);
    // an ArrayBuffer works as well as a Uint8Array
    const again = await loadBlob(bytes.slice().buffer);
    assert.deepEqual([...again.run({ x: new Float32Array(5) }).y], [1, 1, 1, 1, 1]);
  });

  test("streams a large input", async () => {
    const { bytes } = addOneModel(70_000);
    const model = await loadBlob(bytes);
    const x = Float32Array.from({ length: 70_000 }, (_, i) => i);
    const { y } = model.run({ x });
    assert.equal(y[69_999], 70_000);
    assert.equal(y[12_345], 12_346);
  });

  test("rejects missing, extra and wrongly sized inputs", async () => {
    const model = await loadBlob(addOneModel(5).bytes, { source: "add1.wasm" });
    throwsTeenygrad(() => model.run({}), /^add1\.wasm: missing input "x" \(float32\[5\]\)$/);
    throwsTeenygrad(() => model.run({ x: new Float32Array(5), z: [1] }), /^add1\.wasm: unknown input "z" \(the model's inputs: x\)$/);
    throwsTeenygrad(() => model.run({ x: new Float32Array(4) }), /^add1\.wasm: input "x" expects float32\[5\] = 5 elements, got 4$/);
    throwsTeenygrad(() => model.run({ x: null as unknown as number[] }), /input "x" must be a typed array or an array of numbers/);
    throwsTeenygrad(() => model.run({ x: new BigInt64Array(5) }), /input "x" \(float32\) has a value that does not convert/);
  });

  test("reports nonzero statuses and traps", async () => {
    const model = await loadBlob(addOneModel(5).bytes, { source: "add1.wasm" });
    throwsTeenygrad(() => model.run({ x: [-1, 0, 0, 0, 0] }), /^add1\.wasm: run\(\) returned status 2 \(an index out of range in a gather\)$/);
    const trapping = await loadBlob(trappingModel().bytes, { source: "trap.wasm" });
    throwsTeenygrad(() => trapping.run({ x: new Float32Array(5) }), /^trap\.wasm: run\(\) trapped: unreachable/);
  });

  test("int64 inputs take numbers or bigints", async () => {
    const model = await loadBlob(int64Model().bytes);
    const out = model.run({ a: [1, -5, 2 ** 40], b: new BigInt64Array([2n, 3n, -(2n ** 62n)]) });
    assert.deepEqual([...out.sum], [3n, -2n, 2n ** 40n - 2n ** 62n]);
    assert.deepEqual([...out.sign], [1, -1, 1]);
    throwsTeenygrad(() => model.run({ a: [1.5, 0, 0], b: [0, 0, 0] }), /input "a" \(int64\) has a value that does not convert/);
  });

  test("float16 inputs take numbers (rounded to half) or Uint16Array bit patterns", async () => {
    // y = x over 4 float16s: one 8-byte copy
    const manifest = manifestFor({ inputs: [slot("x", 0, 4, "float16")], outputs: [slot("y", 64, 4, "float16")], pages: 1 });
    const wat = `(module (memory (export "memory") 1 1)
      (func (export "run") (result i32) (i64.store (i32.const 64) (i64.load (i32.const 0))) (i32.const 0)))`;
    const model = await loadBlob(assemble(wat, F.MVP, manifestSection(manifest)));
    assert.deepEqual(model.run({ x: [1, -2, 65520, 0.1] }).y, new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x2e66]));
    assert.deepEqual(model.run({ x: new Uint16Array([0x7e00, 1, 0x8000, 0x7bff]) }).y, new Uint16Array([0x7e00, 1, 0x8000, 0x7bff]));
  });

  test("copies a separate weights file into memory", async () => {
    const { bytes } = separateWeightsModel();
    const weights = bytesOf(new Float32Array([0.5, 1, 2, 4, 8]));
    const model = await loadBlob(bytes, { weights, source: "w.wasm" });
    assert.deepEqual([...model.run({ x: [1, 1, 1, 1, 1] }).y], [1.5, 2, 3, 5, 9]);
    await rejectsTeenygrad(loadBlob(bytes, { source: "w.wasm" }), /^w\.wasm: the blob's weights are in a separate file \(20 bytes\); pass them/);
    await rejectsTeenygrad(loadBlob(bytes, { weights: weights.subarray(4), source: "w.wasm" }), /weights file has 16 bytes, the blob expects 20/);
    await rejectsTeenygrad(loadBlob(addOneModel().bytes, { weights, source: "a.wasm" }), /the blob embeds its weights; do not pass a weights file/);
  });

  test("rejects blobs a browser host could not run", async () => {
    await rejectsTeenygrad(loadBlob(ascii("not wasm at all"), { source: "x.bin" }), /^x\.bin: not a valid WebAssembly module/);
    const plain = assemble(`(module (memory (export "memory") 1 1) (func (export "run") (result i32) (i32.const 0)))`);
    await rejectsTeenygrad(loadBlob(plain, { source: "p.wasm" }), /^p\.wasm: no teenygrad\.manifest custom section: not a teenygrad blob/);
    const manifest = manifestFor({ inputs: [slot("x", 0, 5)], outputs: [slot("y", 32, 5)], pages: 1 });
    const importing = assemble(`(module (import "env" "f" (func)) (memory (export "memory") 1 1) (func (export "run") (result i32) (i32.const 0)))`,
      F.MVP, manifestSection(manifest));
    await rejectsTeenygrad(loadBlob(importing, { source: "i.wasm" }), /^i\.wasm: blob imports env\.f \(function\); a teenygrad reactor blob must have no imports/);
    await rejectsTeenygrad(loadBlob(wasiAddOneCommand().bytes, { source: "cmd.wasm" }), /a "wasi" blob runs only as a WASI command \(wasmtime\)/);
    const noRun = assemble(`(module (memory (export "memory") 1 1))`, F.MVP, manifestSection(manifest));
    await rejectsTeenygrad(loadBlob(noRun, { source: "n.wasm" }), /does not export a run\(\) function/);
    const outside = manifestFor({ inputs: [slot("x", 65530, 5)], outputs: [slot("y", 32, 5)], pages: 1 });
    const far = assemble(`(module (memory (export "memory") 1 1) (func (export "run") (result i32) (i32.const 0)))`, F.MVP, manifestSection(outside));
    await rejectsTeenygrad(loadBlob(far, { source: "f.wasm" }), /input "x" at \[65530, 65550\) lies outside the 65536-byte memory/);
    const overflowing = assemble(`(module (memory (export "memory") 1 1) (data (i32.const 65530) "0123456789") (func (export "run") (result i32) (i32.const 0)))`, F.MVP, manifestSection(manifest));
    await rejectsTeenygrad(loadBlob(overflowing, { source: "d.wasm" }), /^d\.wasm: the blob does not instantiate \(corrupt or not built by teenygrad\): /);
    const unaligned = manifestFor({ inputs: [slot("x", 2, 5)], outputs: [slot("y", 32, 5)], pages: 1 });
    const odd = assemble(`(module (memory (export "memory") 1 1) (func (export "run") (result i32) (i32.const 0)))`, F.MVP, manifestSection(unaligned));
    await rejectsTeenygrad(loadBlob(odd, { source: "o.wasm" }), /input "x" offset 2 is not 4-byte aligned/);
  });

  test("takes Tensors and typed arrays, and returns outputs with their shapes and dtypes", async () => {
    const model = await loadBlob(addOneModel(5).bytes, { source: "add1.wasm" });
    assert.deepEqual([...model.run({ x: Tensor.from([1, 2, 3, 4, 5]) }).y], [2, 3, 4, 5, 6]);
    assert.deepEqual([...model.run({ x: new Float64Array([0, 1, 2, 3, 4]) }).y], [1, 2, 3, 4, 5]);
    throwsTeenygrad(() => model.run({ x: Tensor.from([[1, 2, 3, 4, 5]]) }), /^add1\.wasm: input "x" expects float32\[5\], got a tensor of shape \[1, 5\]$/);
    const { y } = model.runTensors({ x: Tensor.from([5, 4, 3, 2, 1]) });
    assert.deepEqual({ ...y, data: [...y.data] }, { name: "y", dtype: "float32", shape: [5], data: [6, 5, 4, 3, 2] });
    assert.notEqual(y.data.buffer, model.memory.buffer, "runTensors returns copies");
    model.run({ x: [0, 0, 0, 0, 0] });
    assert.equal(y.data[0], 6);
  });

  test("runs in a worker thread: the same answers and errors, and the caller is not blocked", async () => {
    const worker = await loadBlobInWorker(addOneModel(5).bytes, { source: "add1.wasm" });
    try {
      assert.deepEqual(worker.manifest, addOneModel(5).manifest);
      const { y } = await worker.run({ x: Tensor.from([1, 2, 3, 4, 5]) });
      assert.deepEqual({ ...y, data: [...y.data] }, { name: "y", dtype: "float32", shape: [5], data: [2, 3, 4, 5, 6] });
      assert.deepEqual([...(await worker.run({ x: new Float32Array([9, 9, 9, 9, 9]) })).y.data], [10, 10, 10, 10, 10]);
      await rejectsTeenygrad(worker.run({ x: [-1, 0, 0, 0, 0] }), /^add1\.wasm: run\(\) returned status 2 \(an index out of range in a gather\)$/);
      await rejectsTeenygrad(worker.run({ x: [1] }), /input "x" expects float32\[5\] = 5 elements, got 1/);
      // concurrent runs are answered in order
      const answers = await Promise.all([1, 2, 3].map((v) => worker.run({ x: new Float32Array(5).fill(v) })));
      assert.deepEqual(answers.map((a) => a.y.data[0]), [2, 3, 4]);
    } finally {
      await worker.terminate();
    }
    await rejectsTeenygrad(worker.run({ x: [1, 2, 3, 4, 5] }), /^add1\.wasm: the worker was terminated$/);
    await rejectsTeenygrad(loadBlobInWorker(trappingModel().bytes.subarray(0, 20), { source: "cut.wasm" }), /^cut\.wasm: not a valid WebAssembly module/);

    // a run() that spins for a while: a timer set after the call fires before the answer arrives
    const manifest = manifestFor({ inputs: [slot("x", 0, 5)], outputs: [slot("y", 32, 5)], pages: 1 });
    const spinning = assemble(`(module (memory (export "memory") 1 1) (func (export "run") (result i32) (local $i i32)
      (loop $spin (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $spin (i32.lt_u (local.get $i) (i32.const 300000000))))
      (i32.const 0)))`, F.MVP, manifestSection(manifest));
    const slow = await loadBlobInWorker(spinning, { source: "spin.wasm" });
    try {
      const events: string[] = [];
      const answer = slow.run({ x: new Float32Array(5) }).then(() => events.push("answer"));
      await new Promise((done) => setTimeout(done, 1));
      events.push("timer");
      await answer;
      assert.deepEqual(events, ["timer", "answer"]);
    } finally {
      await slow.terminate();
    }
  });

  test("a run() that grows memory is caught instead of returning detached views", async () => {
    const manifest = manifestFor({ inputs: [slot("x", 0, 5)], outputs: [slot("y", 32, 5)], pages: 1 });
    const growing = assemble(`(module (memory (export "memory") 1 2) (func (export "run") (result i32) (drop (memory.grow (i32.const 1))) (i32.const 0)))`,
      F.MVP, manifestSection(manifest));
    const model = await loadBlob(growing, { source: "g.wasm" });
    throwsTeenygrad(() => model.run(), /^g\.wasm: run\(\) grew the memory/);
  });
});

test("npy and safetensors parse from a Node Buffer that views a larger pool", async () => {
  const { encodeNpy, parseNpy } = await import("../compiler/host/npy.js");
  const { encodeSafetensors, parseSafetensors } = await import("../compiler/host/safetensors.js");
  const values = new Float32Array([1.5, -2, 3.25]);
  // Buffer#slice/subarray return views: a parser that copies with slice() and reads .buffer from 0 reads the pool
  const inPool = (bytes: Uint8Array) => Buffer.concat([Buffer.from("garbage!"), bytes]).subarray(8);
  assert.deepEqual(Array.from(parseNpy(inPool(encodeNpy("float32", [3], values))).data as Float32Array), Array.from(values));
  const st = parseSafetensors(inPool(encodeSafetensors({ w: { dtype: "float32", shape: [3], data: values } })));
  assert.deepEqual(Array.from(st.tensors.w.data as Float32Array), Array.from(values));
});
