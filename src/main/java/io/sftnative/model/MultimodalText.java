package io.sftnative.model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import io.sftnative.model.safetensors.SafetensorsCheckpoint;

/**
 * Multimodal checkpoints whose language model sft-native trains as a causal LM, the vision tower left out:
 * {@code gemma3} (transformers' Gemma3ForConditionalGeneration, Gemma 3 4B/12B/27B). The text part's keys sit under
 * {@code text_config}, with Gemma3TextConfig's defaults for the keys it leaves out; its weights are stored either as
 * transformers up to 4.5x saves them ({@code language_model.model.*}, {@code language_model.lm_head.weight}) or as
 * transformers 5 does ({@code model.language_model.*}, {@code lm_head.weight}); both read as the text model's
 * {@code model.*} names. The vision tower and projector ({@code vision_tower.*}, {@code multi_modal_projector.*},
 * under {@code model.} in the newer layout) are not loaded.
 */
final class MultimodalText {
    private MultimodalText() {}

    /** Gemma3TextConfig's defaults (transformers configuration_gemma3.py), for keys text_config leaves out. */
    private static final Map<String, Object> GEMMA3_TEXT_DEFAULTS = gemma3Defaults();

    private static Map<String, Object> gemma3Defaults() {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("vocab_size", 262_208);
        d.put("hidden_size", 2304);
        d.put("intermediate_size", 9216);
        d.put("num_hidden_layers", 26);
        d.put("num_attention_heads", 8);
        d.put("num_key_value_heads", 4);
        d.put("head_dim", 256);
        d.put("hidden_activation", "gelu_pytorch_tanh");
        d.put("max_position_embeddings", 131_072);
        d.put("initializer_range", 0.02);
        d.put("rms_norm_eps", 1e-6);
        d.put("pad_token_id", 0);
        d.put("eos_token_id", 1);
        d.put("bos_token_id", 2);
        d.put("tie_word_embeddings", true);
        d.put("rope_theta", 1_000_000.0);
        d.put("attention_bias", false);
        d.put("query_pre_attn_scalar", 256);
        d.put("sliding_window", 4096);
        d.put("rope_local_base_freq", 10_000.0);
        d.put("sliding_window_pattern", 6);
        return d;
    }

    /** Whether {@code modelType} is a multimodal type read through its text part. */
    static boolean wraps(String modelType) {
        return "gemma3".equals(modelType);
    }

    /**
     * The text config of a gemma3 config.json: text_config over Gemma3TextConfig's defaults, as model_type
     * gemma3_text; eos/bos/pad ids and torch_dtype from the top level where text_config has none.
     */
    static ConfigReader textConfig(ConfigReader r) {
        if (!(r.m.get("text_config") instanceof Map<?, ?> tc)) {
            throw r.err("text_config", r.m.containsKey("text_config") ? "must be an object"
                    : "is missing: a gemma3 (multimodal) config.json keeps the language model's keys under"
                            + " text_config (a text-only Gemma 3 has model_type gemma3_text)");
        }
        Map<String, Object> m = new LinkedHashMap<>(GEMMA3_TEXT_DEFAULTS);
        for (Map.Entry<?, ?> e : tc.entrySet()) {
            m.put(String.valueOf(e.getKey()), e.getValue());
        }
        for (String k : List.of("eos_token_id", "bos_token_id", "pad_token_id", "torch_dtype", "dtype")) {
            if (r.has(k) && !tc.containsKey(k)) {
                m.put(k, r.m.get(k));
            }
        }
        Object textType = tc.get("model_type");
        if (textType != null && !"gemma3_text".equals(textType)) {
            throw r.err("text_config.model_type", "is '" + textType + "'; a gemma3 config's text part is"
                    + " gemma3_text");
        }
        m.put("model_type", "gemma3_text");
        m.put("architectures", List.of("Gemma3ForCausalLM"));
        return new ConfigReader(m, r.origin + " (text_config)");
    }

    /** The stored-weight layout of a multimodal checkpoint. */
    record Layout(String textPrefix, String headName, List<String> skippedPrefixes, String what) {}

    static final Layout LEGACY = new Layout("language_model.model.", "language_model.lm_head.weight",
            List.of("vision_tower.", "multi_modal_projector."), "language_model.model.* (transformers 4.x)");
    static final Layout NESTED = new Layout("model.language_model.", "lm_head.weight",
            List.of("model.vision_tower.", "model.multi_modal_projector."), "model.language_model.* (transformers 5)");

    /** Which layout {@code names} use, or a message naming what was found instead. */
    static Layout layout(Set<String> names, String source) {
        boolean legacy = names.stream().anyMatch(n -> n.startsWith(LEGACY.textPrefix()));
        boolean nested = names.stream().anyMatch(n -> n.startsWith(NESTED.textPrefix()));
        if (legacy && nested) {
            throw new ModelFormatException(source + " mixes language_model.model.* and model.language_model.*"
                    + " tensors; a gemma3 checkpoint uses one layout");
        }
        if (!legacy && !nested) {
            List<String> some = names.stream().limit(3).toList();
            throw new ModelFormatException(source + " has no language_model.model.* or model.language_model.*"
                    + " tensors (found " + some + ", ...), but config.json says gemma3 (multimodal): for a text-only"
                    + " Gemma 3 checkpoint set model_type gemma3_text");
        }
        return legacy ? LEGACY : NESTED;
    }

    /**
     * {@code ck} seen with the text model's names ({@code model.*}, {@code lm_head.weight}); vision tensors left
     * out, any other tensor kept under its own name (so the loader reports it as unexpected).
     */
    static SafetensorsCheckpoint textView(SafetensorsCheckpoint ck) {
        Layout l = layout(ck.names(), ck.source().toString());
        Map<String, String> names = new LinkedHashMap<>();
        List<String> skipped = new ArrayList<>();
        for (String n : ck.names()) {
            if (n.startsWith(l.textPrefix())) {
                names.put("model." + n.substring(l.textPrefix().length()), n);
            } else if (n.equals(l.headName())) {
                names.put("lm_head.weight", n);
            } else if (l.skippedPrefixes().stream().anyMatch(n::startsWith)) {
                skipped.add(n);
            } else {
                names.put(n, n);
            }
        }
        return ck.renamed(names);
    }
}
