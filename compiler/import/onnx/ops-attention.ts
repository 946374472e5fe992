import { fail } from "../../errors.js";
import { shapeStr } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { cast, need, registerHandlers, type OpContext } from "./ops.js";

/**
 * The attention family, composed of registry ops (matmuls, element-wise work, softmax, gathers).
 * Attention (opset 23/24) follows the spec's reference (onnx/reference/ops/op_attention.py): 3-d inputs
 * split into heads, a KV cache concatenated from past_key/past_value, grouped-query heads repeated,
 * sqrt(scale) on Q and K, softcap before the additive mask (boolean masks, causal masks and
 * nonpad_kv_seqlen become -inf), softmax over keys. FlexAttention (ai.onnx.preview) is the same core
 * with its score_mod and prob_mod subgraphs imported inline; RotaryEmbedding (opset 23) rotates pairs
 * of features by cached angles; LinearAttention (opset 27) is a recurrence over the static sequence
 * length, unrolled like RNN/LSTM.
 */

type Input = Tensor | undefined;

/** [B, S, heads·H] → [B, heads, S, H] */
const splitHeads = (t: Tensor, heads: number, ctx: OpContext): Tensor => {
  const [B, S, hidden] = t.shape;
  if (hidden % heads) fail(`${ctx.label}: hidden size ${hidden} does not split into ${heads} heads`);
  return t.reshape([B, S, heads, hidden / heads]).permute([0, 2, 1, 3]);
};

/** [B, kvHeads, S, H] → [B, kvHeads·g, S, H]: each KV head serves g consecutive query heads */
const repeatHeads = (t: Tensor, g: number): Tensor => {
  if (g === 1) return t;
  const [B, heads, S, H] = t.shape;
  return t.unsqueeze(2).expand([B, heads, g, S, H]).reshape([B, heads * g, S, H]);
};

/** the number of query heads per KV head, or an error naming the node */
function groupSize(qHeads: number, kvHeads: number, ctx: OpContext): number {
  if (qHeads <= 0 || kvHeads <= 0 || qHeads % kvHeads) fail(`${ctx.label}: ${qHeads} query heads do not group over ${kvHeads} KV heads`);
  return qHeads / kvHeads;
}

/** an additive mask: 0 where attending is allowed, -inf where not */
const additive = (allowed: Tensor): Tensor => Tensor.where(allowed, 0, -Infinity);

