package io.sftnative.train;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import io.sftnative.config.RunControlArgs;

/**
 * HF's best-checkpoint bookkeeping and LLaMA-Factory's early stopping ({@code early_stopping_steps}, HF's
 * EarlyStoppingCallback with threshold 0): after each evaluation the metric ({@code metric_for_best_model}) is
 * compared with the best so far; an improvement makes this step's checkpoint the best one, anything else counts
 * towards the patience. The best checkpoint survives {@code save_total_limit} and, with
 * {@code load_best_model_at_end}, its weights are restored after training.
 */
final class BestModel {
    private final String metricKey;
    private final boolean greaterIsBetter;
    private final int patience; // 0 = no early stopping
    private Double best;        // null until the first evaluation
    private long bestStep = -1;
    private Path bestCheckpoint;
    private int badEvaluations;

    BestModel(RunControlArgs r) {
        this.metricKey = r.bestMetricKey();
        this.greaterIsBetter = r.greaterIsBetterResolved();
        this.patience = r.earlyStoppingSteps();
    }

    String metricKey() {
        return metricKey;
    }

    /**
     * An evaluation at {@code step}; returns true when training should stop early. Fails naming the key when the
     * evaluation has no such metric.
     */
    boolean onEvaluation(long step, Map<String, Double> metrics) {
        Double v = metrics.get(metricKey);
        if (v == null) {
            throw new IllegalArgumentException("metric_for_best_model is " + metricKey + ", but the evaluation"
                    + " reported only " + metrics.keySet() + ": name one of these (without or with the eval_ prefix)");
        }
        boolean improved = best == null || (greaterIsBetter ? v > best : v < best);
        if (improved) {
            best = v;
            bestStep = step;
            badEvaluations = 0;
        } else {
            badEvaluations++;
        }
        return patience > 0 && badEvaluations >= patience;
    }

    /** A checkpoint was written at {@code step}: the best one when that step's evaluation was the best. */
    void onCheckpoint(long step, Path dir) {
        if (step == bestStep) {
            bestCheckpoint = dir;
        }
    }

    /** The best checkpoint so far, or null. */
    Path bestCheckpoint() {
        return bestCheckpoint;
    }

    Double bestMetric() {
        return best;
    }

    int badEvaluations() {
        return badEvaluations;
    }

    Map<String, Object> state() {
        Map<String, Object> m = new LinkedHashMap<>();
        if (best != null) {
            m.put("best_metric", best);
            m.put("best_step", bestStep);
        }
        if (bestCheckpoint != null) {
            m.put("best_model_checkpoint", bestCheckpoint.toString());
        }
        m.put("bad_evaluations", badEvaluations);
        return m;
    }

    void restore(Map<String, ?> s) {
        if (s == null || s.isEmpty()) {
            return;
        }
        if (s.get("best_metric") instanceof Number n) {
            best = n.doubleValue();
            bestStep = ((Number) s.get("best_step")).longValue();
        }
        if (s.get("best_model_checkpoint") instanceof String p) {
            bestCheckpoint = Path.of(p);
        }
        if (s.get("bad_evaluations") instanceof Number n) {
            badEvaluations = n.intValue();
        }
    }
}
