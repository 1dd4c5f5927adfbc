package io.sftnative.model;

import java.util.Locale;

/**
 * Which attention kernel the training forward passes run (config key {@code flash_attn}, see docs/attention.md).
 * The default is ours on the CPU: measured faster than SDPA and eager attention in the same run (benchmarks/
 * RESULTS.md, AttentionBench). Decoding with a KV cache, non-fp32 models, GPUs and masks our kernel cannot express
 * always use SDPA.
 */
public enum AttentionKernel {
    /** libtorch's {@code scaled_dot_product_attention} with a boolean mask for padded/packed batches. */
    SDPA,
    /** Our CPU kernel (native/src/cpu/attention_cpu.cpp): key ranges instead of a mask, linear memory in T. */
    NATIVE;

    /** The default: ours ({@code auto}), or {@code SFT_ATTENTION} (a {@code flash_attn} value) from the environment. */
    static AttentionKernel defaultKernel() {
        String env = System.getenv("SFT_ATTENTION");
        return env == null || env.isBlank() ? NATIVE : parse(env, "SFT_ATTENTION");
    }

    /**
     * LLaMA-Factory's {@code flash_attn} values: {@code auto}, {@code fa2} or {@code native} -> ours (where it
     * applies, else SDPA); {@code sdpa} -> SDPA; {@code disabled} (eager) -> SDPA, which computes the same function.
     */
    public static AttentionKernel parse(String value, String key) {
        return switch (value.trim().toLowerCase(Locale.ROOT)) {
            case "sdpa", "disabled" -> SDPA;
            case "auto", "fa2", "native" -> NATIVE;
            default -> throw new IllegalArgumentException(key + ": unknown attention kernel '" + value
                    + "' (expected auto, sdpa, disabled, fa2 or native)");
        };
    }
}
