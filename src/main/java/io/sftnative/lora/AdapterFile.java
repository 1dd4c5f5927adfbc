package io.sftnative.lora;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Logger;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.MultimodalText;
import io.sftnative.model.LinearLayer;
import io.sftnative.model.FiniteCheck;
import io.sftnative.model.Tensors;
import io.sftnative.model.safetensors.DType;
import io.sftnative.model.safetensors.SafetensorsCheckpoint;
import io.sftnative.model.safetensors.TensorEntry;

/** Reads {@code adapter_model.safetensors} against a model: every name and shape checked before anything loads. */
final class AdapterFile {
    private static final Logger LOG = Logger.getLogger(AdapterFile.class.getName());

    private AdapterFile() {}

    /**
     * @param ab    module path -> {A (r, in), B (out, r)} or, for DoRA, {A, B, magnitude (out)}, retained (owned by
     *              the caller, also listed in owned)
     * @param full  HF parameter name -> modules_to_save weight, retained (the caller copies and releases them)
     * @param owned every A and B
     */
    record Loaded(Map<String, Tensor[]> ab, Map<String, Tensor> full, List<Tensor> owned) {}

    static Loaded read(DecoderModel model, PeftConfig cfg, Path weights, ScalarType dtype) throws IOException {
        String what = weights.resolveSibling(PeftConfig.CONFIG_FILE) + " target_modules";
        List<String> paths = cfg.targetModules() instanceof String s && !s.equalsIgnoreCase(TargetModules.ALL_LINEAR)
                ? TargetModules.resolveRegex(model, s, cfg.layersToTransform(), what)
                : TargetModules.resolveLinear(model, targetList(cfg), cfg.layersToTransform(), what, false);
        Map<String, Tensor> fullParams = TargetModules.resolveFull(model,
                cfg.modulesToSave() == null ? List.of() : cfg.modulesToSave(),
                weights.resolveSibling(PeftConfig.CONFIG_FILE) + " modules_to_save");
        String origin = cfg.baseModel() == null ? "" : " (it was trained on " + cfg.baseModel() + ")";
        try (SafetensorsCheckpoint f = open(weights, model)) {
            String embedName = TargetModules.EMBED + ".weight";
            String embedKey = PeftConfig.PREFIX + embedName;
            String headKey = PeftConfig.PREFIX + TargetModules.LM_HEAD + ".weight";
            Map<String, String> fullKeys = new LinkedHashMap<>(); // file key -> HF parameter name
            for (String name : fullParams.keySet()) {
                String key = PeftConfig.PREFIX + name;
                if (!f.contains(key) && name.equals(embedName) && f.contains(headKey)) {
                    key = headKey; // modules_to_save lm_head of a tied model: the one shared matrix
                }
                fullKeys.put(key, name);
            }
            Set<String> expected = new LinkedHashSet<>();
            boolean tiedEmbed = model.config().tieWordEmbeddings() && fullKeys.containsKey(embedKey);
            if (tiedEmbed && !f.contains(headKey)) {
                LOG.warning(weights + " trains embed_tokens of a model with tied embeddings but has no lm_head"
                        + " copy: sft-native applies it to the tied matrix (input and output), whereas PEFT keeps"
                        + " lm_head on the base weights for such an adapter, so outputs differ from PEFT's");
            } else if (tiedEmbed) { // both modules_to_save copies of the one tied matrix (as LoraAdapters.save writes)
                expected.add(headKey);
                checkShape(f, weights, headKey, Tensors.shape(fullParams.get(embedName)), TargetModules.LM_HEAD,
                        origin);
                checkTiedCopiesEqual(f, weights, embedKey, headKey);
            }
            for (String p : paths) {
                expected.add(PeftConfig.PREFIX + p + ".lora_A.weight");
                expected.add(PeftConfig.PREFIX + p + ".lora_B.weight");
                if (cfg.useDora()) {
                    expected.add(PeftConfig.PREFIX + p + LoraAdapters.MAGNITUDE);
                }
            }
            expected.addAll(fullKeys.keySet());
            checkNames(model, weights, withoutPeftEmbeddingCopies(f.names(), fullParams.keySet()), expected, origin);
            for (String p : paths) {
                checkRank(f, weights, cfg.r(), PeftConfig.PREFIX + p + ".lora_A.weight", 0);
                checkRank(f, weights, cfg.r(), PeftConfig.PREFIX + p + ".lora_B.weight", 1);
            }
            for (String p : paths) {
                LinearLayer base = model.linear(p);
                checkShape(f, weights, PeftConfig.PREFIX + p + ".lora_A.weight",
                        new long[] {cfg.r(), base.inFeatures()}, p, origin);
                checkShape(f, weights, PeftConfig.PREFIX + p + ".lora_B.weight",
                        new long[] {base.outFeatures(), cfg.r()}, p, origin);
                if (cfg.useDora()) {
                    checkShape(f, weights, PeftConfig.PREFIX + p + LoraAdapters.MAGNITUDE,
                            new long[] {base.outFeatures()}, p, origin);
                }
            }
            for (Map.Entry<String, String> e : fullKeys.entrySet()) {
                checkShape(f, weights, e.getKey(), Tensors.shape(fullParams.get(e.getValue())), e.getValue(), origin);
            }
            return load(f, paths, fullKeys, dtype, model, cfg.useDora());
        }
    }

