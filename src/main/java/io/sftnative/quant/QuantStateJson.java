package io.sftnative.quant;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The JSON blob bitsandbytes stores under {@code <prefix>.weight.quant_state.bitsandbytes__nf4} (or {@code __fp4}):
 * the non-tensor fields of a QuantState, keys in bitsandbytes' order (spec §2.7), e.g.
 * {@code {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4096, 4096], "nested_blocksize": 256,
 * "nested_dtype": "float32", "nested_offset": 0.0123}}.
 */
record QuantStateJson(QuantType quantType, int blocksize, String dtype, long[] shape, Integer nestedBlocksize,
        String nestedDtype, Double nestedOffset) {
    private static final ObjectMapper JSON = new ObjectMapper();

    boolean nested() {
        return nestedOffset != null;
    }

    byte[] toBytes() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("quant_type", quantType.bnbName);
        m.put("blocksize", blocksize);
        m.put("dtype", dtype);
        List<Long> s = new ArrayList<>();
        for (long d : shape) {
            s.add(d);
        }
        m.put("shape", s);
        if (nested()) {
            m.put("nested_blocksize", nestedBlocksize);
            m.put("nested_dtype", nestedDtype);
            m.put("nested_offset", nestedOffset);
        }
        try {
            return JSON.writeValueAsString(m).getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses the blob; {@code key} names it in error messages. */
    static QuantStateJson parse(byte[] utf8, String key) {
        JsonNode n;
        try {
            n = JSON.readTree(new String(utf8, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(key + " is not valid JSON: " + e.getOriginalMessage());
        }
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException(key + " must hold a JSON object");
        }
        QuantType qt = QuantType.parse(text(n, "quant_type", key));
        int bs = (int) number(n, "blocksize", key);
        String dtype = text(n, "dtype", key);
        JsonNode sh = n.get("shape");
        if (sh == null || !sh.isArray() || sh.isEmpty()) {
            throw new IllegalArgumentException(key + ": 'shape' must be a non-empty list of sizes");
        }
        long[] shape = new long[sh.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!sh.get(i).canConvertToLong() || sh.get(i).asLong() < 0) {
                throw new IllegalArgumentException(key + ": 'shape' entry " + i + " is not a size: " + sh.get(i));
            }
            shape[i] = sh.get(i).asLong();
        }
        Integer nbs = null;
        String ndt = null;
        Double off = null;
        if (n.has("nested_offset") || n.has("nested_blocksize")) {
            nbs = (int) number(n, "nested_blocksize", key);
            ndt = n.has("nested_dtype") ? n.get("nested_dtype").asText() : "float32";
            off = number(n, "nested_offset", key);
        }
        return new QuantStateJson(qt, bs, dtype, shape, nbs, ndt, off);
    }

    private static String text(JsonNode n, String field, String key) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException(key + ": missing or non-text field '" + field + "'");
        }
        return v.asText();
    }

    private static double number(JsonNode n, String field, String key) {
        JsonNode v = n.get(field);
        if (v == null || !v.isNumber()) {
            throw new IllegalArgumentException(key + ": missing or non-numeric field '" + field + "'");
        }
        return v.asDouble();
    }
}
