package io.sftnative.bench;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** The fp32 GEMM rate of this process: the reference point of the harness's MFU (the Python side measures the same). */
final class GemmRate {
    private static final int N = 2048;

    private GemmRate() {}

    /** Best FLOP/s of {@code reps} 2048 x 2048 x 2048 {@code torch.mm} calls after one warm-up call. */
    static double best(int reps) {
        double best = 0;
        try (PointerScope s = new PointerScope()) {
            Tensor x = torch.randn(N, N); // (N, N)
            Tensor y = torch.randn(N, N); // (N, N)
            torch.mm(x, y);
            for (int i = 0; i < reps; i++) {
                try (PointerScope r = new PointerScope()) {
                    long t0 = System.nanoTime();
                    torch.mm(x, y);
                    best = Math.max(best, 2.0 * N * N * N / ((System.nanoTime() - t0) / 1e9));
                }
            }
        }
        return best;
    }
}
