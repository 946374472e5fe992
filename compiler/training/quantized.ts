import { fail } from "../errors.js";
import type { Attrs, Node, Value } from "../ir/graph.js";
import { importTfliteModel } from "../import/tflite/index.js";
import { readTflite, type Quantization } from "../import/tflite/reader.js";
import { Module, Parameter, Sequential } from "../tensor/nn.js";
import { apply, Tensor } from "../tensor/tensor.js";

/**
 * Fine-tuning a quantized (int8) TFLite model on the device: the frozen prefix stays the model's own int8 graph
 * (integer kernels, int8 activations, int8 weights as constants, which wamr-flash keeps in flash), and only the
 * last layers become float32 modules, initialised from their dequantized weights, which train. The prefix's
 * output is dequantized where the float tail starts.
 */

/** One quantization grid: real = scale·(q − zeroPoint). */
interface Grid { scale: number; zeroPoint: number }

/** The int8 prefix: replays the imported graph's nodes on the inputs, and dequantizes the value the tail starts from. */
export class FrozenInt8Graph extends Module {
  private readonly constants = new Map<Value, Tensor>();
  constructor(private readonly inputs: Value[], private readonly nodes: Node[], private readonly cut: Value, private readonly grid: Grid) {
    super();
  }
  forward(...xs: Tensor[]): Tensor {
    if (xs.length !== this.inputs.length) fail(`the int8 backbone takes ${this.inputs.length} input(s) (${this.inputs.map((v) => v.name).join(", ")}), got ${xs.length}`);
    const env = new Map<Value, Tensor>(this.inputs.map((v, i) => [v, xs[i]]));
    const tensorOf = (v: Value): Tensor => {
      const t = env.get(v) ?? this.constants.get(v);
      if (t) return t;
      if (!v.isConstant) fail(`internal: the int8 backbone reads '${v.name}' before it is computed`);
      const c = new Tensor([...v.shape], v.dtype, v.data!);
      this.constants.set(v, c);
      return c;
    };
    for (const n of this.nodes) env.set(n.outputs[0], apply(n.op, n.inputs.map(tensorOf), n.attrs));
    return apply("dequantize", [tensorOf(this.cut)], { scale: this.grid.scale, zeroPoint: this.grid.zeroPoint });
  }
}

/** A dequantized int8 convolution: float32 weight and bias, the int8 op's geometry and its fused activation's clamp. */
export class DequantizedConv2d extends Module {
  /** with trainChannels: the output channels whose weights stay frozen (a buffer, so in flash on wamr-flash) */
  frozenWeight: Tensor | null = null;
  constructor(public weight: Parameter, public bias: Parameter, private readonly geometry: Attrs, private readonly clamp: [number, number]) {
    super();
  }
  /**
   * Sparse update as the Tiny Training Engine does it: only the first `channels` output channels' weights train
   * (the bias trains whole). The two parts are two convolutions whose outputs are joined, so no full-size weight or
   * weight gradient ever exists.
   */
  trainChannels(channels: number): this {
    const OC = this.weight.shape[0], per = this.weight.size / OC;
    if (!Number.isInteger(channels) || channels < 1 || channels >= OC) fail(`trainChannels: ${channels} must be an integer from 1 to ${OC - 1} (the layer has ${OC} output channels)`);
    const all = this.weight.data as Float32Array;
    this.frozenWeight = this.registerBuffer("frozenWeight", new Tensor([OC - channels, ...this.weight.shape.slice(1)], "float32", all.slice(channels * per)));
    this.weight = new Parameter(new Tensor([channels, ...this.weight.shape.slice(1)], "float32", all.slice(0, channels * per)));
    return this;
  }
  forward(x: Tensor): Tensor {
    if (!this.frozenWeight) return activate(apply("conv2d", [x, this.weight, this.bias], this.geometry), this.clamp);
    const y = Tensor.cat([apply("conv2d", [x, this.weight], this.geometry), apply("conv2d", [x, this.frozenWeight], this.geometry)], 1);
    return activate(y.add(this.bias.reshape(1, -1, 1, 1)), this.clamp);
  }
}

