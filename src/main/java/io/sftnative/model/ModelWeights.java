package io.sftnative.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;

import io.sftnative.model.moe.MoeSpec;

/**
 * What a {@link DecoderModel} owns, and how its projections are addressed: the parameters by HF name (owned leaf
 * tensors, released on {@link #release}), the linear slots by HF module path (q/k/v/o, gate/up/down per layer, MoE
 * routers and experts, then lm_head), and the resources handed to the model (closed after the parameters).
 *
 * <p>{@link #linears()} is the live slot map: {@link SelfAttention}, {@link GatedMlp} and the MoE blocks look their
 * projections up in it on every forward, so a slot replaced here (LoRA, quantization) is used from then on.
 */
final class ModelWeights {
    private final Map<String, Tensor> parameters; // HF name -> owned leaf tensor
    private final Map<String, LinearLayer> linears = new LinkedHashMap<>(); // HF module path -> projection
    private final List<AutoCloseable> adopted = new ArrayList<>(); // closed after the parameters

    /**
     * Takes ownership of {@code params} (each already retained once for the model) and fills the linear slots: the
     * ones in {@code prebuilt} as given (adopting those that are {@link AutoCloseable}), every other one a dense layer
     * over its {@code .weight} (and {@code .bias}), the lm_head over the embedding when tied.
     */
    ModelWeights(ModelConfig config, Map<String, Tensor> params, Map<String, LinearLayer> prebuilt) {
        this.parameters = new LinkedHashMap<>(params);
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
        addRouterSlots(config, config.moe());
    }

    /**
     * MoE routers ({@code mlp.gate}, {@code block_sparse_moe.gate}) are linear slots too, placed before their
     * layer's experts, so a LoRA target that names {@code gate} adapts them (PEFT's module path); they are neither
     * quantized nor part of {@code lora_target: all} ({@link DecoderModel#isRouter}).
     */
    private void addRouterSlots(ModelConfig config, MoeSpec spec) {
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

    // ---------------------------------------------------------------- parameters

    /** The parameter {@code name}; a missing one is a bug in the model's wiring, not a user error. */
    Tensor require(String name) {
        Tensor t = parameters.get(name);
        if (t == null) {
            throw new IllegalStateException("parameter " + name + " missing");
        }
        return t;
    }

    /** The parameter {@code name}, or null. */
    Tensor get(String name) {
        return parameters.get(name);
    }

    /** The live parameter map, in HF order (for saving). */
    Map<String, Tensor> parameters() {
        return parameters;
    }

    /** A read-only view of {@link #parameters()}. */
    Map<String, Tensor> view() {
        return Collections.unmodifiableMap(parameters);
    }

    /** Number of parameter elements (tied embeddings once). */
    long count() {
        long n = 0;
        for (Tensor t : parameters.values()) {
            n += t.numel();
        }
        return n;
    }

    /** Bytes held by the parameters. */
    long bytes() {
        long n = 0;
        for (Tensor t : parameters.values()) {
            n += t.numel() * t.element_size();
        }
        return n;
    }

    void setRequiresGrad(boolean on) {
        for (Tensor t : parameters.values()) {
            t.requires_grad_(on);
        }
    }

    /** Removes parameter {@code name} and hands its ownership to the caller. */
    Tensor detach(String name) {
        Tensor t = parameters.remove(name);
        if (t == null) {
            throw new IllegalArgumentException("no parameter named '" + name + "'");
        }
        return t;
    }

    /**
     * Fails unless the lm_head slot is still its plain dense weight without a bias, the only head
     * {@link #replaceVocabulary} can grow.
     */
    void checkHeadResizable() {
        LinearLayer slot = linears.get("lm_head");
        if (!(slot instanceof DenseLinear) || parameters.containsKey("lm_head.bias")) {
            throw new IllegalStateException("cannot resize the vocabulary: lm_head is "
                    + slot.getClass().getSimpleName() + (parameters.containsKey("lm_head.bias") ? " with a bias" : "")
                    + ", not a plain dense weight (resize before attaching adapters; quantized heads cannot grow)");
        }
    }

    /**
     * Puts {@code embed} (V', H) and, untied, {@code head} (V', H) (each retained for the model) in place of the
     * embedding and LM head weights, with a dense lm_head slot over the new head, then releases the old tensors
     * ({@link DecoderModel#resizeVocabulary} checks the shapes first).
     *
     * @param head the new LM head, or null for a tied model
     */
    void replaceVocabulary(Tensor embed, Tensor head, boolean tied) {
        Tensor oldEmbed = parameters.put("model.embed_tokens.weight", embed);
        Tensor oldHead = head == null ? null : parameters.put("lm_head.weight", head);
        linears.put("lm_head", new DenseLinear(tied ? embed : head, null));
        oldEmbed.releaseReference();
        if (oldHead != null) {
            oldHead.releaseReference();
        }
    }

    // ---------------------------------------------------------------- linear slots

    /** The live slot map (see the class comment). */
    Map<String, LinearLayer> linears() {
        return linears;
    }

    LinearLayer linear(String path) {
        LinearLayer l = linears.get(path);
        if (l == null) {
            throw new IllegalArgumentException("no linear module '" + path + "'; modules look like "
                    + linears.keySet().iterator().next());
        }
        return l;
    }

    /** Replaces slot {@code path} with a layer mapping the same feature sizes. */
    void setLinear(String path, LinearLayer layer) {
        LinearLayer old = linear(path);
        if (layer.inFeatures() != old.inFeatures() || layer.outFeatures() != old.outFeatures()) {
            throw new IllegalArgumentException("replacement for " + path + " maps " + layer.inFeatures() + " -> "
                    + layer.outFeatures() + " features, the module maps " + old.inFeatures() + " -> "
                    + old.outFeatures());
        }
        linears.put(path, layer);
    }

    // ---------------------------------------------------------------- lifetime

    <T extends AutoCloseable> T adopt(T resource) {
        adopted.add(resource);
        return resource;
    }

    /**
     * Releases every parameter, then closes every adopted resource; the first failure to close is returned (after
     * all were tried), null if none failed.
     */
    RuntimeException release() {
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
        return failure;
    }
}
