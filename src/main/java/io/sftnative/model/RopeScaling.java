package io.sftnative.model;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code rope_scaling} of config.json (or {@code rope_parameters} of newer transformers), as transformers'
 * {@code rope_utils} reads it.
 *
 * @param type                          {@code linear}, {@code llama3}, {@code longrope}, {@code yarn} or
 *                                      {@code dynamic}
 * @param factor                        divides the frequencies (linear) / the low frequencies (llama3, yarn);
 *                                      longrope: max_position_embeddings / original_max_position_embeddings;
 *                                      dynamic: the NTK factor of the base once sequences outgrow the context
 * @param lowFreqFactor                 llama3 only
 * @param highFreqFactor                llama3 only
 * @param originalMaxPositionEmbeddings llama3, longrope, yarn: context length the model was pre-trained with;
 *                                      dynamic: max_position_embeddings (beyond it the base grows)
 * @param shortFactor                   longrope: per-frequency divisors (rotary dims / 2) up to the original length
 * @param longFactor                    longrope: the divisors once a batch's positions exceed it
 * @param attentionFactor               longrope, yarn: multiplies cos and sin (1 for the other types)
 * @param betaFast                      yarn: rotations above which a dim extrapolates (beta_fast, default 32)
 * @param betaSlow                      yarn: rotations below which a dim interpolates (beta_slow, default 1)
 * @param truncate                      yarn: round the correction range to whole dims (truncate, default true)
 */
