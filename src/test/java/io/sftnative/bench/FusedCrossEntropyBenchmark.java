package io.sftnative.bench;

import java.util.Locale;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.loss.FusedLinearCrossEntropy;
import io.sftnative.torch.TorchRuntime;

/**
 * Fused vs unfused causal-LM cross-entropy with the LM head (forward + backward), fp32: wall time and the peak extra
 * resident memory of the loss step (VmHWM after a reset, minus the RSS before; inputs are allocated before).
 * Unfused = {@code cross_entropy(hidden W^T [:, :-1], labels[:, 1:], sum) / n; backward()} in libtorch.
 * Usage: FusedCrossEntropyBenchmark [tokens=4096] [hidden=896] [vocab=151936] [chunkRows=0] [headTrainable=true]
 * [reps=3]. Runs alternate (unfused, fused) reps times; the minimum time and the maximum peak of each are reported,
 * because other processes on a shared machine only ever make a run slower.
 * Not a test: run with benchmarks/run-java.sh (see benchmarks/README.md).
 */
// PointerScope blocks own every tensor created inside them; the scope variable itself is never read
@SuppressWarnings("try")
public final class FusedCrossEntropyBenchmark {
    public static void main(String[] args) throws Exception {
        long n = args.length > 0 ? Long.parseLong(args[0]) : 4096;
        long h = args.length > 1 ? Long.parseLong(args[1]) : 896;
        long v = args.length > 2 ? Long.parseLong(args[2]) : 151936;
        int chunk = args.length > 3 ? Integer.parseInt(args[3]) : 0;
        boolean headTrainable = args.length <= 4 || Boolean.parseBoolean(args[4]);
        int reps = args.length > 5 ? Integer.parseInt(args[5]) : 3;
        TorchRuntime.Info info = TorchRuntime.boot();
        System.out.printf(Locale.ROOT, "reps %d, tokens %d, hidden %d, vocab %d, fp32, chunkRows %d (%s), LM head %s, %d threads%n",
                reps, n, h, v, chunk, chunk > 0 ? "given" : "auto " + FusedLinearCrossEntropy.defaultChunkRows(n, v, h),
                headTrainable ? "trainable" : "frozen", info.threads());
        if (!PeakRss.resettable()) {
            System.out.println("note: /proc/self/clear_refs is not writable: peak memory not measured");
        }
        torch.manual_seed(0);
        try (PointerScope scope = new PointerScope()) {
            Tensor hidden = torch.randn(1, n, h); // (1, N, H)
            Tensor weight = torch.randn(v, h).mul(new Scalar(0.02)); // (V, H)
            Tensor labels = torch.randint(v, new long[] {1, n}, new TensorOptions(ScalarType.Long)); // (1, N)
            // warm-up on a small slice (thread pools, kernel dispatch)
            run(true, hidden.narrow(1, 0, 64), weight, labels.narrow(1, 0, 64), chunk, headTrainable);
            run(false, hidden.narrow(1, 0, 64), weight, labels.narrow(1, 0, 64), chunk, headTrainable);
            Measured unfused = null;
            Measured fused = null;
            for (int r = 0; r < reps; r++) {
                unfused = best(unfused, run(false, hidden, weight, labels, chunk, headTrainable));
                fused = best(fused, run(true, hidden, weight, labels, chunk, headTrainable));
                System.out.printf(Locale.ROOT, "  rep %d: unfused %.2f s, fused %.2f s%n", r, unfused.seconds, fused.seconds);
            }
            System.out.printf(Locale.ROOT, "unfused: %.2f s, peak +%.0f MiB, loss %.6f%n", unfused.seconds,
                    unfused.peakMiB, unfused.loss);
            System.out.printf(Locale.ROOT, "fused:   %.2f s, peak +%.0f MiB, loss %.6f%n", fused.seconds, fused.peakMiB,
                    fused.loss);
            System.out.printf(Locale.ROOT, "fused/unfused: time %.2fx, peak memory %.1f%%, |loss diff| %.2e%n",
                    fused.seconds / unfused.seconds, 100 * fused.peakMiB / unfused.peakMiB,
                    Math.abs(fused.loss - unfused.loss));
        }
    }

    record Measured(double seconds, double peakMiB, double loss) {}

    private static Measured best(Measured a, Measured b) {
        return a == null ? b : new Measured(Math.min(a.seconds, b.seconds), Math.max(a.peakMiB, b.peakMiB), b.loss);
    }

    private static Measured run(boolean fused, Tensor hidden, Tensor weight, Tensor labels, int chunk,
            boolean headTrainable) throws Exception {
        long t = labels.size(1);
        System.gc();
        long before = PeakRss.kb("VmRSS");
        PeakRss.reset();
        long t0 = System.nanoTime();
        double loss;
        try (PointerScope scope = new PointerScope()) {
            if (fused) {
                try (FusedLinearCrossEntropy.Result r = FusedLinearCrossEntropy.causalLm(hidden, weight, labels, 0, chunk,
                        headTrainable)) {
                    loss = r.loss();
                }
            } else {
                Tensor x = hidden.detach().set_requires_grad(true);
                Tensor w = headTrainable ? weight.detach().set_requires_grad(true) : weight;
                Tensor logits = torch.matmul(x, w.t()); // (1, N, V)
                Tensor z = logits.narrow(1, 0, t - 1).reshape(-1, weight.size(0));
                Tensor y = labels.narrow(1, 1, t - 1).reshape(-1);
                Tensor sum = torch.cross_entropy_loss(z, y, new TensorOptional(), 2, -100, 0.0);
                long count = y.ne(new Scalar(-100L)).sum().item_long();
                Tensor l = sum.div(new Scalar((double) count));
                l.backward();
                loss = l.item_double();
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        long peak = PeakRss.kb("VmHWM");
        return new Measured(seconds, (peak - before) / 1024.0, loss);
    }
}
