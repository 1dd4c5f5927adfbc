package io.sftnative.template;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's str and dict methods for jinjava. HF chat templates are written for Python's jinja2, where strings have
 * {@code strip}, {@code startswith}, {@code split}..., and dicts {@code items()}; Java strings and maps do not.
 * This resolver answers those calls and leaves every other one to jinjava's own resolvers.
 */
final class PyMethods extends ELResolver {

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (method == null) {
            return null;
        }
        Object[] p = params == null ? new Object[0] : params;
        Object result;
        if (base instanceof String s) {
            result = str(s, method.toString(), p);
        } else if (base instanceof Map<?, ?> m) {
            result = dict(m, method.toString(), p);
        } else {
            return null;
        }
        if (result == NOT_HANDLED) {
            return null;
        }
        context.setPropertyResolved(true);
        return result;
    }

    private static final Object NOT_HANDLED = new Object();

    private static Object str(String s, String method, Object[] p) {
        return switch (method) {
            case "strip" -> rstrip(lstrip(s, chars(p)), chars(p));
            case "lstrip" -> lstrip(s, chars(p));
            case "rstrip" -> rstrip(s, chars(p));
            case "startswith" -> anyOf(p[0], x -> s.startsWith(x));
            case "endswith" -> anyOf(p[0], x -> s.endsWith(x));
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT)
                    + s.substring(1).toLowerCase(Locale.ROOT);
            case "split" -> split(s, p.length > 0 && p[0] != null ? p[0].toString() : null,
                    p.length > 1 ? ((Number) p[1]).intValue() : -1);
            case "replace" -> p.length > 2 ? replaceN(s, p[0].toString(), p[1].toString(), ((Number) p[2]).intValue())
                    : s.replace(p[0].toString(), p[1].toString());
            case "find" -> (long) s.indexOf(p[0].toString());
            case "count" -> count(s, p[0].toString());
            case "join" -> join(s, p[0]);
            case "isspace" -> !s.isEmpty() && s.chars().allMatch(Character::isWhitespace);
            case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "splitlines" -> List.of(s.split("\\r?\\n|\\r", -1));
            default -> NOT_HANDLED;
        };
    }

    private static Object dict(Map<?, ?> m, String method, Object[] p) {
        return switch (method) {
            case "items" -> {
                List<List<Object>> out = new ArrayList<>();
                m.forEach((k, v) -> out.add(java.util.Arrays.asList(k, v)));
                yield out;
            }
            case "keys" -> new ArrayList<>(m.keySet());
            case "values" -> new ArrayList<>(m.values());
            case "get" -> m.containsKey(p[0]) ? m.get(p[0]) : (p.length > 1 ? p[1] : null);
            default -> NOT_HANDLED;
        };
    }

    private static String chars(Object[] p) {
        return p.length > 0 && p[0] != null ? p[0].toString() : null;
    }

    private static boolean isStripped(char c, String chars) {
        return chars == null ? Character.isWhitespace(c) : chars.indexOf(c) >= 0;
    }

    private static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && isStripped(s.charAt(i), chars)) {
            i++;
        }
        return s.substring(i);
    }

    private static String rstrip(String s, String chars) {
        int j = s.length();
        while (j > 0 && isStripped(s.charAt(j - 1), chars)) {
            j--;
        }
        return s.substring(0, j);
    }

    private static boolean anyOf(Object arg, java.util.function.Predicate<String> test) {
        if (arg instanceof Iterable<?> it) {
            for (Object o : it) {
                if (test.test(String.valueOf(o))) {
                    return true;
                }
            }
            return false;
        }
        return test.test(String.valueOf(arg));
    }

    private static List<String> split(String s, String sep, int max) {
        List<String> out = new ArrayList<>();
        if (sep == null) { // runs of whitespace, no empty strings
            for (String part : s.strip().split("\\s+", max < 0 ? 0 : max + 1)) {
                if (!part.isEmpty()) {
                    out.add(part);
                }
            }
            return out;
        }
        int from = 0;
        while (max < 0 || out.size() < max) {
            int at = s.indexOf(sep, from);
            if (at < 0) {
                break;
            }
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    private static String replaceN(String s, String a, String b, int n) {
        StringBuilder sb = new StringBuilder();
        int from = 0;
        for (int k = 0; k < n || n < 0; k++) {
            int at = s.indexOf(a, from);
            if (at < 0) {
                break;
            }
            sb.append(s, from, at).append(b);
            from = at + a.length();
        }
        return sb.append(s.substring(from)).toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.length() + 1;
        }
        long n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }

    private static String join(String sep, Object items) {
        List<String> parts = new ArrayList<>();
        if (items instanceof Iterable<?> it) {
            it.forEach(o -> parts.add(String.valueOf(o)));
        }
        return String.join(sep, parts);
    }

    private static String title(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        boolean prevLetter = false;
        for (char c : s.toCharArray()) {
            sb.append(prevLetter ? Character.toLowerCase(c) : Character.toUpperCase(c));
            prevLetter = Character.isLetter(c);
        }
        return sb.toString();
    }

    // Property access is left to jinjava's resolvers.
    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {}

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
