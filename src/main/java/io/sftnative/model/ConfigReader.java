package io.sftnative.model;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Typed reads of a config.json map with errors that name the origin (file) and the key. */
final class ConfigReader {
    final Map<String, Object> m;
    final String origin;

    ConfigReader(Map<String, Object> m, String origin) {
        this.m = m;
        this.origin = origin;
    }

    boolean has(String key) {
        return m.get(key) != null;
    }

    int positive(String key) {
        Object v = m.get(key);
        if (v == null) {
            throw err(key, "is missing");
        }
        if (!(v instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue()) || n.doubleValue() <= 0
                || n.doubleValue() > Integer.MAX_VALUE) {
            throw err(key, "must be a positive whole number (at most " + Integer.MAX_VALUE + "), got " + shown(v));
        }
        return n.intValue();
    }

    int positive(String key, int def) {
        return has(key) ? positive(key) : def;
    }

    Integer optInt(String key) {
        Object v = m.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof List<?> l) { // some configs give a list; the first id is the one used for padding
            return l.isEmpty() ? null : optIntValue(key, l.get(0));
        }
        return optIntValue(key, v);
    }

    private Integer optIntValue(String key, Object v) {
        if (!(v instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
            throw err(key, "must be a token id (whole number), got " + v);
        }
        return n.intValue();
    }

    List<Integer> intList(String key) {
        Object v = m.get(key);
        List<Integer> out = new ArrayList<>();
        if (v instanceof List<?> l) {
            for (Object o : l) {
                out.add(optIntValue(key, o));
            }
        } else if (v != null) {
            out.add(optIntValue(key, v));
        }
        return out;
    }

    double number(String key, double def) {
        Object v = m.get(key);
        if (v == null) {
            return def;
        }
        if (!(v instanceof Number n)) {
            throw err(key, "must be a number, got " + shown(v));
        }
        return n.doubleValue();
    }

    /** A number > 0, or null when absent or null. */
    Double optPositive(String key) {
        if (!has(key)) {
            return null;
        }
        double v = number(key, 0);
        if (!(v > 0)) {
            throw err(key, "must be a number > 0 or null, got " + m.get(key));
        }
        return v;
    }

    boolean bool(String key, boolean def) {
        Object v = m.get(key);
        if (v == null) {
            return def;
        }
        if (!(v instanceof Boolean b)) {
            throw err(key, "must be true or false, got " + shown(v));
        }
        return b;
    }

    String str(String key, String def) {
        Object v = m.get(key);
        return v == null ? def : v.toString();
    }

    /** A list of strings, or null when absent. */
    List<String> strings(String key) {
        Object v = m.get(key);
        if (v == null) {
            return null;
        }
        if (!(v instanceof List<?> l)) {
            throw err(key, "must be a list of strings, got " + v);
        }
        List<String> out = new ArrayList<>();
        for (Object o : l) {
            out.add(String.valueOf(o));
        }
        return out;
    }

    /** A value as the user wrote it: a JSON string is named as one ("256" is not the number 256). */
    static String shown(Object v) {
        return v instanceof String str ? "the string \"" + str + "\" (JSON numbers and booleans have no quotes)"
                : String.valueOf(v);
    }

    ModelFormatException err(String key, String what) {
        return new ModelFormatException(origin + ": key '" + key + "' " + what);
    }
}
