import { fail } from "../../errors.js";
import { shapeStr } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { constValues, need, registerHandlers, type Handler, type OpContext } from "./ops.js";

/**
 * RNN, GRU and LSTM, unrolled over the static sequence length: the input projection X·Wᵀ (+ biases) is
 * one matmul for every time step, then each step is one H·Rᵀ matmul and element-wise gate math.
 * Shapes follow ONNX: W [dirs, gates·H, I], R [dirs, gates·H, H], B [dirs, 2·gates·H] (W biases then R
 * biases), gate order z r h (GRU) and i o f c (LSTM), peepholes P [dirs, 3·H] in order i o f.
 */

type Kind = "RNN" | "GRU" | "LSTM";
type Activation = (t: Tensor) => Tensor;

const GATES: Record<Kind, number> = { RNN: 1, GRU: 3, LSTM: 4 };
/** activations per direction when the node names none */
const DEFAULT_ACTIVATIONS: Record<Kind, string[]> = { RNN: ["Tanh"], GRU: ["Sigmoid", "Tanh"], LSTM: ["Sigmoid", "Tanh", "Tanh"] };

/** ONNX's recurrent activation functions; alpha/beta defaults are those of the matching ONNX operators. */
const ACTIVATIONS: Record<string, { alpha?: number; beta?: number; make(alpha: number, beta: number): Activation }> = {
  relu: { make: () => (t) => t.relu() },
  tanh: { make: () => (t) => t.tanh() },
  sigmoid: { make: () => (t) => t.sigmoid() },
  affine: { alpha: 1, beta: 0, make: (a, b) => (t) => t.mul(a).add(b) },
  leakyrelu: { alpha: 0.01, make: (a) => (t) => t.leakyRelu(a) },
  thresholdedrelu: { alpha: 1, make: (a) => (t) => Tensor.where(t.gt(a), t, 0) },
  scaledtanh: { alpha: 1, beta: 1, make: (a, b) => (t) => t.mul(b).tanh().mul(a) },
  hardsigmoid: { alpha: 0.2, beta: 0.5, make: (a, b) => (t) => apply("hardsigmoid", [t], { alpha: a, beta: b }) },
  elu: { alpha: 1, make: (a) => (t) => t.elu(a) },
  softsign: { make: () => (t) => t.div(t.abs().add(1)) },
  softplus: { make: () => (t) => t.softplus() },
};

/** The activation functions of each direction; activation_alpha/beta are consumed in order by the functions that take them. */
function activationsOf(kind: Kind, dirs: number, ctx: OpContext): Activation[][] {
  const perDirection = DEFAULT_ACTIVATIONS[kind].length;
  const names = ctx.attrs.strings("activations", Array.from({ length: dirs }, () => DEFAULT_ACTIVATIONS[kind]).flat());
  if (names.length !== perDirection * dirs) fail(`${ctx.label}: ${names.length} activations given, ${kind} needs ${perDirection} per direction (${perDirection * dirs})`);
  const alphas = ctx.attrs.floats("activation_alpha", []), betas = ctx.attrs.floats("activation_beta", []);
  let nextAlpha = 0, nextBeta = 0;
  const fns = names.map((name) => {
    const spec = ACTIVATIONS[name.toLowerCase()];
    if (!spec) fail(`${ctx.label}: activation '${name}' is not supported (known: ${Object.keys(ACTIVATIONS).join(", ")})`);
    const alpha = spec.alpha === undefined ? 0 : alphas[nextAlpha++] ?? spec.alpha;
    const beta = spec.beta === undefined ? 0 : betas[nextBeta++] ?? spec.beta;
    return spec.make(alpha, beta);
  });
  return Array.from({ length: dirs }, (_, d) => fns.slice(d * perDirection, (d + 1) * perDirection));
}

