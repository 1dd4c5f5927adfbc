package io.sftnative.optim;

import java.util.Locale;

/**
 * Learning-rate schedules as pure functions of the optimizer step, exactly as HF transformers'
 * {@code get_scheduler} builds them ({@code LambdaLR}: {@code lr = base_lr * multiplier(step)}).
 *
 * <p>{@code step} counts completed optimizer updates: the update number {@code k} (0-based) uses {@code lr(k)}, and
 * the learning rate HF logs after {@code k} updates is {@code lr(k)} too. Multipliers (W = warmup steps, T = total):
 * <ul>
 *   <li>{@code constant}: 1 (warmup ignored, as in HF);</li>
 *   <li>{@code constant_with_warmup}: {@code step / max(1, W)} while {@code step < W}, then 1;</li>
 *   <li>{@code linear}: warmup, then {@code max(0, (T - step) / max(1, T - W))};</li>
 *   <li>{@code cosine}: warmup, then {@code max(0, 0.5 * (1 + cos(pi * progress)))} with
 *       {@code progress = (step - W) / max(1, T - W)} (half a cycle).</li>
 * </ul>
 *
 * @param warmupSteps the resolved number of warmup steps ({@link #numWarmupSteps})
 */
public record LrSchedule(Type type, double baseLr, long totalSteps, long warmupSteps) {

    /** The {@code lr_scheduler_type} values we support (LLaMA-Factory's common ones). */
    public enum Type {
        LINEAR, COSINE, CONSTANT, CONSTANT_WITH_WARMUP;

        /** Parses a config value such as {@code cosine} or {@code constant_with_warmup}. */
        public static Type parse(String name) {
            try {
                return valueOf(name.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown lr_scheduler_type '" + name
                        + "': use linear, cosine, constant or constant_with_warmup", e);
            }
        }

        public String configName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public LrSchedule {
        if (totalSteps < 0 || warmupSteps < 0) {
            throw new IllegalArgumentException("total steps (" + totalSteps + ") and warmup steps (" + warmupSteps
                    + ") must be >= 0");
        }
        if (!(baseLr >= 0) || Double.isInfinite(baseLr)) {
            throw new IllegalArgumentException("learning_rate must be a finite number >= 0, got " + baseLr);
        }
    }

    /** Builds a schedule from config values: {@code warmup_steps} wins over {@code warmup_ratio} when > 0. */
    public static LrSchedule of(String type, double baseLr, long totalSteps, long warmupSteps, double warmupRatio) {
        return new LrSchedule(Type.parse(type), baseLr, totalSteps,
                numWarmupSteps(totalSteps, warmupSteps, warmupRatio));
    }

    /** HF's {@code TrainingArguments.get_warmup_steps}: steps if > 0, else {@code ceil(totalSteps * ratio)}. */
    public static long numWarmupSteps(long totalSteps, long warmupSteps, double warmupRatio) {
        if (warmupRatio < 0 || warmupRatio > 1) {
            throw new IllegalArgumentException("warmup_ratio must be in [0, 1], got " + warmupRatio);
        }
        return warmupSteps > 0 ? warmupSteps : (long) Math.ceil(totalSteps * warmupRatio);
    }

    /** The learning rate for update number {@code step} (0-based). */
    public double lr(long step) {
        return baseLr * multiplier(step);
    }

    /** The factor applied to the base learning rate at {@code step}. */
    public double multiplier(long step) {
        if (type == Type.CONSTANT) {
            return 1.0;
        }
        if (step < warmupSteps) {
            return (double) step / (double) Math.max(1, warmupSteps);
        }
        return switch (type) {
            case CONSTANT_WITH_WARMUP -> 1.0;
            case LINEAR -> Math.max(0.0, (double) (totalSteps - step) / (double) Math.max(1, totalSteps - warmupSteps));
            case COSINE -> {
                double numCycles = 0.5;
                double progress = (double) (step - warmupSteps) / (double) Math.max(1, totalSteps - warmupSteps);
                yield Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress)));
            }
            case CONSTANT -> 1.0;
        };
    }
}
