import { fail } from "../../errors.js";
import { shapeStr } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { need, registerHandlers, type OpContext } from "./ops.js";

/**
 * Attention (opset 23/24) composed of matmuls, masks and a softmax, following the spec's reference
 * (onnx/reference/ops/op_attention.py): 3-d inputs split into heads, a KV cache concatenated from
 * past_key/past_value, grouped-query heads repeated, sqrt(scale) on Q and K, softcap before the
 * additive mask (boolean masks, causal masks and nonpad_kv_seqlen become -inf), softmax over keys.
 */

type Input = Tensor | undefined;

/** [B, S, heads·H] → [B, heads, S, H] */
const splitHeads = (t: Tensor, heads: number, ctx: OpContext): Tensor => {
  const [B, S, hidden] = t.shape;
  if (hidden % heads) fail(`${ctx.label}: hidden size ${hidden} does not split into ${heads} heads`);
  return t.reshape([B, S, heads, hidden / heads]).permute([0, 2, 1, 3]);
};

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
  let keys = presentKey, values = presentValue;
  if (qHeads !== kvHeads) {
    if (qHeads % kvHeads) fail(`${ctx.label}: ${qHeads} query heads do not group over ${kvHeads} KV heads`);
    const g = qHeads / kvHeads;
    const repeat = (t: Tensor) => t.unsqueeze(2).expand([B, kvHeads, g, t.shape[2], t.shape[3]]).reshape([B, qHeads, t.shape[2], t.shape[3]]);
    [keys, values] = [repeat(keys), repeat(values)];
  }
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

registerHandlers({ Attention: attention });
