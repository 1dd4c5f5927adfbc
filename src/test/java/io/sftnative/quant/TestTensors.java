package io.sftnative.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.TensorMemory;

/** Small helpers to move test data between Java arrays and CPU tensors. */
final class TestTensors {
    private TestTensors() {}

    static Tensor floats(float[] values, long... shape) {
        Tensor t = torch.empty(shape.length == 0 ? new long[] {values.length} : shape,
                new TensorOptions(ScalarType.Float), new MemoryFormatOptional());
        TensorMemory.segment(t, "test").copyFrom(MemorySegment.ofArray(values));
        return t;
    }

    static float[] toFloats(Tensor t) {
        Tensor c = t.to(ScalarType.Float).contiguous();
        return TensorMemory.segment(c, "test").toArray(ValueLayout.JAVA_FLOAT);
    }

    static byte[] toBytes(Tensor t) {
        Tensor c = t.contiguous();
        return TensorMemory.segment(c, "test").toArray(ValueLayout.JAVA_BYTE);
    }

    static short[] toShorts(Tensor t) {
        Tensor c = t.contiguous();
        return TensorMemory.segment(c, "test").toArray(ValueLayout.JAVA_SHORT);
    }

    static byte[] hex(String s) {
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }

    /** Little-endian fp32 values from hex. */
    static float[] f32(String s) {
        return MemorySegment.ofArray(hex(s)).toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
    }

    /** Little-endian 16-bit values from hex. */
    static short[] u16(String s) {
        return MemorySegment.ofArray(hex(s)).toArray(ValueLayout.JAVA_SHORT_UNALIGNED);
    }

    static int[] bits(float[] f) {
        int[] b = new int[f.length];
        for (int i = 0; i < f.length; i++) {
            b[i] = Float.floatToRawIntBits(f[i]);
        }
        return b;
    }
}
