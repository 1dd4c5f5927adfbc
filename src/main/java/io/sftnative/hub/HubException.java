package io.sftnative.hub;

/** A hub repository or file that cannot be found, reached or downloaded; the message says which and what to do. */
public class HubException extends RuntimeException {
    public HubException(String message) {
        super(message);
    }

    public HubException(String message, Throwable cause) {
        super(message, cause);
    }
}
