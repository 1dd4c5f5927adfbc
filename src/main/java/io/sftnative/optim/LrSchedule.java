package io.sftnative.optim;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Learning-rate schedules as pure functions of the optimizer step, exactly as HF transformers'
 * {@code get_scheduler} builds them ({@code LambdaLR}: {@code lr = base_lr * multiplier(step)}), with the
 * {@code lr_scheduler_kwargs} each one accepts. {@code reduce_lr_on_plateau} is not a function of the step: it has
 * state driven by evaluations ({@link ReduceLrOnPlateau}); here its multiplier is 1 (the base rate).
 *
 * <p>{@code step} counts completed optimizer updates: the update number {@code k} (0-based) uses {@code lr(k)}.
 * Multipliers (W = warmup steps, T = total, p = (step - W) / max(1, T - W)), after a linear warmup
 * {@code step / max(1, W)} unless noted:
 * <ul>
 *   <li>{@code constant}: 1 (warmup ignored, as in HF); {@code constant_with_warmup}: 1;</li>
 *   <li>{@code linear}: {@code max(0, (T - step) / max(1, T - W))};</li>
 *   <li>{@code cosine} (kwarg num_cycles = 0.5): {@code max(0, (1 + cos(2 pi num_cycles p)) / 2)};</li>
 *   <li>{@code cosine_with_restarts} (num_cycles = 1): {@code (1 + cos(pi ((num_cycles p) mod 1))) / 2}, 0 once
 *       p >= 1;</li>
 *   <li>{@code polynomial} (lr_end = 1e-7, power = 1): {@code ((lr0 - lr_end) (1 - p)^power + lr_end) / lr0}, and
 *       {@code lr_end / lr0} past T;</li>
 *   <li>{@code inverse_sqrt} (timescale = W or 10000): {@code 1 / sqrt((step + timescale - W) / timescale)};</li>
 *   <li>{@code cosine_with_min_lr} (min_lr or min_lr_rate, num_cycles = 0.5): the cosine factor mapped onto
 *       {@code [min_lr_rate, 1]};</li>
 *   <li>{@code cosine_warmup_with_min_lr} (min_lr or min_lr_rate, warmup_lr_rate, num_cycles): HF's shifted variant:
 *       warmup {@code (step + 1) / max(1, W)} (or from warmup_lr_rate), progress {@code (step - W + 1) / max(1, T - W)};</li>
 *   <li>{@code warmup_stable_decay} (num_decay_steps required; num_stable_steps, warmup_type, decay_type = cosine,
 *       min_lr_ratio = 0, num_cycles = 0.5): warmup (linear, cosine or 1-sqrt), 1 for the stable steps, decay, then
 *       min_lr_ratio.</li>
 * </ul>
 * Golden-tested against these formulas run through torch's LambdaLR ({@code tools/golden/gen_schedule_golden.py}).
 *
 * @param warmupSteps the resolved number of warmup steps ({@link #numWarmupSteps})
 * @param kwargs      lr_scheduler_kwargs (validated per type; numbers as Double, names as String)
 */
public record LrSchedule(Type type, double baseLr, long totalSteps, long warmupSteps, Map<String, Object> kwargs) {

    /** HF's {@code SchedulerType} values. */
    public enum Type {
        LINEAR(Set.of()),
        COSINE(Set.of("num_cycles")),
        COSINE_WITH_RESTARTS(Set.of("num_cycles")),
        POLYNOMIAL(Set.of("lr_end", "power")),
        CONSTANT(Set.of()),
        CONSTANT_WITH_WARMUP(Set.of()),
        INVERSE_SQRT(Set.of("timescale")),
        REDUCE_LR_ON_PLATEAU(ReduceLrOnPlateau.KWARGS),
        COSINE_WITH_MIN_LR(Set.of("num_cycles", "min_lr", "min_lr_rate")),
        COSINE_WARMUP_WITH_MIN_LR(Set.of("num_cycles", "min_lr", "min_lr_rate", "warmup_lr_rate")),
        WARMUP_STABLE_DECAY(Set.of("num_decay_steps", "num_stable_steps", "warmup_type", "decay_type",
                "min_lr_ratio", "num_cycles"));

        /** The lr_scheduler_kwargs this type takes (HF passes them as keyword arguments: others are a TypeError). */
        public final Set<String> kwargs;

        Type(Set<String> kwargs) {
            this.kwargs = kwargs;
        }

        /** Parses a config value such as {@code cosine} or {@code constant_with_warmup}. */
        public static Type parse(String name) {
            for (Type t : values()) {
                if (t.configName().equalsIgnoreCase(name.trim())) {
                    return t;
                }
            }
            StringBuilder all = new StringBuilder();
            for (Type t : values()) {
                all.append(all.isEmpty() ? "" : ", ").append(t.configName());
            }
            throw new IllegalArgumentException("unknown lr_scheduler_type '" + name + "': use one of " + all);
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
        kwargs = Map.copyOf(kwargs);
        for (String k : kwargs.keySet()) {
            if (!type.kwargs.contains(k)) {
                throw new IllegalArgumentException("lr_scheduler_kwargs has '" + k + "', which lr_scheduler_type "
                        + type.configName() + " does not take" + (type.kwargs.isEmpty() ? " (it takes none)"
                        : "; it takes " + String.join(", ", new java.util.TreeSet<>(type.kwargs))));
            }
        }
        validate(type, baseLr, totalSteps, warmupSteps, kwargs);
    }

    /** Without kwargs. */
    public LrSchedule(Type type, double baseLr, long totalSteps, long warmupSteps) {
        this(type, baseLr, totalSteps, warmupSteps, Map.of());
    }

    /** Builds a schedule from config values: {@code warmup_steps} wins over {@code warmup_ratio} when > 0. */
    public static LrSchedule of(String type, double baseLr, long totalSteps, long warmupSteps, double warmupRatio) {
        return of(type, baseLr, totalSteps, warmupSteps, warmupRatio, Map.of());
    }

    /** As above, with lr_scheduler_kwargs (numbers may come as strings from key=value overrides). */
    public static LrSchedule of(String type, double baseLr, long totalSteps, long warmupSteps, double warmupRatio,
            Map<String, ?> kwargs) {
        Map<String, Object> k = new LinkedHashMap<>();
        kwargs.forEach((name, v) -> k.put(name, normalise(name, v)));
        return new LrSchedule(Type.parse(type), baseLr, totalSteps, numWarmupSteps(totalSteps, warmupSteps,
                warmupRatio), k);
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
        long w = warmupSteps;
        long t = totalSteps;
        return switch (type) {
            case CONSTANT, REDUCE_LR_ON_PLATEAU -> 1.0;
            case COSINE_WARMUP_WITH_MIN_LR -> cosineWarmupWithMinLr(step);
            case WARMUP_STABLE_DECAY -> wsd(step);
            default -> {
                if (step < w) {
                    yield (double) step / (double) Math.max(1, w);
                }
                double progress = (double) (step - w) / (double) Math.max(1, t - w);
                yield switch (type) {
                    case CONSTANT_WITH_WARMUP -> 1.0;
                    case LINEAR -> Math.max(0.0, (double) (t - step) / (double) Math.max(1, t - w));
                    case COSINE -> Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * num("num_cycles", 0.5) * 2.0
                            * progress)));
                    case COSINE_WITH_RESTARTS -> progress >= 1.0 ? 0.0 : Math.max(0.0, 0.5 * (1.0 + Math.cos(
                            Math.PI * ((num("num_cycles", 1) * progress) % 1.0))));
                    case POLYNOMIAL -> polynomial(step);
                    case INVERSE_SQRT -> {
                        double timescale = timescale();
                        yield 1.0 / Math.sqrt((step + (timescale - w)) / timescale);
                    }
                    case COSINE_WITH_MIN_LR -> {
                        double f = 0.5 * (1.0 + Math.cos(Math.PI * num("num_cycles", 0.5) * 2.0 * progress));
                        double minRate = minLrRate();
                        yield Math.max(0, f * (1 - minRate) + minRate);
                    }
                    default -> throw new IllegalStateException(type.name());
                };
            }
        };
    }

    private double polynomial(long step) {
        double lrEnd = num("lr_end", 1e-7);
        double power = num("power", 1.0);
        if (step > totalSteps) {
            return lrEnd / baseLr;
        }
        // HF divides by (T - W) unguarded: T == W reaches here only at step == T (after the last update), where
        // Python raises ZeroDivisionError; max(1, .) gives the multiplier 1 there instead
        double pctRemaining = 1 - (double) (step - warmupSteps) / (double) Math.max(1, totalSteps - warmupSteps);
        return ((baseLr - lrEnd) * Math.pow(pctRemaining, power) + lrEnd) / baseLr;
    }

    private double timescale() {
        return kwargs.containsKey("timescale") ? num("timescale", 0) : warmupSteps > 0 ? warmupSteps : 10_000;
    }

    private double minLrRate() {
        return kwargs.containsKey("min_lr") ? num("min_lr", 0) / baseLr : num("min_lr_rate", 0);
    }

    private double cosineWarmupWithMinLr(long stepL) {
        double step = stepL;
        double w = warmupSteps;
        if (step < w) {
            if (!kwargs.containsKey("warmup_lr_rate")) {
                return (step + 1.0) / Math.max(1.0, w);
            }
            double r = num("warmup_lr_rate", 0);
            return r + (1.0 - r) * step / Math.max(1, w - 1);
        }
        double progress = (step - w + 1.0) / Math.max(1.0, totalSteps - w);
        double f = 0.5 * (1.0 + Math.cos(Math.PI * num("num_cycles", 0.5) * 2.0 * progress));
        double minRate = minLrRate();
        return Math.max(0, f * (1 - minRate) + minRate);
    }

    private double wsd(long step) {
        long w = warmupSteps;
        long decay = (long) num("num_decay_steps", 0);
        long stable = kwargs.containsKey("num_stable_steps") ? (long) num("num_stable_steps", 0)
                : totalSteps - w - decay;
        double minRatio = num("min_lr_ratio", 0);
        if (step < w) {
            double progress = (double) step / (double) Math.max(1, w);
            double f = switch (str("warmup_type", "linear")) {
                case "cosine" -> 0.5 * (1.0 - Math.cos(Math.PI * progress));
                case "1-sqrt" -> 1.0 - Math.sqrt(1.0 - progress);
                default -> progress;
            };
            return Math.max(0.0, f * (1.0 - minRatio) + minRatio);
        }
        if (step < w + stable) {
            return 1.0;
        }
        if (step < w + stable + decay) {
            double progress = (double) (step - w - stable) / (double) Math.max(1, decay);
            double f = switch (str("decay_type", "cosine")) {
                case "linear" -> 1.0 - progress;
                case "1-sqrt" -> 1.0 - Math.sqrt(progress);
                default -> 0.5 * (1.0 + Math.cos(Math.PI * num("num_cycles", 0.5) * 2.0 * progress));
            };
            return Math.max(0.0, f * (1.0 - minRatio) + minRatio);
        }
        return minRatio;
    }

    private double num(String key, double def) {
        Object v = kwargs.get(key);
        return v == null ? def : (Double) v;
    }

    private String str(String key, String def) {
        Object v = kwargs.get(key);
        return v == null ? def : (String) v;
    }

    private static final Set<String> TEXT_KWARGS = Set.of("warmup_type", "decay_type", "mode", "threshold_mode");

    private static Object normalise(String name, Object v) {
        if (TEXT_KWARGS.contains(name)) {
            return String.valueOf(v).trim();
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        try {
            return Double.parseDouble(String.valueOf(v).trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("lr_scheduler_kwargs '" + name + "' must be a number, got '" + v
                    + "'", e);
        }
    }

    private static void validate(Type type, double baseLr, long totalSteps, long warmupSteps, Map<String, Object> k) {
        switch (type) {
            case POLYNOMIAL -> {
                double lrEnd = k.containsKey("lr_end") ? (Double) k.get("lr_end") : 1e-7;
                if (!(baseLr > lrEnd)) {
                    throw new IllegalArgumentException("lr_scheduler_type polynomial: lr_end (" + lrEnd
                            + ") must be smaller than learning_rate (" + baseLr + ")");
                }
            }
            case COSINE_WITH_MIN_LR, COSINE_WARMUP_WITH_MIN_LR -> {
                boolean lr = k.containsKey("min_lr");
                boolean rate = k.containsKey("min_lr_rate");
                if (lr == rate) {
                    throw new IllegalArgumentException("lr_scheduler_type " + type.configName() + " needs exactly"
                            + " one of min_lr or min_lr_rate in lr_scheduler_kwargs, e.g. lr_scheduler_kwargs:"
                            + " {min_lr_rate: 0.1}");
                }
                if (lr && !(baseLr > 0)) {
                    throw new IllegalArgumentException("lr_scheduler_kwargs min_lr needs learning_rate > 0");
                }
            }
            case WARMUP_STABLE_DECAY -> {
                if (!k.containsKey("num_decay_steps")) {
                    throw new IllegalArgumentException("lr_scheduler_type warmup_stable_decay needs num_decay_steps"
                            + " in lr_scheduler_kwargs, e.g. lr_scheduler_kwargs: {num_decay_steps: 100}");
                }
                for (String key : new String[] {"warmup_type", "decay_type"}) {
                    Object v = k.get(key);
                    if (v != null && !Set.of("linear", "cosine", "1-sqrt").contains((String) v)) {
                        throw new IllegalArgumentException("lr_scheduler_kwargs " + key + " is '" + v
                                + "': use linear, cosine or 1-sqrt");
                    }
                }
            }
            case INVERSE_SQRT -> {
                if (k.containsKey("timescale") && !((Double) k.get("timescale") > 0)) {
                    throw new IllegalArgumentException("lr_scheduler_kwargs timescale must be > 0");
                }
            }
            case REDUCE_LR_ON_PLATEAU -> ReduceLrOnPlateau.validate(k);
            default -> { }
        }
    }
}
