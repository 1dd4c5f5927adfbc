package io.sftnative.bench;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.TorchRuntime;

/**
 * fp32 vs bf16 GEMM rates of this process, measured side by side (rounds alternate the dtypes, so both see the same
 * machine load): {@code torch.mm} at 2048³ and at a linear layer's shape (2048 tokens × 896 → 4864, weight
 * transposed as {@code F.linear} passes it), plus the fp32 → bf16 cast of that weight (what autocast does per
 * forward). Best of each; prints GFLOP/s and the bf16/fp32 ratio.
 *
 * <pre>{@code
 * java --enable-native-access=ALL-UNNAMED -cp target/classes:<deps> io.sftnative.bench.GemmDtypeBench 6
 * }</pre>
 */
public final class GemmDtypeBench {
    private GemmDtypeBench() {}

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 6;
        TorchRuntime.boot();
        System.out.println("threads " + torch.get_num_threads() + ", rounds " + rounds);
        try (PointerScope s = new PointerScope()) {
            Tensor a32 = torch.randn(2048, 2048); // (N, N)
            Tensor b32 = torch.randn(2048, 2048);
            Tensor x32 = torch.randn(2048, 896); // (tokens, in)
            Tensor w32 = torch.randn(4864, 896); // (out, in) as nn.Linear stores it
            Tensor a16 = a32.to(ScalarType.BFloat16);
            Tensor b16 = b32.to(ScalarType.BFloat16);
            Tensor x16 = x32.to(ScalarType.BFloat16);
            Tensor w16 = w32.to(ScalarType.BFloat16);
            double[] best = new double[5];
            double sq = 2.0 * 2048 * 2048 * 2048;
            double lin = 2.0 * 2048 * 896 * 4864;
            for (int r = 0; r <= rounds; r++) { // round 0 warms up
                double[] v = {
                    sq / time(() -> torch.mm(a32, b32)),
                    sq / time(() -> torch.mm(a16, b16)),
                    lin / time(() -> torch.mm(x32, w32.t())),
                    lin / time(() -> torch.mm(x16, w16.t())),
                    1.0 / time(() -> w32.to(ScalarType.BFloat16)),
                };
                if (r > 0) {
                    for (int i = 0; i < 5; i++) {
                        best[i] = Math.max(best[i], v[i]);
                    }
                }
            }
            System.out.printf("mm 2048^3        fp32 %7.1f GFLOP/s   bf16 %7.1f GFLOP/s   bf16/fp32 %.2f%n", best[0] / 1e9,
                    best[1] / 1e9, best[1] / best[0]);
            System.out.printf("linear 2048x896->4864 fp32 %7.1f GFLOP/s   bf16 %7.1f GFLOP/s   bf16/fp32 %.2f%n",
                    best[2] / 1e9, best[3] / 1e9, best[3] / best[2]);
            System.out.printf("cast of that weight fp32->bf16: %.2f ms (bf16 GEMM of it: %.2f ms)%n", 1e3 / best[4],
                    1e3 * lin / best[3]);
        }
    }

    private static double time(Runnable r) {
        try (PointerScope s = new PointerScope()) {
            long t0 = System.nanoTime();
            r.run();
            return (System.nanoTime() - t0) / 1e9;
        }
    }
}