/** A dequantized int8 fully connected layer: y = x·wᵀ + b, then its fused activation's clamp. */
export class DequantizedLinear extends Module {
  constructor(public weight: Parameter, public bias: Parameter, private readonly clamp: [number, number]) {
    super();
  }
  forward(x: Tensor): Tensor {
    return activate(x.linear(this.weight, this.bias), this.clamp);
  }
}

/** The nodes between layers (pooling, reshapes), float32. */
class FloatGlue extends Module {
  constructor(private readonly op: "avgpool2d" | "reshape", private readonly attrs: Attrs) {
    super();
  }
  forward(x: Tensor): Tensor {
    if (this.op === "reshape") return x.reshape(this.attrs.shape as number[]);
    // a window over the whole map is a mean, whose gradient is one broadcast
    const whole = (this.attrs.kernel as number[]).join() === x.shape.slice(2).join() && (this.attrs.pads as number[]).every((p) => p === 0);
    return whole ? x.mean([2, 3], true) : apply("avgpool2d", [x], this.attrs);
  }
}

// ReLU's gradient takes its mask from the output (cheapest to save); ReLU6 and other ranges clamp
function activate(y: Tensor, [lo, hi]: [number, number]): Tensor {
  if (lo === 0 && hi === Infinity) return y.relu();
  return lo === -Infinity && hi === Infinity ? y : y.clamp(lo, hi);
}

export class Int8FineTuning extends Module {
  constructor(readonly backbone: FrozenInt8Graph, readonly head: Sequential) {
    super();
  }
  forward(...xs: Tensor[]): Tensor {
    return this.head.forward(this.backbone.forward(...xs));
  }
}

export interface Int8FineTuningModel {
  /** backbone (frozen, int8) then head (float32, trainable); the head's layers are head.0, head.1, … */
  model: Int8FineTuning;
  /** the blob's inputs, TFLite's shapes and dtypes (int8 inputs are int8): pass them to compileTraining */
  inputs: Record<string, { shape: number[]; dtype: "int8" | "float32" }>;
  /** each input's grid, to quantize real inputs on the host */
  inputGrids: Record<string, Grid | null>;
  /** the head's convolution and fully connected layers by module name, first to last (for freeze / sparse updates) */
  layers: string[];
}

/**
 * Splits an int8 TFLite model for fine-tuning: its last `floatLayers` convolution / fully connected layers (and
 * the pooling and reshapes among them) become a float32 head of trainable modules initialised from their
 * dequantized weights (biases: int32 · input scale · weight scale); everything before stays int8 and frozen. A
 * final softmax is dropped, so the head gives logits for crossEntropy.
 */
