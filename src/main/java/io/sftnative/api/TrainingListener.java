package io.sftnative.api;

/**
 * Observes a training run. Called on the training thread, between steps: keep callbacks short (hand work to
 * another thread) and do not call back into the run except {@link TrainingRun#cancel()}. Only scalars and paths
 * are passed; no tensor ever leaves the step.
 */
public interface TrainingListener {
    /** Training is about to start (after data and model are ready). */
    default void onStart(long startStep, long totalSteps) {}

    default void onStep(StepEvent e) {}

    default void onEval(EvalEvent e) {}

    default void onCheckpoint(CheckpointEvent e) {}

    /** A human-readable message (what the CLI prints): data summary, warnings, where files went. */
    default void onMessage(String message) {}

    /** A listener that ignores everything. */
    TrainingListener NONE = new TrainingListener() {};
}
