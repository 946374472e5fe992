/**
 * Loads a reactor blob with nothing but the WebAssembly JS API (works in browsers and Node alike):
 * no imports to satisfy, every buffer found through the manifest, zero-copy views over linear memory.
 */
import { fail } from "../errors.js";
import { DTYPES, floatToHalf, isBigIntArray, type DType, type TypedArray } from "../ir/dtype.js";
import { MANIFEST_SECTION, type Manifest, type Quantization, type TensorSlot } from "../codegen/manifest.js";
import { parseManifest } from "./wasm-info.js";

/** an input's values: a typed array or array of numbers (the element count must match), or a Tensor (the shape must match) */
export type InputValue = TypedArray | ArrayLike<number> | TensorLike;
export type InputValues = Record<string, InputValue>;

/** what run() needs of a Tensor (an eager teenygrad Tensor is one) */
export interface TensorLike {
  readonly shape: readonly number[];
  readonly data: TypedArray | ArrayLike<number>;
}

/** an output as its own copy, with the shape and dtype the manifest gives it (Tensor.from(data, { shape }) makes a Tensor of it) */
export interface OutputTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

export interface LoadedModel {
  manifest: Manifest;
  memory: WebAssembly.Memory;
  inputs: Record<string, TypedArray>;
  outputs: Record<string, TypedArray>;
  /**
   * A streaming model's state (manifest `state`), views of the buffers the blob keeps between runs: each run
   * reads them and leaves the next state there. The host never feeds them; writing one sets a starting state.
   */
  state: Record<string, TypedArray>;
  /** starts the stream again: zeroes the state, as it was when the blob was loaded */
  reset(): void;
  /**
   * Writes the given inputs (all of them, each with the right element count), calls run() and returns the
   * output views (zero-copy: the next run overwrites them). Without an argument it runs on whatever the
   * caller already wrote into `inputs`.
   */
  run(inputs?: InputValues): Record<string, TypedArray>;
  /** run(), returning copies of the outputs with their shapes and dtypes */
  runTensors(inputs?: InputValues): Record<string, OutputTensor>;
  /**
   * run() in real numbers for a quantized model: the int8 inputs that carry a `quantization` in the manifest
   * take real values, quantized here as TFLite's QUANTIZE does (round half away from zero, saturated), and such
   * outputs come back dequantized, (q − zeroPoint)·scale, in new Float32Arrays; other inputs and outputs are as
   * run() takes and returns them.
   */
  runReal(inputs: InputValues): Record<string, TypedArray>;
}

/** run() statuses the generated code reports besides 0 = ok */
const STATUS_MEANING: Record<number, string> = { 2: "an index out of range in a gather", 5: "an integer division or remainder by zero" };

/** Compiles a blob and reads its manifest: the first step of loading any teenygrad blob. */
export async function compileBlob(bytes: Uint8Array | ArrayBuffer, source: string): Promise<{ module: WebAssembly.Module; manifest: Manifest }> {
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes as BufferSource);
  } catch (e) {
    fail(`${source}: not a valid WebAssembly module: ${(e as Error).message}`);
  }
  const sections = WebAssembly.Module.customSections(module, MANIFEST_SECTION);
  if (sections.length === 0) fail(`${source}: no ${MANIFEST_SECTION} custom section: not a teenygrad blob`);
  if (sections.length > 1) fail(`${source}: ${sections.length} ${MANIFEST_SECTION} sections, expected one`);
  return { module, manifest: parseManifest(new Uint8Array(sections[0]), source) };
}

/**
 * Instantiates a reactor blob after the checks every loader makes: no imports, a clear error if it does not
 * instantiate, and the exported memory and run() (plus the functions in `needs`) present.
 */
export async function instantiateBlob(module: WebAssembly.Module, manifest: Manifest, source: string, needs: string[] = []): Promise<{ exports: WebAssembly.Exports; memory: WebAssembly.Memory }> {
  if (manifest.flavour !== "reactor") {
    fail(`${source}: a "${manifest.flavour}" blob runs only as a WASI command (wasmtime); load a "reactor" blob here`);
  }
  if (manifest.threads) fail(`${source}: a ${manifest.target} blob runs on workers sharing its imported memory: load it with loadThreadedBlob`);
  const imports = WebAssembly.Module.imports(module);
  if (imports.length > 0) {
    const names = imports.map((i) => `${i.module}.${i.name} (${i.kind})`).join(", ");
    fail(`${source}: blob imports ${names}; a teenygrad reactor blob must have no imports`);
  }
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, {});
  } catch (e) {
    // e.g. data segments that do not fit the declared memory: the blob is corrupt, not the host
    fail(`${source}: the blob does not instantiate (corrupt or not built by teenygrad): ${(e as Error).message}`);
  }
  const { exports } = instance;
  const { memory } = exports;
  if (!(memory instanceof WebAssembly.Memory)) fail(`${source}: blob does not export its memory as "memory"`);
  for (const fn of ["run", ...needs]) if (typeof exports[fn] !== "function") fail(`${source}: blob does not export a ${fn}() function`);
  return { exports, memory };
}

