package io.sftnative.api;

import java.nio.file.Path;
import java.util.Map;

/**
 * How a run ended.
 *
 * @param status         COMPLETED, or CANCELLED (stopped early on request; a checkpoint was saved to resume from)
 * @param globalStep     optimizer steps done
 * @param trainLoss      mean training loss over the steps this process ran (NaN when none ran)
 * @param outputDir      where results went
 * @param lastCheckpoint the newest checkpoint directory, or null
 * @param metrics        train/eval/predict metrics as written to all_results.json
 */
public record TrainResult(Status status, long globalStep, long totalSteps, double trainLoss, Path outputDir,
        Path lastCheckpoint, Map<String, Object> metrics) {
    public enum Status { COMPLETED, CANCELLED }

    public TrainResult {
        metrics = Map.copyOf(metrics);
    }
}
