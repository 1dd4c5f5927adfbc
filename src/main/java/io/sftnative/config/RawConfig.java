package io.sftnative.config;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The user's key/value pairs (YAML file, then {@code key=value} overrides) before they become typed records.
 *
 * <p>Typed readers record every key they ask for; {@link #checkAllKnown} then reports any key nobody asked for as
 * unknown, naming the nearest known key. So the set of valid keys is exactly what the records read: there is no
 * second list to keep in sync.
 */
public final class RawConfig {
    private final Map<String, Object> values;
    private final Map<String, String> origins; // key -> "config.yaml" or "command line"
    private final Set<String> requested = new LinkedHashSet<>();

    RawConfig(Map<String, Object> values, Map<String, String> origins) {
        this.values = new LinkedHashMap<>(values);
        this.origins = new LinkedHashMap<>(origins);
    }

    /** For tests and the library API: a config from plain pairs. */
    public static RawConfig of(Map<String, ?> values) {
        Map<String, String> origins = new LinkedHashMap<>();
        values.keySet().forEach(k -> origins.put(k, "code"));
        return new RawConfig(new LinkedHashMap<>(values), origins);
    }

    public Map<String, Object> values() {
        return Collections.unmodifiableMap(values);
    }

    public boolean has(String key) {
        requested.add(key);
        Object v = values.get(key);
        return v != null && !(v instanceof String s && (s.isEmpty() || s.equalsIgnoreCase("null")));
    }

    public String string(String key, String def) {
        if (!has(key)) {
            return def;
        }
        return String.valueOf(values.get(key)).trim();
    }

    public int integer(String key, int def) {
        return integer(key, def, Integer.MIN_VALUE, Integer.MAX_VALUE);
    }

    /** A whole number in {@code [min, max]}; a value beyond it is an error, never wrapped. */
    public int integer(String key, int def, int min, int max) {
        return (int) longValue(key, def, min, max);
    }

    public long longValue(String key, long def) {
        return longValue(key, def, Long.MIN_VALUE, Long.MAX_VALUE);
    }

    /**
     * A whole number in {@code [min, max]}. Read exactly (BigDecimal), so 18446744073709551617 or 4294967300 for an
     * int key is reported as out of range instead of wrapping to 1 or 4.
     */
    public long longValue(String key, long def, long min, long max) {
        if (!has(key)) {
            return def;
        }
        Object v = values.get(key);
        BigDecimal d;
        try {
            d = v instanceof Double || v instanceof Float
                    ? (Double.isFinite(((Number) v).doubleValue()) ? BigDecimal.valueOf(((Number) v).doubleValue())
                            : null)
                    : v instanceof BigDecimal b ? b
                    : new BigDecimal(String.valueOf(v).trim().replace("_", ""));
        } catch (NumberFormatException e) {
            d = null;
        }
        BigInteger i;
        try {
            i = d == null ? null : d.toBigIntegerExact();
        } catch (ArithmeticException e) {
            i = null;
        }
        if (i == null) {
            throw bad(key, "a whole number");
        }
        if (i.compareTo(BigInteger.valueOf(min)) < 0 || i.compareTo(BigInteger.valueOf(max)) > 0) {
            throw new ConfigException("key '" + key + "' (" + origin(key) + ") is " + i + ", out of range: it must be"
                    + " " + range(min, max));
        }
        return i.longValue();
    }

    private static String range(long min, long max) {
        boolean noMin = min == Integer.MIN_VALUE || min == Long.MIN_VALUE;
        boolean noMax = max == Integer.MAX_VALUE || max == Long.MAX_VALUE;
        if (noMin && noMax) {
            return "between " + min + " and " + max;
        }
        return noMax ? "at least " + min + (max == Integer.MAX_VALUE ? " (and at most " + max + ")" : "")
                : noMin ? "at most " + max : "between " + min + " and " + max;
    }

    /** A finite number: NaN and infinities ({@code .nan}, {@code .inf} in YAML) are no valid value of any key. */
    public double number(String key, double def) {
        if (!has(key)) {
            return def;
        }
        Object v = values.get(key);
        double d;
        if (v instanceof Number n) {
            d = n.doubleValue();
        } else {
            String s = String.valueOf(v).trim();
            try {
                d = Double.parseDouble(s); // YAML 1.1 reads 1e-4 as a string
            } catch (NumberFormatException e) {
                d = switch (s.toLowerCase(Locale.ROOT)) {
                    case ".nan", "nan" -> Double.NaN;
                    case ".inf", "+.inf", "inf", "infinity" -> Double.POSITIVE_INFINITY;
                    case "-.inf", "-inf", "-infinity" -> Double.NEGATIVE_INFINITY;
                    default -> throw bad(key, "a number");
                };
            }
        }
        if (!Double.isFinite(d)) {
            throw new ConfigException("key '" + key + "' (" + origin(key) + ") must be a finite number, got '"
                    + v + "' (" + d + ")");
        }
        return d;
    }

    public boolean bool(String key, boolean def) {
        if (!has(key)) {
            return def;
        }
        Object v = values.get(key);
        if (v instanceof Boolean b) {
            return b;
        }
        return switch (String.valueOf(v).trim().toLowerCase(Locale.ROOT)) {
            case "true", "yes", "1", "on" -> true;
            case "false", "no", "0", "off" -> false;
            default -> throw bad(key, "true or false");
        };
    }

    /** A comma-separated string or a YAML list; empty when absent. */
    public List<String> list(String key) {
        if (!has(key)) {
            return List.of();
        }
        Object v = values.get(key);
        List<String> out = new ArrayList<>();
        if (v instanceof List<?> l) {
            l.forEach(x -> out.add(String.valueOf(x).trim()));
        } else {
            for (String s : String.valueOf(v).split(",")) {
                if (!s.isBlank()) {
                    out.add(s.trim());
                }
            }
        }
        return List.copyOf(out);
    }

    /**
     * A mapping: a YAML mapping, or a JSON object string (as HF parses dict-valued arguments given on a command
     * line, e.g. {@code lr_scheduler_kwargs={"min_lr_rate": 0.1}}); empty when absent.
     */
    public Map<String, Object> map(String key) {
        if (!has(key)) {
            return Map.of();
        }
        Object v = values.get(key);
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            m.forEach((k, x) -> out.put(String.valueOf(k), x));
            return Collections.unmodifiableMap(out);
        }
        try {
            Object parsed = new com.fasterxml.jackson.databind.ObjectMapper().readValue(String.valueOf(v).trim(),
                    Object.class);
            if (parsed instanceof Map<?, ?> m) {
                Map<String, Object> out = new LinkedHashMap<>();
                m.forEach((k, x) -> out.put(String.valueOf(k), x));
                return Collections.unmodifiableMap(out);
            }
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            // reported below
        }
        throw bad(key, "a mapping (YAML, or a JSON object such as {\"min_lr_rate\": 0.1})");
    }

    /** One of the allowed values (case-insensitive), lower-cased. */
    public String choice(String key, String def, String... allowed) {
        String v = string(key, def);
        if (v == null) {
            return null;
        }
        for (String a : allowed) {
            if (a.equalsIgnoreCase(v)) {
                return a;
            }
        }
        throw new ConfigException("key '" + key + "' (" + origin(key) + ") is '" + v + "'; it must be one of "
                + String.join(", ", allowed));
    }

    public String origin(String key) {
        return origins.getOrDefault(key, "default");
    }

    /** Fails on the first key no typed reader asked for, suggesting the nearest valid one. */
    public void checkAllKnown(Set<String> ignoredWithWarning, java.util.function.Consumer<String> warn) {
        for (String key : values.keySet()) {
            if (requested.contains(key)) {
                Object v = values.get(key);
                if (v == null || v instanceof String str && str.isBlank()) {
                    warn.accept("config key '" + key + "' (" + origin(key) + ") has no value; its default is used"
                            + " (remove the line, or give a value)");
                }
                continue;
            }
            if (ignoredWithWarning.contains(key)) {
                warn.accept("config key '" + key + "' (" + origin(key) + ") is accepted for LLaMA-Factory"
                        + " compatibility and ignored by sft-native");
                continue;
            }
            String nearest = NearestName.of(key, requested, Math.max(3, key.length() / 2));
            throw new ConfigException("unknown config key '" + key + "' (" + origin(key) + ")"
                    + (nearest == null ? "" : "; did you mean '" + nearest + "'?")
                    + " See docs/training.md, section Keys, for every key.");
        }
    }

    ConfigException bad(String key, String expected) {
        return new ConfigException("key '" + key + "' (" + origin(key) + ") must be " + expected + ", got '"
                + values.get(key) + "'");
    }
}
