package io.sftnative.model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.sftnative.model.Architecture.Activation;
import io.sftnative.model.Architecture.NormKind;
import io.sftnative.model.Architecture.NormSlots;
import io.sftnative.model.Architecture.QkNorm;

/**
 * The supported {@code model_type}s and how each one's config.json becomes an {@link Architecture}: one entry per
 * family, reading the keys (and defaults) of its transformers {@code configuration_<arch>.py} and
 * {@code modeling_<arch>.py}. docs/architectures.md lists them.
 */
final class Families {
    private Families() {}

    static final List<String> SUPPORTED = List.of("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text",
            "phi3", "glm4", "olmo2", "granite", "baichuan", "qwen2_moe", "qwen3_moe", "mixtral", "gemma3");

    /** The family-level facts besides the {@link Architecture}: biases, window, defaults. */
    record Resolved(Architecture arch, boolean attentionBias, boolean outputBias, boolean mlpBias,
            Integer slidingWindow, boolean tieDefault) {}

    /**
     * Keys that change the computation in some families only: present (non-null) in another family's config they
     * mean the config mixes families (e.g. a gemma2 file relabelled llama), which would silently compute something
     * else, so they are refused.
     */
    private static final Map<String, List<String>> FAMILY_KEYS = new LinkedHashMap<>();

    static {
        FAMILY_KEYS.put("attn_logit_softcapping", List.of("gemma2", "gemma3_text"));
        FAMILY_KEYS.put("final_logit_softcapping", List.of("gemma2", "gemma3_text"));
        FAMILY_KEYS.put("query_pre_attn_scalar", List.of("gemma2", "gemma3_text"));
        FAMILY_KEYS.put("rope_local_base_freq", List.of("gemma3_text"));
        FAMILY_KEYS.put("partial_rotary_factor", List.of("phi3", "glm4"));
        FAMILY_KEYS.put("embedding_multiplier", List.of("granite"));
        FAMILY_KEYS.put("residual_multiplier", List.of("granite"));
        FAMILY_KEYS.put("attention_multiplier", List.of("granite"));
        FAMILY_KEYS.put("logits_scaling", List.of("granite"));
    }

