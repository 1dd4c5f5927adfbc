package io.sftnative.model;

import java.util.Map;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.moe.MoeSpec;
import io.sftnative.model.moe.RouterLog;
import io.sftnative.model.moe.SparseMoeBlock;
import io.sftnative.torch.Devices;

/**
 * The forward math of a {@link DecoderModel}, where its family's {@link Architecture} is read (with
 * {@link SelfAttention}, {@link GatedMlp} and {@link RmsNorm}): the token embedding (NEFTune, the family's scale), per
 * layer its norm weights, attention and MLP slot, and the LM head's logit scaling and soft-cap; with the positional
 * machinery the attention uses, the rotary tables ({@link RotaryEmbedding}, gemma3's local ones too) and the
 * {@link AttentionContexts} built from them. A layer is {@code h += postNorm(attention(preNorm(h)))}, then
 * {@code h += postMlpNorm(mlp(preMlpNorm(h)))} with whichever norms the family has ({@link Architecture#norms()}).
 *
 * <p>Owns the rotary tables ({@link #close()}); the weights are the model's ({@link ModelWeights}), the projections
 * looked up in its live slot map on every call, so replaced slots (LoRA, quantization) take effect at once.
 * {@link DecoderModel} checks that it is open before calling in.
 */
final class DecoderForward implements AutoCloseable {
    private final Architecture arch;
    private final ScalarType dtype;
    private final String device; // the model's
    private final Map<String, LinearLayer> linears; // the model's slots, by HF module path
    private final long paddingIdx; // embedding row whose gradient stays 0 (pad_token_id), or -1
    private double neftuneAlpha; // 0 = off (see #neftune)
    private final LayerNorms[] norms;
    private final FeedForward[] mlps; // per layer: the MLP slot
    private double rmsNormEps; // replaced only by rescale (with the config)
    private RotaryEmbedding rope; // replaced only by rescale (with contexts and attention)
    private final RotaryEmbedding localRope; // the sliding layers' own rotary base (gemma3), or null
    private AttentionContexts contexts;
    private SelfAttention attention;

    /**
     * Per-layer norm weights (borrowed from the model's parameters), each (H) or null where the family has none; q/k:
     * (D) or (nH*D)/(nKV*D), see {@link Architecture#qkNorm()}.
     */
    private record LayerNorms(Tensor preAttention, Tensor postAttention, Tensor preMlp, Tensor postMlp, Tensor q,
            Tensor k) {}

    /**
     * The forward pass over {@code weights} on {@code device}; with {@code routerLog} (MoE) the sparse layers get
     * {@link SparseMoeBlock}s in their MLP slot, recording router logits there.
     */
    DecoderForward(ModelConfig config, ScalarType dtype, String device, ModelWeights weights, RouterLog routerLog) {
        this.arch = config.arch();
        this.dtype = dtype;
        this.device = device;
        this.linears = weights.linears();
        Integer pad = config.padTokenId();
        this.paddingIdx = pad != null && pad >= 0 && pad < config.vocabSize() ? pad : -1;
        this.rmsNormEps = config.rmsNormEps();
        this.rope = new RotaryEmbedding(config, device);
        this.localRope = arch.localRopeTheta() != null ? new RotaryEmbedding(config, arch.localRopeTheta(), device)
                : null;
        this.contexts = new AttentionContexts(rope, localRope, dtype, config.slidingWindow(), arch.allSliding(),
                device);
        this.attention = new SelfAttention(config, linears, rope);
        norms = new LayerNorms[config.numHiddenLayers()];
        mlps = new FeedForward[config.numHiddenLayers()];
        Architecture.NormSlots slots = arch.norms();
        for (int i = 0; i < norms.length; i++) {
            String p = ParameterLayout.layerPrefix(i);
            norms[i] = new LayerNorms(optional(weights, p, slots.preAttention()),
                    optional(weights, p, slots.postAttention()), optional(weights, p, slots.preMlp()),
                    optional(weights, p, slots.postMlp()),
                    config.qkNorm() ? weights.require(p + "self_attn.q_norm.weight") : null,
                    config.qkNorm() ? weights.require(p + "self_attn.k_norm.weight") : null);
            mlps[i] = new GatedMlp(linears, p + "mlp.", arch, config.intermediateSize());
        }
        MoeSpec moe = config.moe();
        for (int i = 0; moe != null && i < norms.length; i++) {
            if (moe.isSparse(i)) { // MoE: routed experts (+ qwen2_moe's shared expert) in the MLP slot
                SparseMoeBlock block = new SparseMoeBlock(moe, i, weights::require);
                mlps[i] = x -> block.forward(x, linears::get, routerLog); // (B, T, H) -> (B, T, H)
            }
        }
    }

    private static Tensor optional(ModelWeights weights, String prefix, String norm) {
        return norm == null ? null : weights.require(prefix + norm + ".weight");
    }

    // ---------------------------------------------------------------- embedding

