package io.sftnative.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.model.FusedElementwise;
import io.sftnative.torch.TorchRuntime;

/**
 * The same four cases as the JMH {@code FusedElementwiseBench} (one layer's SwiGLU and RoPE of DecoderStepBench's
 * model, fused vs libtorch, forward and backward through autograd), timed by this thread's CPU time instead of wall
 * time, so that a shared machine's other jobs disturb the numbers less. Run single-threaded:
 *
 * <pre>
 * SFT_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 benchmarks/run-java.sh ElementwiseCpuTime [iterations]
 * </pre>
 */
public final class ElementwiseCpuTime {
    private ElementwiseCpuTime() {}

    public static void main(String[] args) {
        int iters = args.length > 0 ? Integer.parseInt(args[0]) : 15;
        TorchRuntime.boot(1);
        long b = 4;
        long t = 512;
        long inter = 1408;
        long heads = 8;
        long d = 64;
        try (PointerScope scope = new PointerScope()) {
            Tensor y = torch.randn(b, t, 2 * inter).requires_grad_(true); // (B, T, 2I) fused gate/up output
            Tensor dh = torch.randn(b, t, inter); // (B, T, I)
            Tensor qkv = torch.randn(b, t, 3 * heads * d).requires_grad_(true); // (B, T, 3·H·D)
            Tensor dq = torch.randn(b, t, heads, d); // (B, T, H, D)
            Tensor ang = torch.randn(b, t, d / 2); // (B, T, D/2)
            Tensor cos = torch.cat(new TensorVector(ang.cos(), ang.cos()), -1).unsqueeze(2); // (B, T, 1, D)
            Tensor sin = torch.cat(new TensorVector(ang.sin().neg(), ang.sin()), -1).unsqueeze(2);
            ThreadMXBean mx = ManagementFactory.getThreadMXBean();
            String[] names = {"SwiGLU libtorch", "SwiGLU fused", "RoPE libtorch", "RoPE fused"};
            for (int variant = 0; variant < names.length; variant++) {
                double[] fwd = new double[iters];
                double[] bwd = new double[iters];
                for (int it = 0; it < iters; it++) {
                    try (PointerScope step = new PointerScope()) {
                        long c0 = mx.getCurrentThreadCpuTime();
                        Tensor out;
                        Tensor grad;
                        Tensor leaf;
                        if (variant < 2) {
                            TensorVector gu = y.split_with_sizes(new long[] {inter, inter}, -1);
                            out = variant == 0 ? torch.silu(gu.get(0)).mul(gu.get(1))
                                    : FusedElementwise.swiglu(gu.get(0), gu.get(1));
                            grad = dh;
                            leaf = y;
                        } else {
                            Tensor x = qkv.narrow(-1, 0, heads * d).view(b, t, heads, d); // (B, T, H, D)
                            out = variant == 2 ? torch.addcmul(x.mul(cos), x.roll(new long[] {d / 2}, -1), sin)
                                    : FusedElementwise.rope(x, cos, sin);
                            grad = dq;
                            leaf = qkv;
                        }
                        long c1 = mx.getCurrentThreadCpuTime();
                        torch.backward(new TensorVector(out), new TensorVector(grad), new BoolOptional(), false,
                                new TensorVector());
                        long c2 = mx.getCurrentThreadCpuTime();
                        leaf.grad().zero_();
                        fwd[it] = (c1 - c0) / 1e6;
                        bwd[it] = (c2 - c1) / 1e6;
                    }
                }
                Arrays.sort(fwd);
                Arrays.sort(bwd);
                System.out.printf("%-16s CPU ms, median (min) of %d: forward %.2f (%.2f)  backward %.2f (%.2f)%n",
                        names[variant], iters, fwd[iters / 2], fwd[0], bwd[iters / 2], bwd[0]);
            }
        }
    }
}
