package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import io.sftnative.api.EvalEvent;
import io.sftnative.api.StepEvent;
import io.sftnative.api.TrainingListener;
import io.sftnative.json.PyJson;
import io.sftnative.train.log.LogHistory;
import io.sftnative.train.log.TrainProgress;
import io.sftnative.train.log.TrainerLog;
import io.sftnative.train.log.TrainerState;

/**
 * What a run reports while it trains, in one place: the console (progress bar or plain lines), LLaMA-Factory's
 * {@code trainer_log.jsonl}, HF's {@code log_history} (for {@code trainer_state.json} and the loss plot) and the
 * listener. Only scalars arrive here.
 */
final class RunRecord implements AutoCloseable {
    private final TrainerLog trainerLog;
    private final TrainProgress progress;
    private final TrainingListener listener;
    private final List<Map<String, Object>> history;
    private final long loggingSteps;
    private final java.util.function.LongPredicate logAt; // logging_strategy: which steps write a log entry
    private final long totalSteps;
    private final long startNanos = System.nanoTime();
    private final long startTokens;
    private double lossSinceLog;
    private double auxSinceLog;
    private int stepsSinceLog;
    private double lossThisRun;
    private long stepsThisRun;
    private long tokensSeen;
    private long lastStep;
    private io.sftnative.train.log.TensorBoardWriter tensorBoard; // null unless report_to tensorboard

    /**
     * @param history the log history so far (a resumed run's, from its trainer_state.json), continued here
     * @param writes  whether this process writes trainer_log.jsonl (rank 0 of a data-parallel job does)
     */
    RunRecord(Path outputDir, long totalSteps, long startStep, long tokensSeen, long loggingSteps,
            List<Map<String, Object>> history, TrainingListener listener, boolean console, boolean writes)
            throws IOException {
        this(outputDir, totalSteps, startStep, tokensSeen, loggingSteps,
                s -> s % loggingSteps == 0 || s == totalSteps, history, listener, console, writes);
    }

    /** @param logAt the steps that write a train log entry (logging_strategy) */
    RunRecord(Path outputDir, long totalSteps, long startStep, long tokensSeen, long loggingSteps,
            java.util.function.LongPredicate logAt, List<Map<String, Object>> history, TrainingListener listener,
            boolean console, boolean writes) throws IOException {
        this.logAt = logAt;
        this.trainerLog = writes ? TrainerLog.open(outputDir, totalSteps, startStep, tokensSeen) : null;
        this.progress = console ? TrainProgress.start("train", totalSteps, startStep) : null;
        this.listener = listener;
        this.history = new ArrayList<>(history);
        this.loggingSteps = loggingSteps;
        this.totalSteps = totalSteps;
        this.startTokens = tokensSeen;
        this.tokensSeen = tokensSeen;
    }

    /**
     * After optimizer step {@code step}: bar, listener, and at logging steps a log line. {@code auxLoss}: a
     * mixture-of-experts model's load-balancing loss of the step (logged as {@code aux_loss}), NaN for none.
     */
    void step(long step, double epoch, double loss, double lr, double gradNorm, long targets, long tokens,
            double auxLoss) throws IOException {
        tokensSeen += tokens;
        lastStep = step;
        if (!Double.isNaN(auxLoss)) {
            auxSinceLog += auxLoss;
        }
        double rate = tokensPerSecond();
        lossSinceLog += loss;
        stepsSinceLog++;
        lossThisRun += loss;
        stepsThisRun++;
        if (progress != null) {
            progress.step(step, loss, lr, rate);
        }
        listener.onStep(new StepEvent(step, totalSteps, epoch, loss, lr, gradNorm, targets, tokensSeen, rate));
        if (logAt.test(step)) {
            double mean = lossSinceLog / stepsSinceLog;
            if (trainerLog != null) {
                trainerLog.log(TrainerLog.Event.train(step, mean, lr, round2(epoch), tokensSeen));
            }
            Map<String, Object> entry = LogHistory.train(step, round2(epoch), mean, gradNorm, lr, tokensSeen);
            if (!Double.isNaN(auxLoss)) {
                entry.put("aux_loss", PyJson.round(auxSinceLog / stepsSinceLog, 4));
                message(String.format(Locale.ROOT, "step %d: aux_loss %.4f", step, auxSinceLog / stepsSinceLog));
            }
            history.add(entry);
            if (tensorBoard != null) {
                Map<String, Double> scalars = new java.util.LinkedHashMap<>();
                scalars.put("loss", mean);
                scalars.put("grad_norm", gradNorm);
                scalars.put("learning_rate", lr);
                scalars.put("epoch", round2(epoch));
                if (!Double.isNaN(auxLoss)) {
                    scalars.put("aux_loss", auxSinceLog / stepsSinceLog);
                }
                tensorBoard.scalars(step, scalars);
            }
            auxSinceLog = 0;
            if (progress != null) {
                progress.log(step, mean, lr, gradNorm, rate);
            }
            lossSinceLog = 0;
            stepsSinceLog = 0;
        }
    }

