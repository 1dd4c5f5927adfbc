package io.sftnative.api;

/** A training run ended with an error; {@link #getCause()} is what went wrong, its message says what to do. */
public final class TrainingFailedException extends RuntimeException {
    public TrainingFailedException(Throwable cause) {
        super(cause.getMessage() == null ? cause.toString() : cause.getMessage(), cause);
    }
}
