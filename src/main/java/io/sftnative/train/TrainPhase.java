package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;

import io.sftnative.api.TrainResult;
import io.sftnative.checkpoint.CheckpointDirs;
import io.sftnative.checkpoint.TorchRng;
import io.sftnative.checkpoint.TrainingCheckpoint;
import io.sftnative.config.TrainingArgs;
import io.sftnative.files.AtomicFiles;
import io.sftnative.config.ConfigException;
import io.sftnative.config.RunControlArgs;
import io.sftnative.optim.LossScaler;
import io.sftnative.optim.Optimizer;
import io.sftnative.optim.LrSchedule;
import io.sftnative.optim.LrScheduler;
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
                + (run.parallel.worldSize() > 1 ? " x " + run.parallel.worldSize() + " ranks" : "") + ")"
                + (run.autocast.enabled() ? ", " + run.autocast.describe() + " autocast" : "")
                + (t.fp16() ? " with dynamic loss scaling" : "") + ", loss step " + run.loss.name());
        TrainLoop.Cadence cadence = cadence(t, evaluator != null);
        RunControlArgs rc = t.run();
        LrScheduler scheduler = new LrScheduler(schedule);
        LossScaler scaler = t.fp16() ? LossScaler.dynamic() : LossScaler.DISABLED;
        BestModel best = rc.tracksBest() || scheduler.needsEvaluations() ? new BestModel(rc) : null;
        checkRunControl(t, cadence, evaluator != null, scheduler);
        if (run.resume != null) { // the state beside the step: plateau counters, loss scale, best checkpoint
            Map<String, Object> st = run.resume.schedule().state();
            scheduler.restore(submap(st, "plateau"));
            scaler.restore(submap(st, "loss_scale"));
            if (best != null) {
                best.restore(submap(st, "best"));
            }
        }
        long logEvery = t.loggingSteps();
        long perEpoch = order.stepsPerEpoch();
        java.util.function.LongPredicate logAt = switch (rc.loggingStrategy()) {
            case "no" -> s -> false;
            case "epoch" -> s -> s % perEpoch == 0 || s == total;
            default -> s -> s % logEvery == 0 || s == total;
        };
        try (Optimizer optimizer = run.optimizer();
                RunRecord record = new RunRecord(run.outputDir, total, start, run.tokensSeen(), t.loggingSteps(),
                        logAt, run.history(), run.opts.listener(), run.opts.console(), writes)) {
            if (writes && t.reportTo().contains("tensorboard")) {
                Path logDir = t.loggingDir() != null ? Path.of(t.loggingDir())
                        : io.sftnative.train.log.TensorBoardWriter.defaultLoggingDir(run.outputDir);
                var tb = io.sftnative.train.log.TensorBoardWriter.open(logDir);
                record.tensorBoard(tb);
                record.message("TensorBoard events: " + tb.file());
            }
            Checkpointer checkpointer = new Checkpointer(run.outputDir, t.saveTotalLimit(), run.model, optimizer,
                    () -> new TrainingCheckpoint.Schedule(schedule.type().configName(), schedule.baseLr(), total,
                            schedule.warmupSteps(), runState(scheduler, scaler, best)), rc.saveOnlyModel(),
                    run.tokenizerDir, writes);
            if (run.resume != null) {
                checkpointer.setLast(run.resume.dir());
            }
            if (run.parallel.worldSize() > 1) {
                checkpointer.gatherRandomStates(() -> run.parallel.allGather(TorchRng.cpuState()));
                checkpointer.wholeWeights(run.parallel::fullWeights); // ZeRO-3: gathered while saving
            }
            TrainLoop.Evaluator evaluate = evaluator == null || run.parallel.worldSize() < 2 ? evaluator : () -> {
                try (var whole = run.parallel.fullWeights()) { // ZeRO-3: evaluation needs the whole weights
                    return evaluator.run();
                }
            };
            TrainLoop.Parts parts = new TrainLoop.Parts(run.model, run.data.data().train(), run.collator, order,
                    run.loss, optimizer, scheduler, scaler, t.maxGradNorm(), total, cadence, evaluate, best,
                    checkpointer, record, run.opts.listener(), run.opts.cancelled(), t.seed(), t.numTrainEpochs(),
                    run.sync);
            boolean pissaConvert = writes && run.cfg.finetuning().pissaConvert() && run.model.isPissa();
            if (pissaConvert && !java.nio.file.Files.isDirectory(run.outputDir.resolve("pissa_init"))) {
                run.model.savePissaInitial(run.outputDir); // a resumed run keeps the first run's
                record.message("initial PiSSA adapter saved to " + run.outputDir.resolve("pissa_init"));
            }
            run.opts.listener().onStart(start, total);
            TrainLoop.End end = TrainLoop.run(parts, start);
            if (run.parallel.zeroStage() == 3) { // its moments go before the weights are gathered: a lower peak
                optimizer.close(); // idempotent; nothing steps or saves it after the loop
            }
            run.parallel.endTraining(); // ZeRO-3: the whole weights from here on (saving, evaluation, prediction)
            long step = end == TrainLoop.End.COMPLETED ? total : CheckpointDirs.step(checkpointer.last())
                    .orElse(start);
            if (end == TrainLoop.End.EARLY_STOPPED) {
                step = record.lastStep();
            }
            if (end == TrainLoop.End.CANCELLED) {
                TrainResult r = new TrainResult(TrainResult.Status.CANCELLED, step, total, record.trainLoss(),
                        run.outputDir, checkpointer.last(), Map.of());
                return new Outcome(true, r, Map.of(), step, checkpointer.last());
            }
            if (rc.loadBestModelAtEnd() && best != null && best.bestCheckpoint() != null) {
                record.message("loading the best model from " + best.bestCheckpoint() + " (" + best.metricKey() + " "
                        + best.bestMetric() + ")");
                run.model.restoreTrainable(best.bestCheckpoint());
            }
            return new Outcome(false, null, finish(run, record, checkpointer, order, step, plotKeys), step,
                    checkpointer.last());
        }
    }

    /** Writes the trained weights and the run's records into output_dir; returns the train metrics. */
    private static Map<String, Object> finish(RunSetup run, RunRecord record, Checkpointer checkpointer,
            DataOrder order, long total, List<String> plotKeys) throws IOException {
        TrainingArgs t = run.cfg.training();
        Path out = run.outputDir;
        boolean writes = run.parallel.isMain();
        if (writes && run.cfg.finetuning().pissaConvert() && run.model.isPissa()) {
            run.model.savePissaConverted(out);
            record.message("PiSSA adapter converted to plain LoRA: " + out.resolve("pissa_converted"));
        }
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
        String save = t.run().saveStrategy();
        return new TrainLoop.Cadence(save.equals("steps") ? t.saveSteps() : 0, save.equals("epoch"),
                save.equals("no"), strategy.equals("steps") ? t.evalSteps() : 0, strategy.equals("epoch"),
                t.evalOnStart());
    }

    /** HF TrainingArguments' consistency rules for best-model selection, early stopping and plateau schedules. */
    private static void checkRunControl(TrainingArgs t, TrainLoop.Cadence c, boolean hasEval, LrScheduler s) {
        RunControlArgs rc = t.run();
        boolean evaluates = hasEval && (c.evalEvery() > 0 || c.evalEachEpoch());
        String needsEval = rc.loadBestModelAtEnd() ? "load_best_model_at_end"
                : rc.earlyStoppingSteps() > 0 ? "early_stopping_steps"
                : s.needsEvaluations() ? "lr_scheduler_type: reduce_lr_on_plateau" : null;
        if (needsEval != null && !evaluates) {
            throw new ConfigException(needsEval + " needs evaluations during training: give evaluation data (val_size"
                    + " or eval_dataset) and eval_strategy steps or epoch");
        }
        if (rc.earlyStoppingSteps() > 0 && !rc.loadBestModelAtEnd()) {
            throw new ConfigException("early_stopping_steps needs load_best_model_at_end: true (HF's"
                    + " EarlyStoppingCallback requires it): the best checkpoint is what early stopping keeps");
        }
        if (rc.loadBestModelAtEnd()) {
            boolean sameStrategy = (c.saveEachEpoch() && c.evalEachEpoch())
                    || (c.saveEvery() > 0 && c.evalEvery() > 0);
            if (!sameStrategy) {
                throw new ConfigException("load_best_model_at_end needs save_strategy and eval_strategy to match"
                        + " (both steps or both epoch), as in HF");
            }
            if (c.saveEvery() > 0 && c.saveEvery() % c.evalEvery() != 0) {
                throw new ConfigException("load_best_model_at_end needs save_steps (" + c.saveEvery() + ") to be a"
                        + " multiple of eval_steps (" + c.evalEvery() + "), as in HF, so that every checkpoint has"
                        + " an evaluation");
            }
        }
    }

    private static Map<String, Object> runState(LrScheduler s, LossScaler scaler, BestModel best) {
        Map<String, Object> m = new LinkedHashMap<>();
        if (!s.state().isEmpty()) {
            m.put("plateau", s.state());
        }
        if (!scaler.state().isEmpty()) {
            m.put("loss_scale", scaler.state());
        }
        if (best != null) {
            m.put("best", best.state());
        }
        return m;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> submap(Map<String, Object> m, String key) {
        return m.get(key) instanceof Map<?, ?> sub ? (Map<String, Object>) sub : Map.of();
    }
}
