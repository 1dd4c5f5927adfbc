package io.sftnative.bench.jmh;

import java.util.concurrent.TimeUnit;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
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

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.loss.FusedLinearCrossEntropy;
import io.sftnative.torch.TorchRuntime;

/**
 * One LM-head loss step (forward + backward to the hidden states and the head weight) at the harness's shapes:
 * 2 x 512 tokens, hidden 512, vocab 32000, fp32, prompt quarter of each row labelled -100. Fused = sft-native's
 * chunked kernel (logits never whole); plain = libtorch {@code linear} + {@link CausalLmLoss#sum} + backward.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class FusedCrossEntropyBench {
    private static final long B = 2;
    private static final long T = 512;
    private static final long H = 512;
    private static final long V = 32000;

    private Tensor hidden; // (B, T, H) fp32 leaf, requires grad
    private Tensor weight; // (V, H) fp32 leaf, requires grad
    private Tensor labels; // (B, T) int64, -100 on the first quarter of each row

    @Setup(Level.Trial)
    public void setup() {
        TorchRuntime.boot();
        try (PointerScope scope = new PointerScope()) {
            hidden = torch.randn(B, T, H).requires_grad_(true);
            weight = torch.randn(V, H).mul(new Scalar(0.02)).requires_grad_(true);
            labels = torch.randint(V, new long[] {B, T}, new TensorOptions(ScalarType.Long));
            labels.narrow(1, 0, T / 4).fill_(new Scalar(-100L));
            hidden.retainReference();
            weight.retainReference();
            labels.retainReference();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        hidden.releaseReference();
        weight.releaseReference();
        labels.releaseReference();
    }

    @Benchmark
    public double fused() {
        try (PointerScope scope = new PointerScope()) {
            try (FusedLinearCrossEntropy.Result r = FusedLinearCrossEntropy.causalLm(hidden, weight, labels, 0, 0,
                    true)) {
                FusedLinearCrossEntropy.backward(r, hidden, weight);
                zeroGrads();
                return r.loss();
            }
        }
    }

    @Benchmark
    public double plain() {
        try (PointerScope scope = new PointerScope()) {
            Tensor logits = torch.linear(hidden, weight); // (B, T, V)
            CausalLmLoss.SumAndCount s = CausalLmLoss.sum(logits, labels);
            Tensor loss = s.mean(); // ()
            loss.backward();
            zeroGrads();
            return loss.item_double();
        }
    }

    private void zeroGrads() {
        hidden.grad().zero_();
        weight.grad().zero_();
    }
}
