package io.sftnative.optim;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/**
 * Dynamic loss scaling for fp16 ({@code fp16: true}) with the semantics of {@code torch.amp.GradScaler} (HF's
 * default settings): the loss is multiplied by {@code scale} before backward (the trainer divides its normaliser
 * by it), the gradients are multiplied by {@code 1 / scale} before clipping, a step whose gradients are not
 * finite is skipped and halves the scale ({@code backoff_factor} 0.5), and every {@code growth_interval} (2000)
 * finite steps in a row double it ({@code growth_factor} 2). Initial scale 2^16. Works on any device (libtorch
 * ops on the gradients); {@link #DISABLED} is the identity for bf16 / fp32 runs. The state (scale and the count of
 * finite steps since the last change) is checkpointed.
 */
@SuppressWarnings("try") // scopes and no-grad guards are held for their side effect
public final class LossScaler {
    public static final double INIT_SCALE = 65536.0;
    public static final double GROWTH_FACTOR = 2.0;
    public static final double BACKOFF_FACTOR = 0.5;
    public static final long GROWTH_INTERVAL = 2000;

    /** No scaling (scale 1, nothing skipped). */
    public static final LossScaler DISABLED = new LossScaler(false, 1.0, GROWTH_INTERVAL);

    private final boolean enabled;
    private final long growthInterval;
    private double scale;
    private long growthTracker;
    private long skipped;

    private LossScaler(boolean enabled, double initScale, long growthInterval) {
        this.enabled = enabled;
        this.scale = initScale;
        this.growthInterval = growthInterval;
    }

    /** A scaler with GradScaler's defaults. */
    public static LossScaler dynamic() {
        return new LossScaler(true, INIT_SCALE, GROWTH_INTERVAL);
    }

    /** For tests: a scaler with another initial scale and growth interval. */
    public static LossScaler dynamic(double initScale, long growthInterval) {
        if (!(initScale > 0) || growthInterval < 1) {
            throw new IllegalArgumentException("initial scale must be > 0 and growth interval >= 1");
        }
        return new LossScaler(true, initScale, growthInterval);
    }

    public boolean enabled() {
        return enabled;
    }

    /** The factor the loss is multiplied by for this step's backward. */
    public double scale() {
        return scale;
    }

    /** Steps skipped so far because their gradients overflowed. */
    public long skippedSteps() {
        return skipped;
    }

    /**
     * Multiplies every defined gradient of {@code params} by {@code 1 / scale} (GradScaler.unscale_: the reciprocal
     * is taken in fp32, as torch does). A no-op when disabled.
     */
    public void unscale(Collection<Tensor> params) {
        if (!enabled) {
            return;
        }
        double inv = (float) (1.0 / scale); // torch: scale.double().reciprocal().float()
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            for (Tensor p : params) {
                Tensor g = p.grad(); // same shape as p, or undefined
                if (g.defined()) {
                    g.mul_(new Scalar(inv));
                }
            }
        }
    }

    /**
     * After the step: {@code foundInf} = the unscaled gradients were not all finite (the step was skipped). Backs off
     * or grows the scale as GradScaler.update does. A no-op when disabled.
     */
    public void update(boolean foundInf) {
        if (!enabled) {
            return;
        }
        if (foundInf) {
            scale *= BACKOFF_FACTOR;
            growthTracker = 0;
            skipped++;
            return;
        }
        growthTracker++;
        if (growthTracker == growthInterval) {
            scale *= GROWTH_FACTOR;
            growthTracker = 0;
        }
    }

    /** What a checkpoint stores (empty when disabled). */
    public Map<String, Object> state() {
        if (!enabled) {
            return Map.of();
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("scale", scale);
        m.put("growth_tracker", growthTracker);
        m.put("skipped_steps", skipped);
        return m;
    }

    /** Restores {@link #state()}. */
    public void restore(Map<String, ?> s) {
        if (!enabled || s == null || s.isEmpty()) {
            return;
        }
        scale = ((Number) s.get("scale")).doubleValue();
        growthTracker = ((Number) s.get("growth_tracker")).longValue();
        skipped = s.get("skipped_steps") instanceof Number n ? n.longValue() : 0;
    }
}