    /**
     * {@code weights} with keys as the text model names them. A Gemma 3 adapter may name the modules as either
     * multimodal checkpoint does (PEFT on Gemma3ForConditionalGeneration, and sft-native on such a base:
     * {@code base_model.model.language_model.model.layers...} or {@code base_model.model.model.language_model.layers
     * ...}); those keys read as {@code base_model.model.model.layers...}, so one adapter loads on the multimodal
     * checkpoint in either layout and on the text-only model alike.
     */
    static SafetensorsCheckpoint open(Path weights, DecoderModel model) throws IOException {
        SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(weights);
        if (!model.config().modelType().equals("gemma3_text")) {
            return ck;
        }
        Map<String, String> names = new LinkedHashMap<>(); // text key -> stored key
        boolean renamed = false;
        for (String k : ck.names()) {
            String text = k.startsWith(PeftConfig.PREFIX)
                    ? MultimodalText.textNameOf(k.substring(PeftConfig.PREFIX.length())) : null;
            String key = text == null ? k : PeftConfig.PREFIX + text;
            if (names.containsKey(key)) {
                ck.close();
                throw new AdapterFormatException(weights + " holds both '" + names.get(key) + "' and '" + k
                        + "', the same module named in two layouts (text model / multimodal); keep one of them");
            }
            names.put(key, k);
            renamed |= text != null;
        }
        return renamed ? ck.renamed(names) : ck;
    }

    /**
     * The rows of the embedding an adapter saves in full (modules_to_save embed_tokens, else lm_head), or -1: an
     * adapter trained with a resized vocabulary (add_tokens) has more rows than its base.
     */
    static long vocabularyRows(Path weights, DecoderModel model) throws IOException {
        try (SafetensorsCheckpoint f = open(weights, model)) {
            for (String module : List.of(TargetModules.EMBED, TargetModules.LM_HEAD)) {
                String key = PeftConfig.PREFIX + module + ".weight";
                if (f.contains(key) && f.entry(key).shape().length == 2) {
                    return f.entry(key).shape()[0];
                }
            }
        }
        return -1;
    }

    /**
     * PEFT's save_embedding_layers="auto" also writes, for a resized vocabulary, every state-dict entry of the
     * embedding modules ({@code <module>.original_module.weight}, {@code <module>.modules_to_save.weight}) next to the
     * {@code <module>.weight} it loads from; PEFT itself does not load them back into the trained copy, so neither do
     * we: they are left out of the name check.
     */
    private static Set<String> withoutPeftEmbeddingCopies(Set<String> names, Set<String> full) {
        Set<String> out = new LinkedHashSet<>();
        for (String k : names) {
            boolean copy = false;
            for (String name : full) {
                String module = PeftConfig.PREFIX + name.substring(0, name.length() - ".weight".length());
                copy |= k.equals(module + ".original_module.weight") || k.equals(module + ".modules_to_save.weight");
            }
            if (!copy) {
                out.add(k);
            }
        }
        return out;
    }

    /**
     * sft-native keeps tied embeddings tied, so an adapter whose embed_tokens and lm_head copies differ (trained
     * apart, e.g. by PEFT without weight tying) cannot be represented: refuse it rather than drop one of them.
     */
    private static void checkTiedCopiesEqual(SafetensorsCheckpoint f, Path file, String embedKey, String headKey) {
        try (PointerScope scope = new PointerScope()) {
            Tensor e = f.load(embedKey, ScalarType.Float); // (V, H)
            Tensor h = f.load(headKey, ScalarType.Float); // (V, H)
            if (!e.equal(h)) {
                throw new AdapterFormatException(file + " holds different values for " + embedKey + " and "
                        + headKey + ", but the base model ties its embeddings (tie_word_embeddings: true) and"
                        + " sft-native keeps them tied; this adapter was trained with them untied, which sft-native"
                        + " cannot load. Merge it with PEFT instead");
            }
        }
    }

    private static List<String> targetList(PeftConfig cfg) {
        return cfg.targetModules() instanceof List<?> l ? l.stream().map(String::valueOf).toList()
                : List.of(String.valueOf(cfg.targetModules()));
    }

