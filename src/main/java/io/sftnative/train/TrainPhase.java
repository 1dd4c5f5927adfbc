package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;

import io.sftnative.api.TrainResult;
import io.sftnative.checkpoint.CheckpointDirs;
import io.sftnative.checkpoint.TrainingCheckpoint;
import io.sftnative.config.TrainingArgs;
import io.sftnative.files.AtomicFiles;
import io.sftnative.optim.AdamW;
import io.sftnative.optim.LrSchedule;
import io.sftnative.train.log.LossPlot;
import io.sftnative.train.log.ResultsWriter;
import io.sftnative.train.log.TrainerState;

/**
 * The training half of a recipe: build the loop's parts, run it, and publish what a finished run leaves in
 * {@code output_dir} (weights or adapter, tokenizer files, trainer_state.json, train_results.json,
 * all_results.json, the loss plots).
 */
final class TrainPhase {
    private TrainPhase() {}

    /** How training ended: the result to return when cancelled, the metrics otherwise. */
    record Outcome(boolean cancelled, TrainResult result, Map<String, Object> metrics, long step,
            Path lastCheckpoint) {}

    static Outcome run(RunSetup run, TrainLoop.Evaluator evaluator, List<String> plotKeys) throws IOException {
        TrainingArgs t = run.cfg.training();
        DataOrder order = run.order();
        long total = order.totalSteps(t.numTrainEpochs(), t.maxSteps());
        LrSchedule schedule = run.schedule(total);
        long start = run.startStep(order, schedule);
        run.seedRankStream(start);
        boolean writes = run.parallel.isMain(); // rank 0 of a data-parallel job writes; the others only train
        for (Path p : writes ? Checkpointer.cleanInterrupted(run.outputDir) : List.<Path>of()) {
            run.opts.say("removed " + p.getFileName() + ", left by an interrupted earlier run");
        }
        if (writes && run.resume == null && t.overwriteOutputDir()) {
            for (Path old : CheckpointDirs.list(run.outputDir)) { // a fresh run must not resume these later
                AtomicFiles.deleteRecursively(old);
            }
        }
        run.opts.say(run.model.describe() + "; " + order.examples() + " training rows, "
                + order.stepsPerEpoch() + " steps per epoch, " + total + " steps (batch " + order.batchSize()
                + " x accumulation " + order.accumulation()
                + (run.parallel.worldSize() > 1 ? " x " + run.parallel.worldSize() + " ranks" : "") + ")" + (run.autocast.enabled() ? ", bf16 autocast" : "")
                + ", loss step " + run.loss.name());
        TrainLoop.Cadence cadence = cadence(t, evaluator != null);
        try (AdamW optimizer = run.optimizer();
                RunRecord record = new RunRecord(run.outputDir, total, start, run.tokensSeen(), t.loggingSteps(),
                        run.history(), run.opts.listener(), run.opts.console(), writes)) {
            Checkpointer checkpointer = new Checkpointer(run.outputDir, t.saveTotalLimit(), run.model, optimizer,
                    new TrainingCheckpoint.Schedule(schedule.type().configName(), schedule.baseLr(), total,
                            schedule.warmupSteps()), run.tokenizerDir, writes);
            if (run.resume != null) {
                checkpointer.setLast(run.resume.dir());
            }
            TrainLoop.Parts parts = new TrainLoop.Parts(run.model, run.data.data().train(), run.collator, order,
                    run.loss, optimizer, schedule, t.maxGradNorm(), total, cadence, evaluator, checkpointer, record,
                    run.opts.listener(), run.opts.cancelled(), t.seed(), t.numTrainEpochs(), run.sync);
            run.opts.listener().onStart(start, total);
            TrainLoop.End end = TrainLoop.run(parts, start);
            long step = end == TrainLoop.End.COMPLETED ? total : CheckpointDirs.step(checkpointer.last())
                    .orElse(start);
            if (end == TrainLoop.End.CANCELLED) {
                TrainResult r = new TrainResult(TrainResult.Status.CANCELLED, step, total, record.trainLoss(),
                        run.outputDir, checkpointer.last(), Map.of());
                return new Outcome(true, r, Map.of(), step, checkpointer.last());
            }
            return new Outcome(false, null, finish(run, record, checkpointer, order, total, plotKeys), total,
                    checkpointer.last());
        }
    }

    /** Writes the trained weights and the run's records into output_dir; returns the train metrics. */
    private static Map<String, Object> finish(RunSetup run, RunRecord record, Checkpointer checkpointer,
            DataOrder order, long total, List<String> plotKeys) throws IOException {
        TrainingArgs t = run.cfg.training();
        Path out = run.outputDir;
        boolean writes = run.parallel.isMain();
        if (writes) {
            run.model.saveWeights(out);
            checkpointer.copyTokenizer(out);
        }
        double epoch = order.epochAfter(total);
        double flos = 6.0 * nonEmbeddingParameters(run.model) * record.tokensSeen();
        long samples = record.stepsThisRun() * (long) order.batchSize() * order.microBatchesPerStep();
        Map<String, Object> summary = record.summary(total, epoch, flos, samples);
        TrainerState state = record.state(total, epoch, t.evalSteps(), t.saveSteps(), order.batchSize(),
                t.numTrainEpochs(), flos, true);
        if (!writes) {
            return Map.of("train_loss", summary.get("train_loss"), "epoch", summary.get("epoch"));
        }
        state.write(out);
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("epoch", summary.get("epoch"));
        metrics.put("total_flos", flos);
        metrics.put("train_loss", summary.get("train_loss"));
        for (String k : List.of("train_runtime", "train_samples_per_second", "train_steps_per_second")) {
            if (summary.containsKey(k)) {
                metrics.put(k, summary.get(k));
            }
        }
        ResultsWriter.save(out, "train", metrics);
        record.message(ResultsWriter.table("train", metrics).stripTrailing());
        if (run.cfg.finetuning().plotLoss()) {
            try {
                for (Path png : LossPlot.plotAll(out, record.history(), plotKeys)) {
                    record.message("loss plot: " + png);
                }
            } catch (IOException e) {
                record.message("warning: " + e.getMessage());
            }
        }
        record.message("trained " + (run.model.finetuningType().equals("lora") ? "adapter" : "model") + " saved to "
                + out.toAbsolutePath());
        return metrics;
    }

    /** HF's floating_point_ops counts parameters without the embedding matrix. */
    private static long nonEmbeddingParameters(TrainableModel m) {
        long n = m.model().parameterCount();
        Tensor embed = m.model().embedWeight();
        return n - embed.numel();
    }

    private static TrainLoop.Cadence cadence(TrainingArgs t, boolean hasEval) {
        String strategy = t.evalStrategy() != null ? t.evalStrategy() : hasEval ? "steps" : "no";
        return new TrainLoop.Cadence(t.saveSteps(), strategy.equals("steps") ? t.evalSteps() : 0,
                strategy.equals("epoch"), t.evalOnStart());
    }
}
