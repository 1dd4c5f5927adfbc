package io.sftnative.config;

/**
 * When a run logs, saves and evaluates, and how it picks and keeps its best model (HF TrainingArguments' strategies
 * and LLaMA-Factory's early stopping / shuffling switches).
 *
 * @param loggingStrategy    steps (every logging_steps, default), epoch (at each epoch end) or no
 * @param saveStrategy       steps (every save_steps, default), epoch or no; the last step is saved unless no
 * @param loadBestModelAtEnd after training, restore the weights of the checkpoint with the best metric
 * @param metricForBestModel the evaluation metric that ranks checkpoints ({@code loss} = {@code eval_loss}); null
 *                           when unset (HF: {@code loss} once load_best_model_at_end or early stopping needs one)
 * @param greaterIsBetter    whether a larger metric is better; null = HF's default (false for names ending in loss)
 * @param earlyStoppingSteps LLaMA-Factory's early_stopping_steps: stop after this many evaluations without
 *                           improvement of the metric (HF EarlyStoppingCallback's patience); 0 = off
 * @param saveOnlyModel      checkpoints hold the weights only (no optimizer, scheduler, random state): they cannot
 *                           be resumed
 * @param disableShuffling   train in dataset order (LLaMA-Factory: a SequentialSampler)
 */
public record RunControlArgs(String loggingStrategy, String saveStrategy, boolean loadBestModelAtEnd,
        String metricForBestModel, Boolean greaterIsBetter, int earlyStoppingSteps, boolean saveOnlyModel,
        boolean disableShuffling) {

    /** HF's defaults. */
    public static RunControlArgs defaults() {
        return new RunControlArgs("steps", "steps", false, null, null, 0, false, false);
    }

    public static RunControlArgs from(RawConfig c) {
        String save = c.string("save_strategy", "steps").toLowerCase(java.util.Locale.ROOT);
        if (save.equals("best")) {
            throw new ConfigException("key 'save_strategy' (" + c.origin("save_strategy") + ") is 'best': not"
                    + " implemented in sft-native; use steps or epoch with load_best_model_at_end: true (the best"
                    + " checkpoint is kept and restored at the end)");
        }
        RunControlArgs r = new RunControlArgs(
                c.choice("logging_strategy", "steps", "steps", "epoch", "no"),
                c.choice("save_strategy", "steps", "steps", "epoch", "no"),
                c.bool("load_best_model_at_end", false),
                c.string("metric_for_best_model", null),
                c.has("greater_is_better") ? c.bool("greater_is_better", false) : null,
                c.integer("early_stopping_steps", 0),
                c.bool("save_only_model", false),
                c.bool("disable_shuffling", false));
        if (r.earlyStoppingSteps < 0) {
            throw new ConfigException("key 'early_stopping_steps' (" + c.origin("early_stopping_steps")
                    + ") must be >= 1 (or absent)");
        }
        if (r.loadBestModelAtEnd && r.saveStrategy.equals("no")) {
            throw new ConfigException("load_best_model_at_end needs checkpoints, but save_strategy is no ("
                    + c.origin("save_strategy") + ")");
        }
        return r;
    }

    /** The metric ranking checkpoints, with HF's eval_ prefix ({@code loss} becomes {@code eval_loss}). */
    public String bestMetricKey() {
        String m = metricForBestModel == null ? "loss" : metricForBestModel;
        return m.startsWith("eval_") ? m : "eval_" + m;
    }

    /** HF: greater_is_better defaults to false for metrics named ...loss, true otherwise. */
    public boolean greaterIsBetterResolved() {
        if (greaterIsBetter != null) {
            return greaterIsBetter;
        }
        String m = metricForBestModel == null ? "loss" : metricForBestModel;
        return !m.endsWith("loss");
    }

    /** Whether evaluations rank checkpoints (best model restored, or early stopping). */
    public boolean tracksBest() {
        return loadBestModelAtEnd || earlyStoppingSteps > 0 || metricForBestModel != null;
    }
}
