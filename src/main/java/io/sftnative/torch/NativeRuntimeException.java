package io.sftnative.torch;

/** A native library could not be loaded or used; the message says which and what to do. */
public final class NativeRuntimeException extends RuntimeException {
    public NativeRuntimeException(String message, Throwable cause) {
        super(message, cause);
    }
}
