package io.sftnative.model.safetensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.bytedeco.pytorch.Tensor;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import io.sftnative.files.AtomicFiles;

/**
 * Writes a checkpoint the way transformers' {@code save_pretrained} does: {@code model.safetensors} when everything
 * fits in one shard, else {@code model-00001-of-0000N.safetensors} shards (filled greedily in the given order, a new
 * shard whenever the next tensor would exceed {@code maxShardBytes}) plus {@code model.safetensors.index.json}
 * ({@code {"metadata": {"total_size": N}, "weight_map": {name: file}}}). Each file is written atomically; stale
 * shards/index of an earlier save in the same directory are removed after the new ones are in place. For an
 * all-or-nothing save of a whole directory, write into {@link AtomicFiles#stagingDirectory} and publish it.
 */
public final class ShardedSafetensorsWriter {
    /** transformers' default {@code max_shard_size} ("5GB"). */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";
    private static final Pattern SHARD = Pattern.compile("model-\\d{5}-of-\\d{5}\\.safetensors");

    private ShardedSafetensorsWriter() {}

    /** Writes the tensors into {@code dir} and returns the files written (shards first, then the index if any). */
    public static List<Path> write(Path dir, Map<String, Tensor> tensors, Map<String, String> metadata,
            long maxShardBytes) throws IOException {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("maxShardBytes must be positive, got " + maxShardBytes);
        }
        Files.createDirectories(dir);
        List<Map<String, Tensor>> shards = new ArrayList<>();
        Map<String, Tensor> current = new LinkedHashMap<>();
        long currentBytes = 0;
        long total = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            long size = SafetensorsWriter.byteSize(e.getValue());
            if (!current.isEmpty() && currentBytes + size > maxShardBytes) {
                shards.add(current);
                current = new LinkedHashMap<>();
                currentBytes = 0;
            }
            current.put(e.getKey(), e.getValue());
            currentBytes += size;
            total += size;
        }
        shards.add(current);

        List<Path> written = new ArrayList<>();
        if (shards.size() == 1) {
            Path f = dir.resolve(SINGLE_FILE);
            SafetensorsWriter.write(f, shards.get(0), metadata);
            written.add(f);
        } else {
            Map<String, String> weightMap = new TreeMap<>();
            for (int i = 0; i < shards.size(); i++) {
                String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
                Path f = dir.resolve(name);
                SafetensorsWriter.write(f, shards.get(i), metadata);
                written.add(f);
                for (String t : shards.get(i).keySet()) {
                    weightMap.put(t, name);
                }
            }
            Map<String, Object> index = new LinkedHashMap<>();
            index.put("metadata", Map.of("total_size", total));
            index.put("weight_map", weightMap);
            byte[] json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsBytes(index);
            Path idx = dir.resolve(INDEX_FILE);
            AtomicFiles.write(idx, out -> {
                out.write(json);
                out.flush(); // AtomicFiles' buffered stream is not flushed by AtomicFiles itself
            });
            written.add(idx);
        }
        removeStale(dir, written);
        return written;
    }

    private static void removeStale(Path dir, List<Path> keep) throws IOException {
        List<Path> stale;
        try (Stream<Path> s = Files.list(dir)) {
            stale = s.filter(p -> {
                String n = p.getFileName().toString();
                return (SHARD.matcher(n).matches() || n.equals(SINGLE_FILE) || n.equals(INDEX_FILE))
                        && !keep.contains(p);
            }).toList();
        }
        for (Path p : stale) {
            Files.deleteIfExists(p);
        }
    }
}
