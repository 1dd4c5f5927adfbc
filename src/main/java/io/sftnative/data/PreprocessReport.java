package io.sftnative.data;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What preprocessing did: every record read is either kept or dropped for a reason (with the first file:line
 * locations), never lost silently.
 *
 * @param read            records read (after max_samples)
 * @param kept            examples produced (before packing)
 * @param truncated       examples cut by cutoff_len
 * @param truncatedAt     first locations of truncated examples
 * @param dropped         reason to count and first locations
 * @param rows            rows stored (packed rows when packing, blocks for pt)
 * @param tokens          tokens of kept examples (no padding)
 * @param trainableTokens of those, tokens whose label is not -100
 * @param noTrainable     kept examples without any trainable token
 * @param remainderTokens pt: tokens left over after cutting blocks (discarded, as LLaMA-Factory does)
 * @param binWidth        width of each length-histogram bin
 * @param lengthBins      kept examples per length bin (i*binWidth, (i+1)*binWidth]; the last: longer
 */
public record PreprocessReport(long read, long kept, long truncated, List<String> truncatedAt,
        Map<String, Drop> dropped, long rows, long tokens, long trainableTokens, long noTrainable,
        long remainderTokens, int minLength, int maxLength, int binWidth, long[] lengthBins) {

    /** Examples dropped for one reason. */
    public record Drop(long count, List<String> firstAt) {}

    static final int MAX_LOCATIONS = 5;
    private static final ObjectMapper JSON = new ObjectMapper();

    public long droppedTotal() {
        return dropped.values().stream().mapToLong(Drop::count).sum();
    }

    public double trainableFraction() {
        return tokens == 0 ? 0 : (double) trainableTokens / tokens;
    }

    public double meanLength() {
        return kept == 0 ? 0 : (double) tokens / kept;
    }

    /** A few lines for logs: counts, drops with reasons and locations. */
    public String summary() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("examples read %d, kept %d, dropped %d, truncated %d; %d rows; %d tokens,"
                + " %.1f%% trainable", read, kept, droppedTotal(), truncated, rows, tokens,
                100 * trainableFraction()));
        for (var e : dropped.entrySet()) {
            sb.append(String.format("%n  dropped %d: %s (first at %s)", e.getValue().count(), e.getKey(),
                    String.join(", ", e.getValue().firstAt())));
        }
        if (truncated > 0) {
            sb.append(String.format("%n  truncated %d to cutoff_len%s", truncated, truncatedAt.isEmpty() ? ""
                    : " (first at " + String.join(", ", truncatedAt) + ")"));
        }
        if (noTrainable > 0) {
            sb.append(String.format("%n  %d examples have no trainable token (everything masked or cut)",
                    noTrainable));
        }
        if (remainderTokens > 0) {
            sb.append(String.format("%n  %d tokens left over after cutting blocks were discarded",
                    remainderTokens));
        }
        return sb.toString();
    }

    /** The token-length histogram as text bars. */
    public String histogram() {
        StringBuilder sb = new StringBuilder();
        long max = 1;
        for (long b : lengthBins) {
            max = Math.max(max, b);
        }
        int last = lengthBins.length - 1;
        while (last > 0 && lengthBins[last] == 0) {
            last--;
        }
        for (int i = 0; i <= last; i++) {
            int bar = (int) Math.round(40.0 * lengthBins[i] / max);
            String range = i == lengthBins.length - 1 ? String.format("%6d+      ", i * binWidth + 1)
                    : String.format("%6d-%-6d", i * binWidth + 1, (i + 1) * binWidth);
            sb.append(String.format("  %s %7d %s%n", range, lengthBins[i], "#".repeat(bar)));
        }
        sb.append(String.format("  min %d, mean %.1f, max %d tokens%n", kept == 0 ? 0 : minLength, meanLength(),
                maxLength));
        return sb.toString();
    }

    String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    static PreprocessReport fromJson(String json) throws JsonProcessingException {
        return JSON.readValue(json, PreprocessReport.class);
    }

    /** Accumulates one chunk or a whole dataset list; merged in order, so first locations stay first. */
    static final class Builder {
        long read;
        long kept;
        long truncated;
        final List<String> truncatedAt = new ArrayList<>();
        final Map<String, long[]> dropCounts = new LinkedHashMap<>();
        final Map<String, List<String>> dropAt = new LinkedHashMap<>();
        long rows;
        long tokens;
        long trainable;
        long noTrainable;
        long remainder;
        int minLength = Integer.MAX_VALUE;
        int maxLength;
        final int binWidth;
        final long[] bins;

        Builder(int cutoffLen) {
            this.binWidth = Math.max(1, (cutoffLen + 15) / 16);
            this.bins = new long[16 + 1]; // the last bin holds anything longer than cutoff_len
        }

        void drop(String reason, String location) {
            dropCounts.computeIfAbsent(reason, r -> new long[1])[0]++;
            List<String> at = dropAt.computeIfAbsent(reason, r -> new ArrayList<>());
            if (at.size() < MAX_LOCATIONS) {
                at.add(location);
            }
        }

        void kept(int length, int trainableTokens, boolean wasTruncated, String location) {
            kept++;
            tokens += length;
            trainable += trainableTokens;
            if (trainableTokens == 0) {
                noTrainable++;
            }
            minLength = Math.min(minLength, length);
            maxLength = Math.max(maxLength, length);
            bins[Math.min(Math.max(length - 1, 0) / binWidth, bins.length - 1)]++;
            if (wasTruncated) {
                truncated++;
                if (truncatedAt.size() < MAX_LOCATIONS && !location.isEmpty()) {
                    truncatedAt.add(location);
                }
            }
        }

        void merge(Builder o) {
            read += o.read;
            kept += o.kept;
            truncated += o.truncated;
            for (String t : o.truncatedAt) {
                if (truncatedAt.size() < MAX_LOCATIONS) {
                    truncatedAt.add(t);
                }
            }
            o.dropCounts.forEach((reason, c) -> {
                dropCounts.computeIfAbsent(reason, r -> new long[1])[0] += c[0];
                List<String> at = dropAt.computeIfAbsent(reason, r -> new ArrayList<>());
                for (String l : o.dropAt.get(reason)) {
                    if (at.size() < MAX_LOCATIONS) {
                        at.add(l);
                    }
                }
            });
            rows += o.rows;
            tokens += o.tokens;
            trainable += o.trainable;
            noTrainable += o.noTrainable;
            remainder += o.remainder;
            minLength = Math.min(minLength, o.minLength);
            maxLength = Math.max(maxLength, o.maxLength);
            for (int i = 0; i < bins.length; i++) {
                bins[i] += o.bins[i];
            }
        }

        PreprocessReport build() {
            Map<String, Drop> d = new LinkedHashMap<>();
            dropCounts.forEach((r, c) -> d.put(r, new Drop(c[0], List.copyOf(dropAt.get(r)))));
            return new PreprocessReport(read, kept, truncated, List.copyOf(truncatedAt),
                    Collections.unmodifiableMap(d), rows, tokens, trainable, noTrainable, remainder,
                    kept == 0 ? 0 : minLength, maxLength, binWidth, bins.clone());
        }
    }
}