export function int8FineTuning(bytes: Uint8Array, opts: { floatLayers: number; source?: string }): Int8FineTuningModel {
  const src = opts.source ?? "<tflite>";
  const imported = importTfliteModel(bytes, { source: src });
  if (!imported.quantized) fail(`${src}: int8FineTuning takes a quantized (int8) model; this one is float (train it with compileTraining directly)`);
  const grids = new Map<string, Quantization>();
  for (const t of readTflite(bytes, src).tensors) if (t.quantization && !grids.has(t.name)) grids.set(t.name, t.quantization);
  const g = imported.graph;
  const nodes = g.nodes.filter((n) => n.op !== "qsoftmax" || !g.outputs.includes(n.outputs[0]));
  if (g.outputs.length !== 1 || nodes.some((n) => n.outputs.length !== 1)) fail(`${src}: int8FineTuning takes a model with one output and single-output operators`);
  const layerAt = nodes.flatMap((n, i) => (n.op === "qconv2d" || n.op === "qfullyConnected" ? [i] : []));
  const k = opts.floatLayers;
  if (!Number.isInteger(k) || k < 1 || k > layerAt.length - 1) fail(`floatLayers must be an integer from 1 to ${layerAt.length - 1} (the model has ${layerAt.length} convolution / fully connected layers, and the first stays int8), got ${k}`);
  const start = layerAt[layerAt.length - k];
  const prefix = nodes.slice(0, start), tail = nodes.slice(start);

  // a value's grid: its TFLite tensor's, or (a reshape or NCHW view of it) its producer's input's
  const gridOf = (v: Value): Grid => {
    const q = grids.get(v.name);
    if (q) return { scale: q.scale[0], zeroPoint: q.zeroPoint[0] };
    if (v.producer && (v.producer.op === "reshape" || v.producer.op === "permute")) return gridOf(v.producer.inputs[0]);
    return fail(`${src}: no quantization grid for '${v.name}'`);
  };
  const cut = tail[0].inputs[0];
  const backbone = new FrozenInt8Graph(g.inputs, prefix, cut, gridOf(cut));

  const layers: Module[] = [];
  let previous = cut;
  for (const n of tail) {
    const what = `${src}: ${n.op} '${n.name}'`;
    // the head is a chain: a layer reading anything but the one before it (a skip connection) cannot be one
    const activations = n.inputs.filter((v) => !v.isConstant);
    if (activations.length !== 1 || activations[0] !== previous) fail(`${what} reads ${activations.map((v) => `'${v.name}'`).join(", ")}, not only the layer before it: the float head must be a chain of layers; choose fewer floatLayers`);
    previous = n.outputs[0];
    if (n.op === "reshape") layers.push(new FloatGlue("reshape", { shape: n.attrs.shape }));
    else if (n.op === "qavgpool2d") layers.push(new FloatGlue("avgpool2d", { kernel: n.attrs.kernel, stride: n.attrs.stride, pads: n.attrs.pads, dilation: [1, 1], ceilMode: false, countIncludePad: n.attrs.countIncludePad }));
    else if (n.op === "qconv2d" || n.op === "qfullyConnected") {
      const [x, w, b] = n.inputs;
      const wq = grids.get(w.name) ?? fail(`${what}: its weights '${w.name}' have no quantization`);
      const sIn = gridOf(x).scale, out = gridOf(n.outputs[0]);
      const OC = w.shape[0], per = w.data!.length / OC;
      const scaleOf = (o: number) => wq.scale.length === 1 ? wq.scale[0] : wq.scale[o];
      const zpOf = (o: number) => wq.zeroPoint.length === 1 ? wq.zeroPoint[0] : wq.zeroPoint[o] ?? 0;
      const weight = new Parameter(new Tensor([...w.shape], "float32", Float32Array.from({ length: w.data!.length }, (_, i) => (Number(w.data![i]) - zpOf(Math.floor(i / per))) * scaleOf(Math.floor(i / per)))));
      const bias = new Parameter(new Tensor([OC], "float32", Float32Array.from({ length: OC }, (_, o) => Number(b.data![o]) * sIn * scaleOf(o))));
      const clamp = activationRange(n.attrs, out);
      if (n.op === "qconv2d") {
        const { stride, pads, dilation, groups } = n.attrs;
        layers.push(new DequantizedConv2d(weight, bias, { stride, pads, dilation, groups }, clamp));
      } else layers.push(new DequantizedLinear(weight, bias, clamp));
    } else fail(`${what}: the float head cannot take this operator (it takes convolutions, fully connected layers, average pooling and reshapes); choose fewer floatLayers`);
  }
  const head = new Sequential(...layers);
  const model = new Int8FineTuning(backbone, head);
  return {
    model,
    inputs: Object.fromEntries(imported.inputs.map((i) => [i.name, { shape: [...i.shape], dtype: i.dtype }])),
    inputGrids: Object.fromEntries(imported.inputs.map((i) => [i.name, i.quantization && { scale: i.quantization.scale, zeroPoint: i.quantization.zeroPoint }])),
    layers: layers.flatMap((m, i) => (m instanceof FloatGlue ? [] : [`head.${i}`])),
  };
}

/**
 * The real range an int8 op's fused activation clamps to. TFLite folds ReLU and ReLU6 into the output's clamp,
 * often the grid's own ends (ReLU: the zero point at −128), so the clamp's real ends tell: 0 is ReLU's floor, 6
 * ReLU6's ceiling; any other end is int8 saturation, which the float head does not keep.
 */
function activationRange(attrs: Attrs, out: Grid): [number, number] {
  const real = (q: number) => (q - out.zeroPoint) * out.scale;
  const near = (q: number, r: number) => Math.abs(real(q) - r) <= out.scale / 2;
  return [near(attrs.actMin as number, 0) ? 0 : -Infinity, near(attrs.actMax as number, 6) ? 6 : Infinity];
}