    /**
     * @param heads    num_attention_heads
     * @param headDim  per-head size (head_dim or hidden/heads)
     */
    static Resolved resolve(String type, ConfigReader r, int layers, int hidden, int headDim) {
        for (Map.Entry<String, List<String>> e : FAMILY_KEYS.entrySet()) {
            if (r.has(e.getKey()) && !e.getValue().contains(type) && !neutral(r, e.getKey())) {
                throw r.err(e.getKey(), "belongs to " + String.join("/", e.getValue()) + " configs, but model_type"
                        + " is '" + type + "', which does not compute it; the config mixes families (check"
                        + " model_type, or remove the key)");
            }
        }
        double invSqrtD = 1.0 / Math.sqrt(headDim);
        boolean bias = r.bool("attention_bias", false);
        return switch (type) {
            case "llama" -> llamaLike(r, "LlamaForCausalLM", layers, headDim, bias, bias, r.bool("mlp_bias", false),
                    null, QkNorm.NONE);
            case "mistral" -> llamaLike(r, "MistralForCausalLM", layers, headDim, false, false, false,
                    r.has("sliding_window") ? r.positive("sliding_window") : null, QkNorm.NONE);
            case "qwen2" -> qwen(r, "Qwen2ForCausalLM", layers, headDim, true, false, QkNorm.NONE);
            case "qwen3" -> qwen(r, "Qwen3ForCausalLM", layers, headDim, bias, bias, QkNorm.PER_HEAD);
            // MoE types (io.sftnative.model.moe) take their dense sibling's attention; the sparse MLP is MoeSpec's
            case "qwen2_moe" -> qwen(r, "Qwen2MoeForCausalLM", layers, headDim, true, false, QkNorm.NONE);
            case "qwen3_moe" -> qwen(r, "Qwen3MoeForCausalLM", layers, headDim, bias, bias, QkNorm.PER_HEAD);
            case "mixtral" -> llamaLike(r, "MixtralForCausalLM", layers, headDim, false, false, false,
                    r.has("sliding_window") ? r.positive("sliding_window") : null, QkNorm.NONE);
            case "gemma2", "gemma3_text" -> gemma(type, r, layers, hidden, bias);
            case "phi3" -> {
                Integer window = r.has("sliding_window") ? r.positive("sliding_window") : null;
                Architecture a = new Architecture("Phi3ForCausalLM", NormKind.CAST_THEN_WEIGHT, NormSlots.LLAMA,
                        activation(r, "hidden_act", Activation.SILU), QkNorm.NONE, "qkv_proj", "gate_up_proj", 1.0,
                        false, 1.0, invSqrtD, null, null, 1.0, every(layers, window != null),
                        rotaryDims(r, headDim, 1.0), false, null, false, false);
                yield new Resolved(a, false, false, false, window, false);
            }
            case "glm4" -> {
                Architecture a = new Architecture("Glm4ForCausalLM", NormKind.CAST_THEN_WEIGHT,
                        new NormSlots("input_layernorm", "post_self_attn_layernorm", "post_attention_layernorm",
                                "post_mlp_layernorm"),
                        activation(r, "hidden_act", Activation.SILU), QkNorm.NONE, null, "gate_up_proj", 1.0, false,
                        1.0, invSqrtD, null, null, 1.0, every(layers, false), rotaryDims(r, headDim, 0.5), true,
                        null, false, false);
                yield new Resolved(a, r.bool("attention_bias", true), false, false, null, false);
            }
            case "olmo2" -> {
                Architecture a = new Architecture("Olmo2ForCausalLM", NormKind.WEIGHT_THEN_CAST,
                        new NormSlots(null, "post_attention_layernorm", null, "post_feedforward_layernorm"),
                        activation(r, "hidden_act", Activation.SILU), QkNorm.FULL, null, null, 1.0, false, 1.0,
                        invSqrtD, null, null, 1.0, every(layers, false), headDim, false, null, false, false);
                yield new Resolved(a, bias, bias, false, null, false);
            }
            case "granite" -> {
                Architecture a = new Architecture("GraniteForCausalLM", NormKind.CAST_THEN_WEIGHT, NormSlots.LLAMA,
                        activation(r, "hidden_act", Activation.SILU), QkNorm.NONE, null, null,
                        r.number("embedding_multiplier", 1.0), false, r.number("residual_multiplier", 1.0),
                        r.number("attention_multiplier", 1.0), null, null, r.number("logits_scaling", 1.0),
                        every(layers, false), headDim, false, null, false, false);
                yield new Resolved(a, bias, bias, r.bool("mlp_bias", false), null, false);
            }
            case "baichuan" -> baichuan(r, layers, hidden, headDim);
            default -> throw new IllegalStateException(type);
        };
    }

