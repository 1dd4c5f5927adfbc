package io.sftnative.torch;

/** A GPU was requested ({@code device: cuda}, {@code SFT_DEVICE=cuda}) but cannot be used; the message says why. */
public final class DeviceUnavailableException extends RuntimeException {
    public DeviceUnavailableException(String message) {
        super(message);
    }
}
