package io.sftnative.optim;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * HF's {@code reduce_lr_on_plateau}: torch's {@code ReduceLROnPlateau}, stepped with the evaluation metric
 * ({@code metric_for_best_model}, default {@code eval_loss}) after each evaluation. The learning rate starts at
 * {@code learning_rate} (no warmup) and is multiplied by {@code factor} once the metric has not improved for more
 * than {@code patience} evaluations, then waits {@code cooldown} evaluations. State (checkpointed in
 * scheduler.json, so a resume continues exactly): the current rate, the best metric, the bad-evaluation count, the
 * cooldown counter and the evaluations seen.
 *
 * <p>lr_scheduler_kwargs: mode (min | max, default min), factor (0.1), patience (10), threshold (1e-4),
 * threshold_mode (rel | abs, default rel), cooldown (0), min_lr (0), eps (1e-8) — torch's defaults.
 */
public final class ReduceLrOnPlateau {
    static final Set<String> KWARGS = Set.of("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
            "min_lr", "eps");

    private final boolean max;
    private final boolean relative;
    private final double factor;
    private final long patience;
    private final double threshold;
    private final long cooldown;
    private final double minLr;
    private final double eps;

    private double lr;
    private double best;
    private long numBadEpochs;
    private long cooldownCounter;
    private long lastEpoch;

    /** A fresh scheduler at {@code baseLr}, configured by the schedule's kwargs. */
    public ReduceLrOnPlateau(double baseLr, Map<String, Object> kwargs) {
        validate(kwargs);
        this.max = "max".equals(kwargs.getOrDefault("mode", "min"));
        this.relative = "rel".equals(kwargs.getOrDefault("threshold_mode", "rel"));
        this.factor = num(kwargs, "factor", 0.1);
        this.patience = (long) num(kwargs, "patience", 10);
        this.threshold = num(kwargs, "threshold", 1e-4);
        this.cooldown = (long) num(kwargs, "cooldown", 0);
        this.minLr = num(kwargs, "min_lr", 0);
        this.eps = num(kwargs, "eps", 1e-8);
        this.lr = baseLr;
        this.best = max ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
    }

    /** The learning rate the next updates use. */
    public double lr() {
        return lr;
    }

    /** One evaluation's metric: torch's {@code ReduceLROnPlateau.step(metrics)}. */
    public void step(double metric) {
        lastEpoch++;
        if (better(metric)) {
            best = metric;
            numBadEpochs = 0;
        } else {
            numBadEpochs++;
        }
        if (cooldownCounter > 0) {
            cooldownCounter--;
            numBadEpochs = 0;
        }
        if (numBadEpochs > patience) {
            double reduced = Math.max(lr * factor, minLr);
            if (lr - reduced > eps) {
                lr = reduced;
            }
            cooldownCounter = cooldown;
            numBadEpochs = 0;
        }
    }

    private boolean better(double a) {
        if (relative) {
            return max ? a > best * (threshold + 1) : a < best * (1 - threshold);
        }
        return max ? a > best + threshold : a < best - threshold;
    }

    /** The state to checkpoint (JSON numbers; the infinite initial best as a string). */
    public Map<String, Object> state() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("lr", lr);
        m.put("best", Double.isInfinite(best) ? (best > 0 ? "inf" : "-inf") : best);
        m.put("num_bad_epochs", numBadEpochs);
        m.put("cooldown_counter", cooldownCounter);
        m.put("last_epoch", lastEpoch);
        return m;
    }

    /** Restores {@link #state()}. */
    public void restore(Map<String, ?> s) {
        lr = ((Number) s.get("lr")).doubleValue();
        Object b = s.get("best");
        best = b instanceof Number n ? n.doubleValue() : "inf".equals(b) ? Double.POSITIVE_INFINITY
                : Double.NEGATIVE_INFINITY;
        numBadEpochs = ((Number) s.get("num_bad_epochs")).longValue();
        cooldownCounter = ((Number) s.get("cooldown_counter")).longValue();
        lastEpoch = ((Number) s.get("last_epoch")).longValue();
    }

    static void validate(Map<String, Object> k) {
        Object mode = k.getOrDefault("mode", "min");
        if (!Set.of("min", "max").contains(mode)) {
            throw new IllegalArgumentException("lr_scheduler_kwargs mode is '" + mode + "': use min or max");
        }
        Object tm = k.getOrDefault("threshold_mode", "rel");
        if (!Set.of("rel", "abs").contains(tm)) {
            throw new IllegalArgumentException("lr_scheduler_kwargs threshold_mode is '" + tm + "': use rel or abs");
        }
        double factor = num(k, "factor", 0.1);
        if (!(factor < 1.0) || !(factor >= 0)) {
            throw new IllegalArgumentException("lr_scheduler_kwargs factor must be in [0, 1), got " + factor);
        }
    }

    private static double num(Map<String, Object> k, String key, double def) {
        Object v = k.get(key);
        return v == null ? def : ((Number) v).doubleValue();
    }
}
