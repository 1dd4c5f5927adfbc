package io.sftnative.config;

/**
 * How training runs (the subset of HF TrainingArguments that LLaMA-Factory configs use).
 *
 * @param gradientCheckpointing recompute each decoder layer's activations in backward
 * @param fusedCrossEntropy     compute the LM head and loss chunk by chunk (logits never materialised whole)
 * @param evalStrategy          when to evaluate during training: no, steps (every eval_steps) or epoch; default
 *                              steps when there is evaluation data (val_size or eval_dataset), else no
 * @param evalOnStart           evaluate once before the first step (HF eval_on_start)
 * @param optim                 HF's optimizer name: adamw_torch (default; libtorch ops, torch's single-tensor
 *                              arithmetic) or adamw_torch_fused (one native pass per fp32 CPU parameter)
 */
public record TrainingArgs(String outputDir, boolean overwriteOutputDir, boolean doTrain, boolean doEval,
        boolean doPredict, int perDeviceTrainBatchSize, int perDeviceEvalBatchSize, int gradientAccumulationSteps,
        double learningRate, double numTrainEpochs, long maxSteps, String lrSchedulerType, double warmupRatio,
        long warmupSteps, double weightDecay, double maxGradNorm, double adamBeta1, double adamBeta2,
        double adamEpsilon, boolean bf16, long seed, long loggingSteps, long saveSteps, long evalSteps,
        int saveTotalLimit, String resumeFromCheckpoint, boolean predictWithGenerate,
        boolean gradientCheckpointing, Boolean fusedCrossEntropy, String evalStrategy, boolean evalOnStart,
        String optim) {

    /** Whether {@code optim} asks for the fused AdamW kernel. */
    public boolean fusedAdamW() {
        return optim.equals("adamw_torch_fused");
    }

    public static TrainingArgs from(RawConfig c) {
        TrainingArgs t = new TrainingArgs(
                c.string("output_dir", "saves/sft-native"),
                c.bool("overwrite_output_dir", false),
                doTrain(c),
                c.bool("do_eval", false) || explicitEvalStrategy(c), // HF: an eval_strategy other than no sets do_eval
                c.bool("do_predict", false),
                c.integer("per_device_train_batch_size", 8),
                c.integer("per_device_eval_batch_size", 8),
                c.integer("gradient_accumulation_steps", 1),
                c.number("learning_rate", 5e-5),
                c.number("num_train_epochs", 3.0),
                c.longValue("max_steps", -1),
                c.choice("lr_scheduler_type", "linear", "linear", "cosine", "constant", "constant_with_warmup"),
                c.number("warmup_ratio", 0.0),
                c.longValue("warmup_steps", 0),
                c.number("weight_decay", 0.0),
                c.number("max_grad_norm", 1.0),
                c.number("adam_beta1", 0.9),
                c.number("adam_beta2", 0.999),
                c.number("adam_epsilon", 1e-8),
                c.bool("bf16", false),
                c.longValue("seed", 42),
                c.longValue("logging_steps", 500),
                c.longValue("save_steps", 500),
                c.has("eval_steps") ? c.longValue("eval_steps", 0) : c.longValue("logging_steps", 500),
                c.integer("save_total_limit", 0),
                c.string("resume_from_checkpoint", null),
                c.bool("predict_with_generate", false),
                c.bool("gradient_checkpointing", false),
                c.has("fused_cross_entropy") ? c.bool("fused_cross_entropy", true) : null,
                c.has("eval_strategy") ? c.choice("eval_strategy", null, "no", "steps", "epoch")
                        : c.choice("evaluation_strategy", null, "no", "steps", "epoch"),
                c.bool("eval_on_start", false),
                c.choice("optim", "adamw_torch", "adamw_torch", "adamw_torch_fused"));
        positive(c, "per_device_train_batch_size", t.perDeviceTrainBatchSize);
        positive(c, "per_device_eval_batch_size", t.perDeviceEvalBatchSize);
        positive(c, "gradient_accumulation_steps", t.gradientAccumulationSteps);
        if (!(t.learningRate >= 0) || Double.isInfinite(t.learningRate)) {
            throw new ConfigException("key 'learning_rate' (" + c.origin("learning_rate") + ") must be >= 0");
        }
        for (String key : new String[] {"logging_steps", "save_steps", "eval_steps"}) {
            long v = key.equals("logging_steps") ? t.loggingSteps : key.equals("save_steps") ? t.saveSteps
                    : t.evalSteps;
            if (v < 1) {
                throw new ConfigException("key '" + key + "' (" + c.origin(key) + ") must be >= 1, got " + v);
            }
        }
        if (t.maxSteps <= 0 && !(t.numTrainEpochs > 0)) {
            throw new ConfigException("key 'num_train_epochs' (" + c.origin("num_train_epochs") + ") must be > 0"
                    + " (or set max_steps)");
        }
        if (!(t.maxGradNorm >= 0)) {
            throw new ConfigException("key 'max_grad_norm' (" + c.origin("max_grad_norm") + ") must be >= 0"
                    + " (0 turns clipping off)");
        }
        if (t.warmupRatio < 0 || t.warmupRatio > 1) {
            throw new ConfigException("key 'warmup_ratio' (" + c.origin("warmup_ratio") + ") must be in [0, 1]");
        }
        return t;
    }

    /**
     * HF's do_train defaults to false, so a config with only {@code do_predict: true} (LLaMA-Factory's predict
     * examples) or {@code do_eval: true} does not train. A config that sets none of the three would do nothing in
     * LLaMA-Factory; here it trains (sft-native's long-standing default, and what such a config is meant for).
     */
    private static boolean doTrain(RawConfig c) {
        if (c.has("do_train")) {
            return c.bool("do_train", true);
        }
        return !c.bool("do_eval", false) && !c.bool("do_predict", false);
    }

    private static boolean explicitEvalStrategy(RawConfig c) {
        String key = c.has("eval_strategy") ? "eval_strategy" : "evaluation_strategy";
        return c.has(key) && !c.string(key, "no").equalsIgnoreCase("no");
    }

    private static void positive(RawConfig c, String key, int v) {
        if (v < 1) {
            throw new ConfigException("key '" + key + "' (" + c.origin(key) + ") must be >= 1, got " + v);
        }
    }
}
