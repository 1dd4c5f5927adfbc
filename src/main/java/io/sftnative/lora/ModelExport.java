package io.sftnative.lora;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.files.AtomicFiles;
import io.sftnative.files.RealPaths;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.FiniteCheck;
import io.sftnative.quant.BnbCheckpoint;
import io.sftnative.quant.QuantizationSpec;
import io.sftnative.torch.Devices;

/**
 * LLaMA-Factory's {@code export}: the base model with its LoRA adapters merged, written as a complete HF model
 * directory (config.json, safetensors shards + index when over the shard size, generation_config.json and the
 * tokenizer files of the base). The directory is staged next to the target and published in one rename, so a crash
 * leaves the previous export intact.
 */
public final class ModelExport {
    /** Files copied unchanged from the base directory when present (tokenizer, chat template, generation). */
    public static final List<String> COPIED_FILES = List.of("generation_config.json", "tokenizer.json",
            "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
            "merges.txt", "chat_template.jinja", "chat_template.json");

    /** What was written. */
    public record Result(Path dir, int adapters, List<String> files, long bytes) {}

    private ModelExport() {}

    /**
     * @param baseDir       the HF base model directory (model_name_or_path)
     * @param adapters      PEFT adapter directories merged in order (adapter_name_or_path; may be empty)
     * @param exportDir     the directory to write (replaced when it already holds a model)
     * @param maxShardBytes split the weights into shards of at most this many bytes
     * @param dtype         weights dtype, or null for the base config's torch_dtype (LLaMA-Factory's behaviour)
     */
    public static Result export(Path baseDir, List<Path> adapters, Path exportDir, long maxShardBytes,
            ScalarType dtype, Consumer<String> log) throws IOException {
        return export(baseDir, adapters, exportDir, maxShardBytes, dtype, null, log);
    }

    /**
     * As above; with {@code quantize} the merged model is written bitsandbytes-quantized (every linear layer but
     * lm_head, {@link BnbCheckpoint}; config.json gets {@code quantization_config}), loadable by transformers with
     * bitsandbytes and by {@code model_name_or_path} here.
     */
    public static Result export(Path baseDir, List<Path> adapters, Path exportDir, long maxShardBytes,
            ScalarType dtype, QuantizationSpec quantize, Consumer<String> log) throws IOException {
        try (PointerScope scope = new PointerScope()) {
            return export(baseDir, adapters, exportDir, maxShardBytes, dtype, quantize, Devices.host(), log);
        }
    }

    /**
     * As above, merging (and quantizing) on {@code device}: LLaMA-Factory's {@code export_device} ({@code cpu}, its
     * default and the other overloads', or {@code auto}); the weights are copied to the host as they are written.
     */
    public static Result export(Path baseDir, List<Path> adapters, Path exportDir, long maxShardBytes,
            ScalarType dtype, QuantizationSpec quantize, Device device, Consumer<String> log) throws IOException {
        return export(baseDir, adapters, exportDir, maxShardBytes, dtype, quantize, device, null, log);
    }

    /**
     * As above, with LLaMA-Factory's {@code rope_scaling} key ({@code linear}, {@code dynamic}, {@code yarn},
     * {@code llama3}, or null): LLaMA-Factory's export loads the model for inference, where {@code configure_rope}
     * has no {@code model_max_length} and scales by factor 2, and saves that config. So does this: the exported
     * config.json carries {@code rope_scaling} {rope_type, factor 2, ...} (and transformers 5's
     * {@code rope_parameters} when the base has it) and twice the base's {@code max_position_embeddings}
     * ({@link io.sftnative.model.ModelConfig#withLlamaFactoryRopeScaling}); the weights are unaffected.
     */
    public static Result export(Path baseDir, List<Path> adapters, Path exportDir, long maxShardBytes,
            ScalarType dtype, QuantizationSpec quantize, Device device, String ropeScaling, Consumer<String> log)
            throws IOException {
        checkTarget(baseDir, adapters, exportDir);
        Path staging = AtomicFiles.stagingDirectory(exportDir);
        try {
            try (DecoderModel model = DecoderModel.load(baseDir, dtype, device)) {
                AdapterChain.mergeAll(model, adapters);
                if (ropeScaling != null) {
                    model.rescaleRope(model.config().withLlamaFactoryRopeScaling(ropeScaling, null, log));
                }
                for (var e : model.parameters().entrySet()) { // a merge can overflow: never publish NaN/Inf weights
                    FiniteCheck.require(e.getValue(), e.getKey(), "the merged model", "nothing was exported; check"
                            + " the adapters (" + adapters + ") and the base dtype");
                }
                if (quantize == null) {
                    model.save(staging, maxShardBytes);
                } else {
                    if (model.savesMultimodal()) {
                        log.accept("warning: export_quantization_bit on the " + model.config().textTowerOf()
                                + " (multimodal) base " + baseDir + " writes a text-only quantized "
                                + model.config().modelType() + " checkpoint: the vision tower and projector are not"
                                + " in it (export without export_quantization_bit keeps them)");
                    }
                    BnbCheckpoint.save(model, staging, quantize, maxShardBytes);
                }
            }
            boolean tokenizer = false;
            Path tokenizerDir = AdapterChain.tokenizerDir(baseDir, adapters); // with the tokens added in training
            for (String f : COPIED_FILES) {
                Path src = (f.equals("generation_config.json") ? baseDir : tokenizerDir).resolve(f);
                if (Files.isRegularFile(src)) {
                    Files.copy(src, staging.resolve(f), StandardCopyOption.COPY_ATTRIBUTES);
                    tokenizer |= f.startsWith("tokenizer.");
                }
            }
            if (!tokenizer) {
                log.accept("warning: " + baseDir + " has no tokenizer.json or tokenizer.model; the exported model has"
                        + " no tokenizer files (copy them into " + exportDir + " before using it)");
            }
            List<String> files = new ArrayList<>();
            long bytes = 0;
            try (Stream<Path> s = Files.list(staging)) {
                for (Path p : s.sorted().toList()) {
                    files.add(p.getFileName().toString());
                    bytes += Files.size(p);
                }
            }
            AtomicFiles.publishDirectory(staging, exportDir);
            return new Result(exportDir, adapters.size(), files, bytes);
        } finally {
            AtomicFiles.deleteRecursively(staging); // no-op once published
        }
    }

    private static void checkTarget(Path baseDir, List<Path> adapters, Path exportDir) throws IOException {
        // real paths: through a symbolic link the base model is still the directory the export replaces
        Path target = RealPaths.of(exportDir);
        List<Path> sources = new ArrayList<>(adapters);
        sources.add(baseDir);
        for (Path src : sources) {
            if (RealPaths.within(src, exportDir)) {
                throw new IllegalArgumentException("export_dir " + exportDir + " would replace " + src
                        + (RealPaths.of(src).equals(src.toAbsolutePath().normalize()) ? ""
                                : " (" + RealPaths.of(src) + " through a symbolic link)")
                        + ", which the export reads; choose another export_dir");
            }
        }
        if (Files.exists(target)) {
            if (!Files.isDirectory(target)) {
                throw new IllegalArgumentException("export_dir " + exportDir + " is a file; choose a directory");
            }
            boolean empty;
            try (Stream<Path> s = Files.list(target)) {
                empty = s.findAny().isEmpty();
            }
            if (!empty && !Files.isRegularFile(target.resolve("config.json"))) {
                throw new IllegalArgumentException("export_dir " + exportDir + " exists and is not a model directory"
                        + " (no config.json); the export replaces the whole directory, so choose a new or empty one");
            }
        }
    }
}
