package io.sftnative.api;

import java.util.Map;

/**
 * An evaluation finished.
 *
 * @param step    optimizer steps done when it ran (0 for eval_on_start)
 * @param metrics HF-style names: {@code eval_loss}, {@code eval_accuracy}, {@code eval_runtime}, ...
 */
public record EvalEvent(long step, Map<String, Double> metrics) {
    public EvalEvent {
        metrics = Map.copyOf(metrics);
    }

    public double loss() {
        return metrics.getOrDefault("eval_loss", Double.NaN);
    }
}
