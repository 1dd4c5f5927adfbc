package io.sftnative.model;

import java.util.ArrayList;
import java.util.List;

/**
 * What one decoder family computes differently from Llama, resolved from config.json by {@link Families}. The
 * decoder ({@link DecoderModel}, {@link SelfAttention}, {@link GatedMlp}, {@link RmsNorm}) reads these fields and has
 * no branch on the model type: adding a family is a {@link Families} entry plus its golden test.
 *
 * @param className        transformers' class name (config.json {@code architectures})
 * @param norm             how every RMSNorm applies its weight
 * @param norms            HF names of the four per-layer norm positions (null where the family has none)
 * @param activation       of the gated MLP: {@code down(act(gate(x)) * up(x))}
 * @param qkNorm           RMSNorm on q and k before RoPE: none, over each head (qwen3, gemma3) or over the whole
 *                         projection (olmo2)
 * @param qkvFused         HF name of the fused q/k/v projection ({@code qkv_proj}, {@code W_pack}) or null for
 *                         separate {@code q_proj}/{@code k_proj}/{@code v_proj}
 * @param gateUpFused      HF name of the fused gate/up projection ({@code gate_up_proj}; gate is the first half)
 *                         or null for separate {@code gate_proj}/{@code up_proj}
 * @param embeddingScale   the embeddings are multiplied by this (gemma: sqrt(hidden); granite: embedding_multiplier)
 * @param roundEmbeddingScale whether the scale is first rounded to the model dtype (gemma's {@code normalizer})
 * @param residualScale    each block's output is multiplied by this before the residual add (granite)
 * @param attentionScale   multiplies q k^T: head_dim^-0.5, query_pre_attn_scalar^-0.5 (gemma),
 *                         attention_multiplier (granite)
 * @param attnSoftcap      attention logits become {@code cap * tanh(s / cap)} (gemma2), or null
 * @param finalSoftcap     LM-head logits become {@code cap * tanh(z / cap)} (gemma2), or null
 * @param logitsDivisor    LM-head logits are divided by this (granite logits_scaling), 1 otherwise
 * @param slidingLayers    per layer: whether it attends within {@link ModelConfig#slidingWindow()} only
 * @param rotaryDims       how many leading dims of each head are rotated ({@code partial_rotary_factor})
 * @param interleavedRotary rotary pairs are (2i, 2i+1) (glm4) instead of (i, i + d/2)
 * @param localRopeTheta   RoPE base of the sliding layers when they have their own (gemma3
 *                         {@code rope_local_base_freq}; no scaling there), or null
 * @param normHead         the LM head uses its rows L2-normalised (Baichuan2's NormHead, {@link NormHeadLinear})
 * @param alibi            no rotary embeddings: attention adds ALiBi biases {@code slope_h * (j - i)} to the scores
 *                         (Baichuan-13B, Baichuan2-13B; {@link Alibi})
 */
public record Architecture(String className, NormKind norm, NormSlots norms, Activation activation, QkNorm qkNorm,
        String qkvFused, String gateUpFused, double embeddingScale, boolean roundEmbeddingScale, double residualScale,
        double attentionScale, Double attnSoftcap, Double finalSoftcap, double logitsDivisor, List<Boolean> slidingLayers,
        int rotaryDims, boolean interleavedRotary, Double localRopeTheta, boolean normHead,
        boolean alibi) {

    public Architecture {
        slidingLayers = List.copyOf(slidingLayers);
    }

    /** How an RMSNorm applies its weight {@code w} to {@code n = x * rsqrt(mean(x^2) + eps)} (computed in fp32). */
    public enum NormKind {
        /** Llama: {@code w * n.to(dtype)}. */
        CAST_THEN_WEIGHT,
        /** OLMo-2: {@code (w * n).to(dtype)}. */
        WEIGHT_THEN_CAST,
        /** Gemma: {@code (n * (1 + w.float())).to(dtype)} (weights are stored as offsets from 1). */
        ONE_PLUS_WEIGHT
    }

    public enum Activation {
        SILU("silu"), GELU_TANH("gelu_pytorch_tanh");

        public final String hfName;

        Activation(String hfName) {
            this.hfName = hfName;
        }
    }

    public enum QkNorm { NONE, PER_HEAD, FULL }

    /**
     * HF names (under {@code model.layers.N.}) of the norms at the four positions of a layer, null where absent:
     * {@code h += post(attn(pre(h)))}, then {@code h += postMlp(mlp(preMlp(h)))}.
     */
    public record NormSlots(String preAttention, String postAttention, String preMlp, String postMlp) {
        public static final NormSlots LLAMA = new NormSlots("input_layernorm", null, "post_attention_layernorm", null);

        /** The names present, in this order. */
        public List<String> present() {
            List<String> out = new ArrayList<>();
            for (String n : new String[] {preAttention, postAttention, preMlp, postMlp}) {
                if (n != null) {
                    out.add(n);
                }
            }
            return out;
        }
    }

    /** Whether any layer uses a sliding window. */
    public boolean anySliding() {
        return slidingLayers.contains(Boolean.TRUE);
    }

    /** Whether every layer uses the sliding window (mistral; phi3 with sliding_window). */
    public boolean allSliding() {
        return !slidingLayers.contains(Boolean.FALSE);
    }

    /** The attention-input projections of a layer under {@code self_attn.}: fused or q/k/v. */
    public List<String> qkvNames() {
        return qkvFused != null ? List.of(qkvFused) : List.of("q_proj", "k_proj", "v_proj");
    }

    /** The MLP input projections under {@code mlp.}: fused or gate/up. */
    public List<String> gateUpNames() {
        return gateUpFused != null ? List.of(gateUpFused) : List.of("gate_proj", "up_proj");
    }

    /** Whether the LM head's output is the logits as is (no soft-cap, no divisor): the fused loss kernel's case. */
    public boolean plainLogits() {
        return finalSoftcap == null && logitsDivisor == 1.0;
    }
}
