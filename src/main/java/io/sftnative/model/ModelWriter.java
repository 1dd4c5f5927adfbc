package io.sftnative.model;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.files.AtomicFiles;
import io.sftnative.model.safetensors.DType;
import io.sftnative.model.safetensors.ShardedSafetensorsWriter;

/** {@link DecoderModel#save}: HF-named safetensors (sharded above the limit) and config.json, each file atomically. */
final class ModelWriter {
    private ModelWriter() {}

    /**
     * Writes {@code parameters} (HF name -> tensor on any device; the writer copies GPU tensors to the host) and
     * {@code config} with {@code torch_dtype} set from {@code dtype}.
     */
    static void save(ModelConfig config, ScalarType dtype, Map<String, Tensor> parameters, Path dir,
            long maxShardBytes) throws IOException {
        for (String name : ParameterLayout.shapes(config).keySet()) {
            if (!parameters.containsKey(name)) {
                throw new IllegalStateException("cannot save " + name + ": this model holds it in a replaced slot"
                        + " (a quantized layer), not as a dense parameter; export it with the bitsandbytes writer"
                        + " (io.sftnative.quant.BnbCheckpoint.save) or dequantize first");
            }
        }
        String dtypeName = switch (DType.of(dtype)) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            default -> "float32";
        };
        ShardedSafetensorsWriter.write(dir, parameters, Map.of("format", "pt"), maxShardBytes);
        byte[] json = config.withTorchDtype(dtypeName).toJson().getBytes(StandardCharsets.UTF_8);
        AtomicFiles.write(dir.resolve("config.json"), out -> {
            out.write(json);
            out.flush(); // AtomicFiles' buffered stream is not flushed by AtomicFiles itself
        });
    }
}
