package io.sftnative.train;

/**
 * The loss or the gradient norm became NaN or infinite. The step that produced it did not update the weights, and
 * every checkpoint saved before stays as it was.
 */
public final class TrainingDivergedException extends RuntimeException {
    private final long step;

    public TrainingDivergedException(String message, long step) {
        super(message);
        this.step = step;
    }

    /** The optimizer step (1-based) whose loss or gradient was not finite. */
    public long step() {
        return step;
    }
}