    /**
     * Baichuan's remote code (trust_remote_code): Llama with the fused {@code W_pack} (q | k | v, multi-head only).
     * The config does not say which code a checkpoint ships; like vLLM we tell them apart by the numbers: a
     * {@code BaichuanForCausalLM} with hidden_size other than 4096 is a 13B model, whose code uses ALiBi instead of
     * RoPE; vocab_size 125696 is Baichuan2, whose code normalises the LM head rows (NormHead).
     */
    private static Resolved baichuan(ConfigReader r, int layers, int hidden, int headDim) {
        List<String> archs = r.strings("architectures");
        String cls = archs != null && !archs.isEmpty() ? archs.get(0) : "BaichuanForCausalLM";
        // Baichuan-13B / Baichuan2-13B: no rotary embeddings; ALiBi biases in the attention
        boolean alibi = cls.equals("BaichuanForCausalLM") && hidden != 4096;
        if (r.has("num_key_value_heads") && r.positive("num_key_value_heads") != r.positive("num_attention_heads")) {
            throw r.err("num_key_value_heads", "must equal num_attention_heads: Baichuan's W_pack is multi-head");
        }
        if (r.number("z_loss_weight", 0) != 0) {
            throw r.err("z_loss_weight", "is " + r.m.get("z_loss_weight") + "; Baichuan2's z-loss term is not"
                    + " implemented (set it to 0, as the released checkpoints do)");
        }
        // Baichuan2: its vocabulary, or z_loss_weight (a key only Baichuan2's configuration class has)
        boolean normHead = r.positive("vocab_size") == 125696 || r.m.containsKey("z_loss_weight");
        Architecture a = new Architecture(cls, NormKind.CAST_THEN_WEIGHT, NormSlots.LLAMA, silu(r), QkNorm.NONE,
                "W_pack", null, 1.0, false, 1.0, 1.0 / Math.sqrt(headDim), null, null, 1.0, every(layers, false),
                headDim, false, null, normHead, alibi);
        return new Resolved(a, false, false, false, null, false);
    }

    /** A family key at its "off" value (e.g. {@code partial_rotary_factor: 1.0}, a multiplier of 1) changes nothing. */
    private static boolean neutral(ConfigReader r, String key) {
        return (key.endsWith("_multiplier") || key.equals("logits_scaling") || key.equals("partial_rotary_factor"))
                && r.number(key, 1.0) == 1.0;
    }

    private static Resolved llamaLike(ConfigReader r, String cls, int layers, int headDim, boolean attnBias,
            boolean outBias, boolean mlpBias, Integer window, QkNorm qk) {
        Architecture a = new Architecture(cls, NormKind.CAST_THEN_WEIGHT, NormSlots.LLAMA, silu(r), qk, null, null,
                1.0, false, 1.0, 1.0 / Math.sqrt(headDim), null, null, 1.0, every(layers, window != null), headDim,
                false, null, false, false);
        return new Resolved(a, attnBias, outBias, mlpBias, window, false);
    }

    /**
     * qwen2/qwen3: {@code use_sliding_window} puts the window on the layers from {@code max_window_layers} on
     * (transformers' {@code layer_types} default), or on the layers {@code layer_types} names.
     */
    private static Resolved qwen(ConfigReader r, String cls, int layers, int headDim, boolean attnBias,
            boolean outBias, QkNorm qk) {
        Integer window = null;
        List<Boolean> sliding = every(layers, false);
        if (r.bool("use_sliding_window", false)) {
            window = r.positive("sliding_window");
            int from = r.has("max_window_layers") ? nonNegative(r, "max_window_layers") : layers;
            sliding = new ArrayList<>();
            for (int i = 0; i < layers; i++) {
                sliding.add(i >= from);
            }
            sliding = layerTypes(r, layers, sliding);
            if (!sliding.contains(Boolean.TRUE)) {
                window = null;
            }
        }
        Architecture a = new Architecture(cls, NormKind.CAST_THEN_WEIGHT, NormSlots.LLAMA, silu(r), qk, null, null,
                1.0, false, 1.0, 1.0 / Math.sqrt(headDim), null, null, 1.0, sliding, headDim, false, null, false, false);
        return new Resolved(a, attnBias, outBias, false, window, false);
    }

