package io.sftnative.model.safetensors;

/** A safetensors file or checkpoint is malformed or does not hold what was asked for; the message names the file. */
public final class SafetensorsException extends RuntimeException {
    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
