package io.sftnative.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import io.sftnative.model.moe.MoeSpec;

/**
 * The architecture described by an HF {@code config.json} (field names as in transformers).
 *
 * <p>Supported: {@link #SUPPORTED_MODEL_TYPES}, each described by its {@link Architecture} ({@link Families}).
 * Read with {@link #read(Path)},
 * {@link #parse(String, String)} or, in code, {@link #fromMap(Map)} with the same keys. Every problem is reported
 * with the file and key.
 *
 * @param attentionBias  bias on q/k/v (qwen2 always; llama/qwen3 with {@code attention_bias})
 * @param outputBias     bias on o_proj (llama/qwen3 with {@code attention_bias}; never qwen2)
 * @param mlpBias        bias on gate/up/down (llama {@code mlp_bias})
 * @param qkNorm         RMSNorm on q and k before RoPE (qwen3, gemma3, olmo2: see {@link Architecture#qkNorm()})
 * @param slidingWindow  the attention window of the sliding layers ({@link Architecture#slidingLayers()}; key j
 *                       visible from query i iff i - j < window), or null
 * @param torchDtype     the checkpoint's dtype name (float32, bfloat16, float16), or null
 * @param eosTokenIds    {@code eos_token_id} as a list (it may be an int or a list in config.json)
 * @param arch           what the family computes differently ({@link Families})
 * @param raw            the whole config.json, kept so saving writes back keys we do not model (a multimodal
 *                       config: its text part, which is what saving writes)
 * @param textTowerOf    the multimodal model_type whose language model this is ({@code gemma3}: weights under
 *                       {@code language_model.} prefixes, vision tower not loaded; {@link MultimodalText}), or null
 */