    /** Also writes the logged scalars to TensorBoard (report_to: tensorboard); closed with this record. */
    void tensorBoard(io.sftnative.train.log.TensorBoardWriter writer) {
        this.tensorBoard = writer;
    }

    /** The last optimizer step recorded (0 before the first). */
    long lastStep() {
        return lastStep;
    }

    /** An evaluation's metrics (HF names: eval_loss, ...). */
    void eval(long step, double epoch, Map<String, Double> metrics, double runtime, long examples, long batches)
            throws IOException {
        Map<String, Object> entry = LogHistory.eval("eval", step, round2(epoch), metrics, runtime, examples, batches);
        history.add(entry);
        if (tensorBoard != null) {
            tensorBoard.scalars(step, metrics);
        }
        Double loss = metrics.get("eval_loss");
        if (loss != null && trainerLog != null) {
            Double acc = metrics.get("eval_accuracy");
            trainerLog.log(new TrainerLog.Event(step, null, loss, null, acc, null, round2(epoch), tokensSeen));
        }
        StringBuilder sb = new StringBuilder("eval at step " + step + ":");
        metrics.forEach((k, v) -> sb.append(String.format(Locale.ROOT, " %s %.4f", k, v)));
        message(sb.toString());
        listener.onEval(new EvalEvent(step, metrics));
    }

    /** The final entry of the log history (train_loss over this process's steps, speed). */
    Map<String, Object> summary(long step, double epoch, double totalFlos, long samples) {
        double runtime = elapsedSeconds();
        Map<String, Object> entry = LogHistory.trainSummary(step, round2(epoch), trainLoss(), totalFlos, runtime,
                samples, stepsThisRun);
        history.add(entry);
        return entry;
    }

    /** HF's trainer_state.json at {@code step}. */
    TrainerState state(long step, double epoch, long evalSteps, long saveSteps, int batchSize, double epochs,
            double totalFlos, boolean stopped) {
        return new TrainerState(round2(epoch), step, totalSteps, loggingSteps, evalSteps, saveSteps, batchSize,
                (long) Math.ceil(epochs), tokensSeen, totalFlos, history, null, null, null, stopped);
    }

    void message(String text) {
        if (progress != null) {
            progress.line(text);
        }
        listener.onMessage(text);
    }

    List<Map<String, Object>> history() {
        return history;
    }

    long tokensSeen() {
        return tokensSeen;
    }

    double trainLoss() {
        return stepsThisRun == 0 ? Double.NaN : lossThisRun / stepsThisRun;
    }

    long stepsThisRun() {
        return stepsThisRun;
    }

    double elapsedSeconds() {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    private double tokensPerSecond() {
        double s = elapsedSeconds();
        return s > 0 ? (tokensSeen - startTokens) / s : 0;
    }

    /** HF logs epochs rounded to 2 decimals. */
    private static double round2(double epoch) {
        return Math.round(epoch * 100.0) / 100.0;
    }

    @Override
    public void close() {
        if (progress != null) {
            progress.close();
        }
        if (tensorBoard != null) {
            try {
                tensorBoard.close();
            } catch (IOException e) {
                message("warning: closing the TensorBoard file " + tensorBoard.file() + ": " + e.getMessage());
            }
        }
    }
}
