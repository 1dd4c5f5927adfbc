package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.config.ConfigException;
import io.sftnative.config.FinetuningArgs;
import io.sftnative.config.ModelArgs;
import io.sftnative.lora.AdapterChain;
import io.sftnative.lora.Freeze;
import io.sftnative.lora.LoraAdapters;
import io.sftnative.lora.LoraSpec;
import io.sftnative.model.AttentionKernel;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.model.VocabResize;
import io.sftnative.quant.BnbCheckpoint;
import io.sftnative.quant.QuantizationSpec;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.torch.TorchRuntime;

/**
 * The model of a run with what is trained in it, per {@code finetuning_type}: every weight ({@code full}), the
 * last layers ({@code freeze}, {@link Freeze}) or LoRA adapters ({@code lora}, {@link LoraAdapters}). Owns the
 * base {@link DecoderModel} and the adapters; {@link #close()} frees both.
 *
 * <p>Precision: trainable weights and their optimizer state are float32 (LLaMA-Factory casts trainable parameters
 * to fp32). With {@code bf16: true} the forward pass runs under bf16 autocast ({@code io.sftnative.torch.Autocast})
 * and, for LoRA, the frozen base weights are held in bf16 (half the memory). With {@code quantization_bit} (or a
 * bitsandbytes pre-quantized base) the frozen linear layers are held in 4 or 8 bits ({@link QuantizedBase}).
 */
public final class TrainableModel implements AutoCloseable {
    private final DecoderModel model;
    private final LoraAdapters adapters; // null unless lora
    private final Map<String, Tensor> trainable;
    private final String finetuningType;
    private final String baseModelPath;
    private final QuantizedModels.Summary quantized; // null when the base is not quantized
    private double neftuneAlpha; // NEFTune noise while training (0 = off)

    private TrainableModel(DecoderModel model, LoraAdapters adapters, Map<String, Tensor> trainable,
            String finetuningType, String baseModelPath, QuantizedModels.Summary quantized) {
        this.model = model;
        this.adapters = adapters;
        this.trainable = Collections.unmodifiableMap(new LinkedHashMap<>(trainable));
        this.finetuningType = finetuningType;
        this.baseModelPath = baseModelPath;
        this.quantized = quantized;
    }

    /**
     * The model to train: loaded from {@code model_name_or_path} (or random-initialised with
     * {@code train_from_scratch}); when resuming, the trained weights (full / freeze) or adapter (lora) come from
     * {@code resumeFrom}.
     *
     * @param resumeFrom a checkpoint directory, or null for a fresh run
     */
    public static TrainableModel forTraining(ModelArgs m, FinetuningArgs f, boolean bf16, long seed, Path resumeFrom,
            Consumer<String> log) throws IOException {
        return forTraining(m, f, bf16, seed, resumeFrom, null, log);
    }

    /**
     * As above; with {@code vocab} (LLaMA-Factory's resize_vocab, on when tokens are added) the embedding grows to
     * the tokenizer and the new tokens' rows are initialised ({@link VocabResize}) before adapters are attached, and
     * a new LoRA adapter without additional_target trains embed_tokens and lm_head in full (LF's adapter.py).
     */
    public static TrainableModel forTraining(ModelArgs m, FinetuningArgs f, boolean bf16, long seed, Path resumeFrom,
            VocabResize.Plan vocab, Consumer<String> log) throws IOException {
        TrainableModel t = build(m, f, bf16, seed, resumeFrom, vocab, log);
        t.neftuneAlpha = f.neftuneNoiseAlpha();
        return t;
    }

