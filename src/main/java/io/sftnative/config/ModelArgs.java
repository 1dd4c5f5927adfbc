package io.sftnative.config;

import io.sftnative.hub.HubCache;
import io.sftnative.hub.HubEnv;
import io.sftnative.hub.HubException;
import io.sftnative.torch.DeviceSelection;

/**
 * Which model to load and how (LLaMA-Factory's ModelArguments).
 *
 * @param modelNameOrPath     a local HF model directory (config.json + safetensors + tokenizer files); a hub id
 *                            (Org/Name) is replaced by its snapshot in the local Hugging Face cache
 *                            ({@link HubCache}, revision {@code model_revision}, cache {@code cache_dir})
 * @param adapterNameOrPath   a PEFT adapter directory to load on top (hub ids resolved the same way), or null
 * @param quantizationBit     4 or 8 to hold frozen linear weights quantized (QLoRA), or 0 for none
 * @param quantizationType    nf4 or fp4 (4-bit only)
 * @param doubleQuantization  quantize the absmax statistics too (QLoRA's double quantization)
 * @param quantizationBlocksize values per absmax block
 * @param nativeLibrary       path of a real libbitsandbytes to use for the symbols it exports, or null for ours
 * @param threads             libtorch intra-op threads (0 = all available processors)
 * @param trainFromScratch    ignore the weights: random-initialise the architecture of config.json (seeded by seed)
 * @param device              where the model runs: auto (default: SFT_DEVICE, else the GPU when there is one), cpu,
 *                            cuda or cuda:N ({@code io.sftnative.torch.TorchRuntime#device(String)})
 * @param moeAuxLossCoef      mixture-of-experts models: the load-balancing loss weight (sets the config's
 *                            router_aux_loss_coef, as LLaMA-Factory's moe_aux_loss_coef), or null for the config's
 * @param flashAttn           LLaMA-Factory's attention back-end key: auto, sdpa, disabled, fa2 or native; auto, fa2
 *                            and native select our CPU attention kernel where it applies (docs/attention.md)
 * @param ropeScaling         LLaMA-Factory's rope_scaling: linear, dynamic, yarn or llama3 replaces the model's RoPE
 *                            scaling (factor from cutoff_len: ModelConfig.withLlamaFactoryRopeScaling), or null to
 *                            keep config.json's
 * @param newTokens           add_tokens, add_special_tokens, resize_vocab, new_special_tokens_config,
 *                            init_special_tokens (docs/adapters-export-chat.md, "New tokens")
 */
