package io.sftnative.model;

/** A model directory, config.json or its weights do not describe a model we can build; the message says what. */
public final class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
