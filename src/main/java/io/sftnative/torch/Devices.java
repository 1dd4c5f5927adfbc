package io.sftnative.torch;

import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Placement helpers: tensor options on a device, moves that are free when the tensor is already there, host copies.
 * Which device to use is decided by {@link TorchRuntime#device(String)} (models carry theirs); these only apply it.
 * Every {@link Device} returned belongs to the caller's {@code PointerScope}, like any libtorch result.
 */
public final class Devices {
    private Devices() {}

    /** The host. For host-side work only (reading files, host arrays, saving); never to place model tensors. */
    public static Device host() {
        return new Device("cpu"); // host: the one place that names it
    }

    /** Options for a new tensor of {@code dtype} on {@code device}. */
    public static TensorOptions options(ScalarType dtype, Device device) {
        return new TensorOptions(dtype).device(new DeviceOptional(device));
    }

    /** {@code t} on {@code device}: t itself when it is already there (no copy), else a copy. */
    public static Tensor to(Tensor t, Device device) {
        return t.to(device, t.scalar_type());
    }

    /** {@code t} in host memory: t itself when it is on the CPU, else a copy (waits for the device). */
    public static Tensor toHost(Tensor t) {
        return t.is_cpu() ? t : t.to(host(), t.scalar_type());
    }

    /**
     * The one device (canonical name) of all {@code tensors}, e.g. a model's parameters; fails naming the first
     * tensor elsewhere, or when there are none.
     */
    public static String common(Map<String, Tensor> tensors) {
        String found = null;
        try (PointerScope scope = new PointerScope()) {
            for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                String d = name(e.getValue().device());
                if (found == null) {
                    found = d;
                } else if (!found.equals(d)) {
                    throw new IllegalArgumentException("parameter " + e.getKey() + " is on " + d + " but the others"
                            + " are on " + found + ": a model lives on one device");
                }
            }
        }
        if (found == null) {
            throw new IllegalArgumentException("a model needs parameters");
        }
        return found;
    }

    /** The canonical name of a device: {@code cpu}, {@code cuda:0}. */
    public static String name(Device d) {
        return d.str().getString();
    }
}