/** Per time step, a [batch, 1] mask of the batch entries still inside their sequence; undefined when all are full length. */
function sequenceMasks(lens: Tensor | undefined, T: number, batch: number, ctx: OpContext): Tensor[] | undefined {
  if (!lens) return undefined;
  const lengths = constValues(lens, "sequence_lens", ctx);
  if (lengths.length !== batch) fail(`${ctx.label}: sequence_lens has ${lengths.length} entries for a batch of ${batch}`);
  const bad = lengths.find((l) => !Number.isInteger(l) || l < 0 || l > T);
  if (bad !== undefined) fail(`${ctx.label}: sequence length ${bad} is outside [0, ${T}]`);
  if (lengths.every((l) => l === T)) return undefined;
  return Array.from({ length: T }, (_, t) => Tensor.from(new Uint8Array(lengths.map((l) => (t < l ? 1 : 0))), { shape: [batch, 1], dtype: "bool" }));
}

/** Row `d` of a [dirs, …] tensor, as [rest…]. */
const direction = (t: Tensor, d: number): Tensor => t.slice(0, d, d + 1).reshape(t.shape.slice(1));
/** Gate block k of a [rows, gates·H] tensor. */
const gate = (t: Tensor, k: number, H: number): Tensor => t.slice(-1, k * H, (k + 1) * H);

