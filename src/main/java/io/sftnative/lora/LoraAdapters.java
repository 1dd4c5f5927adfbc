package io.sftnative.lora;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.files.AtomicFiles;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.DenseLinear;
import io.sftnative.model.safetensors.SafetensorsWriter;

/**
 * LoRA adapters attached to a model (PEFT semantics): every targeted linear slot becomes
 * {@code base(x) + B(A(dropout(x))) * scaling}; A and B are owned here, the base weights stay the model's.
 * Attaching freezes every base parameter; {@code additional_target} modules (PEFT's {@code modules_to_save}, e.g.
 * {@code lm_head}, {@code embed_tokens}) are trained in full, in place in the model.
 *
 * <pre>{@code
 * try (LoraAdapters lora = LoraAdapters.attach(model, spec, seed)) {
 *     optimizer = new AdamW(lora.trainableParameters(), ...);
 *     lora.setTraining(true);   ... train ...
 *     lora.save(outputDir, "Qwen/Qwen2.5-0.5B");          // adapter_config.json + adapter_model.safetensors
 * }                                                       // slots restored, A/B freed
 * }</pre>
 *
 * <p>{@link #close()} restores the original slots and frees A and B (values written into additional targets stay);
 * any use afterwards fails. Not thread-safe.
 */
public final class LoraAdapters implements AutoCloseable {
    /** Shared by the slots: training flag (dropout) and lifetime. */
    static final class State {
        private boolean training;
        private boolean closed;
        private boolean merged;

        boolean training() {
            return training;
        }

        void check() {
            if (closed) {
                throw new IllegalStateException("these LoRA adapters are closed");
            }
            if (merged) {
                throw new IllegalStateException("these LoRA adapters were merged into the base weights");
            }
        }
    }

    private final DecoderModel model;
    private final LoraSpec spec;
    private final Object savedTargets; // target_modules as saved: a list of names, or PEFT's regex string
    private final List<Integer> layers; // layers_to_transform, or null
    private final Map<String, LoraLinear> slots; // module path -> LoRA slot, model order
    private final Map<String, Tensor> full; // additional targets by HF name (borrowed from the model)
    private final List<Tensor> owned; // every A, B, DoRA magnitude and PiSSA initial factor
    private final Map<String, Pissa.Factors> pissaInitial; // PiSSA: module path -> initial A0/B0 (owned), else empty
    private final State state = new State();

    private LoraAdapters(DecoderModel model, LoraSpec spec, Object savedTargets, List<Integer> layers,
            Map<String, LoraLinear> slots, Map<String, Tensor> full, List<Tensor> owned,
            Map<String, Pissa.Factors> pissaInitial) {
        this.model = model;
        this.spec = spec;
        this.savedTargets = savedTargets;
        this.layers = layers;
        this.slots = slots;
        this.full = full;
        this.owned = owned;
        this.pissaInitial = pissaInitial;
    }

    // ---------------------------------------------------------------- creating

    /** New adapters with fp32 A/B (LLaMA-Factory keeps trainable parameters in fp32). */
    public static LoraAdapters attach(DecoderModel model, LoraSpec spec, long seed) {
        return attach(model, spec, seed, ScalarType.Float);
    }

    /**
     * New adapters: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)) like PEFT / nn.Linear (drawn in
     * fp32 from a generator seeded with {@code seed}, then cast), B = 0, so the model's output is unchanged until
     * training moves B. With PiSSA ({@link LoraSpec#init()}) A and B come from the SVD of each base weight instead
     * and the base weight is replaced by the residual ({@link Pissa}); with DoRA each slot also gets the magnitude
     * {@code ||W + s·B·A||_row} ({@link Dora}). Freezes every base parameter; A, B, the magnitudes and the additional
     * targets require grad.
     */
    public static LoraAdapters attach(DecoderModel model, LoraSpec spec, long seed, ScalarType adapterDtype) {
        return AdapterFactory.attach(model, spec, seed, adapterDtype);
    }

    /** Loads a PEFT adapter with fp32 A/B (PEFT's default autocast of adapter weights). */
    public static LoraAdapters load(DecoderModel model, Path adapterDir, boolean trainable) throws IOException {
        return load(model, adapterDir, trainable, ScalarType.Float);
    }

