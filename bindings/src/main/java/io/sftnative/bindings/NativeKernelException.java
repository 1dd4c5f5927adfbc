package io.sftnative.bindings;

/**
 * A native kernel returned an error status. The message names the function, the status, the library's own
 * explanation ({@code jbnb_last_error}) and what the Java caller was doing.
 */
public final class NativeKernelException extends RuntimeException {
    private final String function;
    private final int status;

    public NativeKernelException(String function, int status, String nativeMessage, String context) {
        super(function + " failed with " + BnbAbi.statusName(status) + ": "
                + (nativeMessage == null || nativeMessage.isBlank() ? "(no message)" : nativeMessage)
                + (context == null || context.isBlank() ? "" : " [" + context + "]"));
        this.function = function;
        this.status = status;
    }

    public String function() {
        return function;
    }

    /** The jbnb_status code (see {@link BnbAbi#EINVAL} and friends). */
    public int status() {
        return status;
    }
}