    /**
     * Gemma 2 and Gemma 3 (text): four norms per layer in Gemma's {@code x * (1 + w)} form, GeGLU, embeddings times
     * sqrt(hidden), {@code query_pre_attn_scalar}; gemma2 alternates sliding/full layers (even layers slide) with
     * soft-capping, gemma3 slides on all but every {@code sliding_window_pattern}-th layer, normalises q/k per head
     * and gives sliding layers their own RoPE base.
     */
    private static Resolved gemma(String type, ConfigReader r, int layers, int hidden, boolean bias) {
        boolean g3 = type.equals("gemma3_text");
        int window = r.positive("sliding_window", 4096);
        List<Boolean> sliding = new ArrayList<>();
        int pattern = g3 ? r.positive("sliding_window_pattern", 6) : 2;
        for (int i = 0; i < layers; i++) {
            sliding.add((i + 1) % pattern != 0);
        }
        sliding = layerTypes(r, layers, sliding);
        // Gemma2Config defaults the caps to 50 / 30 when the keys are absent; Gemma3TextConfig to none
        Double attnCap = r.m.containsKey("attn_logit_softcapping") || g3 ? r.optPositive("attn_logit_softcapping")
                : Double.valueOf(50.0);
        Double finalCap = r.m.containsKey("final_logit_softcapping") || g3 ? r.optPositive("final_logit_softcapping")
                : Double.valueOf(30.0);
        double scalar = r.number("query_pre_attn_scalar", 256);
        int headDim = r.positive("head_dim", 256);
        Architecture a = new Architecture(g3 ? "Gemma3ForCausalLM" : "Gemma2ForCausalLM", NormKind.ONE_PLUS_WEIGHT,
                new NormSlots("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                        "post_feedforward_layernorm"),
                activation(r, r.has("hidden_activation") ? "hidden_activation" : "hidden_act", Activation.GELU_TANH),
                g3 ? QkNorm.PER_HEAD : QkNorm.NONE, null, null, Math.sqrt(hidden), true, 1.0, 1.0 / Math.sqrt(scalar),
                attnCap, finalCap, 1.0, sliding, headDim, false,
                g3 ? r.number("rope_local_base_freq", 10000.0) : null, false, false);
        return new Resolved(a, bias, bias, false, window, true);
    }

    /** {@code layer_types} (newer transformers) overrides the computed pattern when present. */
    private static List<Boolean> layerTypes(ConfigReader r, int layers, List<Boolean> computed) {
        List<String> types = r.strings("layer_types");
        if (types == null) {
            return computed;
        }
        if (types.size() != layers) {
            throw r.err("layer_types", "has " + types.size() + " entries for " + layers + " layers");
        }
        List<Boolean> out = new ArrayList<>();
        for (String t : types) {
            switch (t) {
                case "sliding_attention" -> out.add(true);
                case "full_attention" -> out.add(false);
                default -> throw r.err("layer_types", "has '" + t + "'; expected sliding_attention or"
                        + " full_attention");
            }
        }
        return out;
    }

    private static List<Boolean> every(int layers, boolean value) {
        List<Boolean> out = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            out.add(value);
        }
        return out;
    }

    /** {@code int(head_dim * partial_rotary_factor)}, which must be even. */
    private static int rotaryDims(ConfigReader r, int headDim, double def) {
        double f = r.number("partial_rotary_factor", def);
        if (!(f > 0 && f <= 1)) {
            throw r.err("partial_rotary_factor", "must be in (0, 1], got " + f);
        }
        int dims = (int) (headDim * f);
        if (dims % 2 != 0 || dims == 0) {
            throw r.err("partial_rotary_factor", "gives " + dims + " rotary dims of head_dim " + headDim
                    + "; they must be even and > 0");
        }
        return dims;
    }

    private static Activation silu(ConfigReader r) {
        return activation(r, "hidden_act", Activation.SILU);
    }

    private static Activation activation(ConfigReader r, String key, Activation def) {
        String act = r.str(key, def.hfName);
        for (Activation a : Activation.values()) {
            if (a.hfName.equals(act) || (a == Activation.SILU && act.equals("swish"))) {
                return a;
            }
        }
        throw r.err(key, "is '" + act + "'; supported: silu, gelu_pytorch_tanh");
    }

    private static int nonNegative(ConfigReader r, String key) {
        double v = r.number(key, 0);
        if (v < 0 || v != Math.rint(v)) {
            throw r.err(key, "must be a whole number >= 0, got " + r.m.get(key));
        }
        return (int) v;
    }
}
