package io.sftnative.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.model.DecoderModel;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.model.Generation;
import io.sftnative.model.GenerationOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code generate MODEL_DIR --ids 1,2,3}: continues token ids (no tokenizer) and prints the new ids. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar generate saves/demo/base_model --ids 1,2,3 --ids 4,5 --max-new-tokens 16"},
        description = "Continue token ids with a model (KV cache; several --ids rows are decoded as one left-padded"
                + " batch) and print the generated ids, one row per line.")
final class GenerateCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL_DIR", description = "HF model directory (config.json + safetensors)")
    Path modelDir;

    @Option(names = "--ids", required = true, paramLabel = "ID[,ID...]",
            description = "prompt token ids, comma-separated; repeat the option for a batch of rows")
    List<String> idsRows;

    @Option(names = "--max-new-tokens", defaultValue = "32", description = "tokens to generate per row (default 32)")
    int maxNewTokens;

    @Option(names = "--stop-ids", split = ",", paramLabel = "ID[,ID...]",
            description = "stop tokens (default: eos_token_id of config.json / generation_config.json)")
    List<Long> stopIds;

    @Option(names = "--pad-id", description = "padding id for left padding (default: pad_token_id, else 0)")
    Long padId;

    @Mixin
    SamplingArgs sampling;

    @Mixin
    DtypeArg dtype;

    @Mixin
    TorchArgs torch;

    @Override
    public Integer call() throws Exception {
        torch.boot();
        ScalarType st = dtype.scalarType();
        try (Device device = new Device(torch.deviceName());
                DecoderModel model = QuantizedModels.load(modelDir, st, device, null,
                        w -> System.err.println("warning: " + w))) {
            long[][] prompts = rows(idsRows);
            long pad = padId != null ? padId
                    : model.config().padTokenId() != null ? model.config().padTokenId() : 0;
            long[] stops = (stopIds != null ? stopIds : defaultStops(model)).stream().mapToLong(Long::longValue)
                    .toArray();
            GenerationOptions opts = sampling.options(maxNewTokens, stops, pad, 0);
            long[][] out = Generation.generate(model, prompts, opts);
            for (long[] row : out) {
                StringBuilder sb = new StringBuilder();
                for (long id : row) {
                    sb.append(sb.isEmpty() ? "" : " ").append(id);
                }
                System.out.println(sb);
            }
        }
        return 0;
    }

    private static long[][] rows(List<String> rows) {
        long[][] out = new long[rows.size()][];
        for (int r = 0; r < out.length; r++) {
            List<String> row = List.of(rows.get(r).split(","));
            out[r] = new long[row.size()];
            for (int i = 0; i < row.size(); i++) {
                try {
                    out[r][i] = Long.parseLong(row.get(i).trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("--ids must be comma-separated token ids, got '" + row.get(i)
                            + "'");
                }
            }
        }
        return out;
    }

    private List<Long> defaultStops(DecoderModel model) throws java.io.IOException {
        Set<Long> stops = new LinkedHashSet<>();
        model.config().eosTokenIds().forEach(i -> stops.add(i.longValue()));
        Path gc = modelDir.resolve("generation_config.json");
        if (Files.isRegularFile(gc)) {
            JsonNode eos = new ObjectMapper().readTree(gc.toFile()).get("eos_token_id");
            if (eos != null && eos.isArray()) {
                eos.forEach(n -> stops.add(n.asLong()));
            } else if (eos != null && eos.canConvertToLong()) {
                stops.add(eos.asLong());
            }
        }
        return new ArrayList<>(stops);
    }
}