function attention(x: Input[], ctx: OpContext): Tensor[] {
  let q = need(x, 0, ctx), k = need(x, 1, ctx), v = need(x, 2, ctx);
  const [mask, pastKey, pastValue, nonpad] = [x[3], x[4], x[5], x[6]];
  if (q.dtype !== "float32") fail(`${ctx.label}: ${q.dtype} attention is not supported (float32 is)`);
  const threeD = q.ndim === 3;
  if (threeD) {
    if (!ctx.attrs.has("q_num_heads") || !ctx.attrs.has("kv_num_heads")) fail(`${ctx.label}: 3-d inputs need q_num_heads and kv_num_heads`);
    q = splitHeads(q, ctx.attrs.int("q_num_heads"), ctx);
    k = splitHeads(k, ctx.attrs.int("kv_num_heads"), ctx);
    v = splitHeads(v, ctx.attrs.int("kv_num_heads"), ctx);
  }
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) fail(`${ctx.label}: Q, K and V must all be 3-d or all 4-d, got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
  const presentKey = pastKey ? Tensor.cat([pastKey, k], 2) : k;
  const presentValue = pastValue ? Tensor.cat([pastValue, v], 2) : v;
  const [B, qHeads, Sq, H] = q.shape;
  const kvHeads = presentKey.shape[1], Skv = presentKey.shape[2], past = pastKey ? pastKey.shape[2] : 0;

  // the bias: mask (padded to the key length), causal triangle, padding of the keys
  let bias: Tensor | undefined;
  if (mask) {
    let m = mask.dtype === "bool" ? additive(mask) : mask;
    const missing = Skv - m.shape[m.ndim - 1];
    if (missing > 0) m = apply("pad", [m], { pads: [...m.shape.map(() => 0), ...m.shape.map((_, i) => (i === m.ndim - 1 ? missing : 0))], value: -Infinity });
    bias = m;
  }
  if (ctx.attrs.int("is_causal", 0) === 1) {
    const allowed = new Uint8Array(Sq * Skv);
    for (let i = 0; i < Sq; i++) for (let j = 0; j < Skv; j++) allowed[i * Skv + j] = j - past <= i ? 1 : 0;
    const causal = additive(Tensor.from(allowed, { shape: [Sq, Skv], dtype: "bool" }));
    bias = bias ? bias.add(causal) : causal;
  }
  if (nonpad) {
    const positions = Tensor.arange(0, Skv, 1, nonpad.dtype).reshape([1, Skv]);
    const padding = additive(positions.lt(nonpad.reshape([B, 1]))).reshape([B, 1, 1, Skv]);
    bias = bias ? bias.add(padding) : padding;
  }

  // grouped-query attention: each KV head serves qHeads / kvHeads query heads, interleaved
  const g = groupSize(qHeads, kvHeads, ctx);
  const keys = repeatHeads(presentKey, g), values = repeatHeads(presentValue, g);
  const scale = Math.sqrt(ctx.attrs.has("scale") ? ctx.attrs.float("scale") : 1 / Math.sqrt(H));
  let scores = q.mul(scale).matmul(keys.permute([0, 1, 3, 2]).mul(scale));
  const softcap = ctx.attrs.float("softcap", 0);
  if (softcap > 0) scores = scores.div(softcap).tanh().mul(softcap);
  const biased = bias ? scores.add(bias) : scores;
  const probabilities = biased.softmax(-1);
  let y = probabilities.matmul(values);
  if (threeD) y = y.permute([0, 2, 1, 3]).reshape([B, Sq, qHeads * values.shape[3]]);
  const mode = ctx.attrs.int("qk_matmul_output_mode", 0);
  const qkOutput = mode === 3 ? probabilities : mode === 2 ? biased : scores;
  return [y, presentKey, presentValue, qkOutput];
}

/**
 * FlexAttention (ai.onnx.preview 1): Y = prob_mod(softmax(score_mod((Q·Kᵀ)·scale)))·V on rank-4 inputs,
 * grouped-query heads as in Attention. Each *_mod graph takes the whole [B, heads, Sq, Skv] tensor and
 * returns one of the same shape; it imports inline, so anything it computes from shapes folds away.
 */
function flexAttention(x: Input[], ctx: OpContext): Tensor {
  const q = need(x, 0, ctx), k = need(x, 1, ctx), v = need(x, 2, ctx);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) fail(`${ctx.label}: Q, K and V must be 4-d, got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
  if (q.dtype !== "float32") fail(`${ctx.label}: ${q.dtype} FlexAttention is not supported (float32 and float16 are)`);
  const [B, qHeads, Sq, H] = q.shape, [, kvHeads, Skv] = k.shape;
  if (k.shape[0] !== B || v.shape[0] !== B || k.shape[3] !== H || v.shape[1] !== kvHeads || v.shape[2] !== Skv) {
    fail(`${ctx.label}: Q ${shapeStr(q.shape)}, K ${shapeStr(k.shape)} and V ${shapeStr(v.shape)} do not agree (batch, heads, key length, head size)`);
  }
  const g = groupSize(qHeads, kvHeads, ctx);
  // sqrt(scale) on each side, as the function body does, keeps the products in range
  const scale = Math.sqrt(ctx.attrs.has("scale") ? ctx.attrs.float("scale") : 1 / Math.sqrt(H));
  let scores = q.mul(scale).matmul(repeatHeads(k, g).permute([0, 1, 3, 2]).mul(scale));
  const modify = (attr: string, t: Tensor): Tensor => {
    if (!ctx.attrs.has(attr)) return t;
    const out = ctx.subgraph(attr, [t]);
    if (out.length !== 1 || out[0].shape.join() !== t.shape.join()) {
      fail(`${ctx.label}: ${attr} must return one tensor of shape ${shapeStr(t.shape)}, got ${out.map((o) => shapeStr(o.shape)).join(", ") || "none"}`);
    }
    return out[0].dtype === "float32" ? out[0] : fail(`${ctx.label}: ${attr} returns ${out[0].dtype}, not float32`);
  };
  scores = modify("score_mod", scores);
  const probabilities = modify("prob_mod", scores.softmax(-1));
  return probabilities.matmul(repeatHeads(v, g));
}