/** Zero-copy views of manifest slots, each checked to lie inside the memory and be aligned. `list` names them in errors. */
export function slotViews(buffer: ArrayBuffer, slots: TensorSlot[], list: string, source: string): Record<string, TypedArray> {
  return Object.fromEntries(slots.map((slot) => {
    const { bytes: elementBytes, array } = DTYPES[slot.dtype];
    if (slot.offset + slot.bytes > buffer.byteLength) {
      fail(`${source}: ${list} "${slot.name}" at [${slot.offset}, ${slot.offset + slot.bytes}) lies outside the ${buffer.byteLength}-byte memory`);
    }
    if (slot.offset % elementBytes !== 0) fail(`${source}: ${list} "${slot.name}" offset ${slot.offset} is not ${elementBytes}-byte aligned`);
    return [slot.name, new array(buffer, slot.offset, slot.bytes / elementBytes)];
  }));
}

export async function loadBlob(
  bytes: Uint8Array | ArrayBuffer,
  opts: { weights?: Uint8Array; source?: string } = {},
): Promise<LoadedModel> {
  const source = opts.source ?? "<blob>";
  const { module, manifest } = await compileBlob(bytes, source);
  const { exports, memory } = await instantiateBlob(module, manifest, source);
  const run = exports.run as () => number;
  const buffer = memory.buffer;
  const inputs = slotViews(buffer, manifest.inputs, "input", source);
  const outputs = slotViews(buffer, manifest.outputs, "output", source);
  const state = slotViews(buffer, manifest.state ?? [], "state", source);

  const { weights } = manifest;
  if (weights.sharedHeap) fail(`${source}: a wamr-flash blob reads its weights from WAMR's shared heap at ${weights.offset}, outside linear memory: it runs only in a WAMR embedding that attaches them (targets/wamr/main.c); compile for wasm-scalar to run it here`);
  if (!weights.embedded) {
    if (!opts.weights) fail(`${source}: the blob's weights are in a separate file (${weights.bytes} bytes); pass them as the weights option`);
    if (opts.weights.byteLength !== weights.bytes) {
      fail(`${source}: weights file has ${opts.weights.byteLength} bytes, the blob expects ${weights.bytes}`);
    }
    if (weights.offset + weights.bytes > buffer.byteLength) fail(`${source}: weights at ${weights.offset} lie outside the ${buffer.byteLength}-byte memory`);
    new Uint8Array(buffer, weights.offset, weights.bytes).set(opts.weights);
  } else if (opts.weights) {
    fail(`${source}: the blob embeds its weights; do not pass a weights file`);
  }

  const model: LoadedModel = {
    manifest,
    memory,
    inputs,
    outputs,
    state,
    reset() {
      for (const view of Object.values(state)) new Uint8Array(view.buffer, view.byteOffset, view.byteLength).fill(0);
    },
    runReal(values: InputValues) {
      const quantized = Object.fromEntries(Object.entries(values).map(([name, value]) => {
        const slot = manifest.inputs.find((s) => s.name === name);
        return [name, slot?.quantization ? quantizeReal(tensorData(value, slot, source) as ArrayLike<number>, slot.quantization, `${source}: input "${name}"`) : value];
      }));
      const views = model.run(quantized);
      return Object.fromEntries(manifest.outputs.map((s) => [s.name, s.quantization ? dequantizeInt8(views[s.name], s.quantization) : views[s.name]]));
    },
    runTensors(values?: InputValues) {
      const views = model.run(values);
      return Object.fromEntries(manifest.outputs.map((s) => [s.name, { name: s.name, dtype: s.dtype, shape: [...s.shape], data: views[s.name].slice() }]));
    },
    run(values?: InputValues) {
      if (values) writeInputs(manifest, inputs, values, source);
      let status: number;
      try {
        status = (run as () => number)();
      } catch (e) {
        fail(`${source}: run() trapped: ${(e as Error).message}`);
      }
      // a grown memory would detach every view: the blob promised initial == maximum
      if (memory.buffer !== buffer) fail(`${source}: run() grew the memory, which a teenygrad blob must never do`);
      if (status !== 0) fail(`${source}: ${runStatusMessage(status)}`);
      return outputs;
    },
  };
  return model;
}

export function runStatusMessage(status: number): string {
  const meaning = STATUS_MEANING[status];
  return `run() returned status ${status}${meaning ? ` (${meaning})` : ""}`;
}

/**
 * Checks that `values` names exactly the manifest inputs with the right element counts and copies each into
 * its target array (converting element types the way TypedArray.set does; int64 accepts numbers too).
 */
export function writeInputs(
  manifest: Manifest,
  targets: Record<string, TypedArray>,
  values: InputValues,
  source: string,
): void {
  writeSlots(manifest.inputs, targets, values, source, "input");
}

