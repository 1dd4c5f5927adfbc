package io.sftnative.train.log;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.sftnative.files.AtomicFiles;
import io.sftnative.json.PyJson;

/**
 * HF Trainer's {@code save_metrics(split, metrics, combined=True)}: writes {@code <split>_results.json} and merges
 * the metrics into {@code all_results.json} (both {@code indent=4, sort_keys=True}), atomically; and its
 * {@code log_metrics} console table.
 */
public final class ResultsWriter {
    public static final String ALL_RESULTS = "all_results.json";

    private ResultsWriter() {}

    /** Writes {@code outputDir/<split>_results.json} and updates {@code outputDir/all_results.json}. */
    public static void save(Path outputDir, String split, Map<String, ?> metrics) throws IOException {
        for (Map.Entry<String, ?> e : metrics.entrySet()) {
            if (e.getValue() instanceof Number n && !Double.isFinite(n.doubleValue())) {
                // NaN is not JSON, and a NaN eval_loss with exit 0 reads as a result; it is a failure
                throw new IllegalStateException("the " + split + " metric '" + e.getKey() + "' is " + n + ": the"
                        + " model's outputs are not finite on the " + split + " data (NaN/Inf weights, or an overflow"
                        + " in bf16?); nothing was written to " + outputDir.resolve(split + "_results.json"));
            }
        }
        AtomicFiles.writeString(outputDir.resolve(split + "_results.json"), PyJson.dumps(metrics, 4, true));
        Map<String, Object> all = new LinkedHashMap<>();
        Path allFile = outputDir.resolve(ALL_RESULTS);
        if (Files.exists(allFile)) {
            JsonNode n;
            try {
                n = JsonMapper.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build()
                        .readTree(Files.readString(allFile));
            } catch (IOException e) {
                throw new IOException(allFile + " is not valid JSON; move it away to let the run write a fresh one",
                        e);
            }
            if (n != null && n.isObject()) {
                n.properties().forEach(p -> all.put(p.getKey(), p.getValue().isIntegralNumber() ? p.getValue()
                        .asLong() : p.getValue().isNumber() ? p.getValue().asDouble() : p.getValue().isTextual()
                        ? p.getValue().asText() : p.getValue().toString()));
            }
        }
        all.putAll(metrics);
        AtomicFiles.writeString(allFile, PyJson.dumps(all, 4, true));
    }

    /** HF's {@code log_metrics} table: {@code ***** train metrics *****} then sorted {@code key = value} lines. */
    public static String table(String split, Map<String, ?> metrics) {
        Map<String, String> formatted = new LinkedHashMap<>();
        metrics.forEach((k, v) -> formatted.put(k, format(k, v)));
        int kWidth = formatted.keySet().stream().mapToInt(String::length).max().orElse(0);
        int vWidth = formatted.values().stream().mapToInt(String::length).max().orElse(0);
        List<String> keys = new ArrayList<>(formatted.keySet());
        keys.sort(null);
        StringBuilder sb = new StringBuilder("***** " + split + " metrics *****\n");
        for (String k : keys) {
            sb.append("  ").append(String.format("%-" + Math.max(1, kWidth) + "s", k)).append(" = ")
                    .append(String.format("%" + Math.max(1, vWidth) + "s", formatted.get(k))).append('\n');
        }
        return sb.toString();
    }

    private static String format(String key, Object v) {
        if (v instanceof Number n && key.contains("_runtime")) {
            double secs = n.doubleValue();
            long whole = (long) secs;
            long msec = (long) (Math.abs(secs - whole) * 100);
            return TrainerLog.timedelta(whole) + "." + String.format("%02d", msec);
        }
        if (v instanceof Number n && key.equals("total_flos")) {
            return (((long) n.doubleValue()) >> 30) + "GF";
        }
        if (v instanceof Double d) {
            return PyJson.floatRepr(PyJson.round(d, 4));
        }
        return String.valueOf(v);
    }
}