    /**
     * Loads a PEFT adapter directory ({@code adapter_config.json} + {@code adapter_model.safetensors}, PEFT key
     * names) onto {@code model}. Its hyper-parameters come from the adapter's config. Every tensor is checked against
     * the model (names, shapes) and mismatches fail naming the tensor. {@code modules_to_save} weights are copied
     * into the model. With {@code trainable}, A/B and those weights require grad (resuming training).
     */
    public static LoraAdapters load(DecoderModel model, Path adapterDir, boolean trainable, ScalarType adapterDtype)
            throws IOException {
        return AdapterFactory.load(model, adapterDir, trainable, adapterDtype);
    }

    /**
     * The adapters over tensors made by {@link AdapterFactory}: freezes every base parameter, then puts a
     * {@link LoraLinear} into the slot of each {@code ab} entry (module path -> {A, B} or {A, B, DoRA magnitude}, all
     * in {@code owned}, which the adapters now own); A, B, the magnitudes and {@code fullParams} require grad with
     * {@code trainable}.
     */
    static LoraAdapters install(DecoderModel model, LoraSpec spec, Object saved, List<Integer> layers,
            Map<String, Tensor[]> ab, Map<String, Tensor> fullParams, List<Tensor> owned, boolean trainable,
            Map<String, Pissa.Factors> pissaInitial) {
        model.setRequiresGrad(false);
        Map<String, LoraLinear> slots = new LinkedHashMap<>();
        LoraAdapters adapters = new LoraAdapters(model, spec, saved, layers, slots,
                Collections.unmodifiableMap(fullParams), owned, Collections.unmodifiableMap(pissaInitial));
        for (Map.Entry<String, Tensor[]> e : ab.entrySet()) {
            Tensor a = e.getValue()[0];
            Tensor b = e.getValue()[1];
            Tensor m = e.getValue().length > 2 ? e.getValue()[2] : null;
            a.requires_grad_(trainable);
            b.requires_grad_(trainable);
            if (m != null) {
                m.requires_grad_(trainable);
            }
            LoraLinear slot = new LoraLinear(e.getKey(), model.linear(e.getKey()), a, b, m, spec.scaling(),
                    spec.dropout(), adapters.state);
            slots.put(e.getKey(), slot);
            model.setLinear(e.getKey(), slot);
        }
        fullParams.values().forEach(t -> t.requires_grad_(trainable));
        return adapters;
    }

    // ---------------------------------------------------------------- using

    public LoraSpec spec() {
        return spec;
    }

    /** HF module paths that carry a LoRA branch, in model order. */
    public List<String> modulePaths() {
        state.check();
        return List.copyOf(slots.keySet());
    }

    /**
     * What the optimizer trains, in a stable order: for each LoRA module (model order) its
     * {@code <path>.lora_A.weight} (r, in), {@code <path>.lora_B.weight} (out, r) and, with DoRA,
     * {@code <path>.lora_magnitude_vector} (out), then the additional targets by HF name. Names are PEFT's saved keys
     * without {@code base_model.model.}. Borrowed: never close them.
     */
    public Map<String, Tensor> trainableParameters() {
        state.check();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (LoraLinear s : slots.values()) {
            out.put(s.path() + ".lora_A.weight", s.a());
            out.put(s.path() + ".lora_B.weight", s.b());
            if (s.magnitude() != null) {
                out.put(s.path() + MAGNITUDE, s.magnitude());
            }
        }
        out.putAll(full);
        return Collections.unmodifiableMap(out);
    }

    /** Suffix of DoRA's magnitude as PEFT saves it (no adapter name, no {@code .weight}). */
    static final String MAGNITUDE = ".lora_magnitude_vector";

    /**
     * The key {@link #save} writes for the trainable parameter {@code name}: PEFT's {@code base_model.model.} prefix
     * and the module path as the base checkpoint names it ({@link DecoderModel#storedName}: a gemma3 multimodal
     * base's {@code language_model.model.layers...} or {@code model.language_model.layers...}).
     */
    public String savedKey(String name) {
        return PeftConfig.PREFIX + model.storedName(name);
    }

    /** Elements in {@link #trainableParameters()}. */
    public long trainableParameterCount() {
        long n = 0;
        for (Tensor t : trainableParameters().values()) {
            n += t.numel();
        }
        return n;
    }