/**
 * RotaryEmbedding (opset 23): input [B, heads, S, H] (or [B, S, heads·H] with num_heads); the first
 * rotary_embedding_dim features of each head form pairs (x1, x2), halves or interleaved, turned by the
 * angle whose cos and sin the caches hold: [max_position, R/2] gathered by position_ids [B, S], or
 * [B, S, R/2] directly.
 */
function rotaryEmbedding(x: Input[], ctx: OpContext): Tensor {
  const input = need(x, 0, ctx), cosCache = need(x, 1, ctx), sinCache = need(x, 2, ctx), positions = x[3];
  if (input.dtype !== "float32") fail(`${ctx.label}: ${input.dtype} RotaryEmbedding is not supported (float32 and float16 are)`);
  let t: Tensor; // [B, S, heads, H]
  if (input.ndim === 4) t = input.permute([0, 2, 1, 3]);
  else if (input.ndim === 3) {
    const heads = ctx.attrs.int("num_heads", 0);
    if (heads <= 0) fail(`${ctx.label}: a 3-d input needs the num_heads attribute`);
    const [B, S, hidden] = input.shape;
    if (hidden % heads) fail(`${ctx.label}: hidden size ${hidden} does not split into ${heads} heads`);
    t = input.reshape([B, S, heads, hidden / heads]);
  } else fail(`${ctx.label}: the input must be 3-d or 4-d, got ${shapeStr(input.shape)}`);
  const [B, S, heads, H] = t.shape;
  const R = ctx.attrs.int("rotary_embedding_dim", 0) || H;
  if (R % 2 || R > H) fail(`${ctx.label}: rotary_embedding_dim ${R} must be even and at most the head size ${H}`);
  const angle = (cache: Tensor, what: string): Tensor => {
    const picked = positions ? apply("gather", [cache, cast(positions, "int32")], { axis: 0 }) : cache;
    if (picked.shape.join() !== [B, S, R / 2].join()) {
      fail(`${ctx.label}: ${what}${positions ? " gathered by position_ids" : ""} has shape ${shapeStr(picked.shape)}, expected ${shapeStr([B, S, R / 2])}`);
    }
    return picked.unsqueeze(2);
  };
  const cos = angle(cosCache, "cos_cache"), sin = angle(sinCache, "sin_cache");
  const rotated = R === H ? t : t.slice(3, 0, R);
  const interleaved = ctx.attrs.int("interleaved", 0) === 1;
  const pairs = interleaved ? rotated.reshape([B, S, heads, R / 2, 2]) : null;
  const x1 = pairs ? pairs.slice(4, 0, 1).squeeze(4) : rotated.slice(3, 0, R / 2);
  const x2 = pairs ? pairs.slice(4, 1, 2).squeeze(4) : rotated.slice(3, R / 2, R);
  const real = cos.mul(x1).sub(sin.mul(x2)), imag = sin.mul(x1).add(cos.mul(x2));
  let out = interleaved ? Tensor.cat([real.unsqueeze(4), imag.unsqueeze(4)], 4).reshape([B, S, heads, R]) : Tensor.cat([real, imag], 3);
  if (R < H) out = Tensor.cat([out, t.slice(3, R, H)], 3);
  return input.ndim === 4 ? out.permute([0, 2, 1, 3]) : out.reshape(input.shape);
}

const UPDATE_RULES = ["linear", "gated", "delta", "gated_delta"];

/**
 * LinearAttention (opset 27): a state S [B, kvHeads, dk, dv] carried over the sequence, unrolled step by
 * step as onnx/reference/ops/op_linear_attention.py computes it: gated rules decay S by exp(decay_t)
 * (per head or per key feature), delta rules write β_t·(v_t − Sᵀk_t) instead of v_t, every rule adds
 * k_t ⊗ v_t, and each query head reads scale·q_t·S of its KV head. Outputs the attention and the last state.
 */
