package io.sftnative.quant;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import io.sftnative.model.safetensors.SafetensorsCheckpoint;
import io.sftnative.model.safetensors.SafetensorsWriter;

/** Copies of small checkpoints with tensors or config.json edited (bad-input tests). */
final class CheckpointEdits {
    static final Path GOLDEN = Path.of("src/test/resources/golden");
    static final Path LLAMA = GOLDEN.resolve("model/llama_gqa/checkpoint");
    static final Path NF4 = GOLDEN.resolve("qlora/llama_nf4_dq");
    static final Path INT8 = GOLDEN.resolve("qlora/llama_int8");

    private CheckpointEdits() {}

    /** All tensors of a checkpoint as owned copies (in the caller's scope). */
    static Map<String, Tensor> tensors(Path dir) throws IOException {
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir)) {
            for (String n : ck.names()) {
                out.put(n, ck.view(n).clone());
            }
        }
        return out;
    }

    /** {@code dst} = {@code src} with its tensors passed through {@code edit} and config.json through {@code json}. */
    static Path copy(Path src, Path dst, Consumer<Map<String, Tensor>> edit, java.util.function.UnaryOperator<String> json)
            throws IOException {
        Files.createDirectories(dst);
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> t = tensors(src);
            edit.accept(t);
            SafetensorsWriter.write(dst.resolve("model.safetensors"), t, Map.of("format", "pt"));
        }
        Files.writeString(dst.resolve("config.json"), json.apply(Files.readString(src.resolve("config.json"))));
        return dst;
    }
}
