package io.sftnative.optim;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** Test helpers: host float arrays to and from libtorch CPU tensors. */
final class HostArrays {
    private HostArrays() {}

    /** A new tensor of {@code shape} and {@code dtype} holding {@code data} (row-major), owning its storage. */
    static Tensor tensor(float[] data, long[] shape, ScalarType dtype) {
        try (FloatPointer p = new FloatPointer(data);
                TensorOptions opts = new TensorOptions(ScalarType.Float);
                Tensor view = torch.from_blob(p, shape, opts)) {
            return view.to(dtype).clone(); // clone: never alias the Java-owned buffer
        }
    }

    static float[] floats(Tensor t) {
        try (Tensor f = t.detach().to(ScalarType.Float).contiguous()) {
            float[] out = new float[(int) f.numel()];
            f.data_ptr_float().get(out);
            return out;
        }
    }

    static float[] floats(com.fasterxml.jackson.databind.JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) array.get(i).asDouble();
        }
        return out;
    }

    static long[] longs(com.fasterxml.jackson.databind.JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }
}
