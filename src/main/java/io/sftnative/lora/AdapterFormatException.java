package io.sftnative.lora;

/** An adapter directory that cannot be used with this model: the message names the file, tensor and the fix. */
public final class AdapterFormatException extends RuntimeException {
    public AdapterFormatException(String message) {
        super(message);
    }
}