function linearAttention(x: Input[], ctx: OpContext): Tensor[] {
  const query = need(x, 0, ctx), key = need(x, 1, ctx), value = need(x, 2, ctx);
  const [pastState, decay, beta] = [x[3], x[4], x[5]];
  const rule = ctx.attrs.string("update_rule", "gated_delta");
  if (!UPDATE_RULES.includes(rule)) fail(`${ctx.label}: update_rule '${rule}' is not one of ${UPDATE_RULES.join(", ")}`);
  const gating = rule === "gated" || rule === "gated_delta", deltaRule = rule === "delta" || rule === "gated_delta";
  if (gating !== !!decay) fail(`${ctx.label}: update_rule '${rule}' ${gating ? "needs" : "takes no"} decay input`);
  if (deltaRule !== !!beta) fail(`${ctx.label}: update_rule '${rule}' ${deltaRule ? "needs" : "takes no"} beta input`);
  for (const [name, t] of [["query", query], ["key", key], ["value", value], ["decay", decay], ["beta", beta]] as const) {
    if (t && t.ndim !== 3) fail(`${ctx.label}: ${name} must be 3-d (batch, sequence, heads·features), got ${shapeStr(t.shape)}`);
  }
  if (query.dtype !== "float32") fail(`${ctx.label}: ${query.dtype} LinearAttention is not supported (float32 and float16 are)`);
  const qHeads = ctx.attrs.int("q_num_heads"), kvHeads = ctx.attrs.int("kv_num_heads");
  const g = groupSize(qHeads, kvHeads, ctx);
  const [B, T] = query.shape;
  if (T === 0) fail(`${ctx.label}: an empty sequence has no output to compute`);
  if (key.shape[0] !== B || key.shape[1] !== T || value.shape[0] !== B || value.shape[1] !== T) {
    fail(`${ctx.label}: query ${shapeStr(query.shape)}, key ${shapeStr(key.shape)} and value ${shapeStr(value.shape)} differ in batch or sequence length`);
  }
  const heads4 = (t: Tensor, n: number, what: string): Tensor => {
    if (t.shape[2] % n) fail(`${ctx.label}: ${what}'s last dim ${t.shape[2]} does not split into ${n} heads`);
    return t.reshape([B, T, n, t.shape[2] / n]).permute([0, 2, 1, 3]);
  };
  const q = heads4(query, qHeads, "query"), k = heads4(key, kvHeads, "key"), v = heads4(value, kvHeads, "value");
  const dk = q.shape[3], dv = v.shape[3];
  if (k.shape[3] !== dk) fail(`${ctx.label}: key's head size ${k.shape[3]} differs from query's ${dk}`);
  // decay → [B, kvHeads, T, 1 or dk]; beta → [B, kvHeads or 1, T, 1]
  let gate: Tensor | undefined, betas: Tensor | undefined;
  if (decay) {
    const last = decay.shape[2];
    if (last !== kvHeads && last !== kvHeads * dk) fail(`${ctx.label}: decay's last dim ${last} must be kv_num_heads (${kvHeads}) or kv_num_heads·d_k (${kvHeads * dk})`);
    gate = heads4(decay, kvHeads, "decay").exp();
  }
  if (beta) {
    const last = beta.shape[2];
    if (last !== kvHeads && last !== 1) fail(`${ctx.label}: beta's last dim ${last} must be kv_num_heads (${kvHeads}) or 1`);
    betas = heads4(beta, last, "beta");
  }
  let state: Tensor;
  if (pastState) {
    if (pastState.shape.join() !== [B, kvHeads, dk, dv].join()) fail(`${ctx.label}: past_state has shape ${shapeStr(pastState.shape)}, expected ${shapeStr([B, kvHeads, dk, dv])}`);
    state = pastState;
  } else state = Tensor.full([B, kvHeads, dk, dv], 0);
  const attrScale = ctx.attrs.float("scale", 0);
  const scale = attrScale === 0 ? 1 / Math.sqrt(dk) : attrScale;
  const step = (t: Tensor, i: number) => t.slice(2, i, i + 1); // [B, heads, 1, d]
  const outputs: Tensor[] = [];
  for (let i = 0; i < T; i++) {
    const kt = step(k, i);
    let vt = step(v, i);
    if (gate) state = state.mul(step(gate, i).permute([0, 1, 3, 2]));
    if (betas) vt = step(betas, i).mul(vt.sub(kt.matmul(state)));
    state = state.add(kt.permute([0, 1, 3, 2]).mul(vt));
    outputs.push(step(q, i).matmul(repeatHeads(state, g)).mul(scale));
  }
  const y = (T === 1 ? outputs[0] : Tensor.cat(outputs, 2)).permute([0, 2, 1, 3]).reshape([B, T, qHeads * dv]);
  return [y, state];
}

registerHandlers({ Attention: attention, "ai.onnx.preview.FlexAttention": flexAttention, RotaryEmbedding: rotaryEmbedding, LinearAttention: linearAttention });
