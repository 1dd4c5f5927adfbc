package io.sftnative.cli;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

import io.sftnative.model.ModelConfig;
import io.sftnative.model.ModelInfo;
import io.sftnative.model.RopeScaling;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code info MODEL_DIR}: architecture, parameter count, dtype and memory, from headers only (fast). */
@Command(name = "info", mixinStandardHelpOptions = true,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar info models/Qwen2.5-0.5B-Instruct"},
        description = "Show a model directory's architecture, parameter count, dtype and memory (weights are not"
                + " loaded; names and shapes are checked against config.json).")
final class InfoCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL_DIR", description = "HF model directory (config.json + safetensors)")
    Path modelDir;

    @Override
    public Integer call() throws Exception {
        ModelInfo info = ModelInfo.inspect(modelDir);
        ModelConfig c = info.config();
        System.out.println("model:          " + modelDir.toAbsolutePath().normalize());
        System.out.println("architecture:   " + c.architecture() + " (model_type " + c.modelType() + ")");
        System.out.printf(Locale.ROOT, "layers:         %d, hidden %d, intermediate %d (SwiGLU)%n",
                c.numHiddenLayers(), c.hiddenSize(), c.intermediateSize());
        System.out.printf(Locale.ROOT, "attention:      %d query heads, %d key/value heads%s, head_dim %d%s%s%s%n",
                c.numAttentionHeads(), c.numKeyValueHeads(), c.groupSize() > 1 ? " (GQA)" : "", c.headDim(),
                c.attentionBias() ? ", q/k/v bias" : "", c.qkNorm() ? ", q/k RMSNorm" : "",
                c.slidingWindow() != null ? ", sliding window " + c.slidingWindow() : "");
        RopeScaling rs = c.ropeScaling();
        System.out.printf(Locale.ROOT, "rope:           theta %.0f%s, max positions %d%n", c.ropeTheta(),
                rs == null ? "" : ", " + rs.type() + " scaling x" + rs.factor(), c.maxPositionEmbeddings());
        System.out.printf(Locale.ROOT, "vocabulary:     %d%s%n", c.vocabSize(),
                c.tieWordEmbeddings() ? " (embeddings tied with lm_head)" : "");
        System.out.printf(Locale.ROOT, "parameters:     %,d (%s)%n", info.parameterCount(),
                human(info.parameterCount(), 1000, ""));
        System.out.println("dtype:          " + info.mainDtype() + " on disk" + (info.storedDtypes().size() > 1
                ? " " + info.storedDtypes() : "") + (c.torchDtype() != null ? ", config torch_dtype "
                        + c.torchDtype() : ""));
        System.out.printf(Locale.ROOT, "weights:        %s on disk in %d file%s%n", human(info.storedBytes(), 1024, "B"),
                info.files(), info.files() == 1 ? "" : "s");
        System.out.printf(Locale.ROOT, "memory:         %s in fp32, %s in bf16 (weights only); full fine-tuning in"
                + " fp32 with AdamW needs ~%s before activations%n", human(info.weightBytes(4), 1024, "B"),
                human(info.weightBytes(2), 1024, "B"), human(info.weightBytes(16), 1024, "B"));
        return 0;
    }

    static String human(long n, int base, String unit) {
        String[] prefixes = base == 1024 ? new String[] {"", "Ki", "Mi", "Gi", "Ti"}
                : new String[] {"", "K", "M", "B", "T"};
        double v = n;
        int i = 0;
        while (v >= base && i < prefixes.length - 1) {
            v /= base;
            i++;
        }
        return String.format(Locale.ROOT, i == 0 ? "%.0f %s%s" : "%.2f %s%s", v, prefixes[i], unit).trim();
    }
}
