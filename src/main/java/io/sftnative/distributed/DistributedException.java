package io.sftnative.distributed;

/** A collective, the rendezvous or a peer failed; the message says which rank and what to do. */
public final class DistributedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public DistributedException(String message, Throwable cause) {
        super(message, cause);
    }

    public DistributedException(String message) {
        super(message);
    }
}
