package io.sftnative.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.moe.MoeSpec;
import io.sftnative.model.moe.RouterLog;
import io.sftnative.model.safetensors.ShardedSafetensorsWriter;
import io.sftnative.torch.Devices;
import io.sftnative.torch.TorchRuntime;

/**
 * A decoder-only transformer with transformers' math, of any family in {@link ModelConfig#SUPPORTED_MODEL_TYPES}:
 * what differs between families is data ({@link Architecture}), read in {@link DecoderForward} (the forward math),
 * {@link SelfAttention}, {@link GatedMlp} and {@link RmsNorm}; a layer is {@code h += postNorm(attention(preNorm(h)))}, then
 * {@code h += postMlpNorm(mlp(preMlpNorm(h)))} with whichever norms the family has.
 *
 * <p>Owns its parameters (HF names, e.g. {@code model.layers.0.self_attn.q_proj.weight}); {@link #close()} frees them.
 * Every linear projection sits in a replaceable {@link LinearLayer} slot addressed by its HF module path. The forward
 * pass is exposed in pieces ({@link #embed}, {@link #layer}, {@link #finalNorm}, {@link #lmHead}) so a trainer can
 * recompute layers (gradient checkpointing) or fuse the LM head with the loss. Parameters do not require grad after
 * loading; a trainer turns on what it trains ({@link #setRequiresGrad} or per tensor).
 *
 * <p>Device: every parameter, slot and buffer lives on {@link #device()} (the loaders put them there, by default on
 * {@link TorchRuntime#device()}); every tensor the model creates (positions, masks, rotary tables, KV cache) is
 * created there, and token ids or masks given on another device are moved there once.
 *
 * <p>A training step, with every temporary freed at the end of the scope:
 * <pre>{@code
 * try (PointerScope step = new PointerScope()) {
 *     AttentionContext ctx = model.paddedContext(attentionMask, null);   // once per batch
 *     Tensor logits = model.forward(inputIds, ctx);                        // (B, T, V)
 *     Tensor loss = CausalLmLoss.mean(logits, labels);                     // scalar
 *     loss.backward();
 *     double value = loss.item_double();                                   // only scalars leave the scope
 *     optimizer.step();
 * }
 * }</pre>
 */
public final class DecoderModel implements AutoCloseable {
    private ModelConfig config; // replaced only by rescaleRope and resizeVocabulary (vocab_size)
    private final ScalarType dtype;
    private final String device; // "cpu" or "cuda:N": where every parameter and buffer lives
    private final ModelWeights weights; // parameters by HF name, linear slots by HF module path, adopted resources
    private final Architecture arch;
    private final DecoderForward forwardPass; // the family's math: embedding, layers, LM head; rotary tables
    private boolean closed;
    private MultimodalText.Source multimodal; // the gemma3 checkpoint this text model was loaded from, or null
    // MoE (io.sftnative.model.moe): the sparse layers' blocks sit in their MLP slots (DecoderForward)
    private final MoeSpec moe;
    private final RouterLog routerLog; // null if dense

    /**
     * Takes ownership of {@code params} (each already retained once for this model, see
     * {@code Tensor.retainReference()}); names and shapes must match {@link ParameterLayout#shapes}.
     */
    DecoderModel(ModelConfig config, ScalarType dtype, Map<String, Tensor> params) {
        this(config, dtype, params, Map.of());
    }

    /**
     * As above, with some linear slots given ready-made (e.g. quantized layers built while loading, so the dense
     * weights never exist together): for those modules {@code params} holds no {@code .weight} (a bias stays a
     * parameter). The model adopts every given slot that is {@link AutoCloseable} (see {@link #adopt}).
     */
    DecoderModel(ModelConfig config, ScalarType dtype, Map<String, Tensor> params,
            Map<String, LinearLayer> prebuilt) {
        this.config = config;
        this.dtype = dtype.intern();
        this.device = Devices.common(params); // a model is never split across devices
        this.arch = config.arch();
        this.weights = new ModelWeights(config, params, prebuilt);
        moe = config.moe();
        routerLog = moe != null ? new RouterLog(moe) : null;
        this.forwardPass = new DecoderForward(config, this.dtype, device, weights, routerLog);
    }

