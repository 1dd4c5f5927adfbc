package io.sftnative.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

import org.bytedeco.pytorch.Tensor;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

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
public final class MultimodalText {
    private static final ObjectMapper JSON = new ObjectMapper();

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
    record Layout(String textPrefix, String headName, List<String> skippedPrefixes, String what) {
        /**
         * The stored name of the text model's parameter or module path {@code name} ({@code model.*},
         * {@code lm_head*}); any other name unchanged.
         */
        String stored(String name) {
            if (name.startsWith("model.")) {
                return textPrefix + name.substring("model.".length());
            }
            String head = headName.substring(0, headName.length() - ".weight".length());
            return name.equals("lm_head") || name.startsWith("lm_head.") ? head + name.substring("lm_head".length())
                    : name;
        }

        /** The text model's name of the stored {@code name}, or null when it is not a text-model name. */
        String text(String name) {
            String head = headName.substring(0, headName.length() - ".weight".length());
            if (name.startsWith(textPrefix)) {
                return "model." + name.substring(textPrefix.length());
            }
            return name.equals(head) || name.startsWith(head + ".") ? "lm_head" + name.substring(head.length())
                    : null;
        }

        boolean isVision(String name) {
            return skippedPrefixes.stream().anyMatch(name::startsWith);
        }
    }

    /**
     * The multimodal checkpoint a text model was loaded from: its layout, its own config.json (as read) and the
     * vision tensors, kept open (memory-mapped, not read) so that saving the model writes them back even when the
     * directory is rotated away meanwhile (a resumed checkpoint-N). Owned by the model ({@link DecoderModel#adopt}).
     */
    record Source(Path dir, Layout layout, Map<String, Object> config, SafetensorsCheckpoint vision)
            implements AutoCloseable {
        @Override
        public void close() {
            vision.close();
        }
    }

    /** The {@link Source} of {@code dir} (a gemma3 checkpoint): its config.json and the vision tensors. */
    static Source source(Path dir) throws IOException {
        Map<String, Object> config = JSON.readValue(dir.resolve("config.json").toFile(),
                new TypeReference<LinkedHashMap<String, Object>>() {});
        SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir);
        try {
            Layout l = layout(ck.names(), ck.source().toString());
            Map<String, String> vision = new LinkedHashMap<>();
            for (String n : ck.names()) {
                if (l.isVision(n)) {
                    vision.put(n, n);
                }
            }
            return new Source(dir, l, config, ck.renamed(vision));
        } catch (RuntimeException e) {
            ck.close();
            throw e;
        }
    }

    /**
     * The tensors and config.json that save {@code config}'s text model as the multimodal checkpoint {@code src}:
     * text parameters under the source's layout, the vision tower and projector as the source stores them (views of
     * its files), and the source's config.json with text_config updated where the text model's config changed
     * since loading (vocab_size after a resize, rope_scaling and max_position_embeddings of LLaMA-Factory's key,
     * torch_dtype), and torch_dtype at the top level.
     */
    static Map<String, Tensor> savedTensors(Map<String, Tensor> text, Source src) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : text.entrySet()) {
            out.put(src.layout().stored(e.getKey()), e.getValue());
        }
        for (String n : src.vision().names()) {
            out.put(n, src.vision().view(n)); // (as stored) a view of the mapped source file
        }
        return out;
    }

    /** The config.json of {@link #savedTensors}' checkpoint (see there); {@code dtype}: the saved torch_dtype. */
    static String savedConfig(ModelConfig config, Source src, String dtype) {
        Map<String, Object> top = new LinkedHashMap<>(src.config());
        Map<String, Object> loaded = textConfig(new ConfigReader(src.config(), "config.json")).m;
        @SuppressWarnings("unchecked")
        Map<String, Object> tc = new LinkedHashMap<>((Map<String, Object>) src.config().get("text_config"));
        for (Map.Entry<String, Object> e : config.raw().entrySet()) {
            if (!Objects.equals(e.getValue(), loaded.get(e.getKey())) && !e.getKey().equals("torch_dtype")
                    && !e.getKey().equals("dtype")) {
                tc.put(e.getKey(), e.getValue());
            }
        }
        for (String k : List.of("torch_dtype", "dtype")) {
            if (tc.containsKey(k)) {
                tc.put(k, dtype);
            }
            if (top.containsKey(k)) {
                top.put(k, dtype);
            }
        }
        top.putIfAbsent("torch_dtype", dtype);
        top.put("text_config", tc);
        try {
            return JSON.copy().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(top) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    static final Layout LEGACY = new Layout("language_model.model.", "language_model.lm_head.weight",
            List.of("vision_tower.", "multi_modal_projector."), "language_model.model.* (transformers 4.x)");
    static final Layout NESTED = new Layout("model.language_model.", "lm_head.weight",
            List.of("model.vision_tower.", "model.multi_modal_projector."), "model.language_model.* (transformers 5)");

    /** The names a Gemma 3 text-model parameter or module path has in the two multimodal checkpoint layouts. */
    public static List<String> storedNames(String name) {
        return List.of(LEGACY.stored(name), NESTED.stored(name));
    }

    /**
     * The text model's name of a stored gemma3 name in either multimodal layout ({@code language_model.model.*},
     * {@code language_model.lm_head*}, {@code model.language_model.*}), or null when {@code name} is in neither
     * (a text-model name, or a vision tower name). Adapters of Gemma 3 saved by PEFT on
     * Gemma3ForConditionalGeneration read through it.
     */
    public static String textNameOf(String name) {
        String t = LEGACY.text(name);
        if (t == null && name.startsWith(NESTED.textPrefix())) {
            t = NESTED.text(name);
        }
        return t;
    }

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
            } else if (l.isVision(n)) {
                skipped.add(n);
            } else {
                names.put(n, n);
            }
        }
        return ck.renamed(names);
    }
}
