package io.sftnative.config;

import java.util.List;

/**
 * What is trained (LLaMA-Factory's FinetuningArguments).
 *
 * @param stage                  sft or pt
 * @param finetuningType         full, freeze or lora
 * @param loraRank               r
 * @param loraAlpha              alpha (default 2 * r, as LLaMA-Factory)
 * @param loraDropout            dropout on the LoRA input
 * @param loraTarget             module names (q_proj, ...) or [all] = every linear layer but the LM head
 * @param useRslora              scale by alpha / sqrt(r) instead of alpha / r
 * @param freezeTrainableLayers  freeze: the last N layers train (negative: the first -N)
 * @param freezeTrainableModules freeze: which modules inside those layers train ([all] = all)
 * @param additionalTarget       modules trained in full besides the adapters (e.g. lm_head, embed_tokens)
 * @param plotLoss               write training_loss.png
 * @param computeAccuracy        evaluation also reports token accuracy (argmax vs label, shifted)
 * @param createNewAdapter       with adapter_name_or_path: merge those adapters and train a new one (instead of
 *                               resuming the last one)
 * @param loraplusLrRatio        LoRA+: lora_B (and 1-d parameters) train with learning_rate x this; 0 = off
 * @param loraplusLrEmbedding    LoRA+: the learning rate of trained embedding matrices (LLaMA-Factory: 1e-6)
 * @param pureBf16               bf16 weights and optimizer state, no fp32 copy and no autocast (LLaMA-Factory)
 * @param neftuneNoiseAlpha      NEFTune: uniform noise of magnitude alpha / sqrt(T * H) on the embeddings while
 *                               training; 0 = off
 * @param useDora                DoRA (weight-decomposed LoRA, PEFT's use_dora)
 * @param pissaInit              PiSSA: A, B from the top-r singular vectors of W, the base keeps the residual
 * @param pissaIter              PiSSA's fast-SVD subspace iterations (LLaMA-Factory: 16; -1 = full SVD)
 * @param pissaConvert           also write the trained PiSSA adapter as a plain LoRA adapter
 *                               (output_dir/pissa_converted, LLaMA-Factory's PissaConvertCallback)
 * @param freezeExtraModules     freeze: non-layer modules trained too (embed_tokens, norm, lm_head; LLaMA-Factory's
 *                               freeze_extra_modules; additional_target names are added to them here)
 */
public record FinetuningArgs(String stage, String finetuningType, int loraRank, double loraAlpha,
        double loraDropout, List<String> loraTarget, boolean useRslora, int freezeTrainableLayers,
        List<String> freezeTrainableModules, List<String> additionalTarget, boolean plotLoss,
        boolean computeAccuracy, boolean createNewAdapter, double loraplusLrRatio, double loraplusLrEmbedding,
        boolean pureBf16, double neftuneNoiseAlpha, boolean useDora, boolean pissaInit, int pissaIter,
        boolean pissaConvert, List<String> freezeExtraModules) {

    public static FinetuningArgs from(RawConfig c) {
        int rank = c.integer("lora_rank", 8, 1, 1 << 20);
        if (rank < 1) {
            throw new ConfigException("key 'lora_rank' (" + c.origin("lora_rank") + ") must be >= 1");
        }
        List<String> target = c.list("lora_target");
        List<String> modules = c.list("freeze_trainable_modules");
        String type = c.choice("finetuning_type", "lora", "full", "freeze", "lora");
        double loraplus = c.number("loraplus_lr_ratio", 0.0);
        if (loraplus < 0 || (loraplus > 0 && !type.equals("lora"))) {
            throw new ConfigException("key 'loraplus_lr_ratio' (" + c.origin("loraplus_lr_ratio") + ") "
                    + (loraplus < 0 ? "must be > 0" : "is only valid for finetuning_type: lora (as in LLaMA-Factory)"));
        }
        double neftune = c.number("neftune_noise_alpha", 0.0);
        if (neftune < 0) {
            throw new ConfigException("key 'neftune_noise_alpha' (" + c.origin("neftune_noise_alpha")
                    + ") must be > 0 (or absent)");
        }
        boolean dora = c.bool("use_dora", false);
        boolean pissa = c.bool("pissa_init", false);
        int pissaIter = c.integer("pissa_iter", 16, -1, 1 << 20);
        boolean pissaConvert = c.bool("pissa_convert", false);
        for (String k : new String[] {"use_dora", "pissa_init"}) {
            if (!type.equals("lora") && c.bool(k, false)) {
                throw new ConfigException("key '" + k + "' (" + c.origin(k) + ") is only valid for finetuning_type:"
                        + " lora (as in LLaMA-Factory)");
            }
        }
        if (pissaConvert && !pissa) {
            throw new ConfigException("key 'pissa_convert' (" + c.origin("pissa_convert") + ") converts a PiSSA"
                    + " adapter and needs pissa_init: true");
        }
        return new FinetuningArgs(
                c.choice("stage", "sft", "sft", "pt"),
                type,
                rank,
                c.number("lora_alpha", 2.0 * rank),
                c.number("lora_dropout", 0.0),
                target.isEmpty() ? List.of("all") : target,
                c.bool("use_rslora", false),
                c.integer("freeze_trainable_layers", 2),
                modules.isEmpty() ? List.of("all") : modules,
                c.list("additional_target"),
                c.bool("plot_loss", false),
                c.bool("compute_accuracy", false),
                c.bool("create_new_adapter", false),
                loraplus,
                c.number("loraplus_lr_embedding", 1e-6),
                c.bool("pure_bf16", false),
                neftune, dora, pissa, pissaIter, pissaConvert, c.list("freeze_extra_modules"));
    }
}
