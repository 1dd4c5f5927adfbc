package io.sftnative.api;

import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A training run on its own thread. {@link #cancel()} asks it to stop after the current optimizer step; it then
 * saves a checkpoint (resumable) and ends with status CANCELLED. {@link #close()} cancels a run still going and
 * waits for it, so try-with-resources never leaves a training thread behind.
 */
public final class TrainingRun implements AutoCloseable {
    /** The work of a run; may throw anything (reported by {@link #await}). */
    interface Work {
        TrainResult call() throws Exception;
    }

    private final CompletableFuture<TrainResult> result = new CompletableFuture<>();
    private final AtomicBoolean cancel;
    private final Thread thread;

    private TrainingRun(Work work, AtomicBoolean cancel) {
        this.cancel = cancel;
        this.thread = new Thread(() -> {
            try {
                result.complete(work.call());
            } catch (Throwable t) {
                result.completeExceptionally(t);
            }
        }, "sft-native-train");
        thread.setDaemon(false);
    }

    static TrainingRun start(Work work, AtomicBoolean cancel) {
        TrainingRun run = new TrainingRun(work, cancel);
        run.thread.start();
        return run;
    }

    /** Requests a stop after the current optimizer step (a checkpoint is saved first). Returns at once. */
    public void cancel() {
        cancel.set(true);
    }

    public boolean isCancelRequested() {
        return cancel.get();
    }

    public boolean isDone() {
        return result.isDone();
    }

    /**
     * Waits for the end of the run.
     *
     * @throws TrainingFailedException when the run failed (bad config or data, NaN loss, I/O error); its cause is
     *                                 the original exception
     */
    public TrainResult await() throws InterruptedException {
        try {
            return result.get();
        } catch (ExecutionException e) {
            throw new TrainingFailedException(e.getCause());
        }
    }

    /** Waits at most {@code timeout}; empty if the run is still going. */
    public Optional<TrainResult> await(Duration timeout) throws InterruptedException {
        try {
            return Optional.of(result.get(timeout.toMillis(), TimeUnit.MILLISECONDS));
        } catch (TimeoutException e) {
            return Optional.empty();
        } catch (ExecutionException e) {
            throw new TrainingFailedException(e.getCause());
        }
    }

    /** Cancels the run if it is still going and waits for it to end (its checkpoint written). */
    @Override
    public void close() throws InterruptedException {
        if (!result.isDone()) {
            cancel();
        }
        thread.join();
    }
}