    /** Whether linear slot {@code path} is a mixture-of-experts router (never quantized, not in "all"). */
    public boolean isRouter(String path) {
        if (moe == null || !path.endsWith(".gate")) {
            return false;
        }
        int layer = ParameterLayout.layerIndexOf(path);
        return layer >= 0 && moe.isSparse(layer) && moe.router(layer).equals(path);
    }

    /**
     * A model from parameters and ready-made linear slots (quantized loading, {@code io.sftnative.quant}).
     * {@code params}: HF name to tensor, each retained once for the model (it releases them on close), every name
     * of {@link ParameterLayout#shapes} except the {@code .weight} of the modules in {@code linears}; {@code linears}:
     * module path to layer with the module's feature sizes. AutoCloseable layers are adopted (closed with the model).
     */
    public static DecoderModel assemble(ModelConfig config, ScalarType dtype, Map<String, Tensor> params,
            Map<String, LinearLayer> linears) {
        ModelLoader.checkAssembled(config, dtype, params, linears);
        return new DecoderModel(config, dtype, params, linears);
    }

    /**
     * Loads {@code dir} (config.json + safetensors) converting weights to {@code dtype} (null: config's), onto
     * {@link TorchRuntime#device()}.
     */
    public static DecoderModel load(Path dir, ScalarType dtype) throws IOException {
        try (PointerScope scope = new PointerScope()) {
            return load(dir, dtype, TorchRuntime.device());
        }
    }

    /**
     * Loads {@code dir} onto {@code device}: each tensor is read on the host, converted and moved before the next one
     * is read, so host memory holds one tensor at a time beyond the model (itself on the host only for the CPU).
     */
    public static DecoderModel load(Path dir, ScalarType dtype, Device device) throws IOException {
        return ModelLoader.load(dir, dtype, device, null);
    }

    /**
     * Loads {@code dir} like {@link #load(Path, ScalarType)}, handing each linear weight to {@code factory} as it is
     * read (one dense weight at a time): QLoRA quantizes while loading so the dense model never exists whole.
     */
    public static DecoderModel load(Path dir, ScalarType dtype, LinearFactory factory) throws IOException {
        try (PointerScope scope = new PointerScope()) {
            return load(dir, dtype, TorchRuntime.device(), factory);
        }
    }

    /** As {@link #load(Path, ScalarType, LinearFactory)} onto {@code device}: the factory gets weights there. */
    public static DecoderModel load(Path dir, ScalarType dtype, Device device, LinearFactory factory)
            throws IOException {
        return ModelLoader.load(dir, dtype, device, factory);
    }

    // ---------------------------------------------------------------- parameters and slots

    public ModelConfig config() {
        return config;
    }

    /** Compute and parameter dtype (Float, BFloat16 or Half). */
    public ScalarType dtype() {
        return dtype;
    }

    /**
     * Where the parameters live and where the model creates its tensors; callers put their inputs here (or let the
     * model move them). A new handle, owned by the caller's {@code PointerScope} if one is open.
     */
    public Device device() {
        return new Device(device);
    }

    /** The canonical name of {@link #device()}: {@code cpu} or {@code cuda:N}. */
    public String deviceName() {
        return device;
    }

    /** Parameters by HF name, in HF order (tied lm_head not repeated). Borrowed: never close them. */
    public Map<String, Tensor> parameters() {
        check();
        return weights.view();
    }

