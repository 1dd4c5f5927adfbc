package io.sftnative.template;

import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;

import io.sftnative.json.PyJson;

/**
 * LLaMA-Factory's {@code gemma4} tool format: declarations and calls in Gemma 4's own notation (strings between
 * {@code <|"|>} markers, keys sorted), written as its Python does ({@code str()} of numbers, Python truthiness).
 */
final class Gemma4Tools {
    private static final String Q = "<|\"|>";

    private Gemma4Tools() {}

    static String declarations(List<JsonNode> tools) {
        List<String> out = new ArrayList<>();
        for (JsonNode f : ToolFormat.unwrapAll(tools, true)) {
            StringBuilder d = new StringBuilder("declaration:" + str(f.path("name")) + "{description:" + Q
                    + (f.has("description") ? str(f.get("description")) : "") + Q);
            JsonNode params = f.get("parameters");
            if (truthy(params)) {
                List<String> parts = new ArrayList<>();
                if (truthy(params.get("properties"))) {
                    List<String> props = new ArrayList<>();
                    params.get("properties").properties().forEach(e -> {
                        List<String> item = new ArrayList<>();
                        JsonNode schema = e.getValue();
                        if (truthy(schema.get("description"))) {
                            item.add("description:" + Q + str(schema.get("description")) + Q);
                        }
                        if (truthy(schema.get("type"))) {
                            item.add("type:" + Q + str(schema.get("type")).toUpperCase(java.util.Locale.ROOT) + Q);
                        }
                        props.add(e.getKey() + ":{" + String.join(",", item) + "}");
                    });
                    parts.add("properties:{" + String.join(",", props) + "}");
                }
                if (truthy(params.get("required"))) {
                    List<String> req = new ArrayList<>();
                    params.get("required").forEach(r -> req.add(Q + str(r) + Q));
                    parts.add("required:[" + String.join(",", req) + "]");
                }
                if (truthy(params.get("type"))) {
                    parts.add("type:" + Q + str(params.get("type")).toUpperCase(java.util.Locale.ROOT) + Q);
                }
                d.append(",parameters:{").append(String.join(",", parts)).append('}');
            }
            JsonNode response = f.get("response");
            if (truthy(response)) {
                List<String> parts = new ArrayList<>();
                if (truthy(response.get("description"))) {
                    parts.add("description:" + Q + str(response.get("description")) + Q);
                }
                String type = response.has("type") ? str(response.get("type")).toUpperCase(java.util.Locale.ROOT)
                        : "";
                if ("OBJECT".equals(type)) {
                    parts.add("type:" + Q + type + Q);
                }
                d.append(",response:{").append(String.join(",", parts)).append('}');
            }
            out.add(d.append('}').toString());
        }
        return String.join("\n", out);
    }

    static String calls(List<ToolFormat.Call> calls) {
        StringBuilder sb = new StringBuilder();
        for (ToolFormat.Call c : calls) {
            sb.append("<|tool_call>call:").append(c.name()).append('{');
            JsonNode args = c.arguments();
            if (args.isObject()) {
                List<String> parts = new ArrayList<>();
                for (String key : sortedKeys(args)) {
                    parts.add(key + ":" + argument(args.get(key), false));
                }
                sb.append(String.join(",", parts));
            } else if (args.isTextual()) {
                sb.append(args.asText());
            } else {
                sb.append(argument(args, false));
            }
            sb.append("}<tool_call|>");
        }
        return sb.toString();
    }

    private static String argument(JsonNode v, boolean escapeKeys) {
        if (v.isTextual()) {
            return Q + v.asText() + Q;
        }
        if (v.isBoolean()) {
            return v.asBoolean() ? "true" : "false";
        }
        if (v.isObject()) {
            List<String> items = new ArrayList<>();
            for (String key : sortedKeys(v)) {
                items.add((escapeKeys ? Q + key + Q : key) + ":" + argument(v.get(key), escapeKeys));
            }
            return "{" + String.join(",", items) + "}";
        }
        if (v.isArray()) {
            List<String> items = new ArrayList<>();
            v.forEach(x -> items.add(argument(x, escapeKeys)));
            return "[" + String.join(",", items) + "]";
        }
        if (v.isNull()) {
            return "null";
        }
        return str(v);
    }

    /** Python's sorted() on str keys: by code point. */
    private static List<String> sortedKeys(JsonNode o) {
        List<String> keys = new ArrayList<>();
        o.fieldNames().forEachRemaining(keys::add);
        keys.sort((a, b) -> {
            int i = 0;
            int j = 0;
            while (i < a.length() && j < b.length()) {
                int ca = a.codePointAt(i);
                int cb = b.codePointAt(j);
                if (ca != cb) {
                    return Integer.compare(ca, cb);
                }
                i += Character.charCount(ca);
                j += Character.charCount(cb);
            }
            return Integer.compare(a.length() - i, b.length() - j);
        });
        return keys;
    }

    /** Python's str() of a JSON value: strings as they are, floats as repr, containers as JSON (close enough). */
    private static String str(JsonNode v) {
        if (v.isTextual()) {
            return v.asText();
        }
        if (v.isFloatingPointNumber()) {
            return PyJson.floatRepr(v.asDouble());
        }
        if (v.isBoolean()) {
            return v.asBoolean() ? "True" : "False";
        }
        if (v.isNull() || v.isMissingNode()) {
            return "None";
        }
        return v.isIntegralNumber() ? v.asText() : PyJson.dumpsNonAscii(v);
    }

    /** Python truthiness of a JSON value (absent counts as None). */
    private static boolean truthy(JsonNode v) {
        if (v == null || v.isNull() || v.isMissingNode()) {
            return false;
        }
        if (v.isTextual()) {
            return !v.asText().isEmpty();
        }
        if (v.isContainerNode()) {
            return !v.isEmpty();
        }
        if (v.isBoolean()) {
            return v.asBoolean();
        }
        if (v.isNumber()) {
            return v.asDouble() != 0;
        }
        return true;
    }
}