/**
 * writeInputs for any list of slots (`kind` names them in errors: "input", "state"): `values` must name
 * exactly these slots.
 */
export function writeSlots(
  slots: TensorSlot[],
  targets: Record<string, TypedArray>,
  values: InputValues,
  source: string,
  kind: string,
): void {
  const expected = slots.map((slot) => slot.name);
  for (const name of Object.keys(values)) {
    if (!Object.hasOwn(targets, name)) fail(`${source}: unknown ${kind} "${name}" (the model's ${kind}s: ${expected.join(", ") || "none"})`);
  }
  for (const slot of slots) {
    if (!Object.hasOwn(values, slot.name)) fail(`${source}: missing ${kind} "${slot.name}" (${describe(slot)})`);
    const value = tensorData(values[slot.name], slot, source, kind);
    const target = targets[slot.name];
    if (value == null || typeof value.length !== "number") fail(`${source}: ${kind} "${slot.name}" must be a typed array or an array of numbers`);
    if (value.length !== target.length) {
      fail(`${source}: ${kind} "${slot.name}" expects ${describe(slot)} = ${target.length} elements, got ${value.length}`);
    }
    try {
      if (isBigIntArray(target)) {
        for (let i = 0; i < value.length; i++) target[i] = BigInt(value[i]);
      } else if (slot.dtype === "float16" && !(value instanceof Uint16Array)) {
        // numbers round to half; a Uint16Array holds the bit patterns already (float16 outputs come back as those)
        for (let i = 0; i < value.length; i++) target[i] = floatToHalf(Number(value[i]));
      } else if (slot.dtype in INTEGER_RANGES && value.constructor !== target.constructor) {
        (target as Int32Array).set(checkedIntegers(value as ArrayLike<number | bigint>, slot.dtype, `${source}: ${kind} "${slot.name}"`) as Int32Array);
      } else {
        (target as Float32Array).set(value as ArrayLike<number>);
      }
    } catch (e) {
      if (e instanceof Error && e.name === "TeenygradError") throw e;
      fail(`${source}: ${kind} "${slot.name}" (${slot.dtype}) has a value that does not convert: ${(e as Error).message}`);
    }
  }
}

const INTEGER_RANGES: Record<string, [number, number]> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int32: [-(2 ** 31), 2 ** 31 - 1], uint32: [0, 2 ** 32 - 1], bool: [0, 1],
};

/**
 * Values (numbers or bigints) as the integer dtype's typed array, refusing any that the conversion would
 * silently change: a fraction (2.7 would become 2), NaN (0), or a value out of range (2^32 + 1 would wrap to 1).
 */
export function checkedIntegers(values: ArrayLike<number | bigint>, dtype: string, what: string): TypedArray {
  const [lo, hi] = INTEGER_RANGES[dtype] ?? fail(`${what}: ${dtype} is not a 32-bit-or-smaller integer dtype`);
  const out = new DTYPES[dtype as keyof typeof DTYPES].array(values.length) as Int32Array;
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (!Number.isInteger(v) || v < lo || v > hi) fail(`${what} is ${dtype}, but element ${i} is ${String(values[i])}: not an integer in [${lo}, ${hi}]`);
    out[i] = v;
  }
  return out;
}

/** Real values onto an int8 grid: round(x / scale) half away from zero, plus the zero point, saturated (NaN is refused). */
export function quantizeReal(values: ArrayLike<number>, q: Quantization, what: string): Int8Array {
  const scale = Math.fround(q.scale);
  return Int8Array.from({ length: values.length }, (_, i) => {
    const steps = Math.fround(Number(values[i]) / scale);
    if (Number.isNaN(steps)) fail(`${what}: element ${i} is not a number`);
    const rounded = Math.sign(steps) * Math.floor(Math.abs(steps) + 0.5);
    return Math.min(127, Math.max(-128, rounded + q.zeroPoint));
  });
}

/** int8 values as real numbers: (q − zeroPoint)·scale in float32. */
export function dequantizeInt8(values: TypedArray, q: Quantization): Float32Array {
  return Float32Array.from(values as Int8Array, (v) => (v - q.zeroPoint) * q.scale);
}

/** a Tensor's data once its shape is checked against the slot's; arrays as they are */
function tensorData(value: InputValue, slot: TensorSlot, source: string, kind = "input"): TypedArray | ArrayLike<number> {
  if (value == null || typeof value !== "object" || !("shape" in value) || !("data" in value) || ArrayBuffer.isView(value)) return value as ArrayLike<number>;
  if (value.shape.join() !== slot.shape.join()) fail(`${source}: ${kind} "${slot.name}" expects ${describe(slot)}, got a tensor of shape [${value.shape.join(", ")}]`);
  return value.data;
}

function describe(slot: TensorSlot): string {
  return `${slot.dtype}[${slot.shape.join(", ")}]`;
}
