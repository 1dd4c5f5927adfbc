package io.sftnative.train;

import java.util.function.BooleanSupplier;

import io.sftnative.api.TrainingListener;
import io.sftnative.distributed.DistributedEnv;
import io.sftnative.loss.LossComputation;

/**
 * How a recipe is run (not what it trains, which is the config).
 *
 * @param listener  receives step/eval/checkpoint events and messages
 * @param cancelled polled between optimizer steps; when true the run saves a checkpoint and stops
 * @param loss      the micro-batch loss computation, or null for the default ({@code MemoryEfficientLoss} per gradient_checkpointing / fused_cross_entropy)
 * @param console   print progress (bar on a terminal, plain lines otherwise) to standard output
 * @param rank      this process's place in a data-parallel job; null = from the environment (torchrun's RANK,
 *                  WORLD_SIZE, ...; a single process when they are absent)
 */
public record RunOptions(TrainingListener listener, BooleanSupplier cancelled, LossComputation loss,
        boolean console, DistributedEnv rank) {

    public RunOptions {
        listener = listener == null ? TrainingListener.NONE : listener;
        cancelled = cancelled == null ? () -> false : cancelled;
    }

    public RunOptions(TrainingListener listener, BooleanSupplier cancelled, LossComputation loss, boolean console) {
        this(listener, cancelled, loss, console, null);
    }

    /** The same options without console output (a rank other than 0 prints nothing). */
    RunOptions quiet() {
        return new RunOptions(listener, cancelled, loss, false, rank);
    }

    /** A message for the user: printed when {@code console}, always passed to the listener. */
    public void say(String message) {
        if (console) {
            System.out.println(message);
            System.out.flush();
        }
        listener.onMessage(message);
    }

    /** Quiet defaults: no console output, never cancelled. */
    public static RunOptions defaults() {
        return new RunOptions(TrainingListener.NONE, () -> false, null, false);
    }
}
