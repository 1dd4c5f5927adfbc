package io.sftnative.bindings;

import java.lang.foreign.MemorySegment;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Raw memory of libtorch tensors for the native kernels (our library takes pointers, never {@code at::Tensor}).
 *
 * <p>The segment is a view: the tensor must stay alive (and unmodified in shape) for as long as the segment is used,
 * i.e. for the duration of the kernel call. Only contiguous tensors are accepted, because the kernels read flat
 * row-major memory; call {@code contiguous()} and keep (and later close) the result.
 */
// FFM restricted methods are the point of this class (the JVM runs with --enable-native-access)
@SuppressWarnings("restricted")
public final class TensorMemory {
    private TensorMemory() {}

    /** The data of a contiguous tensor as a segment of its byte size (device memory for CUDA tensors). */
    public static MemorySegment segment(Tensor t, String what) {
        if (t == null || !t.defined()) {
            throw new IllegalArgumentException(what + " is not a defined tensor");
        }
        if (!t.is_contiguous()) {
            throw new IllegalArgumentException(what + " must be contiguous (call contiguous() first)");
        }
        long bytes = t.nbytes();
        if (t.numel() == 0) {
            return MemorySegment.NULL;
        }
        long addr = t.data_ptr().address();
        return MemorySegment.ofAddress(addr).reinterpret(bytes);
    }

    /**
     * The data of a host tensor with any non-negative strides, as a segment spanning every element it can address
     * (for kernels that take explicit strides, e.g. the attention kernel).
     */
    public static MemorySegment stridedSegment(Tensor t, String what) {
        if (t == null || !t.defined()) {
            throw new IllegalArgumentException(what + " is not a defined tensor");
        }
        if (t.numel() == 0) {
            return MemorySegment.NULL;
        }
        long last = 0; // offset of the last addressable element
        for (int i = 0; i < t.dim(); i++) {
            if (t.stride(i) < 0) {
                throw new IllegalArgumentException(what + " has a negative stride");
            }
            last += (t.size(i) - 1) * t.stride(i);
        }
        long addr = t.data_ptr().address();
        return MemorySegment.ofAddress(addr).reinterpret((last + 1) * t.element_size());
    }

    /** Whether two libtorch scalar types are equal (JNI hands out non-canonical enum instances: never use ==). */
    public static boolean same(ScalarType a, ScalarType b) {
        return a.value == b.value;
    }

    /** The kernel dtype of a float tensor. */
    public static Kernels.Dtype dtype(Tensor t, String what) {
        ScalarType s = t.scalar_type();
        if (same(s, ScalarType.Float)) {
            return Kernels.Dtype.FP32;
        }
        if (same(s, ScalarType.BFloat16)) {
            return Kernels.Dtype.BF16;
        }
        if (same(s, ScalarType.Half)) {
            return Kernels.Dtype.FP16;
        }
        throw new IllegalArgumentException(what + " must be float32, bfloat16 or float16, got " + s);
    }

    /** CPU or CUDA kernels for where the tensor lives. */
    public static Kernels.Device device(Tensor t) {
        return t.is_cuda() ? Kernels.Device.CUDA : Kernels.Device.CPU;
    }
}
