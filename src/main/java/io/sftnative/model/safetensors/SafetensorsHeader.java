package io.sftnative.model.safetensors;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A parsed and validated safetensors header: every entry has a known dtype, a byte length equal to
 * dtype size x shape, lies inside the data area and overlaps no other entry; names are unique.
 */
record SafetensorsHeader(Map<String, TensorEntry> entries, Map<String, String> metadata) {
    /** The reference implementation refuses headers above 100 MB; so do we (a corrupt length would OOM). */
    static final long MAX_HEADER_BYTES = 100_000_000L;
    static final String METADATA_KEY = "__metadata__";

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    static SafetensorsHeader parse(Path file, byte[] headerBytes, long dataSize) {
        JsonNode root;
        try {
            root = JSON.readTree(new String(headerBytes, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            String msg = e.getOriginalMessage();
            if (msg != null && msg.startsWith("Duplicate field")) {
                throw new SafetensorsException(file + ": the header names a tensor twice (" + msg
                        + "); the file is corrupt or was written by a broken tool");
            }
            throw new SafetensorsException(file + ": the header is not valid JSON (" + msg
                    + "); the file is corrupt or not a safetensors file", e);
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsException(file + ": the header is not a JSON object; not a safetensors file");
        }
        Map<String, TensorEntry> entries = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> f : root.properties()) {
            String name = f.getKey();
            JsonNode v = f.getValue();
            if (name.equals(METADATA_KEY)) {
                readMetadata(file, v, metadata);
                continue;
            }
            entries.put(name, readEntry(file, name, v, dataSize));
        }
        checkOverlaps(file, entries);
        return new SafetensorsHeader(Collections.unmodifiableMap(entries), Collections.unmodifiableMap(metadata));
    }

    private static void readMetadata(Path file, JsonNode v, Map<String, String> out) {
        if (v.isNull()) {
            return;
        }
        if (!v.isObject()) {
            throw new SafetensorsException(file + ": '__metadata__' must be an object of strings");
        }
        for (Map.Entry<String, JsonNode> m : v.properties()) {
            if (!m.getValue().isTextual()) {
                throw new SafetensorsException(file + ": '__metadata__' value of '" + m.getKey()
                        + "' is not a string (safetensors metadata maps strings to strings)");
            }
            out.put(m.getKey(), m.getValue().textValue());
        }
    }

    private static TensorEntry readEntry(Path file, String name, JsonNode v, long dataSize) {
        String where = file + ": tensor '" + name + "'";
        if (!v.isObject()) {
            throw new SafetensorsException(where + ": entry is not an object with dtype, shape and data_offsets");
        }
        JsonNode dt = v.get("dtype");
        if (dt == null || !dt.isTextual()) {
            throw new SafetensorsException(where + ": missing 'dtype'");
        }
        DType dtype = DType.parse(dt.textValue());
        if (dtype == null) {
            throw new SafetensorsException(where + ": unknown dtype '" + dt.textValue() + "' (supported: "
                    + DType.supportedNames() + ")");
        }
        JsonNode sh = v.get("shape");
        if (sh == null || !sh.isArray()) {
            throw new SafetensorsException(where + ": missing 'shape'");
        }
        long[] shape = new long[sh.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.longValue() < 0) {
                throw new SafetensorsException(where + ": shape " + sh + " has a dimension that is not a"
                        + " non-negative integer");
            }
            shape[i] = d.longValue();
        }
        JsonNode off = v.get("data_offsets");
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber()
                || !off.get(1).isIntegralNumber() || !off.get(0).canConvertToLong()
                || !off.get(1).canConvertToLong()) {
            throw new SafetensorsException(where + ": 'data_offsets' must be [begin, end]");
        }
        long begin = off.get(0).longValue();
        long end = off.get(1).longValue();
        if (begin < 0 || end < begin) {
            throw new SafetensorsException(where + ": data_offsets [" + begin + ", " + end + "] are not an"
                    + " increasing pair");
        }
        if (end > dataSize) {
            throw new SafetensorsException(where + ": data_offsets [" + begin + ", " + end
                    + "] lie outside the data area of " + dataSize + " bytes; the file is truncated or corrupt");
        }
        long expected;
        try {
            long numel = 1;
            for (long d : shape) {
                numel = Math.multiplyExact(numel, d);
            }
            expected = Math.multiplyExact(numel, (long) dtype.bytes());
        } catch (ArithmeticException e) {
            throw new SafetensorsException(where + ": shape " + sh + " is too large");
        }
        if (end - begin != expected) {
            throw new SafetensorsException(where + ": holds " + (end - begin) + " bytes but " + dtype + " x shape "
                    + sh + " needs " + expected + " bytes");
        }
        return new TensorEntry(name, dtype, shape, begin, end);
    }

    private static void checkOverlaps(Path file, Map<String, TensorEntry> entries) {
        List<TensorEntry> sorted = new ArrayList<>();
        for (TensorEntry e : entries.values()) {
            if (e.byteLength() > 0) {
                sorted.add(e);
            }
        }
        sorted.sort(Comparator.comparingLong(TensorEntry::begin));
        for (int i = 1; i < sorted.size(); i++) {
            TensorEntry a = sorted.get(i - 1);
            TensorEntry b = sorted.get(i);
            if (b.begin() < a.end()) {
                throw new SafetensorsException(file + ": tensors '" + a.name() + "' [" + a.begin() + ", " + a.end()
                        + ") and '" + b.name() + "' [" + b.begin() + ", " + b.end()
                        + ") overlap; the file is corrupt");
            }
        }
    }
}