    /** Dropout on the LoRA inputs only while training (PEFT's nn.Dropout follows model.train()/eval()). */
    public void setTraining(boolean training) {
        state.check();
        state.training = training;
    }

    /**
     * Writes {@code dir/adapter_model.safetensors} (keys {@code base_model.model.<path>.lora_A.weight} /
     * {@code lora_B.weight}, additional targets as {@code base_model.model.<HF name>}) and then
     * {@code dir/adapter_config.json}, each atomically. Other files in {@code dir} are left alone.
     */
    public void save(Path dir, String baseModelNameOrPath) throws IOException {
        state.check();
        save(dir, baseModelNameOrPath, trainableParameters(), spec);
    }

    /** Writes {@code parameters} (names as {@link #trainableParameters()}) with the config of {@code as}. */
    private void save(Path dir, String baseModelNameOrPath, Map<String, Tensor> parameters, LoraSpec as)
            throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : parameters.entrySet()) {
            tensors.put(savedKey(e.getKey()), e.getValue());
        }
        List<String> modulesToSave = spec.additionalTarget();
        String embed = savedKey(TargetModules.EMBED + ".weight");
        if (model.config().tieWordEmbeddings() && tensors.containsKey(embed)) {
            // PEFT wraps each modules_to_save module on its own: naming only embed_tokens of a tied model leaves
            // lm_head on the base weights when PEFT loads it (measured with PEFT 0.21: eval loss 4.85 instead of
            // the 2.05 sft-native computes). Both names with the one trained matrix reproduce the tied model.
            tensors.put(savedKey(TargetModules.LM_HEAD + ".weight"), tensors.get(embed));
            modulesToSave = new ArrayList<>(modulesToSave);
            for (String m : List.of("embed_tokens", TargetModules.LM_HEAD)) {
                if (!modulesToSave.contains(m)) {
                    modulesToSave.add(m);
                }
            }
        }
        // a multimodal base: names like q_proj also match its vision tower in PEFT, so target exactly the language
        // model's modules, as LLaMA-Factory does for composite models (a regex of their full paths)
        Object targets = model.savesMultimodal() ? TargetModules.exactRegex(modulePaths(), model::storedName)
                : savedTargets;
        PeftConfig cfg = new PeftConfig(as.rank(), as.alpha(), as.dropout(), targets, as.useRslora(),
                modulesToSave, layers, baseModelNameOrPath, as.useDora(), as.init());
        Files.createDirectories(dir);
        SafetensorsWriter.write(dir.resolve(PeftConfig.WEIGHTS_FILE), tensors, Map.of("format", "pt"));
        AtomicFiles.writeString(dir.resolve(PeftConfig.CONFIG_FILE), cfg.toJsonText());
    }

    // ---------------------------------------------------------------- PiSSA conversion (pissa_convert)

    /** True when these adapters were PiSSA-initialised (their base weights hold the SVD residual). */
    public boolean isPissa() {
        return !pissaInitial.isEmpty();
    }

    /**
     * LLaMA-Factory's {@code output_dir/pissa_init}: the initial PiSSA factors A0/B0 as an adapter with
     * {@code init_lora_weights: true} (plus the additional targets' current values), what PEFT's conversion subtracts.
     */
    public void savePissaInitial(Path dir, String baseModelNameOrPath) throws IOException {
        requirePissa();
        Map<String, Tensor> params = new LinkedHashMap<>(trainableParameters());
        for (Map.Entry<String, Pissa.Factors> e : pissaInitial.entrySet()) {
            params.put(e.getKey() + ".lora_A.weight", e.getValue().a());
            params.put(e.getKey() + ".lora_B.weight", e.getValue().b());
        }
        save(dir, baseModelNameOrPath, params, spec.withInit(LoraSpec.DEFAULT_INIT));
    }

    /** LLaMA-Factory's {@code output_dir/pissa_backup}: the trained adapter with {@code init_lora_weights: true}. */
    public void savePissaBackup(Path dir, String baseModelNameOrPath) throws IOException {
        requirePissa();
        save(dir, baseModelNameOrPath, trainableParameters(), spec.withInit(LoraSpec.DEFAULT_INIT));
    }

    /**
     * LLaMA-Factory's {@code output_dir/pissa_converted} (PEFT's {@code path_initial_model_for_weight_conversion}):
     * the trained PiSSA adapter as a plain LoRA adapter for the original base. The update is
     * {@code s·(B·A - B0·A0) = s·[B | -B0]·[A ; A0]}, so r and alpha double (rsLoRA: alpha·sqrt(2)) and
     * {@code A' = [A ; A0]} (2r, in), {@code B' = [B | -B0]} (out, 2r). The additional targets are saved as trained
     * (PEFT's conversion drops them from the file while its config still lists them).
     */
    public void savePissaConverted(Path dir, String baseModelNameOrPath) throws IOException {
        requirePissa();
        if (spec.useDora()) {
            throw new IllegalStateException("pissa_convert cannot express a DoRA adapter as plain LoRA (DoRA's row"
                    + " normalisation is not a low-rank update); train without use_dora or without pissa_convert");
        }
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Map<String, Tensor> params = new LinkedHashMap<>();
            for (LoraLinear s : slots.values()) {
                Pissa.Factors f = pissaInitial.get(s.path());
                params.put(s.path() + ".lora_A.weight", torch.cat(new org.bytedeco.pytorch.TensorVector(s.a(),
                        f.a().to(s.a().scalar_type())), 0)); // (2r, in)
                params.put(s.path() + ".lora_B.weight", torch.cat(new org.bytedeco.pytorch.TensorVector(s.b(),
                        f.b().to(s.b().scalar_type()).neg()), 1)); // (out, 2r)
            }
            params.putAll(full);
            double alpha = spec.useRslora() ? spec.alpha() * Math.sqrt(2) : spec.alpha() * 2;
            LoraSpec converted = new LoraSpec(spec.rank() * 2, alpha, spec.dropout(), spec.targets(),
                    spec.useRslora(), spec.additionalTarget(), false, LoraSpec.DEFAULT_INIT);
            save(dir, baseModelNameOrPath, params, converted);
        }
    }

    private void requirePissa() {
        state.check();
        if (pissaInitial.isEmpty()) {
            throw new IllegalStateException("these adapters were not initialised with PiSSA (pissa_init)");
        }
    }

    /**
     * Folds the adapters into the base weights in place, PEFT's merge: {@code W += (B @ A) * scaling} computed in
     * the adapter dtype, added into W's dtype; with DoRA {@code W = m / ||W + ΔW||_row · (W + ΔW)} ({@link Dora}). A
     * PiSSA adapter merges into its residual base, giving the trained model. Afterwards the slots hold their plain dense layers again, A and B are
     * freed, and these adapters can no longer be used (close() is then a no-op). Fails before changing anything
     * when a slot's base is not a dense layer (e.g. quantized).
     */
    public void merge() {
        state.check();
        for (LoraLinear s : slots.values()) {
            if (!(s.base() instanceof DenseLinear)) {
                throw new IllegalStateException("cannot merge LoRA into " + s.path() + ": its base layer is "
                        + s.base().getClass().getSimpleName() + ", not a dense weight (a quantized model keeps its"
                        + " adapter unmerged)");
            }
        }
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            for (LoraLinear s : slots.values()) {
                Tensor w = ((DenseLinear) s.base()).weight(); // (out, in)
                if (s.magnitude() != null) {
                    Dora.merge(w, s.a(), s.b(), s.magnitude(), s.scaling());
                } else {
                    Tensor delta = torch.mm(s.b(), s.a()).mul(new Scalar(s.scaling())); // (out, in)
                    w.add_(delta);
                }
                model.setLinear(s.path(), s.base());
            }
        }
        full.values().forEach(t -> t.requires_grad_(false));
        state.merged = true;
        release();
    }

    /**
     * Restores the original slots and frees A and B (and the magnitudes). PiSSA: the base weights get
     * {@code (s·B0)·A0} added back, which restores them up to rounding. Idempotent.
     */
    @Override
    public void close() {
        if (state.closed) {
            return;
        }
        if (!state.merged) {
            if (!model.isClosed()) {
                for (LoraLinear s : slots.values()) {
                    model.setLinear(s.path(), s.base());
                }
                Pissa.restore(model, spec.scaling(), pissaInitial);
                full.values().forEach(t -> t.requires_grad_(false));
            }
            release();
        }
        state.closed = true;
    }

    private void release() {
        for (Tensor t : owned) {
            t.releaseReference();
        }
        owned.clear();
    }
}
