package io.sftnative.json;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * JSON text exactly as Python's {@code json.dumps} writes it (what LLaMA-Factory, HF Trainer and chat templates
 * produce): floats as {@code repr(float)} ({@code 1e-05}, {@code 0.0001}, {@code 2.0}, {@code NaN},
 * {@code Infinity}), {@code ", "}/{@code ": "} separators without indent, {@code ","}/{@code ": "} with one,
 * optional key sorting, {@code ensure_ascii} escapes or non-ASCII kept.
 *
 * <p>{@link #dumps(Object)} and {@link #dumps(Object, int, boolean)} take {@link Map} (string keys), {@link List},
 * {@link CharSequence}, {@link Boolean}, integral and floating {@link Number}s and {@code null}, and reject anything
 * else. {@link #dumpsNonAscii(Object)} writes whatever a chat template hands over: also Jackson {@link JsonNode}s,
 * any {@link Iterable} or array, non-string keys and other objects as their {@code str()}.
 */
public final class PyJson {
    private PyJson() {}

    /** Python's {@code indent} ({@code < 0}: none), {@code sort_keys}, {@code ensure_ascii}; lenient: any value. */
    private record Style(int indent, boolean sortKeys, boolean ensureAscii, boolean lenient) {}

    private static final Style PYTHON_DEFAULT = new Style(-1, false, true, false);
    private static final Style TEMPLATE = new Style(-1, false, false, true);

    /** {@code json.dumps(value)}. */
    public static String dumps(Object value) {
        return write(value, PYTHON_DEFAULT);
    }

    /** {@code json.dumps(value, indent=indent, sort_keys=sortKeys)}; {@code indent < 0} means none. */
    public static String dumps(Object value, int indent, boolean sortKeys) {
        return write(value, new Style(indent, sortKeys, true, false));
    }

    /**
     * {@code json.dumps(value, ensure_ascii=False)} as chat templates (transformers' {@code tojson}) and
     * LLaMA-Factory's tool formats write it; any value is accepted (see the class comment).
     */
    public static String dumpsNonAscii(Object value) {
        return write(value, TEMPLATE);
    }

    /** {@code json.dumps(value, indent=indent, ensure_ascii=False)} (LLaMA-Factory's llama3 and glm4 tool texts). */
    public static String dumpsNonAscii(Object value, int indent) {
        return write(value, new Style(indent, false, false, true));
    }

    /** Python's {@code round(x, digits)}: half-to-even on the exact binary value of {@code x}. */
    public static double round(double x, int digits) {
        if (Double.isNaN(x) || Double.isInfinite(x)) {
            return x;
        }
        double r = Double.parseDouble(new BigDecimal(x).setScale(digits, RoundingMode.HALF_EVEN).toPlainString());
        return r == 0 ? Math.copySign(0.0, x) : r; // round(-0.00001, 4) is -0.0 in Python
    }

    /** Python's {@code repr(float)}: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
    public static String floatRepr(double x) {
        if (Double.isNaN(x)) {
            return "NaN";
        }
        if (Double.isInfinite(x)) {
            return x > 0 ? "Infinity" : "-Infinity";
        }
        if (x == 0) {
            return (1 / x < 0) ? "-0.0" : "0.0";
        }
        BigDecimal d = shortest(Math.abs(x));
        String digits = d.unscaledValue().toString();
        int decpt = digits.length() - d.scale(); // value = 0.DIGITS * 10^decpt
        StringBuilder sb = new StringBuilder(x < 0 ? "-" : "");
        if (decpt > -4 && decpt <= 16) {
            if (decpt <= 0) {
                sb.append("0.").append("0".repeat(-decpt)).append(digits);
            } else if (decpt < digits.length()) {
                sb.append(digits, 0, decpt).append('.').append(digits, decpt, digits.length());
            } else {
                sb.append(digits).append("0".repeat(decpt - digits.length())).append(".0");
            }
        } else {
            sb.append(digits.charAt(0));
            if (digits.length() > 1) {
                sb.append('.').append(digits, 1, digits.length());
            }
            int exp = decpt - 1;
            sb.append('e').append(exp < 0 ? '-' : '+');
            String e = Integer.toString(Math.abs(exp));
            sb.append(e.length() < 2 ? "0" + e : e);
        }
        return sb.toString();
    }

    /**
     * repr's choice for {@code x > 0}: the fewest significant digits that read back as {@code x}, and of those the
     * decimal closest to {@code x}. Both neighbours are tried because at a power of two the gap below {@code x} is
     * half the gap above, so the farther neighbour may read back when the nearer one does not.
     */
    private static BigDecimal shortest(double x) {
        BigDecimal exact = new BigDecimal(x);
        for (int digits = 1; ; digits++) { // 17 digits always read back
            BigDecimal below = exact.round(new MathContext(digits, RoundingMode.FLOOR));
            BigDecimal above = exact.round(new MathContext(digits, RoundingMode.CEILING));
            boolean belowReadsBack = Double.parseDouble(below.toString()) == x;
            boolean aboveReadsBack = Double.parseDouble(above.toString()) == x;
            if (belowReadsBack && aboveReadsBack) {
                return exact.round(new MathContext(digits, RoundingMode.HALF_EVEN)).stripTrailingZeros();
            } else if (belowReadsBack) {
                return below.stripTrailingZeros();
            } else if (aboveReadsBack) {
                return above.stripTrailingZeros();
            }
        }
    }

    private static String write(Object value, Style style) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, style, 0);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object v, Style style, int level) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            sb.append(floatRepr(((Number) v).doubleValue()));
        } else if (v instanceof BigDecimal bd) {
            sb.append(floatRepr(bd.doubleValue()));
        } else if (v instanceof Number n) {
            sb.append(n.toString()); // Integer, Long, BigInteger, Short, Byte
        } else if (v instanceof CharSequence s) {
            string(sb, s.toString(), style);
        } else if (v instanceof Map<?, ?> m) {
            map(sb, m, style, level);
        } else if (v instanceof List<?> l) {
            list(sb, l, style, level);
        } else if (!style.lenient()) {
            throw new IllegalArgumentException("cannot write " + v.getClass().getName() + " as JSON");
        } else if (v instanceof JsonNode n) {
            node(sb, n, style, level);
        } else if (v instanceof Iterable<?> items) {
            List<Object> l = new ArrayList<>();
            items.forEach(l::add);
            list(sb, l, style, level);
        } else if (v instanceof Object[] a) {
            list(sb, java.util.Arrays.asList(a), style, level); // List.of rejects null elements
        } else {
            string(sb, String.valueOf(v), style);
        }
    }

    private static void node(StringBuilder sb, JsonNode n, Style style, int level) {
        switch (n.getNodeType()) {
            case OBJECT -> {
                List<Member> members = new ArrayList<>();
                for (Iterator<Map.Entry<String, JsonNode>> it = n.properties().iterator(); it.hasNext();) {
                    Map.Entry<String, JsonNode> e = it.next();
                    members.add(new Member(e.getKey(), e.getValue()));
                }
                object(sb, members, style, level);
            }
            case ARRAY -> {
                List<Object> items = new ArrayList<>();
                n.forEach(items::add);
                list(sb, items, style, level);
            }
            case STRING -> string(sb, n.asText(), style);
            case BOOLEAN -> sb.append(n.asBoolean() ? "true" : "false");
            case NUMBER -> sb.append(n.isIntegralNumber() ? n.asText() : floatRepr(n.doubleValue()));
            default -> sb.append("null");
        }
    }

    /** One key/value pair of a JSON object (a record because values may be null, unlike {@code Map.entry}). */
    private record Member(String key, Object value) {}

    private static void map(StringBuilder sb, Map<?, ?> m, Style style, int level) {
        List<Member> members = new ArrayList<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            Object k = e.getKey();
            if (!(k instanceof String) && !style.lenient()) {
                throw new IllegalArgumentException("JSON object keys must be strings, got " + k);
            }
            members.add(new Member(String.valueOf(k), e.getValue()));
        }
        object(sb, members, style, level);
    }

    private static void object(StringBuilder sb, List<Member> members, Style style, int level) {
        if (members.isEmpty()) {
            sb.append("{}");
            return;
        }
        if (style.sortKeys()) {
            members.sort((a, b) -> compareCodePoints(a.key(), b.key()));
        }
        sb.append('{');
        for (int i = 0; i < members.size(); i++) {
            separator(sb, i, style, level + 1);
            string(sb, members.get(i).key(), style);
            sb.append(": ");
            write(sb, members.get(i).value(), style, level + 1);
        }
        close(sb, style, level);
        sb.append('}');
    }

    private static void list(StringBuilder sb, List<?> l, Style style, int level) {
        if (l.isEmpty()) {
            sb.append("[]");
            return;
        }
        sb.append('[');
        for (int i = 0; i < l.size(); i++) {
            separator(sb, i, style, level + 1);
            write(sb, l.get(i), style, level + 1);
        }
        close(sb, style, level);
        sb.append(']');
    }

    private static void separator(StringBuilder sb, int i, Style style, int level) {
        if (style.indent() < 0) {
            if (i > 0) {
                sb.append(", ");
            }
        } else {
            sb.append(i > 0 ? ",\n" : "\n").append(" ".repeat(style.indent() * level));
        }
    }

    private static void close(StringBuilder sb, Style style, int level) {
        if (style.indent() >= 0) {
            sb.append('\n').append(" ".repeat(style.indent() * level));
        }
    }

    private static void string(StringBuilder sb, String s, Style style) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || (style.ensureAscii() && c > 0x7e)) {
                        sb.append(String.format("\\u%04x", (int) c)); // UTF-16 units: surrogate pairs as Python
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** Python sorts str keys by code point (Java's compareTo is by UTF-16 unit). */
    private static int compareCodePoints(String a, String b) {
        return java.util.Arrays.compare(a.codePoints().toArray(), b.codePoints().toArray());
    }
}
