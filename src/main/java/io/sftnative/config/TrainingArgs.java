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
 *                              arithmetic), adamw_torch_fused (one native pass per fp32 CPU parameter), adamw_8bit /
 *                              adamw_bnb_8bit / paged_adamw_8bit (bitsandbytes' blockwise 8-bit AdamW, host memory),
 *                              sgd or adafactor (HF's, with scale_parameter / relative_step off, as the HF Trainer
 *                              builds it)
 * @param lrSchedulerKwargs     lr_scheduler_kwargs (io.sftnative.optim.LrSchedule)
 * @param fp16                  fp16 autocast with dynamic loss scaling (CUDA only, as HF)
 * @param run                   when to log, save and evaluate, early stopping, best-model selection
 * @param reportTo              report_to integrations (none, tensorboard, all, ...), resolved; loggingDir where
 *                              TensorBoard files go (HF default: output_dir/runs/&lt;time&gt;_&lt;host&gt;, resolved at run time
 *                              when null)
 */
public record TrainingArgs(String outputDir, boolean overwriteOutputDir, boolean doTrain, boolean doEval,
        boolean doPredict, int perDeviceTrainBatchSize, int perDeviceEvalBatchSize, int gradientAccumulationSteps,
        double learningRate, double numTrainEpochs, long maxSteps, String lrSchedulerType, double warmupRatio,
        long warmupSteps, double weightDecay, double maxGradNorm, double adamBeta1, double adamBeta2,
        double adamEpsilon, boolean bf16, long seed, long loggingSteps, long saveSteps, long evalSteps,
        int saveTotalLimit, String resumeFromCheckpoint, boolean predictWithGenerate,
        boolean gradientCheckpointing, Boolean fusedCrossEntropy, String evalStrategy, boolean evalOnStart,
        String optim, java.util.Map<String, Object> lrSchedulerKwargs, boolean fp16, RunControlArgs run,
        java.util.List<String> reportTo, String loggingDir) {

    /** Whether {@code optim} asks for bitsandbytes' 8-bit AdamW (paged = the same on the host). */
    public boolean adamW8bit() {
        return optim.equals("adamw_8bit") || optim.equals("adamw_bnb_8bit") || optim.equals("paged_adamw_8bit");
    }

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
                c.longValue("max_steps", -1, -1, Long.MAX_VALUE),
                c.choice("lr_scheduler_type", "linear", "linear", "cosine", "cosine_with_restarts", "polynomial",
                        "constant", "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau",
                        "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay"),
                warmupFractionOf(c) > 0 ? warmupFractionOf(c) : c.number("warmup_ratio", 0.0),
                warmupFractionOf(c) > 0 ? 0 : c.longValue("warmup_steps", 0, 0, Long.MAX_VALUE),
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
                gradientCheckpointing(c),
                c.has("fused_cross_entropy") ? c.bool("fused_cross_entropy", true) : null,
                c.has("eval_strategy") ? c.choice("eval_strategy", null, "no", "steps", "epoch")
                        : c.choice("evaluation_strategy", null, "no", "steps", "epoch"),
                c.bool("eval_on_start", false),
                optim(c),
                c.map("lr_scheduler_kwargs"),
                c.bool("fp16", false),
                RunControlArgs.from(c),
                Tracking.reportTo(c),
                c.string("logging_dir", null));
        if (t.fp16 && t.bf16) {
            throw new ConfigException("keys 'fp16' and 'bf16' (" + c.origin("fp16") + ") are both true: choose one"
                    + " mixed precision");
        }
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
     * LLaMA-Factory checkpoints every decoder layer unless {@code disable_gradient_checkpointing: true}; HF's own
     * {@code gradient_checkpointing} key, when given, decides.
     */
    private static boolean gradientCheckpointing(RawConfig c) {
        boolean disabled = c.bool("disable_gradient_checkpointing", false);
        if (c.has("gradient_checkpointing")) {
            boolean on = c.bool("gradient_checkpointing", true);
            if (on && disabled) {
                throw new ConfigException("keys 'gradient_checkpointing: true' and 'disable_gradient_checkpointing:"
                        + " true' (" + c.origin("disable_gradient_checkpointing") + ") contradict each other: keep one");
            }
            return on;
        }
        return !disabled;
    }

    /**
     * transformers (4.57+) reads a fractional {@code warmup_steps} in (0, 1) as a ratio of the total steps (LLaMA-Factory's
     * GaLore example writes {@code warmup_steps: 0.1}); returns that fraction, or 0 for a whole number of steps.
     */
    private static double warmupFractionOf(RawConfig c) {
        double v = c.number("warmup_steps", 0);
        if (v > 0 && v < 1) {
            if (c.has("warmup_ratio") && c.number("warmup_ratio", 0) > 0) {
                throw new ConfigException("key 'warmup_steps' (" + c.origin("warmup_steps") + ") is a fraction ("
                        + v + ", read as a ratio) and warmup_ratio is set too: keep one");
            }
            return v;
        }
        return 0;
    }

    /** HF optimizer names we implement; the rest that LLaMA-Factory users pick stop with the reason. */
    private static String optim(RawConfig c) {
        String name = c.string("optim", "adamw_torch");
        switch (name) {
            case "adamw_torch", "adamw_torch_fused", "sgd", "adafactor", "adamw_8bit", "adamw_bnb_8bit",
                    "paged_adamw_8bit" -> {
                return name;
            }
            case "paged_adamw_32bit", "adamw_apex_fused",
                    "adamw_anyprecision", "adamw_torch_xla", "adamw_torch_npu_fused", "galore_adamw",
                    "galore_adamw_8bit", "galore_adafactor", "apollo_adamw", "lomo", "adalomo", "grokadamw",
                    "schedule_free_adamw", "schedule_free_sgd", "rmsprop", "adagrad", "lion_32bit", "lion_8bit",
                    "paged_lion_32bit", "paged_lion_8bit", "ademamix", "ademamix_8bit", "adamw_hf" ->
                throw new ConfigException("key 'optim' (" + c.origin("optim") + ") is '" + name + "': this"
                        + " optimizer is not implemented in sft-native; use adamw_torch, adamw_torch_fused,"
                        + " adamw_8bit, sgd or adafactor (docs/llamafactory-keys.md)");
            default -> throw new ConfigException("key 'optim' (" + c.origin("optim") + ") is '" + name + "'; it must"
                    + " be one of adamw_torch, adamw_torch_fused, adamw_8bit, adamw_bnb_8bit, paged_adamw_8bit, sgd,"
                    + " adafactor");
        }
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