    private static void checkNames(DecoderModel model, Path file, Set<String> present, Set<String> expected,
            String origin) {
        List<String> missing = expected.stream().filter(k -> !present.contains(k)).toList();
        List<String> unexpected = present.stream().filter(k -> !expected.contains(k)).toList();
        if (missing.isEmpty() && unexpected.isEmpty()) {
            return;
        }
        StringBuilder sb = new StringBuilder(file + " does not match adapter_config.json and this "
                + model.config().modelType() + " model (" + model.config().numHiddenLayers() + " layers)" + origin
                + ":");
        if (!missing.isEmpty()) {
            sb.append(" missing tensors ").append(list(missing)).append(';');
        }
        if (!unexpected.isEmpty()) {
            sb.append(" unexpected tensors ").append(list(unexpected)).append(';');
        }
        sb.append(" check that the adapter belongs to this base model");
        throw new AdapterFormatException(sb.toString());
    }

    /** The rank in adapter_config.json must be the one of the tensors (not "trained for a different model"). */
    private static void checkRank(SafetensorsCheckpoint f, Path file, int r, String key, int dim) {
        long[] shape = f.entry(key).shape();
        if (shape.length == 2 && shape[dim] != r) {
            throw new AdapterFormatException(file.resolveSibling(PeftConfig.CONFIG_FILE) + " says r=" + r + " but '"
                    + key + "' in " + file + " has rank " + shape[dim] + " (shape " + Arrays.toString(shape)
                    + "): the config does not belong to these weights. If the weights are right, set \"r\": "
                    + shape[dim] + " in " + PeftConfig.CONFIG_FILE);
        }
    }

    private static void checkShape(SafetensorsCheckpoint f, Path file, String key, long[] want, String module,
            String origin) {
        TensorEntry e = f.entry(key);
        if (!Arrays.equals(e.shape(), want)) {
            throw new AdapterFormatException("adapter tensor '" + key + "' in " + file + " has shape "
                    + Arrays.toString(e.shape()) + " but " + module + " of the base model needs "
                    + Arrays.toString(want) + ": the adapter was trained for a different model" + origin);
        }
        DType d = e.dtype();
        if (d != DType.F32 && d != DType.BF16 && d != DType.F16 && d != DType.F64) {
            throw new AdapterFormatException("adapter tensor '" + key + "' in " + file + " is stored as " + d
                    + "; LoRA weights must be floating point");
        }
    }

    private static Loaded load(SafetensorsCheckpoint f, List<String> paths, Map<String, String> fullKeys,
            ScalarType adapterDtype, DecoderModel model, boolean dora) {
        Map<String, Tensor[]> ab = new LinkedHashMap<>();
        Map<String, Tensor> full = new LinkedHashMap<>();
        List<Tensor> owned = new ArrayList<>();
        try (PointerScope scope = new PointerScope()) {
            for (String p : paths) {
                Tensor a = AdapterFactory.onDevice(f.load(PeftConfig.PREFIX + p + ".lora_A.weight", adapterDtype),
                        model); // (r, in), a copy
                Tensor b = AdapterFactory.onDevice(f.load(PeftConfig.PREFIX + p + ".lora_B.weight", adapterDtype),
                        model); // (out, r)
                a.retainReference();
                owned.add(a);
                b.retainReference();
                owned.add(b);
                ab.put(p, new Tensor[] {a, b});
                requireFinite(a, PeftConfig.PREFIX + p + ".lora_A.weight", f);
                requireFinite(b, PeftConfig.PREFIX + p + ".lora_B.weight", f);
                if (dora) {
                    String key = PeftConfig.PREFIX + p + LoraAdapters.MAGNITUDE;
                    Tensor m = AdapterFactory.onDevice(f.load(key, adapterDtype), model); // (out)
                    m.retainReference();
                    owned.add(m);
                    ab.put(p, new Tensor[] {a, b, m});
                    requireFinite(m, key, f);
                }
            }
            for (Map.Entry<String, String> e : fullKeys.entrySet()) {
                Tensor t = f.load(e.getKey(), model.dtype()); // copied into the model's tensor (any device)
                t.retainReference();
                full.put(e.getValue(), t);
                requireFinite(t, e.getKey(), f);
            }
        } catch (RuntimeException e) {
            owned.forEach(Tensor::releaseReference);
            full.values().forEach(Tensor::releaseReference);
            throw e;
        }
        return new Loaded(ab, full, owned);
    }

    /** A NaN adapter merged or exported gives a NaN model: refuse it naming the tensor. */
    private static void requireFinite(Tensor t, String key, SafetensorsCheckpoint f) {
        String p = FiniteCheck.problem(t);
        if (p != null) {
            throw new AdapterFormatException("adapter tensor '" + key + "' in " + f.source() + " holds " + p
                    + ": the adapter is damaged (saved from a diverged run?); use an earlier checkpoint-N of it");
        }
    }

    private static String list(List<String> names) {
        int show = Math.min(names.size(), 6);
        String head = String.join(", ", names.subList(0, show));
        return names.size() > show ? head + ", ... (" + names.size() + " in all)" : head;
    }
}