function recurrent(kind: Kind): Handler {
  return (x, ctx) => {
    const G = GATES[kind];
    const layout = ctx.attrs.int("layout", 0);
    if (layout !== 0 && layout !== 1) fail(`${ctx.label}: layout ${layout} is not 0 or 1`);
    const dir = ctx.attrs.string("direction", "forward");
    if (dir !== "forward" && dir !== "reverse" && dir !== "bidirectional") fail(`${ctx.label}: unknown direction '${dir}'`);
    const dirs = dir === "bidirectional" ? 2 : 1;
    // time-major inside: X [T, batch, I], states [dirs, batch, H]
    const X = layout === 1 ? need(x, 0, ctx).transpose(0, 1) : need(x, 0, ctx);
    const W = need(x, 1, ctx), R = need(x, 2, ctx);
    const [T, batch, I] = X.shape;
    const H = ctx.attrs.int("hidden_size", R.shape[2]);
    const expect = (t: Tensor | undefined, shape: number[], what: string) => {
      if (t && t.shape.join() !== shape.join()) fail(`${ctx.label}: ${what} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
    };
    expect(W, [dirs, G * H, I], "W");
    expect(R, [dirs, G * H, H], "R");
    expect(x[3], [dirs, 2 * G * H], "B");
    const state = (t: Tensor | undefined, what: string) => {
      if (!t) return undefined;
      const timeMajor = layout === 1 ? t.transpose(0, 1) : t;
      expect(timeMajor, [dirs, batch, H], `${what} (in time-major order)`);
      return timeMajor;
    };
    const h0 = state(x[5], "initial_h");
    const c0 = kind === "LSTM" ? state(x[6], "initial_c") : undefined;
    const P = kind === "LSTM" ? x[7] : undefined;
    expect(P, [dirs, 3 * H], "P");
    const masks = sequenceMasks(x[4], T, batch, ctx);
    const clipAt = ctx.attrs.has("clip") ? ctx.attrs.float("clip") : undefined;
    const clip = (t: Tensor) => (clipAt === undefined ? t : t.clamp(-clipAt, clipAt));
    const linearBeforeReset = kind === "GRU" && ctx.attrs.int("linear_before_reset", 0) !== 0;
    const inputForget = kind === "LSTM" && ctx.attrs.int("input_forget", 0) !== 0;
    const acts = activationsOf(kind, dirs, ctx);

    const outputs: Tensor[][] = []; // [dir][t] → [batch, H]
    const finalH: Tensor[] = [], finalC: Tensor[] = [];
    for (let d = 0; d < dirs; d++) {
      const [f, g, h] = acts[d];
      const Wd = direction(W, d), Rd = direction(R, d);
      // every step's input projection in one matmul: [T·batch, I] · [I, G·H]
      let xProj = X.reshape([T * batch, I]).matmul(Wd.transpose(0, 1));
      let recurrentBiasH: Tensor | undefined;
      if (x[3]) {
        const Bd = direction(x[3], d);
        const wb = Bd.slice(0, 0, G * H), rb = Bd.slice(0, G * H, 2 * G * H);
        if (linearBeforeReset) {
          // the h gate's recurrent bias sits inside r ⊙ (…): only z and r take it up front
          recurrentBiasH = gate(rb, 2, H);
          xProj = xProj.add(wb.add(Tensor.cat([rb.slice(0, 0, 2 * H), Tensor.zeros([H])], 0)));
        } else xProj = xProj.add(wb.add(rb));
      }
      const steps = xProj.reshape([T, batch, G * H]);
      const RdT = Rd.transpose(0, 1); // [H, G·H]
      const peep = P && direction(P, d);
      let hPrev = h0 ? direction(h0, d) : Tensor.zeros([batch, H]);
      let cPrev = kind === "LSTM" ? (c0 ? direction(c0, d) : Tensor.zeros([batch, H])) : undefined;
      const ys: Tensor[] = new Array(T);
      const reverse = dir === "reverse" || d === 1;
      for (let i = 0; i < T; i++) {
        const t = reverse ? T - 1 - i : i;
        const xt = steps.slice(0, t, t + 1).reshape([batch, G * H]);
        let hNext: Tensor, cNext: Tensor | undefined;
        if (kind === "RNN") {
          hNext = f(clip(xt.add(hPrev.matmul(RdT))));
        } else if (kind === "GRU") {
          const zr = linearBeforeReset ? hPrev.matmul(RdT) : hPrev.matmul(RdT.slice(1, 0, 2 * H));
          const z = f(clip(gate(xt, 0, H).add(gate(zr, 0, H))));
          const r = f(clip(gate(xt, 1, H).add(gate(zr, 1, H))));
          const RhT = gate(RdT, 2, H);
          const candidate = linearBeforeReset
            ? gate(xt, 2, H).add(r.mul(recurrentBiasH ? gate(zr, 2, H).add(recurrentBiasH) : gate(zr, 2, H)))
            : gate(xt, 2, H).add(r.mul(hPrev).matmul(RhT));
          const hTilde = g(clip(candidate));
          // (1 - z) ⊙ h̃ + z ⊙ h
          hNext = hTilde.add(z.mul(hPrev.sub(hTilde)));
        } else {
          const pre = xt.add(hPrev.matmul(RdT));
          const withPeephole = (v: Tensor, k: number, c: Tensor) => (peep ? v.add(gate(peep, k, H).mul(c)) : v);
          const inGate = f(clip(withPeephole(gate(pre, 0, H), 0, cPrev!)));
          const forget = inputForget ? inGate.neg().add(1) : f(clip(withPeephole(gate(pre, 2, H), 2, cPrev!)));
          const cell = g(clip(gate(pre, 3, H)));
          cNext = forget.mul(cPrev!).add(inGate.mul(cell));
          const outGate = f(clip(withPeephole(gate(pre, 1, H), 1, cNext)));
          hNext = outGate.mul(h(cNext));
        }
        if (masks) {
          // past its sequence's end an entry keeps its state and outputs zeros
          ys[t] = Tensor.where(masks[t], hNext, 0);
          hNext = Tensor.where(masks[t], hNext, hPrev);
          if (cNext) cNext = Tensor.where(masks[t], cNext, cPrev!);
        } else ys[t] = hNext;
        hPrev = hNext;
        cPrev = cNext;
      }
      outputs.push(ys);
      finalH.push(hPrev);
      if (cPrev) finalC.push(cPrev);
    }

    const stack = (ts: Tensor[], axis: number) => (ts.length === 1 ? ts[0].unsqueeze(axis) : Tensor.cat(ts.map((t) => t.unsqueeze(axis)), axis));
    // Y [T, dirs, batch, H]; Y_h and Y_c [dirs, batch, H]
    const Y = stack(Array.from({ length: T }, (_, t) => stack(outputs.map((ys) => ys[t]), 0)), 0);
    const Yh = stack(finalH, 0);
    const Yc = kind === "LSTM" ? stack(finalC, 0) : undefined;
    if (layout === 1) return [Y.permute([2, 0, 1, 3]), Yh.transpose(0, 1), Yc?.transpose(0, 1)];
    return [Y, Yh, Yc];
  };
}

registerHandlers({
  RNN: recurrent("RNN"),
  GRU: recurrent("GRU"),
  LSTM: recurrent("LSTM"),
});
