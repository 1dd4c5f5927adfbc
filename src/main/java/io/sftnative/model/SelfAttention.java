package io.sftnative.model;

import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

/**
 * The attention block of every layer, as its {@link Architecture} describes it: q/k/v projections (separate, or one
 * fused {@code qkv_proj}/{@code W_pack} split as q | k | v), optional q/k RMSNorm (per head or over the whole
 * projection), rotary embeddings (partial or interleaved), the KV cache, {@link Sdpa#attention} (the one call site of
 * the attention kernel) and {@code o_proj}. Slots are looked up on every call, so LoRA/QLoRA replacements apply.
 */
final class SelfAttention {
    private final ModelConfig config;
    private final Architecture arch;
    private final Map<String, LinearLayer> linears; // the model's slots, by HF module path
    private final RotaryEmbedding rope; // rotates with the tables of the layer's context

    SelfAttention(ModelConfig config, Map<String, LinearLayer> linears, RotaryEmbedding rope) {
        this.config = config;
        this.arch = config.arch();
        this.linears = linears;
        this.rope = rope;
    }

    /**
     * Layer {@code layer}'s attention on x (B, T, H) (already pre-normed) -> (B, T, H) after o_proj. {@code qNorm},
     * {@code kNorm}: the layer's q/k norm weights ((D) per head or (nH*D)/(nKV*D) full), or null.
     */
    Tensor forward(int layer, Tensor x, AttentionContext ctx, Tensor qNorm, Tensor kNorm) {
        String p = ParameterLayout.layerPrefix(layer) + "self_attn.";
        long b = x.size(0);
        long t = x.size(1);
        int heads = config.numAttentionHeads();
        int kvHeads = config.numKeyValueHeads();
        int d = config.headDim();
        Tensor q; // (B, T, nH*D)
        Tensor k; // (B, T, nKV*D)
        Tensor v; // (B, T, nKV*D)
        if (arch.qkvFused() != null) {
            Tensor y = linears.get(p + arch.qkvFused()).forward(x); // (B, T, (nH + 2 nKV) * D)
            TensorVector parts = y.split_with_sizes(new long[] {(long) heads * d, (long) kvHeads * d,
                    (long) kvHeads * d}, -1);
            q = parts.get(0);
            k = parts.get(1);
            v = parts.get(2);
        } else {
            Tensor[] qkv = Projections.apply(linears, x, p, "q_proj", "k_proj", "v_proj");
            q = qkv[0];
            k = qkv[1];
            v = qkv[2];
        }
        if (arch.qkNorm() == Architecture.QkNorm.FULL) { // olmo2: over the whole projection, before the head split
            q = norm(q, qNorm);
            k = norm(k, kNorm);
        }
        q = q.reshape(b, t, heads, d); // (B, T, nH, D)
        k = k.reshape(b, t, kvHeads, d); // (B, T, nKV, D)
        v = v.reshape(b, t, kvHeads, d); // (B, T, nKV, D)
        if (arch.qkNorm() == Architecture.QkNorm.PER_HEAD) { // qwen3, gemma3: over head_dim
            q = norm(q, qNorm);
            k = norm(k, kNorm);
        }
        if (!arch.alibi()) {
            q = rope.apply(q, ctx.cos(), ctx.sinSigned());
            k = rope.apply(k, ctx.cos(), ctx.sinSigned());
        }
        Tensor qh = q.transpose(1, 2); // (B, nH, T, D)
        Tensor kh = k.transpose(1, 2); // (B, nKV, T, D)
        Tensor vh = v.transpose(1, 2); // (B, nKV, T, D)
        if (ctx.cache() != null) {
            Tensor[] kv = ctx.cache().append(layer, kh, vh); // (B, nKV, S, D) each
            kh = kv[0];
            vh = kv[1];
        }
        if (arch.alibi()) { // the biases go in as an additive mask (libtorch's SDPA takes one); no key ranges
            Tensor visible = ctx.mask() != null ? ctx.mask() // (B, 1, T, S)
                    : ctx.ranges() != null && !ctx.ranges().isCausal() ? ctx.ranges().mask(b, t, qh.device()) : null;
            ctx = ctx.withMask(Alibi.mask(heads, t, kh.size(2), visible, qh.scalar_type(), qh.device()));
        }
        Tensor attn = Sdpa.attention(qh, kh, vh, ctx, arch.attentionScale(), kvHeads != heads,
                arch.attnSoftcap()); // (B, nH, T, D)
        Tensor o = attn.transpose(1, 2).reshape(b, t, (long) heads * d); // (B, T, nH*D)
        return linears.get(p + "o_proj").forward(o); // (B, T, H)
    }

    private Tensor norm(Tensor x, Tensor weight) {
        return RmsNorm.apply(x, weight, config.rmsNormEps(), arch.norm());
    }
}