public record ModelArgs(String modelNameOrPath, String adapterNameOrPath, int quantizationBit,
        String quantizationType, boolean doubleQuantization, int quantizationBlocksize, String nativeLibrary,
        int threads, boolean trainFromScratch, String device, Double moeAuxLossCoef, String flashAttn,
        String ropeScaling, NewTokensArgs newTokens) {

    public static ModelArgs from(RawConfig c) {
        int bit = c.integer("quantization_bit", 0);
        if (bit != 0 && bit != 4 && bit != 8) {
            throw new ConfigException("key 'quantization_bit' (" + c.origin("quantization_bit")
                    + ") must be 4 or 8 (or absent for no quantization), got " + bit);
        }
        quantizationMethod(c);
        String revision = c.string("model_revision", "main");
        String cacheDir = c.string("cache_dir", null);
        HubEnv hub = hubEnv(c, cacheDir);
        return new ModelArgs(
                resolve(c, "model_name_or_path", hub, c.string("model_name_or_path", null), revision),
                adapters(c, hub),
                bit,
                c.choice("quantization_type", "nf4", "nf4", "fp4"),
                c.bool("double_quantization", true),
                c.integer("quantization_blocksize", 64),
                c.string("bnb_library", System.getenv("SFT_BNB_LIBRARY")),
                c.integer("threads", 0, 0, 4096),
                c.bool("train_from_scratch", false),
                device(c),
                c.has("moe_aux_loss_coef") ? nonNegative(c, "moe_aux_loss_coef") : null,
                c.choice("flash_attn", "auto", "auto", "sdpa", "disabled", "fa2", "native"),
                c.choice("rope_scaling", null, "linear", "dynamic", "yarn", "llama3"),
                newTokens(c, bit));
    }

    private static double nonNegative(RawConfig c, String key) {
        double v = c.number(key, 0);
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new ConfigException("key '" + key + "' (" + c.origin(key) + ") must be a finite number >= 0, got "
                    + v);
        }
        return v;
    }

    /**
     * LLaMA-Factory's quantization_method: {@code bnb} (bitsandbytes, default) is what quantization_bit does here;
     * the others need their own kernels and are refused.
     */
    private static void quantizationMethod(RawConfig c) {
        String m = c.string("quantization_method", "bnb").toLowerCase(java.util.Locale.ROOT);
        String why = switch (m) {
            case "bnb", "bitsandbytes" -> null;
            case "hqq" -> "HQQ (half-quadratic quantization) needs the hqq kernels";
            case "eetq" -> "EETQ needs its int8 CUDA kernels";
            case "gptq", "awq", "aqlm" -> m.toUpperCase(java.util.Locale.ROOT) + " bases are quantized offline with"
                    + " their own packed formats and kernels";
            default -> "it is not a LLaMA-Factory quantization method (bnb, hqq, eetq)";
        };
        if (why != null) {
            throw new ConfigException("key 'quantization_method' (" + c.origin("quantization_method") + ") is '" + m
                    + "': not supported by sft-native, because " + why + ". Use quantization_method: bnb with"
                    + " quantization_bit 4 or 8 (bitsandbytes NF4/FP4/int8), or no quantization");
        }
    }

    /** LLaMA-Factory's parser: "Cannot resize embedding layers of a quantized model." */
    private static NewTokensArgs newTokens(RawConfig c, int bit) {
        NewTokensArgs n = NewTokensArgs.from(c);
        if (bit != 0 && n.resizeVocab()) {
            throw new ConfigException("key 'resize_vocab' (" + c.origin("resize_vocab") + ") cannot be used with"
                    + " quantization_bit " + bit + ": the embedding layers of a quantized model cannot be resized (as"
                    + " in LLaMA-Factory). Train with LoRA on the unquantized model, or drop resize_vocab");
        }
        return n;
    }

    /** Each comma-separated adapter that is a hub id becomes its snapshot (main revision; downloaded if online). */
    private static String adapters(RawConfig c, HubEnv hub) {
        String list = c.string("adapter_name_or_path", null);
        if (list == null) {
            return null;
        }
        java.util.List<String> out = new java.util.ArrayList<>();
        for (String a : list.split(",")) {
            out.add(resolve(c, "adapter_name_or_path", hub, a.trim(), "main"));
        }
        return String.join(",", out);
    }

    /** The hub environment; LLaMA-Factory's {@code hf_hub_token} key wins over HF_TOKEN, as it does there. */
    private static HubEnv hubEnv(RawConfig c, String cacheDir) {
        HubEnv env = HubEnv.current(cacheDir);
        String token = c.string("hf_hub_token", null);
        return token == null || token.isBlank() ? env
                : new HubEnv(env.endpoint(), token.strip(), env.offline(), env.cache(), env.timeoutSeconds());
    }

    private static String resolve(RawConfig c, String key, HubEnv hub, String nameOrPath, String revision) {
        try {
            return HubCache.resolveModel(hub, nameOrPath, revision, System.err::println);
        } catch (HubException e) {
            throw new ConfigException("key '" + key + "' (" + c.origin(key) + "): '" + nameOrPath + "' is not a local"
                    + " directory; as a hub id: " + e.getMessage(), e);
        }
    }

    private static String device(RawConfig c) {
        String d = c.string("device", "auto");
        if (!DeviceSelection.isValidName(d)) {
            throw new ConfigException("key 'device' (" + c.origin("device") + ") must be auto, cpu, cuda or cuda:N"
                    + " (N = the GPU's index), got '" + d + "'");
        }
        return d.trim();
    }
}
