package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.config.ConfigException;
import io.sftnative.config.FinetuningArgs;
import io.sftnative.config.ModelArgs;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;

/**
 * The model of a run with what is trained in it: the base {@link DecoderModel} and, per {@code finetuning_type},
 * every weight (full), the last layers (freeze) or LoRA adapters. Owns both; {@link #close()} frees them.
 *
 * <p>Precision: trainable weights and their optimizer state are float32. With {@code bf16: true} the forward pass
 * runs under bf16 autocast ({@link Autocast}).
 */
public final class TrainableModel implements AutoCloseable {
    private final DecoderModel model;
    private final Map<String, Tensor> trainable;
    private final String finetuningType;
    private final String baseModelPath;

    private TrainableModel(DecoderModel model, Map<String, Tensor> trainable, String finetuningType,
            String baseModelPath) {
        this.model = model;
        this.trainable = Collections.unmodifiableMap(new LinkedHashMap<>(trainable));
        this.finetuningType = finetuningType;
        this.baseModelPath = baseModelPath;
    }

    /**
     * The model to train: loaded from {@code model_name_or_path} (or random-initialised with
     * {@code train_from_scratch}), or, when resuming, the weights of {@code resumeFrom}.
     *
     * @param resumeFrom a checkpoint directory to take the trained weights from, or null for a fresh run
     */
    public static TrainableModel forTraining(ModelArgs m, FinetuningArgs f, long seed, Path resumeFrom,
            Consumer<String> log) throws IOException {
        Path base = modelDir(m);
        String type = f.finetuningType();
        if (!type.equals("full")) {
            throw new ConfigException("finetuning_type '" + type + "' is not available in this build; use full");
        }
        DecoderModel model;
        if (resumeFrom != null) {
            model = DecoderModel.load(resumeFrom, ScalarType.Float);
        } else if (m.trainFromScratch()) {
            model = RandomInit.create(ModelConfig.read(base), seed, ScalarType.Float);
            log.accept("train_from_scratch: random-initialised " + model.config().architecture() + " from "
                    + base.resolve("config.json") + " (seed " + seed + ")");
        } else {
            model = DecoderModel.load(base, ScalarType.Float);
        }
        try {
            model.setRequiresGrad(true);
            return new TrainableModel(model, model.parameters(), type, base.toString());
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /** The model for evaluation only (the {@code eval} command, do_train false): no gradients. */
    public static TrainableModel forInference(ModelArgs m, boolean bf16) throws IOException {
        Path base = modelDir(m);
        DecoderModel model = DecoderModel.load(base, bf16 ? ScalarType.BFloat16 : ScalarType.Float);
        if (m.adapterNameOrPath() != null) {
            model.close();
            throw new ConfigException("adapter_name_or_path needs LoRA support, which is not available in this build");
        }
        return new TrainableModel(model, Map.of(), "none", base.toString());
    }

    /** model_name_or_path as an existing local directory, or a clear error. */
    static Path modelDir(ModelArgs m) {
        if (m.modelNameOrPath() == null) {
            throw new ConfigException("model_name_or_path is not set: point it to a local HF model directory"
                    + " (config.json, *.safetensors, tokenizer.json)");
        }
        Path p = Path.of(m.modelNameOrPath());
        if (!Files.isDirectory(p)) {
            throw new ConfigException("model_name_or_path " + p + " is not a directory: sft-native reads local HF"
                    + " model directories (config.json, *.safetensors, tokenizer files); download the model first");
        }
        return p;
    }

    public DecoderModel model() {
        return model;
    }

    /** The parameters the optimizer updates, by name (HF / PEFT names). */
    public Map<String, Tensor> trainable() {
        return trainable;
    }

    public String finetuningType() {
        return finetuningType;
    }

    /** Training mode (dropout on) or evaluation mode. */
    public void setTraining(boolean training) {
        // full fine-tuning of the Llama family has no dropout (attention_dropout 0)
    }

    /** Writes what a run produces into {@code dir}: the full model (config.json + safetensors). */
    public void saveWeights(Path dir) throws IOException {
        model.save(dir);
    }

    /** One line for the log: what trains and how much of the model that is. */
    public String describe() {
        long total = model.parameterCount();
        long train = 0;
        for (Tensor t : trainable.values()) {
            train += t.numel();
        }
        return String.format(Locale.ROOT, "%s fine-tuning: %,d trainable parameters of %,d (%.2f%%)",
                finetuningType, train, total, total == 0 ? 0 : 100.0 * train / total);
    }

    public String baseModelPath() {
        return baseModelPath;
    }

    @Override
    public void close() {
        model.close();
    }
}