    public Tensor parameter(String name) {
        check();
        Tensor t = weights.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no parameter named '" + name + "' in this " + config.modelType()
                    + " model");
        }
        return t;
    }

    /** Number of parameter elements (tied embeddings once). */
    public long parameterCount() {
        return weights.count();
    }

    /** Bytes held by the parameters. */
    public long parameterBytes() {
        return weights.bytes();
    }

    /** Sets requires_grad on every parameter (full fine-tuning) or none. */
    public void setRequiresGrad(boolean on) {
        check();
        weights.setRequiresGrad(on);
    }

    /** HF module paths of the linear slots (q/k/v/o, gate/up/down per layer, then lm_head). */
    public List<String> linearPaths() {
        return List.copyOf(weights.linears().keySet());
    }

    /** The projection in slot {@code path}, e.g. {@code model.layers.0.self_attn.q_proj}. */
    public LinearLayer linear(String path) {
        return weights.linear(path);
    }

    /**
     * Replaces the projection in slot {@code path} (LoRA wrapping, a quantized weight). The replacement must map
     * the same feature sizes. The model keeps owning the dense parameters; see {@link #detachParameter}.
     */
    public void setLinear(String path, LinearLayer layer) {
        weights.setLinear(path, layer);
    }

    /**
     * Removes a parameter from the model and hands its ownership to the caller (who must release it); e.g. QLoRA
     * frees the dense weight after putting a quantized layer into its slot. The slot must not use it any more.
     */
    public Tensor detachParameter(String name) {
        check();
        return weights.detach(name);
    }

    /**
     * Hands {@code resource} to the model, which closes it after its parameters when the model is closed: e.g. the
     * quantized weight put into a slot with {@link #setLinear}. Returns it.
     */
    public <T extends AutoCloseable> T adopt(T resource) {
        check();
        return weights.adopt(resource);
    }

    /**
     * Grows the vocabulary (transformers' {@code resize_token_embeddings}): {@code embed} (V', H) replaces the input
     * embedding and, for an untied model, {@code head} (V', H) the LM head; config vocab_size becomes V'. Takes one
     * reference of each new tensor (the caller retains them for the model) and releases the old ones. Only for a
     * model whose lm_head slot is still its plain dense weight (not LoRA-wrapped or quantized) and has no bias.
     *
     * @param head the new LM head, or null for a tied model
     */
    public void resizeVocabulary(Tensor embed, Tensor head) {
        check();
        boolean tied = config.tieWordEmbeddings();
        weights.checkHeadResizable();
        if (embed.dim() != 2 || embed.size(1) != config.hiddenSize() || (tied != (head == null))
                || (head != null && (head.size(0) != embed.size(0) || head.size(1) != config.hiddenSize()))) {
            throw new IllegalArgumentException("resizeVocabulary needs (V', " + config.hiddenSize() + ") tensors"
                    + (tied ? " and no head (tied model)" : " for the embedding and the head"));
        }
        weights.replaceVocabulary(embed, head, tied);
        config = config.withVocabSize((int) embed.size(0));
    }

    /** (V, H) the input embedding. */
    public Tensor embedWeight() {
        return parameter("model.embed_tokens.weight");
    }

    /** (V, H) the LM head weight (the embedding when tied); for a fused LM-head loss. */
    public Tensor lmHeadWeight() {
        return config.tieWordEmbeddings() ? embedWeight() : parameter("lm_head.weight");
    }

    /** The mixture-of-experts keys, or null for a dense model. */
    public MoeSpec moe() {
        return moe;
    }

    /** Where the sparse layers record router logits for the load-balancing loss (only when started); null if dense. */
    public RouterLog routerLog() {
        return routerLog;
    }

    public RotaryEmbedding rotary() {
        return forwardPass.rope();
    }

    /**
     * Switches to {@code scaled}'s RoPE scaling ({@link ModelConfig#withLlamaFactoryRopeScaling}): the config must
     * describe this model apart from rope_scaling and max_position_embeddings. The rotary tables are rebuilt; the
     * config (and so what {@link #save} writes) becomes {@code scaled}.
     */
    public void rescaleRope(ModelConfig scaled) {
        check();
        if (!scaled.modelType().equals(config.modelType()) || scaled.hiddenSize() != config.hiddenSize()
                || scaled.numHiddenLayers() != config.numHiddenLayers() || scaled.headDim() != config.headDim()
                || scaled.vocabSize() != config.vocabSize() || !scaled.arch().equals(arch)) {
            throw new IllegalArgumentException("rescaleRope: the new config describes another model ("
                    + scaled.modelType() + ", " + scaled.numHiddenLayers() + " layers) than this one ("
                    + config.modelType() + ", " + config.numHiddenLayers() + " layers)");
        }
        forwardPass.rescale(scaled);
        config = scaled;
    }

    // ---------------------------------------------------------------- attention contexts

    /**
     * Selects the attention kernel for the causal, padded and packed contexts built from now on (default
     * {@link AttentionKernel#SDPA}; see docs/attention.md).
     */
    public void attentionKernel(AttentionKernel kernel) {
        forwardPass.contexts().kernel(kernel);
    }

    public AttentionKernel attentionKernel() {
        return forwardPass.contexts().kernel();
    }

    /**
     * Whether right-padded batches may run without their padding ({@link io.sftnative.batch.Unpadding}, chosen per
     * batch by {@link io.sftnative.loss.MicroBatch#uploadForTraining}): packed contexts carry key ranges for our
     * attention kernel, so each segment attends to its own keys only, and nothing else in the forward pass depends on
     * how tokens fall into rows (not so for ALiBi's per-layer mask, NEFTune's noise scaled by the row length, or the
     * MoE load-balancing loss over the padding mask). See docs/attention.md.
     */
    public boolean attendsBySegments() {
        check();
        // fp32 only: the bf16 kernel (bf16 models, autocast) takes ranges too, but padding-free bf16 steps are not
        // verified yet (UnpaddedLossTest covers fp32)
        return forwardPass.contexts().nativeKernel() && io.sftnative.bindings.TensorMemory.same(dtype(), ScalarType.Float)
                && !arch.alibi() && forwardPass.neftuneAlpha() == 0 && routerLog() == null;
    }

    /** Full causal attention over (B, T) with positions 0..T-1 (no padding). */
    public AttentionContext causalContext(long batch, long seq) {
        check();
        return forwardPass.contexts().causal(batch, seq);
    }

    /**
     * Causal attention with a padding mask: {@code attentionMask} (B, T) 1 = token, 0 = padding (either side);
     * {@code positionIds} (B, T) or null for 0..T-1 (right padding, as the training collator produces).
     */
    public AttentionContext paddedContext(Tensor attentionMask, Tensor positionIds) {
        check();
        return forwardPass.contexts().padded(attentionMask, positionIds);
    }

    /**
     * Packed sequences that must not see each other (LLaMA-Factory neat_packing): {@code segmentIds} (B, T) with
     * 1, 2, 3, ... per sequence and 0 for padding; {@code positionIds} (B, T), or null to restart at 0 in each
     * segment.
     */
    public AttentionContext packedContext(Tensor segmentIds, Tensor positionIds) {
        check();
        return forwardPass.contexts().packed(segmentIds, positionIds);
    }

    /**
     * The general form: {@code positionIds} (B, T); {@code mask} (B, 1, T, S) bool or null for causal;
     * {@code cache} for incremental decoding (then {@code mask} must be given).
     */
    public AttentionContext context(Tensor positionIds, Tensor mask, KvCache cache) {
        check();
        return forwardPass.contexts().general(positionIds, mask, cache);
    }

    /** Context for decoding step(s): {@code keyMask} (B, S) over cached + new positions, S = cache.length() + T. */
    AttentionContext decodeContext(Tensor positionIds, Tensor keyMask, KvCache cache) {
        check();
        return forwardPass.contexts().decode(positionIds, keyMask, cache);
    }

    // ---------------------------------------------------------------- forward pieces

    /** (B, T) token ids (moved to {@link #device()} if elsewhere) -> (B, T, H) embeddings. */
    public Tensor embed(Tensor inputIds) {
        check();
        Tensor ids = Devices.to(inputIds, device()); // (B, T), no copy when already there
        return forwardPass.embed(embedWeight(), ids, config.vocabSize()); // (B, T, H)
    }

    /**
     * NEFTune ({@code neftune_noise_alpha}): while {@code alpha > 0}, {@link #embed} adds uniform noise in
     * {@code [-alpha / sqrt(T * H), alpha / sqrt(T * H)]} to the embeddings (libtorch's default generator, so the
     * checkpointed RNG state covers it). The trainer turns it on for training steps only; 0 turns it off.
     */
    public void neftune(double alpha) {
        forwardPass.neftune(alpha);
    }

    /** Decoder layer {@code i}: (B, T, H) -> (B, T, H). */
    public Tensor layer(int i, Tensor hidden, AttentionContext ctx) {
        check();
        return forwardPass.layer(i, hidden, ctx); // (B, T, H)
    }

    /** The MLP slot of layer {@code i} ({@link GatedMlp} unless replaced). */
    public FeedForward feedForward(int i) {
        return forwardPass.feedForward(i);
    }

    /** Puts {@code block} into layer {@code i}'s MLP slot (e.g. a mixture-of-experts block). */
    public void setFeedForward(int i, FeedForward block) {
        check();
        forwardPass.setFeedForward(i, block);
    }

    /** The final RMSNorm: (B, T, H) -> (B, T, H). */
    public Tensor finalNorm(Tensor hidden) {
        return forwardPass.rmsNorm(hidden, parameter("model.norm.weight"));
    }

    /**
     * (B, T, H) -> (B, T, V) logits in the model dtype, through the {@code lm_head} slot, then the family's logit
     * scaling (granite: / logits_scaling) and final soft-cap (gemma2: {@code cap * tanh(z / cap)}).
     */
    public Tensor lmHead(Tensor hidden) {
        return forwardPass.lmHead(hidden); // (B, T, V)
    }

    /** Embeddings, all layers and the final norm: (B, T) ids -> (B, T, H). Advances {@code ctx.cache()}. */
    public Tensor hidden(Tensor inputIds, AttentionContext ctx) {
        Tensor h = embed(inputIds);
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            h = layer(i, h, ctx);
        }
        if (ctx.cache() != null) {
            ctx.cache().advance(inputIds.size(1));
        }
        return finalNorm(h);
    }

    /** (B, T) ids -> (B, T, V) logits. */
    public Tensor forward(Tensor inputIds, AttentionContext ctx) {
        return lmHead(hidden(inputIds, ctx));
    }

    /** (B, T) ids (on any device) -> (B, T, V) logits with plain causal attention. */
    public Tensor forward(Tensor inputIds) {
        return forward(inputIds, causalContext(inputIds.size(0), inputIds.size(1)));
    }

    // ---------------------------------------------------------------- saving

    /**
     * Writes {@code dir/config.json} and the weights ({@code model.safetensors}, or shards + index above 5 GB),
     * each file atomically, with HF names; tied models omit {@code lm_head.weight} like transformers.
     */
    public void save(Path dir) throws IOException {
        save(dir, ShardedSafetensorsWriter.DEFAULT_MAX_SHARD_BYTES);
    }

    public void save(Path dir, long maxShardBytes) throws IOException {
        check();
        ModelWriter.save(config, dtype, weights.parameters(), multimodal, dir, maxShardBytes);
    }

    /** Set by the loader for a gemma3 checkpoint: saving writes that multimodal layout back (vision included). */
    void keepMultimodalSource(MultimodalText.Source source) {
        multimodal = adopt(source);
    }

    /**
     * Whether {@link #save} writes a multimodal checkpoint ({@code gemma3}, vision tower kept) and adapters use its
     * names ({@link #storedName}): true for a model loaded from one.
     */
    public boolean savesMultimodal() {
        return multimodal != null;
    }

    /**
     * The name under which the checkpoint this model was loaded from stores the parameter or module path
     * {@code name} of the text model (a gemma3 checkpoint: {@code language_model.model.*} as transformers 4.x
     * saves it, or {@code model.language_model.*} as 5.x does; {@code lm_head} likewise), so saved models and PEFT
     * adapters follow the checkpoint's own layout ({@link MultimodalText#storedNames} gives both layouts' names);
     * {@code name} itself for every other model.
     */
    public String storedName(String name) {
        return multimodal == null ? name : multimodal.layout().stored(name);
    }

    // ---------------------------------------------------------------- lifetime

    private void check() {
        if (closed) {
            throw new IllegalStateException("model is closed");
        }
    }

    public boolean isClosed() {
        return closed;
    }

    /** Frees the parameters; any later use of the model fails. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException failure = weights.release();
        forwardPass.close();
        if (failure != null) {
            throw failure;
        }
    }
}
