package io.sftnative.train.log;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * The console view of a training run. On a terminal: a progress bar (steps, ETA) whose message shows the last loss,
 * learning rate and tokens/s, with log lines printed above it. Elsewhere (CI, {@code | tee}, a file): no bar and no
 * carriage returns, one plain line per logging step.
 */
public final class TrainProgress implements AutoCloseable {
    private final PrintStream out;
    private final ProgressBar bar; // null when not interactive
    private final long totalSteps;
    private final long startNanos = System.nanoTime();
    private final long startStep;

    private TrainProgress(PrintStream out, ProgressBar bar, long totalSteps, long startStep) {
        this.out = out;
        this.bar = bar;
        this.totalSteps = totalSteps;
        this.startStep = startStep;
    }

    /** A bar on {@code System.out} when it is a terminal, plain lines otherwise. */
    public static TrainProgress start(String task, long totalSteps, long startStep) {
        return start(task, totalSteps, startStep, System.out, isTerminal());
    }

    /**
     * @param startStep  the step a resumed run starts from (the bar starts there)
     * @param interactive draw a bar (only sensible on a terminal)
     */
    public static TrainProgress start(String task, long totalSteps, long startStep, PrintStream out,
            boolean interactive) {
        ProgressBar bar = null;
        if (interactive) {
            bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(totalSteps)
                    .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(500)
                    .setConsumer(new ConsoleProgressBarConsumer(out)).startsFrom(startStep, Duration.ZERO)
                    .build();
        }
        return new TrainProgress(out, bar, totalSteps, startStep);
    }

    /** True when standard output is an interactive terminal. */
    public static boolean isTerminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }

    /** After every optimizer step: moves the bar (no output without a terminal). */
    public void step(long step, double loss, double lr, double tokensPerSecond) {
        if (bar != null) {
            bar.stepTo(step);
            bar.setExtraMessage(message(loss, lr, tokensPerSecond));
        }
    }

    /** At a logging step: one line (above the bar on a terminal). */
    public void log(long step, double loss, double lr, Double gradNorm, double tokensPerSecond) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "step %d/%d (%.1f%%) | loss %.4f | lr %.3e", step, totalSteps,
                totalSteps > 0 ? 100.0 * step / totalSteps : 100.0, loss, lr));
        if (gradNorm != null) {
            sb.append(String.format(Locale.ROOT, " | grad_norm %.4f", gradNorm));
        }
        if (tokensPerSecond > 0) {
            sb.append(String.format(Locale.ROOT, " | %.0f tokens/s", tokensPerSecond));
        }
        double elapsed = (System.nanoTime() - startNanos) / 1e9;
        long done = step - startStep;
        sb.append(" | elapsed ").append(TrainerLog.timedelta(elapsed));
        if (done > 0) {
            sb.append(" | eta ").append(TrainerLog.timedelta((totalSteps - step) * elapsed / done));
        }
        line(sb.toString());
    }

    /** Any other line (eval results, checkpoint saved, warnings), kept apart from the bar. */
    public void line(String text) {
        if (bar != null) {
            out.print("\r\u001b[2K"); // clear the bar's line; it redraws itself
            out.println(text);
            bar.refresh();
        } else {
            out.println(text);
        }
        out.flush();
    }

    private static String message(double loss, double lr, double tokensPerSecond) {
        String m = String.format(Locale.ROOT, "loss %.4f lr %.2e", loss, lr);
        return tokensPerSecond > 0 ? m + String.format(Locale.ROOT, " %.0f tok/s", tokensPerSecond) : m;
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
        out.flush();
    }
}