public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
        int originalMaxPositionEmbeddings, List<Double> shortFactor, List<Double> longFactor,
        double attentionFactor, double betaFast, double betaSlow, boolean truncate) {
    public static final String SUPPORTED = "default, linear, llama3, longrope, yarn, dynamic";

    public RopeScaling {
        shortFactor = List.copyOf(shortFactor);
        longFactor = List.copyOf(longFactor);
    }

    public static RopeScaling linear(double factor) {
        return new RopeScaling("linear", factor, 0, 0, 0, List.of(), List.of(), 1.0, 0, 0, false);
    }

    public static RopeScaling llama3(double factor, double lowFreqFactor, double highFreqFactor,
            int originalMaxPositionEmbeddings) {
        return new RopeScaling("llama3", factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings,
                List.of(), List.of(), 1.0, 0, 0, false);
    }

    /**
     * Reads {@code rope_scaling} (or {@code rope_parameters}) of {@code r}; null for none/default. {@code rotaryDims}:
     * the rotated dims per head (longrope factors must have half as many entries).
     */
    static RopeScaling read(ConfigReader r, int maxPositions, int rotaryDims) {
        String key = "rope_scaling";
        Object v = r.m.get(key);
        if (v == null && r.m.get("rope_parameters") instanceof Map<?, ?> rp) {
            key = "rope_parameters";
            v = rp;
        }
        if (v == null) {
            return null;
        }
        if (!(v instanceof Map<?, ?> rs)) {
            throw r.err(key, "must be an object or null");
        }
        Object t = rs.containsKey("rope_type") ? rs.get("rope_type") : rs.get("type");
        String type = t == null ? "default" : t.toString();
        final String k = key;
        java.util.function.Function<String, Double> num = f -> {
            if (!(rs.get(f) instanceof Number n)) {
                throw r.err(k + "." + f, "is required for rope type '" + type + "'");
            }
            return n.doubleValue();
        };
        return switch (type) {
            case "default" -> null;
            case "linear" -> linear(num.apply("factor"));
            case "llama3" -> {
                double lo = num.apply("low_freq_factor");
                double hi = num.apply("high_freq_factor");
                if (hi <= lo) {
                    throw r.err(k, "high_freq_factor must exceed low_freq_factor");
                }
                yield llama3(num.apply("factor"), lo, hi, (int) (double) num.apply("original_max_position_embeddings"));
            }
            case "longrope" -> longrope(r, k, rs, maxPositions, rotaryDims, num);
            case "yarn" -> yarn(r, k, rs, maxPositions, num);
            case "dynamic" -> new RopeScaling("dynamic", positive(r, k, num.apply("factor"), "factor"), 0, 0,
                    maxPositions, List.of(), List.of(), 1.0, 0, 0, false);
            default -> throw r.err(k, "has rope type '" + type + "', which is not supported (supported: " + SUPPORTED
                    + ")");
        };
    }

    /** transformers' _compute_longrope_parameters (Phi-3/3.5/4-mini). */
    private static RopeScaling longrope(ConfigReader r, String k, Map<?, ?> rs, int maxPositions, int rotaryDims,
            java.util.function.Function<String, Double> num) {
        List<Double> shortF = factors(r, k + ".short_factor", rs.get("short_factor"), rotaryDims / 2);
        List<Double> longF = factors(r, k + ".long_factor", rs.get("long_factor"), rotaryDims / 2);
        double factor;
        int original;
        if (r.has("original_max_position_embeddings")) { // phi3 keeps it at the top level
            original = r.positive("original_max_position_embeddings");
            factor = (double) maxPositions / original;
        } else {
            original = maxPositions;
            factor = rs.get("factor") instanceof Number n ? n.doubleValue() : 1.0;
        }
        double attention;
        if (rs.get("attention_factor") instanceof Number n) {
            attention = n.doubleValue();
        } else {
            attention = factor <= 1.0 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
        }
        return new RopeScaling("longrope", factor, 0, 0, original, shortF, longF, attention, 0, 0, false);
    }

    /**
     * transformers' _compute_yarn_parameters (4.56+, and 5.x): the factor as given (4.49 to 4.55 replaced it by
     * max_position_embeddings / original_max_position_embeddings when the latter was set; 4.56 restored it);
     * original_max_position_embeddings from rope_scaling, else max_position_embeddings; the attention factor from
     * attention_factor, else mscale / mscale_all_dim, else 0.1 ln(factor) + 1.
     */
    private static RopeScaling yarn(ConfigReader r, String k, Map<?, ?> rs, int maxPositions,
            java.util.function.Function<String, Double> num) {
        double factor = positive(r, k, num.apply("factor"), "factor");
        int original = maxPositions;
        if (rs.get("original_max_position_embeddings") instanceof Number n && n.doubleValue() != 0) {
            original = (int) positive(r, k, n.doubleValue(), "original_max_position_embeddings");
        }
        Double attention = optNumber(r, k, rs, "attention_factor");
        if (attention == null) {
            Double mscale = optNumber(r, k, rs, "mscale");
            Double mscaleAllDim = optNumber(r, k, rs, "mscale_all_dim");
            attention = mscale != null && mscale != 0 && mscaleAllDim != null && mscaleAllDim != 0
                    ? mscale(factor, mscale) / mscale(factor, mscaleAllDim) : mscale(factor, 1.0);
        }
        Double fast = optNumber(r, k, rs, "beta_fast");
        Double slow = optNumber(r, k, rs, "beta_slow");
        Object truncate = rs.get("truncate");
        if (truncate != null && !(truncate instanceof Boolean)) {
            throw r.err(k + ".truncate", "must be true or false, got " + ConfigReader.shown(truncate));
        }
        return new RopeScaling("yarn", factor, 0, 0, original, List.of(), List.of(), attention,
                fast == null || fast == 0 ? 32 : fast, slow == null || slow == 0 ? 1 : slow,
                truncate == null || (Boolean) truncate); // "beta_fast or 32": 0 means the default too
    }

    /** yarn's get_mscale. */
    private static double mscale(double scale, double mscale) {
        return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
    }

    private static double positive(ConfigReader r, String k, double v, String field) {
        if (!(v > 0) || Double.isInfinite(v)) {
            throw r.err(k + "." + field, "must be a number > 0, got " + v);
        }
        return v;
    }

    private static Double optNumber(ConfigReader r, String k, Map<?, ?> rs, String field) {
        Object v = rs.get(field);
        if (v == null) {
            return null;
        }
        if (!(v instanceof Number n)) {
            throw r.err(k + "." + field, "must be a number, got " + ConfigReader.shown(v));
        }
        return n.doubleValue();
    }

    private static List<Double> factors(ConfigReader r, String key, Object v, int expected) {
        if (!(v instanceof List<?> l)) {
            throw r.err(key, "is required for rope type 'longrope' (a list of " + expected + " numbers)");
        }
        if (l.size() != expected) {
            throw r.err(key, "has " + l.size() + " entries; the rotary dims per head (" + 2 * expected
                    + ") need " + expected);
        }
        List<Double> out = new ArrayList<>();
        for (Object o : l) {
            if (!(o instanceof Number n)) {
                throw r.err(key, "must hold numbers, got " + o);
            }
            out.add(n.doubleValue());
        }
        return out;
    }
}
