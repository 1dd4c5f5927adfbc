package io.sftnative.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.moe.MoeSpec;
import io.sftnative.model.moe.RouterLog;
import io.sftnative.model.moe.SparseMoeBlock;
import io.sftnative.model.safetensors.ShardedSafetensorsWriter;
import io.sftnative.torch.Devices;
import io.sftnative.torch.TorchRuntime;

/**
 * A decoder-only transformer with transformers' math, of any family in {@link ModelConfig#SUPPORTED_MODEL_TYPES}:
 * what differs between families is data ({@link Architecture}), read here and in {@link SelfAttention},
 * {@link GatedMlp} and {@link RmsNorm}; a layer is {@code h += postNorm(attention(preNorm(h)))}, then
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
    private final Map<String, Tensor> parameters; // HF name -> owned leaf tensor
    private final Map<String, LinearLayer> linears; // HF module path -> projection
    private final Architecture arch;
    private final LayerNorms[] norms;
    private RotaryEmbedding rope; // replaced only by rescaleRope (with contexts and attention)
    private final RotaryEmbedding localRope; // the sliding layers' own rotary base (gemma3), or null
    private AttentionContexts contexts;
    private SelfAttention attention;
    private final FeedForward[] mlps; // per layer: the MLP slot
    private final long paddingIdx;
    private final List<AutoCloseable> adopted = new ArrayList<>(); // closed after the parameters
    private boolean closed;
    private MultimodalText.Source multimodal; // the gemma3 checkpoint this text model was loaded from, or null
    // MoE (io.sftnative.model.moe): per layer the sparse block replacing the MLP, null where dense; all null if dense
    private final MoeSpec moe;
    private final SparseMoeBlock[] sparse;
    private final RouterLog routerLog; // null if dense

    /**
     * Per-layer norm weights (borrowed from {@link #parameters}), each (H) or null where the family has none; q/k:
     * (D) or (nH*D)/(nKV*D), see {@link Architecture#qkNorm()}.
     */
    private record LayerNorms(Tensor preAttention, Tensor postAttention, Tensor preMlp, Tensor postMlp, Tensor q,
            Tensor k) {}

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
        this.parameters = new LinkedHashMap<>(params);
        this.linears = new LinkedHashMap<>();
        this.arch = config.arch();
        this.rope = new RotaryEmbedding(config, device);
        this.localRope = arch.localRopeTheta() != null ? new RotaryEmbedding(config, arch.localRopeTheta(), device)
                : null;
        this.contexts = new AttentionContexts(rope, localRope, this.dtype, config.slidingWindow(), arch.allSliding(),
                device);
        this.attention = new SelfAttention(config, linears, rope);
        Integer pad = config.padTokenId();
        this.paddingIdx = pad != null && pad >= 0 && pad < config.vocabSize() ? pad : -1;
        for (String module : ParameterLayout.linearModules(config)) {
            LinearLayer given = prebuilt.get(module);
            if (given != null) {
                linears.put(module, given);
                if (given instanceof AutoCloseable c) {
                    adopted.add(c);
                }
                continue;
            }
            String weight = module.equals("lm_head") && config.tieWordEmbeddings()
                    ? "model.embed_tokens.weight" : module + ".weight";
            linears.put(module, module.equals("lm_head") && config.arch().normHead()
                    ? new NormHeadLinear(require(weight))
                    : new DenseLinear(require(weight), parameters.get(module + ".bias")));
        }
        addRouterSlots(config.moe());
        norms = new LayerNorms[config.numHiddenLayers()];
        mlps = new FeedForward[config.numHiddenLayers()];
        Architecture.NormSlots slots = arch.norms();
        for (int i = 0; i < norms.length; i++) {
            String p = ParameterLayout.layerPrefix(i);
            norms[i] = new LayerNorms(optional(p, slots.preAttention()), optional(p, slots.postAttention()),
                    optional(p, slots.preMlp()), optional(p, slots.postMlp()),
                    config.qkNorm() ? require(p + "self_attn.q_norm.weight") : null,
                    config.qkNorm() ? require(p + "self_attn.k_norm.weight") : null);
            mlps[i] = new GatedMlp(linears, p + "mlp.", arch, config.intermediateSize());
        }
        moe = config.moe();
        routerLog = moe != null ? new RouterLog(moe) : null;
        sparse = new SparseMoeBlock[norms.length];
        for (int i = 0; moe != null && i < norms.length; i++) {
            sparse[i] = moe.isSparse(i) ? new SparseMoeBlock(moe, i, this::require) : null;
            if (sparse[i] != null) { // MoE: routed experts (+ qwen2_moe's shared expert) in the MLP slot
                SparseMoeBlock block = sparse[i];
                mlps[i] = x -> block.forward(x, linears::get, routerLog); // (B, T, H) -> (B, T, H)
            }
        }
    }

    /**
     * MoE routers ({@code mlp.gate}, {@code block_sparse_moe.gate}) are linear slots too, placed before their
     * layer's experts, so a LoRA target that names {@code gate} adapts them (PEFT's module path); they are neither
     * quantized nor part of {@code lora_target: all} ({@link #isRouter}).
     */
    private void addRouterSlots(MoeSpec spec) {
        if (spec == null) {
            return;
        }
        Map<String, LinearLayer> ordered = new LinkedHashMap<>();
        for (Map.Entry<String, LinearLayer> e : linears.entrySet()) {
            for (int i = 0; i < config.numHiddenLayers(); i++) {
                if (spec.isSparse(i) && e.getKey().equals(spec.expert(i, 0) + spec.projections()[0])) {
                    ordered.put(spec.router(i), new DenseLinear(require(spec.router(i) + ".weight"), null));
                }
            }
            ordered.put(e.getKey(), e.getValue());
        }
        linears.clear();
        linears.putAll(ordered);
    }

    /** Whether linear slot {@code path} is a mixture-of-experts router (never quantized, not in "all"). */
    public boolean isRouter(String path) {
        if (moe == null || !path.endsWith(".gate")) {
            return false;
        }
        int layer = ParameterLayout.layerIndexOf(path);
        return layer >= 0 && moe.isSparse(layer) && moe.router(layer).equals(path);
    }

    private Tensor optional(String prefix, String norm) {
        return norm == null ? null : require(prefix + norm + ".weight");
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

    private Tensor require(String name) {
        Tensor t = parameters.get(name);
        if (t == null) {
            throw new IllegalStateException("parameter " + name + " missing");
        }
        return t;
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
        return Collections.unmodifiableMap(parameters);
    }

    public Tensor parameter(String name) {
        check();
        Tensor t = parameters.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no parameter named '" + name + "' in this " + config.modelType()
                    + " model");
        }
        return t;
    }

    /** Number of parameter elements (tied embeddings once). */
    public long parameterCount() {
        long n = 0;
        for (Tensor t : parameters.values()) {
            n += t.numel();
        }
        return n;
    }

    /** Bytes held by the parameters. */
    public long parameterBytes() {
        long n = 0;
        for (Tensor t : parameters.values()) {
            n += t.numel() * t.element_size();
        }
        return n;
    }

    /** Sets requires_grad on every parameter (full fine-tuning) or none. */
    public void setRequiresGrad(boolean on) {
        check();
        for (Tensor t : parameters.values()) {
            t.requires_grad_(on);
        }
    }

    /** HF module paths of the linear slots (q/k/v/o, gate/up/down per layer, then lm_head). */
    public List<String> linearPaths() {
        return List.copyOf(linears.keySet());
    }

    /** The projection in slot {@code path}, e.g. {@code model.layers.0.self_attn.q_proj}. */
    public LinearLayer linear(String path) {
        LinearLayer l = linears.get(path);
        if (l == null) {
            throw new IllegalArgumentException("no linear module '" + path + "'; modules look like "
                    + linears.keySet().iterator().next());
        }
        return l;
    }

    /**
     * Replaces the projection in slot {@code path} (LoRA wrapping, a quantized weight). The replacement must map
     * the same feature sizes. The model keeps owning the dense parameters; see {@link #detachParameter}.
     */
    public void setLinear(String path, LinearLayer layer) {
        LinearLayer old = linear(path);
        if (layer.inFeatures() != old.inFeatures() || layer.outFeatures() != old.outFeatures()) {
            throw new IllegalArgumentException("replacement for " + path + " maps " + layer.inFeatures() + " -> "
                    + layer.outFeatures() + " features, the module maps " + old.inFeatures() + " -> "
                    + old.outFeatures());
        }
        linears.put(path, layer);
    }

    /**
     * Removes a parameter from the model and hands its ownership to the caller (who must release it); e.g. QLoRA
     * frees the dense weight after putting a quantized layer into its slot. The slot must not use it any more.
     */
    public Tensor detachParameter(String name) {
        check();
        Tensor t = parameters.remove(name);
        if (t == null) {
            throw new IllegalArgumentException("no parameter named '" + name + "'");
        }
        return t;
    }

    /**
     * Hands {@code resource} to the model, which closes it after its parameters when the model is closed: e.g. the
     * quantized weight put into a slot with {@link #setLinear}. Returns it.
     */
    public <T extends AutoCloseable> T adopt(T resource) {
        check();
        adopted.add(resource);
        return resource;
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
        LinearLayer slot = linears.get("lm_head");
        if (!(slot instanceof DenseLinear) || parameters.containsKey("lm_head.bias")) {
            throw new IllegalStateException("cannot resize the vocabulary: lm_head is "
                    + slot.getClass().getSimpleName() + (parameters.containsKey("lm_head.bias") ? " with a bias" : "")
                    + ", not a plain dense weight (resize before attaching adapters; quantized heads cannot grow)");
        }
        if (embed.dim() != 2 || embed.size(1) != config.hiddenSize() || (tied != (head == null))
                || (head != null && (head.size(0) != embed.size(0) || head.size(1) != config.hiddenSize()))) {
            throw new IllegalArgumentException("resizeVocabulary needs (V', " + config.hiddenSize() + ") tensors"
                    + (tied ? " and no head (tied model)" : " for the embedding and the head"));
        }
        Tensor oldEmbed = parameters.put("model.embed_tokens.weight", embed);
        Tensor oldHead = head == null ? null : parameters.put("lm_head.weight", head);
        linears.put("lm_head", new DenseLinear(tied ? embed : head, null));
        config = config.withVocabSize((int) embed.size(0));
        oldEmbed.releaseReference();
        if (oldHead != null) {
            oldHead.releaseReference();
        }
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
        return rope;
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
        AttentionKernel kernel = contexts.kernel();
        RotaryEmbedding old = rope;
        rope = new RotaryEmbedding(scaled, device);
        contexts = new AttentionContexts(rope, localRope, dtype, scaled.slidingWindow(), arch.allSliding(), device);
        contexts.kernel(kernel);
        attention = new SelfAttention(scaled, linears, rope);
        config = scaled;
        old.close();
    }

    // ---------------------------------------------------------------- attention contexts

    /**
     * Selects the attention kernel for the causal, padded and packed contexts built from now on (default
     * {@link AttentionKernel#SDPA}; see docs/attention.md).
     */
    public void attentionKernel(AttentionKernel kernel) {
        contexts.kernel(kernel);
    }

    public AttentionKernel attentionKernel() {
        return contexts.kernel();
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
        return contexts.nativeKernel() && io.sftnative.bindings.TensorMemory.same(dtype(), ScalarType.Float)
                && !arch.alibi() && neftuneAlpha == 0 && routerLog() == null;
    }

    /** Full causal attention over (B, T) with positions 0..T-1 (no padding). */
    public AttentionContext causalContext(long batch, long seq) {
        check();
        return contexts.causal(batch, seq);
    }

    /**
     * Causal attention with a padding mask: {@code attentionMask} (B, T) 1 = token, 0 = padding (either side);
     * {@code positionIds} (B, T) or null for 0..T-1 (right padding, as the training collator produces).
     */
    public AttentionContext paddedContext(Tensor attentionMask, Tensor positionIds) {
        check();
        return contexts.padded(attentionMask, positionIds);
    }

    /**
     * Packed sequences that must not see each other (LLaMA-Factory neat_packing): {@code segmentIds} (B, T) with
     * 1, 2, 3, ... per sequence and 0 for padding; {@code positionIds} (B, T), or null to restart at 0 in each
     * segment.
     */
    public AttentionContext packedContext(Tensor segmentIds, Tensor positionIds) {
        check();
        return contexts.packed(segmentIds, positionIds);
    }

    /**
     * The general form: {@code positionIds} (B, T); {@code mask} (B, 1, T, S) bool or null for causal;
     * {@code cache} for incremental decoding (then {@code mask} must be given).
     */
    public AttentionContext context(Tensor positionIds, Tensor mask, KvCache cache) {
        check();
        return contexts.general(positionIds, mask, cache);
    }

    /** Context for decoding step(s): {@code keyMask} (B, S) over cached + new positions, S = cache.length() + T. */
    AttentionContext decodeContext(Tensor positionIds, Tensor keyMask, KvCache cache) {
        check();
        return contexts.decode(positionIds, keyMask, cache);
    }

    private double neftuneAlpha; // 0 = off (see #neftune)

    // ---------------------------------------------------------------- forward pieces

    /** (B, T) token ids (moved to {@link #device()} if elsewhere) -> (B, T, H) embeddings. */
    public Tensor embed(Tensor inputIds) {
        check();
        inputIds = Devices.to(inputIds, device()); // no copy when already there
        if (inputIds.numel() > 0) {
            long max = inputIds.max().item_long();
            long min = inputIds.min().item_long();
            if (min < 0 || max >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + (min < 0 ? min : max) + " is outside the"
                        + " vocabulary of this model (vocab_size " + config.vocabSize() + ")");
            }
        }
        Tensor e = torch.embedding(embedWeight(), inputIds, paddingIdx, false, false); // (B, T, H)
        if (neftuneAlpha > 0) { // HF's neftune_post_forward_hook on embed_tokens: before any family's scaling
            double mag = neftuneAlpha / Math.sqrt((double) e.size(1) * e.size(2)); // alpha / sqrt(T * H)
            e = e.add(torch.empty_like(e).uniform_(-mag, mag, new org.bytedeco.pytorch.GeneratorOptional()));
        }
        if (arch.embeddingScale() == 1.0) {
            return e;
        }
        if (arch.roundEmbeddingScale()) { // gemma: hidden * torch.tensor(sqrt(H), dtype=hidden.dtype)
            return e.mul(torch.scalar_tensor(new Scalar(arch.embeddingScale()), Devices.options(ScalarType.Float,
                    device())).to(e.scalar_type()));
        }
        return e.mul(new Scalar(arch.embeddingScale())); // granite: embedding_multiplier
    }

    /**
     * NEFTune ({@code neftune_noise_alpha}): while {@code alpha > 0}, {@link #embed} adds uniform noise in
     * {@code [-alpha / sqrt(T * H), alpha / sqrt(T * H)]} to the embeddings (libtorch's default generator, so the
     * checkpointed RNG state covers it). The trainer turns it on for training steps only; 0 turns it off.
     */
    public void neftune(double alpha) {
        if (!(alpha >= 0)) {
            throw new IllegalArgumentException("neftune_noise_alpha must be >= 0, got " + alpha);
        }
        this.neftuneAlpha = alpha;
    }

    /** Decoder layer {@code i}: (B, T, H) -> (B, T, H). */
    public Tensor layer(int i, Tensor hidden, AttentionContext ctx) {
        check();
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

    /** The MLP slot of layer {@code i} ({@link GatedMlp} unless replaced). */
    public FeedForward feedForward(int i) {
        return mlps[i];
    }

    /** Puts {@code block} into layer {@code i}'s MLP slot (e.g. a mixture-of-experts block). */
    public void setFeedForward(int i, FeedForward block) {
        check();
        mlps[i] = block;
    }

    /** The final RMSNorm: (B, T, H) -> (B, T, H). */
    public Tensor finalNorm(Tensor hidden) {
        return rmsNorm(hidden, parameter("model.norm.weight"));
    }

    /**
     * (B, T, H) -> (B, T, V) logits in the model dtype, through the {@code lm_head} slot, then the family's logit
     * scaling (granite: / logits_scaling) and final soft-cap (gemma2: {@code cap * tanh(z / cap)}).
     */
    public Tensor lmHead(Tensor hidden) {
        Tensor z = linears.get("lm_head").forward(hidden); // (B, T, V)
        if (arch.logitsDivisor() != 1.0) {
            z = z.div(new Scalar(arch.logitsDivisor()));
        }
        if (arch.finalSoftcap() != null) {
            z = z.div(new Scalar(arch.finalSoftcap())).tanh().mul(new Scalar(arch.finalSoftcap()));
        }
        return z;
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

    /** The family's RMSNorm with this model's epsilon ({@link RmsNorm}). */
    Tensor rmsNorm(Tensor x, Tensor weight) {
        return RmsNorm.apply(x, weight, config.rmsNormEps(), arch.norm());
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
        ModelWriter.save(config, dtype, parameters, multimodal, dir, maxShardBytes);
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
     * adapters follow the checkpoint's own layout; {@code name} itself for every other model.
     */
    public String storedName(String name) {
        return multimodal == null ? name : multimodal.layout().stored(name);
    }

    /** The names a Gemma 3 text-model parameter or module path has in the two multimodal checkpoint layouts. */
    public static List<String> multimodalNames(String name) {
        return List.of(MultimodalText.LEGACY.stored(name), MultimodalText.NESTED.stored(name));
    }

    /**
     * The text model's name of a stored gemma3 name in either multimodal layout ({@code language_model.model.*},
     * {@code language_model.lm_head*}, {@code model.language_model.*}), or null when {@code name} is in neither
     * (a text-model name, or a vision tower name). Adapters of Gemma 3 saved by PEFT on
     * Gemma3ForConditionalGeneration read through it.
     */
    public static String textNameOfMultimodal(String name) {
        String t = MultimodalText.LEGACY.text(name);
        if (t == null && name.startsWith(MultimodalText.NESTED.textPrefix())) {
            t = MultimodalText.NESTED.text(name);
        }
        return t;
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
        List<Tensor> owned = new ArrayList<>(parameters.values());
        parameters.clear();
        linears.clear();
        for (Tensor t : owned) {
            t.releaseReference();
        }
        RuntimeException failure = null;
        for (AutoCloseable c : adopted) {
            try {
                c.close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = new IllegalStateException("closing " + c + " failed", e);
                }
            }
        }
        adopted.clear();
        rope.close();
        if (localRope != null) {
            localRope.close();
        }
        if (failure != null) {
            throw failure;
        }
    }
}
