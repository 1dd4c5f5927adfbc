package io.sftnative.lora;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.DecoderModel;

/**
 * LLaMA-Factory's {@code adapter_name_or_path}: one adapter directory or a comma-separated list. When training, every
 * adapter but the last is merged into the base weights and the last one is loaded trainable (resumed), unless
 * {@code create_new_adapter} asks to merge them all and start a new one. For inference every adapter is merged
 * (a quantized base cannot be merged: there the last one stays attached).
 */
public final class AdapterChain {
    private AdapterChain() {}

    /** The directories of a comma-separated {@code adapter_name_or_path}; empty for null/blank. */
    public static List<Path> parse(String adapterNameOrPath) {
        List<Path> out = new ArrayList<>();
        if (adapterNameOrPath == null) {
            return out;
        }
        for (String s : adapterNameOrPath.split(",")) {
            if (!s.isBlank()) {
                out.add(Path.of(s.trim()));
            }
        }
        return out;
    }

    /**
     * Adapters to train: with no adapter paths (or {@code createNewAdapter}) new ones from {@code spec} after merging
     * the given ones; otherwise all but the last merged and the last loaded trainable (its own adapter_config.json
     * sets r, alpha, dropout and targets; {@code spec} is not used). Adapters are fp32.
     */
    public static LoraAdapters forTraining(DecoderModel model, List<Path> adapters, LoraSpec spec, long seed,
            boolean createNewAdapter) throws IOException {
        return forTraining(model, adapters, spec, seed, createNewAdapter, ScalarType.Float);
    }

    /** As above with adapters of {@code adapterDtype} (bf16 for LLaMA-Factory's pure_bf16). */
    public static LoraAdapters forTraining(DecoderModel model, List<Path> adapters, LoraSpec spec, long seed,
            boolean createNewAdapter, ScalarType adapterDtype) throws IOException {
        if (adapters.isEmpty() || createNewAdapter) {
            mergeAll(model, adapters);
            return LoraAdapters.attach(model, spec, seed, adapterDtype);
        }
        mergeAll(model, adapters.subList(0, adapters.size() - 1));
        return LoraAdapters.load(model, adapters.get(adapters.size() - 1), true, adapterDtype);
    }

    /**
     * Adapters for chat, eval and export. With {@code mergeAll} every adapter is folded into the base weights and
     * null is returned (fastest: plain dense layers); otherwise all but the last are merged and the last is returned
     * attached, unmerged (e.g. over a quantized base); null when there are no adapters.
     */
    public static LoraAdapters forInference(DecoderModel model, List<Path> adapters, boolean mergeAll)
            throws IOException {
        if (adapters.isEmpty()) {
            return null;
        }
        if (mergeAll) {
            mergeAll(model, adapters);
            return null;
        }
        mergeAll(model, adapters.subList(0, adapters.size() - 1));
        return LoraAdapters.load(model, adapters.get(adapters.size() - 1), false);
    }

    /**
     * Where the tokenizer of a model with these adapters is: the last adapter directory when it holds a tokenizer
     * (HF's Trainer saves it next to the adapter, with any tokens added for training), else the base model's.
     */
    public static Path tokenizerDir(Path baseDir, List<Path> adapters) {
        for (int i = adapters.size() - 1; i >= 0; i--) {
            Path d = adapters.get(i);
            if (Files.isRegularFile(d.resolve("tokenizer.json")) || Files.isRegularFile(d.resolve("tokenizer.model"))) {
                return d;
            }
        }
        return baseDir;
    }

    /** Loads and merges each adapter in order (each one on top of the previous merges). */
    public static void mergeAll(DecoderModel model, List<Path> adapters) throws IOException {
        for (Path dir : adapters) {
            try (LoraAdapters a = LoraAdapters.load(model, dir, false)) {
                a.merge();
            }
        }
    }
}
