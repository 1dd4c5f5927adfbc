package io.sftnative.model.safetensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The weights of an HF model directory: {@code model.safetensors}, or shards listed by
 * {@code model.safetensors.index.json}. All files are validated on open; every tensor named in the index must be in
 * the shard it names and every tensor of a shard must be in the index, and no name may appear in two shards.
 * Views are valid until {@link #close()} (see {@link SafetensorsFile}).
 */
public final class SafetensorsCheckpoint implements AutoCloseable {
    private final Path source;
    private final List<SafetensorsFile> files;
    private final Map<String, SafetensorsFile> byName;
    private final Map<String, String> stored; // name -> the name in its file, where they differ (renamed)

    private SafetensorsCheckpoint(Path source, List<SafetensorsFile> files, Map<String, SafetensorsFile> byName) {
        this(source, files, byName, Map.of());
    }

    private SafetensorsCheckpoint(Path source, List<SafetensorsFile> files, Map<String, SafetensorsFile> byName,
            Map<String, String> stored) {
        this.source = source;
        this.files = files;
        this.byName = byName;
        this.stored = stored;
    }

    /**
     * A view that names tensors by the keys of {@code names} (new name -> stored name); tensors not named there are
     * left out. It takes over the files: use and close the view, not this checkpoint. (Multimodal checkpoints whose
     * text part is loaded as a causal LM: {@code language_model.model.layers.0...} read as {@code model.layers.0...}.)
     */
    public SafetensorsCheckpoint renamed(Map<String, String> names) {
        Map<String, SafetensorsFile> by = new LinkedHashMap<>();
        Map<String, String> st = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : names.entrySet()) {
            by.put(e.getKey(), file(e.getValue()));
            st.put(e.getKey(), storedName(e.getValue()));
        }
        return new SafetensorsCheckpoint(source, files, Collections.unmodifiableMap(by), Map.copyOf(st));
    }

    /** The name {@code name} has in its file (differs in a {@link #renamed} view). */
    public String storedName(String name) {
        return stored.getOrDefault(name, name);
    }

    /** Opens a model directory (index preferred over a single file) or a single {@code .safetensors} file. */
    public static SafetensorsCheckpoint open(Path dirOrFile) throws IOException {
        if (Files.isRegularFile(dirOrFile)) {
            return single(dirOrFile);
        }
        if (!Files.isDirectory(dirOrFile)) {
            throw new NoSuchFileException(dirOrFile.toString(), null, "model directory not found");
        }
        Path index = dirOrFile.resolve(ShardedSafetensorsWriter.INDEX_FILE);
        if (Files.isRegularFile(index)) {
            return sharded(dirOrFile, index);
        }
        Path single = dirOrFile.resolve(ShardedSafetensorsWriter.SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            return single(single);
        }
        List<String> others;
        try (Stream<Path> s = Files.list(dirOrFile)) {
            others = s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".safetensors")).sorted().toList();
        }
        if (others.size() == 1) {
            return single(dirOrFile.resolve(others.get(0)));
        }
        throw new SafetensorsException(dirOrFile + ": no model.safetensors or model.safetensors.index.json"
                + (others.isEmpty() ? " (and no other .safetensors file; PyTorch .bin checkpoints are not supported:"
                        + " convert them with transformers' save_pretrained(safe_serialization=True))"
                        : " (found " + others + "; which one is meant is ambiguous)"));
    }

    private static SafetensorsCheckpoint single(Path file) throws IOException {
        SafetensorsFile f = SafetensorsFile.open(file);
        Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
        for (String n : f.names()) {
            byName.put(n, f);
        }
        return new SafetensorsCheckpoint(file, List.of(f), Collections.unmodifiableMap(byName));
    }

    private static SafetensorsCheckpoint sharded(Path dir, Path index) throws IOException {
        JsonNode root;
        try {
            root = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).readTree(index.toFile());
        } catch (IOException e) {
            throw new SafetensorsException(index + ": not valid JSON (" + e.getMessage() + ")", e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new SafetensorsException(index + ": missing the 'weight_map' object");
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            String file = e.getValue().asText();
            if (!e.getValue().isTextual() || file.isEmpty() || file.contains("/") || file.contains("\\")
                    || file.equals("..")) {
                throw new SafetensorsException(index + ": tensor '" + e.getKey() + "' maps to '" + e.getValue()
                        + "', which is not a file name in this directory");
            }
            weightMap.put(e.getKey(), file);
        }
        Map<String, SafetensorsFile> opened = new LinkedHashMap<>();
        Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
        try {
            for (String file : new TreeSet<>(weightMap.values())) {
                Path p = dir.resolve(file);
                if (!Files.isRegularFile(p)) {
                    throw new SafetensorsException(index + " lists shard '" + file + "', which is missing from "
                            + dir);
                }
                opened.put(file, SafetensorsFile.open(p));
            }
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                SafetensorsFile f = opened.get(e.getValue());
                if (!f.contains(e.getKey())) {
                    throw new SafetensorsException(index + " places tensor '" + e.getKey() + "' in "
                            + e.getValue() + ", but that shard does not hold it");
                }
                byName.put(e.getKey(), f);
            }
            for (SafetensorsFile f : opened.values()) {
                for (String n : f.names()) {
                    SafetensorsFile owner = byName.get(n);
                    if (owner != f) {
                        throw new SafetensorsException(f.path() + " holds tensor '" + n + "', which " + index
                                + (owner == null ? " does not list" : " places in " + owner.path().getFileName())
                                + "; the checkpoint is inconsistent");
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            opened.values().forEach(SafetensorsFile::close);
            throw e;
        }
        return new SafetensorsCheckpoint(index, List.copyOf(opened.values()), Collections.unmodifiableMap(byName));
    }

    /** The single file or the index this checkpoint was opened from (for messages). */
    public Path source() {
        return source;
    }

    public Set<String> names() {
        return byName.keySet();
    }

    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    public TensorEntry entry(String name) {
        return file(name).entry(storedName(name));
    }

    /** The file holding {@code name}. */
    public Path fileOf(String name) {
        return file(name).path();
    }

    /** {@code __metadata__} of the first file. */
    public Map<String, String> metadata() {
        return files.get(0).metadata();
    }

    /** Zero-copy view, valid until {@link #close()}. */
    public Tensor view(String name) {
        return file(name).view(storedName(name));
    }

    /** An owned copy in {@code dtype}. */
    public Tensor load(String name, ScalarType dtype) {
        return file(name).load(storedName(name), dtype);
    }

    /** See {@link SafetensorsFile#release}: drops the tensor's pages from resident memory after a copy. */
    public void release(String name) {
        file(name).release(storedName(name));
    }

    /** Total bytes of all tensors as stored. */
    public long totalBytes() {
        long n = 0;
        for (String name : byName.keySet()) {
            n += entry(name).byteLength();
        }
        return n;
    }

    private SafetensorsFile file(String name) {
        SafetensorsFile f = byName.get(name);
        if (f == null) {
            throw new SafetensorsException(source + ": no tensor named '" + name + "'");
        }
        return f;
    }

    @Override
    public void close() {
        List<RuntimeException> errors = new ArrayList<>();
        for (SafetensorsFile f : files) {
            try {
                f.close();
            } catch (RuntimeException e) {
                errors.add(e);
            }
        }
        if (!errors.isEmpty()) {
            throw errors.get(0);
        }
    }
}
