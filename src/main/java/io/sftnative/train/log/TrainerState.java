package io.sftnative.train.log;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.sftnative.files.AtomicFiles;
import io.sftnative.json.PyJson;

/**
 * HF Trainer's {@code trainer_state.json} (in every {@code checkpoint-N} and the output directory): written with
 * HF's field names and formatting ({@code json.dumps(asdict(state), indent=2, sort_keys=True) + "\n"}) so HF tools
 * and LLaMA-Factory's {@code plot_loss} read it, and read back for resume.
 *
 * @param epoch               fractional epoch reached (null before training)
 * @param numTrainEpochs      {@code ceil(num_train_epochs)}, as HF stores it
 * @param logHistory          HF's log entries in order (see {@link LogHistory})
 * @param trainingStopped     HF's {@code TrainerControl.should_training_stop} at save time
 */
public record TrainerState(Double epoch, long globalStep, long maxSteps, long loggingSteps, long evalSteps,
        long saveSteps, Integer trainBatchSize, long numTrainEpochs, long numInputTokensSeen, double totalFlos,
        List<Map<String, Object>> logHistory, Double bestMetric, Long bestGlobalStep, String bestModelCheckpoint,
        boolean trainingStopped) {
    public static final String FILE_NAME = "trainer_state.json";
    private static final ObjectMapper LENIENT = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    public TrainerState {
        List<Map<String, Object>> copy = new ArrayList<>();
        for (Map<String, Object> entry : logHistory) {
            copy.add(Collections.unmodifiableMap(new LinkedHashMap<>(entry)));
        }
        logHistory = Collections.unmodifiableList(copy);
    }

    /** Writes {@code dir/trainer_state.json} atomically. */
    public void write(Path dir) throws IOException {
        AtomicFiles.writeString(dir.resolve(FILE_NAME), toJson());
    }

    /** The file's text, byte for byte as HF writes it. */
    public String toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("best_global_step", bestGlobalStep);
        m.put("best_metric", bestMetric);
        m.put("best_model_checkpoint", bestModelCheckpoint);
        m.put("epoch", epoch);
        m.put("eval_steps", evalSteps);
        m.put("global_step", globalStep);
        m.put("is_hyper_param_search", false);
        m.put("is_local_process_zero", true);
        m.put("is_world_process_zero", true);
        m.put("log_history", logHistory);
        m.put("logging_steps", loggingSteps);
        m.put("max_steps", maxSteps);
        m.put("num_input_tokens_seen", numInputTokensSeen);
        m.put("num_train_epochs", numTrainEpochs);
        m.put("save_steps", saveSteps);
        Map<String, Object> control = new LinkedHashMap<>();
        control.put("should_epoch_stop", false);
        control.put("should_evaluate", false);
        control.put("should_log", false);
        control.put("should_save", true);
        control.put("should_training_stop", trainingStopped);
        m.put("stateful_callbacks", Map.of("TrainerControl", Map.of("args", control, "attributes", Map.of())));
        m.put("total_flos", totalFlos);
        m.put("train_batch_size", trainBatchSize);
        m.put("trial_name", null);
        m.put("trial_params", null);
        return PyJson.dumps(m, 2, true) + "\n";
    }

    /** Reads a {@code trainer_state.json} (ours or HF's); missing fields get HF's defaults. */
    public static TrainerState read(Path file) throws IOException {
        JsonNode n;
        try {
            n = LENIENT.readTree(Files.readString(file));
        } catch (IOException e) {
            throw new IOException(file + " is not valid JSON (" + e.getMessage().lines().findFirst().orElse("")
                    + "): the checkpoint is damaged; resume from an earlier checkpoint-N directory", e);
        }
        if (n == null || !n.isObject() || !n.has("global_step")) {
            throw new IOException(file + " is not a trainer state (no global_step): resume from another checkpoint");
        }
        List<Map<String, Object>> history = new ArrayList<>();
        for (JsonNode e : n.path("log_history")) {
            Map<String, Object> entry = new LinkedHashMap<>();
            e.properties().forEach(p -> entry.put(p.getKey(), scalar(p.getValue())));
            history.add(entry);
        }
        JsonNode control = n.path("stateful_callbacks").path("TrainerControl").path("args");
        return new TrainerState(
                n.path("epoch").isNumber() ? n.get("epoch").asDouble() : null,
                n.get("global_step").asLong(),
                n.path("max_steps").asLong(0),
                n.path("logging_steps").asLong(500),
                n.path("eval_steps").asLong(500),
                n.path("save_steps").asLong(500),
                n.path("train_batch_size").isNumber() ? n.get("train_batch_size").asInt() : null,
                n.path("num_train_epochs").asLong(0),
                n.path("num_input_tokens_seen").asLong(0),
                n.path("total_flos").asDouble(0),
                history,
                n.path("best_metric").isNumber() ? n.get("best_metric").asDouble() : null,
                n.path("best_global_step").isNumber() ? n.get("best_global_step").asLong() : null,
                n.path("best_model_checkpoint").isTextual() ? n.get("best_model_checkpoint").asText() : null,
                control.path("should_training_stop").asBoolean(false));
    }

    private static Object scalar(JsonNode v) {
        if (v.isIntegralNumber()) {
            return v.asLong();
        }
        if (v.isNumber()) {
            return v.asDouble();
        }
        if (v.isBoolean()) {
            return v.asBoolean();
        }
        if (v.isNull()) {
            return null;
        }
        return v.isTextual() ? v.asText() : v.toString();
    }
}
