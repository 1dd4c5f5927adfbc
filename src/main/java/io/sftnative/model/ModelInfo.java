package io.sftnative.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

import io.sftnative.model.safetensors.DType;
import io.sftnative.model.safetensors.SafetensorsCheckpoint;

/**
 * What a model directory holds, read from config.json and the safetensors headers only (no weights are loaded),
 * after the same name/shape checks as loading.
 *
 * @param parameterCount elements of all parameters (tied embeddings once)
 * @param storedDtypes   elements per stored dtype
 * @param storedBytes    bytes of all weights on disk
 * @param files          number of safetensors files
 */
public record ModelInfo(ModelConfig config, long parameterCount, Map<DType, Long> storedDtypes, long storedBytes,
        int files) {

    public static ModelInfo inspect(Path dir) throws IOException {
        ModelConfig config = ModelConfig.read(dir);
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir)) {
            Map<String, long[]> expected = ParameterLayout.shapes(config);
            ModelLoader.check(config, ck, expected);
            Map<DType, Long> dtypes = new TreeMap<>();
            long bytes = 0;
            java.util.Set<Path> files = new java.util.HashSet<>();
            for (String name : expected.keySet()) {
                var e = ck.entry(name);
                dtypes.merge(e.dtype(), e.numel(), Long::sum);
                bytes += e.byteLength();
                files.add(ck.fileOf(name));
            }
            return new ModelInfo(config, ParameterLayout.count(config), dtypes, bytes, files.size());
        }
    }

    /** The dtype most parameters are stored in. */
    public DType mainDtype() {
        return storedDtypes.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey)
                .orElse(DType.F32);
    }

    /** Bytes to hold the weights in memory at {@code bytesPerParameter}. */
    public long weightBytes(int bytesPerParameter) {
        return parameterCount * bytesPerParameter;
    }
}
