package io.sftnative.data;

/** An example that cannot be used: it is dropped, counted under {@link #reason()} and reported with its line. */
final class DroppedException extends RuntimeException {
    DroppedException(String reason) {
        super(reason, null, false, false);
    }

    String reason() {
        return getMessage();
    }
}
