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
 */
public record FinetuningArgs(String stage, String finetuningType, int loraRank, double loraAlpha,
        double loraDropout, List<String> loraTarget, boolean useRslora, int freezeTrainableLayers,
        List<String> freezeTrainableModules, List<String> additionalTarget, boolean plotLoss,
        boolean computeAccuracy, boolean createNewAdapter) {

    public static FinetuningArgs from(RawConfig c) {
        int rank = c.integer("lora_rank", 8, 1, 1 << 20);
        if (rank < 1) {
            throw new ConfigException("key 'lora_rank' (" + c.origin("lora_rank") + ") must be >= 1");
        }
        List<String> target = c.list("lora_target");
        List<String> modules = c.list("freeze_trainable_modules");
        return new FinetuningArgs(
                c.choice("stage", "sft", "sft", "pt"),
                c.choice("finetuning_type", "lora", "full", "freeze", "lora"),
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
                c.bool("create_new_adapter", false));
    }
}