    private static TrainableModel build(ModelArgs m, FinetuningArgs f, boolean bf16, long seed, Path resumeFrom,
            VocabResize.Plan vocab, Consumer<String> log) throws IOException {
        Path base = modelDir(m);
        String type = f.finetuningType();
        boolean lora = type.equals("lora");
        if (!lora && m.adapterNameOrPath() != null) {
            throw new ConfigException("adapter_name_or_path is set but finetuning_type is " + type + ": adapters"
                    + " are trained with finetuning_type: lora (export merges them into a full model first)");
        }
        DecoderModel model;
        // frozen LoRA base: bf16 with bf16: true; also QLoRA's compute dtype (bnb_4bit_compute_dtype)
        // pure_bf16 (LLaMA-Factory): every weight, trainable ones included, and so the optimizer state in bf16
        ScalarType dtype = (lora && bf16) || f.pureBf16() ? ScalarType.BFloat16 : ScalarType.Float;
        boolean preQuantized = !m.trainFromScratch() && BnbCheckpoint.isPreQuantized(base);
        QuantizationSpec quant = QuantizedBase.spec(m, preQuantized, type);
        boolean quantized = quant != null || preQuantized;
        if (quantized) {
            QuantizedBase.checkAdapters(m, f.createNewAdapter());
            if (vocab != null && resumeFrom == null) { // before the (slow) quantized load
                refuseQuantizedGrowth(vocab, ModelConfig.read(base).vocabSize());
            }
            if (f.pissaInit() && type.equals("lora")) { // LLaMA-Factory's check, with its advice
                throw new ConfigException("pissa_init cannot initialise PiSSA on a quantized model (quantization_bit"
                        + " or a bitsandbytes checkpoint): PiSSA rewrites the base weights with their SVD residual."
                        + " As LLaMA-Factory says: initialise PiSSA on the full-precision model (scripts/pissa_init.py"
                        + " there), or train without pissa_init");
            }
        }
        // fails naming why when a GPU is asked for but unusable; the handle is only for loading (the model keeps its own)
        try (Device device = TorchRuntime.device(m.device())) {
            if (resumeFrom != null && !lora) {
                model = DecoderModel.load(resumeFrom, dtype, device);
            } else if (m.trainFromScratch()) {
                model = RandomInit.create(ModelConfig.read(base), seed, dtype, device);
                log.accept("train_from_scratch: random-initialised " + model.config().architecture() + " from "
                        + base.resolve("config.json") + " (seed " + seed + ")");
                if (quant != null) {
                    QuantizedModels.quantize(model, quant, log);
                }
            } else {
                model = quantized ? QuantizedModels.load(base, dtype, device, quant, log)
                        : DecoderModel.load(base, dtype, device);
            }
        }
        model.attentionKernel(AttentionKernel.parse(m.flashAttn(), "flash_attn"));
        if (model.config().textTowerOf() != null) {
            log.accept(model.config().textTowerOf() + " (multimodal): training its language model only; the vision"
                    + " tower and projector are not loaded; saved models " + (model.savesMultimodal()
                            ? "are " + model.config().textTowerOf() + " checkpoints in the base's layout with its"
                                    + " vision weights unchanged, adapters use its module names"
                            : "are text-only " + model.config().architecture() + " checkpoints")
                    + " (docs/architectures.md)");
        }
        try {
            QuantizedModels.Summary q = quantized ? QuantizedModels.summary(model) : null;
            if (q != null) {
                log.accept("quantized base (" + (quant != null ? quant : "bitsandbytes checkpoint") + "): " + q);
            }
            if (vocab != null && (resumeFrom == null || lora)) { // a full/freeze checkpoint holds its trained rows
                resizeVocabulary(model, vocab, quantized, seed, log);
            }
            switch (type) {
                case "full" -> {
                    model.setRequiresGrad(true);
                    return new TrainableModel(model, null, model.parameters(), type, base.toString(), null);
                }
                case "freeze" -> {
                    List<String> extra = new java.util.ArrayList<>(f.freezeExtraModules()); // LLaMA-Factory's key
                    f.additionalTarget().stream().filter(t -> !extra.contains(t)).forEach(extra::add);
                    Map<String, Tensor> t = Freeze.apply(model, f.freezeTrainableLayers(), f.freezeTrainableModules(),
                            extra);
                    return new TrainableModel(model, null, t, type, base.toString(), null);
                }
                default -> {
                    LoraAdapters a = loraForTraining(model, m, f, seed, resumeFrom, vocab != null, log);
                    return new TrainableModel(model, a, a.trainableParameters(), type, base.toString(), q);
                }
            }
        } catch (IOException | RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /**
     * LLaMA-Factory's adapter rules: new adapters from the lora_* keys; with {@code adapter_name_or_path} all but
     * the last merged and the last trained on (or all merged and a new one with {@code create_new_adapter}); when
     * resuming, the same merges and then the checkpoint's adapter.
     */
    private static LoraAdapters loraForTraining(DecoderModel model, ModelArgs m, FinetuningArgs f, long seed,
            Path resumeFrom, boolean resizedVocab, Consumer<String> log) throws IOException {
        List<Path> chain = AdapterChain.parse(m.adapterNameOrPath());
        LoraSpec spec;
        try {
            spec = LoraSpec.from(f);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage(), e);
        }
        boolean newAdapter = resumeFrom == null && (chain.isEmpty() || f.createNewAdapter());
        if (resizedVocab && newAdapter && spec.additionalTarget().isEmpty()) {
            // LLaMA-Factory's adapter.py: the modules holding the input and output embeddings become modules_to_save
            List<String> embeddings = List.of("embed_tokens", "lm_head");
            spec = new LoraSpec(spec.rank(), spec.alpha(), spec.dropout(), spec.targets(), spec.useRslora(),
                    embeddings);
            log.accept("Vocab has been resized, add " + String.join(",", embeddings) + " to trainable params"
                    + " (additional_target; saved in the adapter as PEFT's modules_to_save)");
        }
        ScalarType adapterDtype = f.pureBf16() ? ScalarType.BFloat16 : ScalarType.Float;
        if (resumeFrom == null) {
            return AdapterChain.forTraining(model, chain, spec, seed, f.createNewAdapter(), adapterDtype);
        }
        AdapterChain.mergeAll(model, f.createNewAdapter() || chain.isEmpty() ? chain
                : chain.subList(0, chain.size() - 1));
        return LoraAdapters.load(model, resumeFrom, true, adapterDtype);
    }

    /**
     * The model for evaluation or generation only: base weights (bf16 when {@code bf16}) with the adapters of
     * {@code adapter_name_or_path} merged into them.
     */
    public static TrainableModel forInference(ModelArgs m, boolean bf16) throws IOException {
        return forInference(m, bf16, null, 0);
    }

    /** As above, with the vocabulary resized first (LLaMA-Factory resizes in load_model for inference too). */
    public static TrainableModel forInference(ModelArgs m, boolean bf16, VocabResize.Plan vocab, long seed)
            throws IOException {
        Path base = modelDir(m);
        ScalarType dtype = bf16 ? ScalarType.BFloat16 : ScalarType.Float;
        boolean preQuantized = BnbCheckpoint.isPreQuantized(base);
        QuantizationSpec quant = QuantizedBase.spec(m, preQuantized, "lora");
        boolean quantized = quant != null || preQuantized;
        if (quantized) {
            QuantizedBase.checkAdapters(m, false);
        }
        DecoderModel model;
        try (Device device = TorchRuntime.device(m.device())) {
            model = quantized ? QuantizedModels.load(base, dtype, device, quant, s -> { })
                    : DecoderModel.load(base, dtype, device);
        }
        LoraAdapters attached;
        QuantizedModels.Summary q;
        try {
            q = quantized ? QuantizedModels.summary(model) : null;
            if (vocab != null) {
                resizeVocabulary(model, vocab, quantized, seed, s -> { });
            }
            // a quantized base cannot absorb an adapter: it stays attached (PEFT / LLaMA-Factory do the same)
            attached = AdapterChain.forInference(model, AdapterChain.parse(m.adapterNameOrPath()), !quantized);
        } catch (IOException | RuntimeException e) {
            model.close();
            throw e;
        }
        return new TrainableModel(model, attached, Map.of(), m.adapterNameOrPath() == null ? "base model"
                : "base model + adapter", base.toString(), q);
    }

    /** LF's resize_embedding_layer on a loaded model; a quantized model cannot grow (LF raises the same). */
    private static void resizeVocabulary(DecoderModel model, VocabResize.Plan vocab, boolean quantized, long seed,
            Consumer<String> log) {
        if (quantized) {
            refuseQuantizedGrowth(vocab, model.embedWeight().size(0));
        }
        VocabResize.Result r = VocabResize.apply(model, vocab, seed);
        if (r.resized()) {
            log.accept("Resized token embeddings from " + r.oldRows() + " to " + r.newRows() + " (len(tokenizer) "
                    + vocab.tokenizerLength() + " padded to a multiple of " + VocabResize.PAD_TO_MULTIPLE_OF + "); "
                    + r.initializedRows() + " new token row(s) initialised with " + vocab.init());
        } else if (r.initializedRows() > 0) {
            log.accept("No resize needed (vocab fits in the padded embedding of " + r.newRows() + " rows);"
                    + " initialised " + r.initializedRows() + " new token row(s) in place with " + vocab.init());
        }
    }

    private static void refuseQuantizedGrowth(VocabResize.Plan vocab, long rows) {
        if (vocab.tokenizerLength() > rows) {
            throw new ConfigException("the tokenizer has " + vocab.tokenizerLength() + " tokens but the embedding "
                    + rows + " rows, and the embedding layers of a quantized model cannot be resized (as in"
                    + " LLaMA-Factory): add the tokens to an unquantized model (no quantization_bit)");
        }
    }

    /** model_name_or_path as an existing local directory, or a clear error. */
    static Path modelDir(ModelArgs m) {
        if (m.modelNameOrPath() == null) {
            throw new ConfigException("model_name_or_path is not set: point it to a local HF model directory"
                    + " (config.json, *.safetensors, tokenizer.json)");
        }
        Path p = Path.of(m.modelNameOrPath());
        if (!Files.isDirectory(p) && io.sftnative.hub.HubCache.isRepoId(m.modelNameOrPath())) {
            throw new ConfigException(io.sftnative.hub.HubCache.missing("model_name_or_path", m.modelNameOrPath(),
                    "model", null, null));
        }
        if (!Files.isDirectory(p)) {
            throw new ConfigException("model_name_or_path " + p + " is not a directory: sft-native reads local HF"
                    + " model directories (config.json, *.safetensors, tokenizer files); download the model first");
        }
        return p;
    }

    public DecoderModel model() {
        return model;
    }

    /** The parameters the optimizer updates, by name (HF names; LoRA: PEFT's without base_model.model.). */
    public Map<String, Tensor> trainable() {
        return trainable;
    }

    public String finetuningType() {
        return finetuningType;
    }

    /** Training mode (LoRA dropout on) or evaluation mode. The Llama family itself has no dropout. */
    public void setTraining(boolean training) {
        model.neftune(training ? neftuneAlpha : 0);
        if (adapters != null) {
            adapters.setTraining(training);
        }
    }

    /** True when the adapters were PiSSA-initialised (pissa_init, or a resumed PiSSA adapter). */
    public boolean isPissa() {
        return adapters != null && adapters.isPissa();
    }

    /** LLaMA-Factory's PissaConvertCallback at train begin: {@code outputDir/pissa_init} (the initial A0/B0). */
    public void savePissaInitial(Path outputDir) throws IOException {
        adapters.savePissaInitial(outputDir.resolve("pissa_init"), baseModelPath);
    }

    /**
     * LLaMA-Factory's PissaConvertCallback at train end: {@code outputDir/pissa_backup} (the trained adapter,
     * init_lora_weights true) and {@code outputDir/pissa_converted} (a plain LoRA adapter of rank 2r for the
     * original base).
     */
    public void savePissaConverted(Path outputDir) throws IOException {
        adapters.savePissaBackup(outputDir.resolve("pissa_backup"), baseModelPath);
        adapters.savePissaConverted(outputDir.resolve("pissa_converted"), baseModelPath);
    }

    /** Writes the result into {@code dir}: the adapter (PEFT format) for LoRA, else the full model. */
    public void saveWeights(Path dir) throws IOException {
        if (adapters != null) {
            adapters.save(dir, baseModelPath);
        } else {
            model.save(dir);
        }
    }

    /**
     * Copies the trained values of a checkpoint written by {@link #saveWeights} into the trainable parameters
     * (load_best_model_at_end): the adapter's tensors for LoRA, the model's for full / freeze (frozen weights are
     * unchanged by training, so only the trainable ones are read).
     */
    public void restoreTrainable(Path checkpoint) throws IOException {
        try (org.bytedeco.pytorch.NoGradGuard noGrad = new org.bytedeco.pytorch.NoGradGuard();
                org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope();
                io.sftnative.model.safetensors.SafetensorsCheckpoint f = io.sftnative.model.safetensors
                        .SafetensorsCheckpoint.open(adapters != null ? checkpoint.resolve("adapter_model.safetensors")
                                : checkpoint)) {
            for (Map.Entry<String, Tensor> e : trainable.entrySet()) {
                String key = adapters != null ? adapters.savedKey(e.getKey()) : model.storedName(e.getKey());
                if (!f.contains(key)) {
                    throw new IOException(checkpoint + " has no tensor " + key + ": it is not a checkpoint of this"
                            + " run's trainable parameters");
                }
                e.getValue().copy_(f.view(key));
            }
        }
    }

    /** Where the model runs ({@code cpu}, {@code cuda:N}). */
    public String deviceName() {
        return model.deviceName();
    }

    /** One line for the log: what trains and how much of the model that is. */
    public String describe() {
        long total = model.parameterCount() + (adapters == null ? 0 : adapters.trainableParameterCount())
                + (quantized == null ? 0 : quantized.quantizedParams()); // quantized weights are not parameters()
        String base = quantized == null ? "" : String.format(Locale.ROOT, " (base linear layers in %.2f bits)",
                quantized.quantizedBitsPerParam());
        if (trainable.isEmpty()) {
            return finetuningType + " (" + String.format(Locale.ROOT, "%,d parameters", total) + ")" + base;
        }
        long train = 0;
        for (Tensor t : trainable.values()) {
            train += t.numel();
        }
        String what = adapters == null ? finetuningType + " fine-tuning" : String.format(Locale.ROOT,
                "%s%s%s r=%d alpha=%s on %d modules", quantized == null ? "LoRA" : "QLoRA",
                adapters.spec().useDora() ? " (DoRA)" : "", adapters.isPissa() ? " (PiSSA " + adapters.spec().init()
                        + ")" : "", adapters.spec().rank(),
                fmt(adapters.spec().alpha()), adapters.modulePaths().size());
        return String.format(Locale.ROOT, "%s%s: %,d trainable parameters of %,d (%.2f%%)", what, base, train, total,
                total == 0 ? 0 : 100.0 * train / total);
    }

    private static String fmt(double v) {
        return v == Math.rint(v) ? String.valueOf((long) v) : String.valueOf(v);
    }

    @Override
    public void close() {
        try {
            if (adapters != null) {
                adapters.close();
            }
        } finally {
            model.close();
        }
    }
}
