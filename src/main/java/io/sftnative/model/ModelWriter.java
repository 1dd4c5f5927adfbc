package io.sftnative.model;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.files.AtomicFiles;
import io.sftnative.files.RealPaths;
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
        save(config, dtype, parameters, null, dir, maxShardBytes);
    }

    /**
     * As above; with {@code multimodal} (the gemma3 checkpoint the text model was loaded from) the model is written
     * back as that multimodal checkpoint: the text parameters under its layout, its vision tower and projector
     * unchanged, its config.json with the text part's changes ({@link MultimodalText#savedConfig}).
     */
    static void save(ModelConfig config, ScalarType dtype, Map<String, Tensor> parameters,
            MultimodalText.Source multimodal, Path dir, long maxShardBytes) throws IOException {
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
        Map<String, Tensor> tensors = parameters;
        String configJson = config.withTorchDtype(dtypeName).toJson();
        if (multimodal != null) {
            if (RealPaths.same(dir, multimodal.dir())) { // its vision tensors are read from the files replaced
                throw new IllegalArgumentException("cannot save the model into " + dir + ": it is the gemma3"
                        + " checkpoint it was loaded from (whose files the save replaces); choose another directory");
            }
            tensors = MultimodalText.savedTensors(parameters, multimodal);
            configJson = MultimodalText.savedConfig(config, multimodal, dtypeName);
        }
        ShardedSafetensorsWriter.write(dir, tensors, Map.of("format", "pt"), maxShardBytes);
        byte[] json = configJson.getBytes(StandardCharsets.UTF_8);
        AtomicFiles.write(dir.resolve("config.json"), out -> {
            out.write(json);
            out.flush(); // AtomicFiles' buffered stream is not flushed by AtomicFiles itself
        });
    }
}
