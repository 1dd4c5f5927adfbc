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
 * @param useDora          DoRA: a trained magnitude per output row rescales {@code W + scaling·B·A} (PEFT's
 *                         {@code use_dora}, saved as {@code lora_magnitude_vector})
 * @param init             PEFT's {@code init_lora_weights}: {@code true} (A kaiming-uniform, B zero), {@code pissa}
 *                         (A, B from the full SVD of W, base replaced by the residual) or {@code pissa_niter_N} (the
 *                         same from torch.svd_lowrank-style fast SVD with N subspace iterations)
 */
public record LoraSpec(int rank, double alpha, double dropout, List<String> targets, boolean useRslora,
        List<String> additionalTarget, boolean useDora, String init) {

    /** PEFT's default initialisation ({@code init_lora_weights: true}). */
    public static final String DEFAULT_INIT = "true";

    /** Plain LoRA with PEFT's default initialisation. */
    public LoraSpec(int rank, double alpha, double dropout, List<String> targets, boolean useRslora,
            List<String> additionalTarget) {
        this(rank, alpha, dropout, targets, useRslora, additionalTarget, false, DEFAULT_INIT);
    }

    public LoraSpec {
        init = init == null ? DEFAULT_INIT : init;
        if (!validInit(init)) {
            throw new IllegalArgumentException("init_lora_weights must be true, pissa or pissa_niter_<N>, got '" + init
                    + "'");
        }
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

    /**
     * The LLaMA-Factory keys: lora_rank, lora_alpha (default 2·r), lora_dropout, lora_target, use_rslora,
     * additional_target, use_dora, and pissa_init with pissa_iter (-1: full SVD, else {@code pissa_niter_<iter>}).
     */
    public static LoraSpec from(FinetuningArgs args) {
        String init = !args.pissaInit() ? DEFAULT_INIT
                : args.pissaIter() == -1 ? "pissa" : "pissa_niter_" + args.pissaIter();
        return new LoraSpec(args.loraRank(), args.loraAlpha(), args.loraDropout(), args.loraTarget(),
                args.useRslora(), args.additionalTarget(), args.useDora(), init);
    }

    /** True for a PiSSA initialisation (full or fast SVD). */
    public boolean pissa() {
        return !init.equals(DEFAULT_INIT);
    }

    /** The subspace iterations of {@code pissa_niter_N}; -1 for the full SVD ({@code pissa}) or no PiSSA. */
    public int pissaNiter() {
        return pissaNiter(init);
    }

    /** {@code true}, {@code pissa} or {@code pissa_niter_N} (N >= 0). */
    static boolean validInit(String init) {
        return init.equals(DEFAULT_INIT) || init.equals("pissa") || pissaNiter(init) >= 0;
    }

    private static int pissaNiter(String init) {
        String prefix = "pissa_niter_";
        if (!init.startsWith(prefix)) {
            return -1;
        }
        try {
            return Integer.parseInt(init.substring(prefix.length()));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** The same hyper-parameters with another {@code init_lora_weights}. */
    LoraSpec withInit(String newInit) {
        return new LoraSpec(rank, alpha, dropout, targets, useRslora, additionalTarget, useDora, newInit);
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
