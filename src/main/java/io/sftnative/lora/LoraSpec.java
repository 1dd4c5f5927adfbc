package io.sftnative.lora;

import java.util.List;

import io.sftnative.config.FinetuningArgs;

/**
 * LoRA hyper-parameters with PEFT semantics.
 *
 * @param rank             r, the inner dimension of B·A
 * @param alpha            lora_alpha; the update is scaled by {@link #scaling()}
 * @param dropout          dropout probability on the LoRA branch's input (training only)
 * @param targets          module names ({@code q_proj}, {@code v_proj}, or a longer suffix such as
 *                         {@code self_attn.q_proj}), or {@code ["all"]} = every linear layer but {@code lm_head}
 * @param useRslora        rank-stabilised LoRA: scale by alpha / sqrt(r) instead of alpha / r
 * @param additionalTarget modules trained in full besides the adapters (PEFT's {@code modules_to_save}), e.g.
 *                         {@code embed_tokens}, {@code lm_head}, {@code norm}
 */
public record LoraSpec(int rank, double alpha, double dropout, List<String> targets, boolean useRslora,
        List<String> additionalTarget) {

    public LoraSpec {
        if (rank < 1) {
            throw new IllegalArgumentException("lora_rank must be >= 1, got " + rank);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + dropout);
        }
        if (!Double.isFinite(alpha)) {
            throw new IllegalArgumentException("lora_alpha must be a finite number, got " + alpha);
        }
        targets = List.copyOf(targets == null || targets.isEmpty() ? List.of(TargetModules.ALL) : targets);
        additionalTarget = List.copyOf(additionalTarget == null ? List.of() : additionalTarget);
    }

    /** The LLaMA-Factory keys: lora_rank, lora_alpha (default 2·r), lora_dropout, lora_target, use_rslora, additional_target. */
    public static LoraSpec from(FinetuningArgs args) {
        return new LoraSpec(args.loraRank(), args.loraAlpha(), args.loraDropout(), args.loraTarget(),
                args.useRslora(), args.additionalTarget());
    }

    /** alpha / r, or alpha / sqrt(r) with rsLoRA (PEFT's {@code LoraLayer.update_layer}). */
    public double scaling() {
        return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
    }

    /** True when the targets include {@code all} (or PEFT's {@code all-linear}). */
    public boolean targetsAll() {
        return targets.stream().anyMatch(t -> TargetModules.ALL.equalsIgnoreCase(t)
                || TargetModules.ALL_LINEAR.equalsIgnoreCase(t));
    }
}