public record ModelConfig(String modelType, int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
        int numAttentionHeads, int numKeyValueHeads, int headDim, double rmsNormEps, double ropeTheta,
        RopeScaling ropeScaling, int maxPositionEmbeddings, boolean tieWordEmbeddings, boolean attentionBias,
        boolean outputBias, boolean mlpBias, boolean qkNorm, Integer slidingWindow, double initializerRange,
        String torchDtype, Integer bosTokenId, List<Integer> eosTokenIds, Integer padTokenId, Architecture arch,
        Map<String, Object> raw, String textTowerOf) {

    public static final List<String> SUPPORTED_MODEL_TYPES = Families.SUPPORTED;
    private static final ObjectMapper JSON = new ObjectMapper();

    public ModelConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
        raw = Collections.unmodifiableMap(new LinkedHashMap<>(raw));
    }

    /** Reads {@code dir/config.json} (or the file itself if a file is given). */
    public static ModelConfig read(Path dirOrFile) throws IOException {
        Path file = Files.isDirectory(dirOrFile) ? dirOrFile.resolve("config.json") : dirOrFile;
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null,
                    "no config.json: a model directory needs HF's config.json next to its safetensors");
        }
        return parse(Files.readString(file), file.toString());
    }

    public static ModelConfig parse(String json, String origin) {
        Map<String, Object> map;
        try {
            map = JSON.readValue(json, new TypeReference<LinkedHashMap<String, Object>>() {});
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(origin + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
        }
        if (map == null) {
            throw new ModelFormatException(origin + ": empty config");
        }
        return read(new ConfigReader(map, origin));
    }

    /** Builds a config from HF keys given in code (tests, benchmarks, the demo). */
    public static ModelConfig fromMap(Map<String, ?> keys) {
        return read(new ConfigReader(new LinkedHashMap<>(keys), "config"));
    }

    /** A copy with {@code torch_dtype} set (what {@link #toJson()} writes). */
    public ModelConfig withTorchDtype(String dtype) {
        Map<String, Object> r = new LinkedHashMap<>(raw);
        r.put("torch_dtype", dtype);
        return new ModelConfig(modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers,
                numAttentionHeads, numKeyValueHeads, headDim, rmsNormEps, ropeTheta, ropeScaling,
                maxPositionEmbeddings, tieWordEmbeddings, attentionBias, outputBias, mlpBias, qkNorm, slidingWindow,
                initializerRange, dtype, bosTokenId, eosTokenIds, padTokenId, arch, r, textTowerOf);
    }

    /**
     * LLaMA-Factory's {@code rope_scaling} key ({@code configure_rope}): {@code type} is linear, dynamic, yarn or
     * llama3. Training and evaluation pass {@code modelMaxLength} = cutoff_len: when it exceeds
     * max_position_embeddings the factor is {@code ceil(modelMaxLength / max_position_embeddings)}, otherwise
     * scaling is left as the config has it (returns this, {@code log} says why); inference passes null: factor 2.
     * max_position_embeddings grows by the factor; dynamic and yarn get original_max_position_embeddings (the old
     * length), llama3 that and low/high_freq_factor 1 and 4. The config's own rope_scaling is replaced, as
     * LLaMA-Factory does; saving writes the new keys.
     */
    public ModelConfig withLlamaFactoryRopeScaling(String type, Integer modelMaxLength,
            java.util.function.Consumer<String> log) {
        int old = maxPositionEmbeddings;
        double factor;
        if (modelMaxLength != null) {
            if (modelMaxLength <= old) {
                log.accept("rope_scaling: " + type + " not applied: cutoff_len " + modelMaxLength + " does not exceed"
                        + " max_position_embeddings " + old + " (as LLaMA-Factory: scaling disabled, the model's"
                        + " own rope_scaling is kept)");
                return this;
            }
            if (type.equals("dynamic")) {
                log.accept("rope_scaling: dynamic NTK scaling may not work well with fine-tuning (LLaMA-Factory's"
                        + " warning; see transformers PR 24653)");
            }
            factor = Math.ceil((double) modelMaxLength / old);
        } else {
            factor = 2.0;
        }
        Map<String, Object> rs = new LinkedHashMap<>();
        rs.put("rope_type", type);
        rs.put("factor", factor);
        if (type.equals("dynamic") || type.equals("yarn") || type.equals("llama3")) {
            rs.put("original_max_position_embeddings", old);
        }
        if (type.equals("llama3")) {
            rs.put("low_freq_factor", 1.0);
            rs.put("high_freq_factor", 4.0);
        }
        Map<String, Object> m = new LinkedHashMap<>(raw);
        m.put("rope_scaling", rs);
        if (m.get("rope_parameters") instanceof Map<?, ?> rp) { // transformers 5's spelling: keep its rope_theta
            Map<String, Object> both = new LinkedHashMap<>(rs);
            if (rp.get("rope_theta") != null) {
                both.put("rope_theta", rp.get("rope_theta"));
            }
            m.put("rope_parameters", both);
        }
        m.put("max_position_embeddings", (long) (old * factor));
        log.accept("rope_scaling: " + type + " scaling with factor " + factor + "; max model length " + old + " -> "
                + (long) (old * factor));
        return read(new ConfigReader(m, "rope_scaling (LLaMA-Factory key) on config.json"), textTowerOf);
    }

    /** A copy with {@code vocab_size} set (transformers' resize_token_embeddings updates the config the same way). */
    public ModelConfig withVocabSize(int rows) {
        Map<String, Object> r = new LinkedHashMap<>(raw);
        r.put("vocab_size", rows);
        return new ModelConfig(modelType, rows, hiddenSize, intermediateSize, numHiddenLayers,
                numAttentionHeads, numKeyValueHeads, headDim, rmsNormEps, ropeTheta, ropeScaling,
                maxPositionEmbeddings, tieWordEmbeddings, attentionBias, outputBias, mlpBias, qkNorm, slidingWindow,
                initializerRange, torchDtype, bosTokenId, eosTokenIds, padTokenId, arch, r, textTowerOf);
    }

    /** HF config.json text: the original keys, with architecture fields as this record holds them. */
    public String toJson() {
        Map<String, Object> out = new LinkedHashMap<>(raw);
        out.put("model_type", modelType);
        out.putIfAbsent("architectures", List.of(architecture()));
        out.put("vocab_size", vocabSize);
        out.put("hidden_size", hiddenSize);
        out.put("intermediate_size", intermediateSize);
        out.put("num_hidden_layers", numHiddenLayers);
        out.put("num_attention_heads", numAttentionHeads);
        out.put("num_key_value_heads", numKeyValueHeads);
        out.put("head_dim", headDim);
        out.put("rms_norm_eps", rmsNormEps);
        out.put("rope_theta", ropeTheta);
        out.put("max_position_embeddings", maxPositionEmbeddings);
        out.put("tie_word_embeddings", tieWordEmbeddings);
        out.putIfAbsent(modelType.startsWith("gemma") ? "hidden_activation" : "hidden_act", arch.activation().hfName);
        out.putIfAbsent("initializer_range", initializerRange);
        if (torchDtype != null) {
            out.put("torch_dtype", torchDtype);
        }
        try {
            return JSON.copy().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(out) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** transformers' class name for this model type. */
    public String architecture() {
        return arch.className();
    }

    /** The sparse mixture-of-experts keys (qwen2_moe, qwen3_moe, mixtral), or null for a dense model. */
    public MoeSpec moe() {
        return MoeSpec.read(raw, "config.json", numHiddenLayers, intermediateSize);
    }

    /** Number of query heads sharing one key/value head. */
    public int groupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }

    /** Reads the common keys, then the family's ({@link Families}). */
    private static ModelConfig read(ConfigReader r) {
        return read(r, null);
    }

    /** {@code tower}: a text part already taken out of its multimodal config (re-reading a modified copy). */
    private static ModelConfig read(ConfigReader r, String tower) {
        Object typeValue = r.m.get("model_type");
        if (!(typeValue instanceof String type)) {
            throw r.err("model_type", "is missing; config.json must name the architecture (supported: "
                    + String.join(", ", SUPPORTED_MODEL_TYPES) + ")");
        }
        String textTowerOf = tower;
        if (MultimodalText.wraps(type)) { // the language model of a multimodal config (vision tower left out)
            textTowerOf = type;
            r = MultimodalText.textConfig(r);
            type = (String) r.m.get("model_type");
        }
        if (!SUPPORTED_MODEL_TYPES.contains(type) || MultimodalText.wraps(type)) {
            throw r.err("model_type", "is '" + type + "', which is not supported; supported model types: "
                    + String.join(", ", SUPPORTED_MODEL_TYPES) + " (decoder-only; see docs/architectures.md)");
        }
        int hidden = r.positive("hidden_size");
        int heads = r.positive("num_attention_heads");
        int kvHeads = r.has("num_key_value_heads") ? r.positive("num_key_value_heads") : heads;
        if (heads % kvHeads != 0) {
            throw r.err("num_key_value_heads", "(" + kvHeads + ") must divide num_attention_heads (" + heads + ")");
        }
        int headDim;
        if (r.has("head_dim")) {
            headDim = r.positive("head_dim");
        } else if (type.startsWith("gemma")) {
            headDim = 256; // Gemma2Config / Gemma3TextConfig default
        } else {
            if (hidden % heads != 0) {
                throw r.err("hidden_size", "(" + hidden + ") is not a multiple of num_attention_heads (" + heads
                        + ") and no head_dim is given");
            }
            headDim = hidden / heads;
        }
        if (headDim % 2 != 0) {
            throw r.err("head_dim", "(" + headDim + ") must be even for rotary embeddings");
        }
        int layers = r.positive("num_hidden_layers");
        Families.Resolved f = Families.resolve(type, r, layers, hidden, headDim);
        double theta = r.number("rope_theta", type.equals("gemma3_text") ? 1_000_000.0 : 10000.0);
        if (r.m.get("rope_parameters") instanceof Map<?, ?> rp && rp.get("rope_theta") instanceof Number n) {
            theta = n.doubleValue();
        }
        int maxPositions = r.has("max_position_embeddings") ? r.positive("max_position_embeddings")
                : r.has("model_max_length") ? r.positive("model_max_length") : 2048; // Baichuan: model_max_length
        RopeScaling scaling = RopeScaling.read(r, maxPositions, f.arch().rotaryDims());
        String dtype = r.has("torch_dtype") ? r.str("torch_dtype", null) : (r.has("dtype") ? r.str("dtype", null) : null);
        MoeSpec.read(r.m, r.origin, layers, r.positive("intermediate_size")); // validates the MoE keys
        return new ModelConfig(type, r.positive("vocab_size"), hidden, r.positive("intermediate_size"), layers, heads,
                kvHeads, headDim, r.number("rms_norm_eps", 1e-6), theta, scaling, maxPositions,
                r.bool("tie_word_embeddings", f.tieDefault()), f.attentionBias(), f.outputBias(), f.mlpBias(),
                f.arch().qkNorm() != Architecture.QkNorm.NONE, f.slidingWindow(), r.number("initializer_range", 0.02),
                dtype, r.optInt("bos_token_id"), r.intList("eos_token_id"), r.optInt("pad_token_id"), f.arch(), r.m,
                textTowerOf);
    }
}
