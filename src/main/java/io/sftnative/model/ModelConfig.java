package io.sftnative.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
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
 * <p>Supported: {@code llama}, {@code mistral}, {@code qwen2}, {@code qwen3}. Read with {@link #read(Path)},
 * {@link #parse(String, String)} or, in code, {@link #fromMap(Map)} with the same keys. Every problem is reported
 * with the file and key.
 *
 * @param attentionBias  bias on q/k/v (qwen2 always; llama/qwen3 with {@code attention_bias})
 * @param outputBias     bias on o_proj (llama/qwen3 with {@code attention_bias}; never qwen2)
 * @param mlpBias        bias on gate/up/down (llama {@code mlp_bias})
 * @param qkNorm         RMSNorm over head_dim on q and k before RoPE (qwen3)
 * @param slidingWindow  mistral's attention window (key j visible from query i iff i - j < window), or null
 * @param torchDtype     the checkpoint's dtype name (float32, bfloat16, float16), or null
 * @param eosTokenIds    {@code eos_token_id} as a list (it may be an int or a list in config.json)
 * @param raw            the whole config.json, kept so saving writes back keys we do not model
 */
public record ModelConfig(String modelType, int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
        int numAttentionHeads, int numKeyValueHeads, int headDim, double rmsNormEps, double ropeTheta,
        RopeScaling ropeScaling, int maxPositionEmbeddings, boolean tieWordEmbeddings, boolean attentionBias,
        boolean outputBias, boolean mlpBias, boolean qkNorm, Integer slidingWindow, double initializerRange,
        String torchDtype, Integer bosTokenId, List<Integer> eosTokenIds, Integer padTokenId,
        Map<String, Object> raw) {

    public static final List<String> SUPPORTED_MODEL_TYPES = List.of("llama", "mistral", "qwen2", "qwen3",
            "qwen2_moe", "qwen3_moe", "mixtral"); // MoE: io.sftnative.model.moe
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
        return new Reader(map, origin).config();
    }

    /** Builds a config from HF keys given in code (tests, benchmarks, the demo). */
    public static ModelConfig fromMap(Map<String, ?> keys) {
        return new Reader(new LinkedHashMap<>(keys), "config").config();
    }

    /** A copy with {@code torch_dtype} set (what {@link #toJson()} writes). */
    public ModelConfig withTorchDtype(String dtype) {
        Map<String, Object> r = new LinkedHashMap<>(raw);
        r.put("torch_dtype", dtype);
        return new ModelConfig(modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers,
                numAttentionHeads, numKeyValueHeads, headDim, rmsNormEps, ropeTheta, ropeScaling,
                maxPositionEmbeddings, tieWordEmbeddings, attentionBias, outputBias, mlpBias, qkNorm, slidingWindow,
                initializerRange, dtype, bosTokenId, eosTokenIds, padTokenId, r);
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
        out.putIfAbsent("hidden_act", "silu");
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
        return switch (modelType) {
            case "llama" -> "LlamaForCausalLM";
            case "mistral" -> "MistralForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            case "qwen2_moe" -> "Qwen2MoeForCausalLM";
            case "qwen3_moe" -> "Qwen3MoeForCausalLM";
            case "mixtral" -> "MixtralForCausalLM";
            default -> throw new IllegalStateException(modelType);
        };
    }

    /** The sparse mixture-of-experts keys (qwen2_moe, qwen3_moe, mixtral), or null for a dense model. */
    public MoeSpec moe() {
        return MoeSpec.read(raw, "config.json", numHiddenLayers, intermediateSize);
    }

    /** Number of query heads sharing one key/value head. */
    public int groupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }

    /** Typed reads of the raw map with errors that name the origin and key. */
    private static final class Reader {
        private final Map<String, Object> m;
        private final String origin;

        Reader(Map<String, Object> m, String origin) {
            this.m = m;
            this.origin = origin;
        }

        ModelConfig config() {
            Object typeValue = m.get("model_type");
            if (!(typeValue instanceof String type)) {
                throw err("model_type", "is missing; config.json must name the architecture (supported: "
                        + String.join(", ", SUPPORTED_MODEL_TYPES) + ")");
            }
            if (!SUPPORTED_MODEL_TYPES.contains(type)) {
                throw err("model_type", "is '" + type + "', which is not supported; supported model types: "
                        + String.join(", ", SUPPORTED_MODEL_TYPES) + " (decoder-only Llama family)");
            }
            String act = str("hidden_act", "silu");
            if (!act.equals("silu")) {
                throw err("hidden_act", "is '" + act + "'; only 'silu' (SwiGLU MLP) is supported");
            }
            int hidden = positive("hidden_size");
            int heads = positive("num_attention_heads");
            int kvHeads = has("num_key_value_heads") ? positive("num_key_value_heads") : heads;
            if (heads % kvHeads != 0) {
                throw err("num_key_value_heads", "(" + kvHeads + ") must divide num_attention_heads (" + heads + ")");
            }
            int headDim;
            if (has("head_dim")) {
                headDim = positive("head_dim");
            } else {
                if (hidden % heads != 0) {
                    throw err("hidden_size", "(" + hidden + ") is not a multiple of num_attention_heads (" + heads
                            + ") and no head_dim is given");
                }
                headDim = hidden / heads;
            }
            if (headDim % 2 != 0) {
                throw err("head_dim", "(" + headDim + ") must be even for rotary embeddings");
            }
            // MoE types take their dense sibling's attention: qwen2_moe = qwen2, qwen3_moe = qwen3, mixtral = mistral
            String attention = switch (type) {
                case "qwen2_moe" -> "qwen2";
                case "qwen3_moe" -> "qwen3";
                case "mixtral" -> "mistral";
                default -> type;
            };
            boolean qwen2 = attention.equals("qwen2");
            boolean mistral = attention.equals("mistral");
            boolean attnBias = qwen2 || (!mistral && bool("attention_bias", false));
            boolean outBias = !qwen2 && !mistral && bool("attention_bias", false);
            boolean mlpBias = type.equals("llama") && bool("mlp_bias", false);
            Integer window = null;
            if (mistral) {
                window = has("sliding_window") ? positive("sliding_window") : null;
            } else if ((qwen2 || attention.equals("qwen3")) && bool("use_sliding_window", false)) {
                throw err("use_sliding_window", "is true; sliding-window attention is supported for mistral only"
                        + " (set use_sliding_window: false to use full attention)");
            }
            double theta = number("rope_theta", 10000.0);
            RopeScaling scaling = ropeScaling();
            if (m.get("rope_parameters") instanceof Map<?, ?> rp && rp.get("rope_theta") instanceof Number n) {
                theta = n.doubleValue();
            }
            String dtype = has("torch_dtype") ? str("torch_dtype", null) : (has("dtype") ? str("dtype", null) : null);
            MoeSpec.read(m, origin, positive("num_hidden_layers"), positive("intermediate_size")); // validates
            return new ModelConfig(type, positive("vocab_size"), hidden, positive("intermediate_size"),
                    positive("num_hidden_layers"), heads, kvHeads, headDim, number("rms_norm_eps", 1e-6), theta,
                    scaling, has("max_position_embeddings") ? positive("max_position_embeddings") : 2048,
                    bool("tie_word_embeddings", false), attnBias, outBias, mlpBias, attention.equals("qwen3"), window,
                    number("initializer_range", 0.02), dtype, optInt("bos_token_id"), intList("eos_token_id"),
                    optInt("pad_token_id"), m);
        }

        private RopeScaling ropeScaling() {
            String key = "rope_scaling";
            Object v = m.get(key);
            if (v == null && m.get("rope_parameters") instanceof Map<?, ?> rp) {
                key = "rope_parameters";
                v = rp;
            }
            if (v == null) {
                return null;
            }
            if (!(v instanceof Map<?, ?> rs)) {
                throw err(key, "must be an object or null");
            }
            Object t = rs.containsKey("rope_type") ? rs.get("rope_type") : rs.get("type");
            String type = t == null ? "default" : t.toString();
            final String k = key;
            java.util.function.Function<String, Double> num = f -> {
                if (!(rs.get(f) instanceof Number n)) {
                    throw err(k + "." + f, "is required for rope type '" + type + "'");
                }
                return n.doubleValue();
            };
            return switch (type) {
                case "default" -> null;
                case "linear" -> RopeScaling.linear(num.apply("factor"));
                case "llama3" -> {
                    double lo = num.apply("low_freq_factor");
                    double hi = num.apply("high_freq_factor");
                    if (hi <= lo) {
                        throw err(k, "high_freq_factor must exceed low_freq_factor");
                    }
                    yield RopeScaling.llama3(num.apply("factor"), lo, hi,
                            (int) (double) num.apply("original_max_position_embeddings"));
                }
                default -> throw err(k, "has rope type '" + type + "', which is not supported (supported: "
                        + RopeScaling.SUPPORTED + ")");
            };
        }

        private boolean has(String key) {
            return m.get(key) != null;
        }

        private int positive(String key) {
            Object v = m.get(key);
            if (v == null) {
                throw err(key, "is missing");
            }
            if (!(v instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue()) || n.doubleValue() <= 0
                    || n.doubleValue() > Integer.MAX_VALUE) {
                throw err(key, "must be a positive whole number (at most " + Integer.MAX_VALUE + "), got "
                        + shown(v));
            }
            return n.intValue();
        }

        private Integer optInt(String key) {
            Object v = m.get(key);
            if (v == null) {
                return null;
            }
            if (v instanceof List<?> l) { // some configs give a list; the first id is the one used for padding
                return l.isEmpty() ? null : optIntValue(key, l.get(0));
            }
            return optIntValue(key, v);
        }

        private Integer optIntValue(String key, Object v) {
            if (!(v instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
                throw err(key, "must be a token id (whole number), got " + v);
            }
            return n.intValue();
        }

        private List<Integer> intList(String key) {
            Object v = m.get(key);
            List<Integer> out = new ArrayList<>();
            if (v instanceof List<?> l) {
                for (Object o : l) {
                    out.add(optIntValue(key, o));
                }
            } else if (v != null) {
                out.add(optIntValue(key, v));
            }
            return out;
        }

        private double number(String key, double def) {
            Object v = m.get(key);
            if (v == null) {
                return def;
            }
            if (!(v instanceof Number n)) {
                throw err(key, "must be a number, got " + shown(v));
            }
            return n.doubleValue();
        }

        private boolean bool(String key, boolean def) {
            Object v = m.get(key);
            if (v == null) {
                return def;
            }
            if (!(v instanceof Boolean b)) {
                throw err(key, "must be true or false, got " + shown(v));
            }
            return b;
        }

        private String str(String key, String def) {
            Object v = m.get(key);
            return v == null ? def : v.toString();
        }

        /** A value as the user wrote it: a JSON string is named as one ("256" is not the number 256). */
        private static String shown(Object v) {
            return v instanceof String s ? "the string \"" + s + "\" (JSON numbers and booleans have no quotes)"
                    : String.valueOf(v);
        }

        private ModelFormatException err(String key, String what) {
            return new ModelFormatException(origin + ": key '" + key + "' " + what);
        }
    }
}