    /**
     * (B, T) token ids, on the model's device -> (B, T, H) embeddings: the rows of {@code weight} (V, H), NEFTune's
     * noise while it is on, then the family's embedding scale. An id outside {@code vocabSize} fails naming it.
     */
    Tensor embed(Tensor weight, Tensor inputIds, long vocabSize) {
        if (inputIds.numel() > 0) {
            long max = inputIds.max().item_long();
            long min = inputIds.min().item_long();
            if (min < 0 || max >= vocabSize) {
                throw new IllegalArgumentException("token id " + (min < 0 ? min : max) + " is outside the"
                        + " vocabulary of this model (vocab_size " + vocabSize + ")");
            }
        }
        Tensor e = torch.embedding(weight, inputIds, paddingIdx, false, false); // (B, T, H)
        if (neftuneAlpha > 0) { // HF's neftune_post_forward_hook on embed_tokens: before any family's scaling
            double mag = neftuneAlpha / Math.sqrt((double) e.size(1) * e.size(2)); // alpha / sqrt(T * H)
            e = e.add(torch.empty_like(e).uniform_(-mag, mag, new GeneratorOptional()));
        }
        if (arch.embeddingScale() == 1.0) {
            return e;
        }
        if (arch.roundEmbeddingScale()) { // gemma: hidden * torch.tensor(sqrt(H), dtype=hidden.dtype)
            return e.mul(torch.scalar_tensor(new Scalar(arch.embeddingScale()), Devices.options(ScalarType.Float,
                    new Device(device))).to(e.scalar_type()));
        }
        return e.mul(new Scalar(arch.embeddingScale())); // granite: embedding_multiplier
    }

    /** NEFTune's alpha for {@link #embed} ({@link DecoderModel#neftune}); 0 turns the noise off. */
    void neftune(double alpha) {
        if (!(alpha >= 0)) {
            throw new IllegalArgumentException("neftune_noise_alpha must be >= 0, got " + alpha);
        }
        this.neftuneAlpha = alpha;
    }

    double neftuneAlpha() {
        return neftuneAlpha;
    }

    // ---------------------------------------------------------------- layers

    /** Decoder layer {@code i}: (B, T, H) -> (B, T, H). */
    Tensor layer(int i, Tensor hidden, AttentionContext ctx) {
        LayerNorms n = norms[i];
        Tensor x = norm(hidden, n.preAttention()); // (B, T, H)
        Tensor a = attention.forward(i, x, ctx.forLayer(arch.slidingLayers().get(i)), n.q(), n.k()); // (B, T, H)
        Tensor h = residual(hidden, norm(a, n.postAttention())); // (B, T, H)
        Tensor m = mlps[i].forward(norm(h, n.preMlp())); // (B, T, H)
        return residual(h, norm(m, n.postMlp()));
    }

    /** {@code h + out} (granite: {@code h + out * residual_multiplier}). */
    private Tensor residual(Tensor h, Tensor out) {
        return h.add(arch.residualScale() == 1.0 ? out : out.mul(new Scalar(arch.residualScale())));
    }

    /** The family's RMSNorm with {@code weight}, or x itself when the family has no norm there (null). */
    private Tensor norm(Tensor x, Tensor weight) {
        return weight == null ? x : rmsNorm(x, weight);
    }

    /** The family's RMSNorm with the model's epsilon ({@link RmsNorm}). */
    Tensor rmsNorm(Tensor x, Tensor weight) {
        return RmsNorm.apply(x, weight, rmsNormEps, arch.norm());
    }

    // ---------------------------------------------------------------- LM head

    /**
     * (B, T, H) -> (B, T, V) logits in the model dtype, through the {@code lm_head} slot, then the family's logit
     * scaling (granite: / logits_scaling) and final soft-cap (gemma2: {@code cap * tanh(z / cap)}).
     */
    Tensor lmHead(Tensor hidden) {
        Tensor z = linears.get("lm_head").forward(hidden); // (B, T, V)
        if (arch.logitsDivisor() != 1.0) {
            z = z.div(new Scalar(arch.logitsDivisor()));
        }
        if (arch.finalSoftcap() != null) {
            z = z.div(new Scalar(arch.finalSoftcap())).tanh().mul(new Scalar(arch.finalSoftcap()));
        }
        return z;
    }

    // ---------------------------------------------------------------- slots, contexts, rotary tables

    FeedForward feedForward(int i) {
        return mlps[i];
    }

    void setFeedForward(int i, FeedForward block) {
        mlps[i] = block;
    }

    AttentionContexts contexts() {
        return contexts;
    }

    RotaryEmbedding rope() {
        return rope;
    }

    /**
     * Rebuilds the rotary tables, the contexts (keeping the selected kernel) and the attention for {@code scaled}, a
     * config of the same model with other RoPE scaling (checked by {@link DecoderModel#rescaleRope}).
     */
    void rescale(ModelConfig scaled) {
        AttentionKernel kernel = contexts.kernel();
        RotaryEmbedding old = rope;
        rope = new RotaryEmbedding(scaled, device);
        contexts = new AttentionContexts(rope, localRope, dtype, scaled.slidingWindow(), arch.allSliding(), device);
        contexts.kernel(kernel);
        attention = new SelfAttention(scaled, linears, rope);
        rmsNormEps = scaled.rmsNormEps();
        old.close();
    }

    /** Frees the rotary tables. */
    @Override
    public void close() {
        rope.close();
        if (localRope != null) {
            localRope.close();
        }
    }
}
