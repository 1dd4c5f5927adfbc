package io.sftnative.bench.jmh;

import java.util.concurrent.TimeUnit;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import io.sftnative.model.FusedElementwise;
import io.sftnative.torch.TorchRuntime;

/**
 * One layer's SwiGLU and RoPE of DecoderStepBench's model (4 × 512 tokens, intermediate 1408, 8 heads × 64), forward
 * + backward, fp32, on the strided views the model produces (split outputs of the fused gate/up and q/k/v GEMMs):
 * our fused kernels ({@link FusedElementwise}) against the libtorch ops they replace ({@code silu(gate) * up};
 * {@code x * cos + roll(x) * sinSigned} as RotaryEmbedding computes it), each through autograd into the leaf.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class FusedElementwiseBench {
    private static final long B = 4;
    private static final long T = 512;
    private static final long INTER = 1408;
    private static final long HEADS = 8;
    private static final long D = 64;

    private Tensor y; // (B, T, 2I) leaf: the fused gate/up projection output
    private Tensor dh; // (B, T, I) upstream gradient
    private Tensor qkv; // (B, T, 3·H·D) leaf: the fused q/k/v projection output
    private Tensor dq; // (B, T, H, D) upstream gradient
    private Tensor cos; // (B, T, 1, D)
    private Tensor sinSigned; // (B, T, 1, D)

    @Setup(Level.Trial)
    public void setup() {
        TorchRuntime.boot();
        try (PointerScope scope = new PointerScope()) {
            y = torch.randn(B, T, 2 * INTER).requires_grad_(true).retainReference();
            dh = torch.randn(B, T, INTER).retainReference();
            qkv = torch.randn(B, T, 3 * HEADS * D).requires_grad_(true).retainReference();
            dq = torch.randn(B, T, HEADS, D).retainReference();
            Tensor ang = torch.randn(B, T, D / 2); // (B, T, D/2)
            cos = torch.cat(new TensorVector(ang.cos(), ang.cos()), -1).unsqueeze(2).retainReference();
            sinSigned = torch.cat(new TensorVector(ang.sin().neg(), ang.sin()), -1).unsqueeze(2).retainReference();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : new Tensor[] {y, dh, qkv, dq, cos, sinSigned}) {
            t.releaseReference();
        }
    }

    @Benchmark
    public long swigluLibtorch() {
        try (PointerScope scope = new PointerScope()) {
            TensorVector gu = y.split_with_sizes(new long[] {INTER, INTER}, -1);
            return backward(torch.silu(gu.get(0)).mul(gu.get(1)), dh, y);
        }
    }

    @Benchmark
    public long swigluFused() {
        try (PointerScope scope = new PointerScope()) {
            TensorVector gu = y.split_with_sizes(new long[] {INTER, INTER}, -1);
            return backward(FusedElementwise.swiglu(gu.get(0), gu.get(1)), dh, y);
        }
    }

    @Benchmark
    public long ropeLibtorch() {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = q();
            Tensor out = torch.addcmul(x.mul(cos), x.roll(new long[] {D / 2}, -1), sinSigned); // (B, T, H, D)
            return backward(out, dq, qkv);
        }
    }

    @Benchmark
    public long ropeFused() {
        try (PointerScope scope = new PointerScope()) {
            return backward(FusedElementwise.rope(q(), cos, sinSigned), dq, qkv);
        }
    }

    private Tensor q() { // (B, T, H, D) view of the q part
        return qkv.narrow(-1, 0, HEADS * D).view(B, T, HEADS, D);
    }

    private static long backward(Tensor out, Tensor grad, Tensor leaf) {
        torch.backward(new TensorVector(out), new TensorVector(grad), new BoolOptional(), false, new TensorVector());
        leaf.grad().zero_();
        return out.numel();
    }
}
