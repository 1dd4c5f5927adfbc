package io.sftnative.config;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * LLaMA-Factory keys for features sft-native does not implement. Each is read (so it is never "unknown"); its
 * default value ({@code false}, null, 0) is accepted, any other value stops the run with a message naming the key
 * and what to do — a config that asks for the feature is never silently trained without it.
 */
final class NotImplementedKeys {
    private NotImplementedKeys() {}

    /** key → what it is. */
    static final Map<String, String> FEATURES = features();

    private static Map<String, String> features() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("use_galore", "GaLore (gradient low-rank projection)");
        m.put("use_apollo", "APOLLO");
        m.put("use_badam", "BAdam (block-wise Adam)");
        m.put("use_adam_mini", "Adam-mini");
        m.put("use_muon", "the Muon optimizer");
        m.put("use_llama_pro", "LLaMA-Pro (block expansion)");
        m.put("use_dft_loss", "the DFT loss");
        m.put("use_swanlab", "SwanLab tracking (a network service)");
        m.put("use_asft_loss", "the ASFT loss");
        m.put("use_eaft_loss", "the EAFT loss");
        m.put("fp8", "FP8 training");
        m.put("fp8_enable_fsdp_float8_all_gather", "FP8 training (FSDP float8 all-gather)");
        m.put("mixture_of_depths", "Mixture-of-Depths");
        m.put("use_kt", "KTransformers (CPU/GPU hybrid MoE training)");
        m.put("use_v1_kernels", "LLaMA-Factory's v1 fused kernels (Ascend NPU)");
        return m;
    }

    /** Reads every key; fails on the first one set to something other than its default. */
    static void check(RawConfig c) {
        for (Map.Entry<String, String> e : FEATURES.entrySet()) {
            String key = e.getKey();
            if (!c.has(key)) {
                continue;
            }
            Object v = c.values().get(key);
            String s = String.valueOf(v).trim().toLowerCase(java.util.Locale.ROOT);
            boolean inert = s.equals("false") || s.equals("0") || s.equals("0.0") || s.equals("none")
                    || s.equals("no") || s.equals("off");
            if (!inert) {
                throw new ConfigException("key '" + key + "' (" + c.origin(key) + ") asks for " + e.getValue()
                        + ", which sft-native does not implement; remove the key (or set it to its default) to train"
                        + " without it. docs/llamafactory-keys.md lists every key and its status");
            }
        }
        // companions of the features above: meaningful only with them, harmless at their defaults
        for (String k : new String[] {"galore_target", "galore_rank",
                "galore_update_interval", "galore_scale", "galore_proj_type", "galore_layerwise", "apollo_target",
                "apollo_rank", "apollo_update_interval", "apollo_scale", "apollo_proj", "apollo_proj_type",
                "apollo_scale_type", "apollo_layerwise", "apollo_scale_front", "badam_mode", "badam_start_block",
                "badam_switch_mode", "badam_switch_interval", "badam_update_ratio", "badam_mask_mode",
                "badam_verbose", "oft_rank", "oft_block_size", "oft_target", "module_dropout", "swanlab_project",
                "swanlab_workspace", "swanlab_run_name", "swanlab_mode", "swanlab_api_key", "swanlab_logdir",
                "swanlab_lark_webhook_url", "swanlab_lark_secret", "asft_alpha", "eaft_alpha", "fp8_backend",
                "kt_cpu_activation", "kt_weight_path", "kt_non_expert_weight_path", "kt_expert_checkpoint_path",
                "kt_use_lora_experts", "kt_lora_expert_num", "kt_lora_expert_intermediate_size"}) {
            c.has(k);
        }
    }
}
