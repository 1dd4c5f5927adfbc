package io.sftnative.optim;

import java.util.Map;

/**
 * The learning rate of each update: {@link LrSchedule}'s function of the step, or, for
 * {@code reduce_lr_on_plateau}, the rate {@link ReduceLrOnPlateau} holds after the evaluations so far. The state to
 * checkpoint is empty for the step functions (the step is the state) and the plateau's counters otherwise.
 */
public final class LrScheduler {
    private final LrSchedule schedule;
    private final ReduceLrOnPlateau plateau; // null unless reduce_lr_on_plateau

    public LrScheduler(LrSchedule schedule) {
        this.schedule = schedule;
        this.plateau = schedule.type() == LrSchedule.Type.REDUCE_LR_ON_PLATEAU
                ? new ReduceLrOnPlateau(schedule.baseLr(), schedule.kwargs()) : null;
    }

    public LrSchedule schedule() {
        return schedule;
    }

    /** Whether evaluations drive the rate (reduce_lr_on_plateau). */
    public boolean needsEvaluations() {
        return plateau != null;
    }

    /** The learning rate for update number {@code step} (0-based). */
    public double lr(long step) {
        return plateau != null ? plateau.lr() : schedule.lr(step);
    }

    /**
     * After an evaluation: reduce_lr_on_plateau steps on {@code metricKey} (HF: metric_for_best_model, default
     * eval_loss). Fails naming the key when the evaluation did not produce it.
     */
    public void onEvaluation(Map<String, Double> metrics, String metricKey) {
        if (plateau == null) {
            return;
        }
        Double v = metrics.get(metricKey);
        if (v == null) {
            throw new IllegalArgumentException("lr_scheduler_type reduce_lr_on_plateau steps on " + metricKey
                    + " (metric_for_best_model), but the evaluation reported only " + metrics.keySet());
        }
        plateau.step(v);
    }

    /** What a checkpoint stores to resume exactly (empty for the step functions). */
    public Map<String, Object> state() {
        return plateau == null ? Map.of() : plateau.state();
    }

    /** Restores {@link #state()} (ignored for the step functions). */
    public void restore(Map<String, ?> state) {
        if (plateau != null && state != null && !state.isEmpty()) {
            plateau.restore(state);
        }
    }
}
