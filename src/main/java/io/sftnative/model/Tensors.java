package io.sftnative.model;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/** Host arrays to and from tensors (copies): built in host memory, then uploaded once when the device is a GPU. */
public final class Tensors {
    private Tensors() {}

    /** An int64 host tensor of {@code shape} holding a copy of {@code data}. */
    public static Tensor longs(long[] data, long... shape) {
        try (LongPointer p = new LongPointer(data)) {
            return torch.from_blob(p, shape, new TensorOptions(ScalarType.Long)).clone(); // host: from a Java array
        }
    }

    /** An int64 tensor of {@code shape} on {@code device} holding a copy of {@code data} (one upload). */
    public static Tensor longs(long[] data, Device device, long... shape) {
        return Devices.to(longs(data, shape), device);
    }

    /** A float32 host tensor of {@code shape} holding a copy of {@code data}. */
    public static Tensor floats(float[] data, long... shape) {
        try (FloatPointer p = new FloatPointer(data)) {
            return torch.from_blob(p, shape, new TensorOptions(ScalarType.Float)).clone(); // host: from a Java array
        }
    }

    /** A float32 tensor of {@code shape} on {@code device} holding a copy of {@code data} (one upload). */
    public static Tensor floats(float[] data, Device device, long... shape) {
        return Devices.to(floats(data, shape), device);
    }

    /** All elements of an integer tensor (any device), row-major, as int64. */
    public static long[] toLongs(Tensor t) {
        Tensor c = Devices.toHost(t.to(ScalarType.Long)).contiguous();
        long[] out = new long[(int) c.numel()];
        c.data_ptr_long().get(out);
        return out;
    }

    /** All elements of a floating tensor (any device), row-major, as float32. */
    public static float[] toFloats(Tensor t) {
        Tensor c = Devices.toHost(t.detach().to(ScalarType.Float)).contiguous();
        float[] out = new float[(int) c.numel()];
        c.data_ptr_float().get(out);
        return out;
    }

    /** The shape as a Java array. */
    public static long[] shape(Tensor t) {
        return t.sizes().vec().get();
    }

    /** Whether {@code a} and {@code b} have the same shape (no host copy of either). */
    public static boolean sameShape(Tensor a, Tensor b) {
        if (a.dim() != b.dim()) {
            return false;
        }
        for (int i = 0; i < a.dim(); i++) {
            if (a.size(i) != b.size(i)) {
                return false;
            }
        }
        return true;
    }
}
