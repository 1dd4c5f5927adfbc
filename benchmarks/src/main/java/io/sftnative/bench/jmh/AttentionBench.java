package io.sftnative.bench.jmh;

import java.util.concurrent.TimeUnit;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import io.sftnative.model.FlashAttention;
import io.sftnative.model.KeyRanges;
import io.sftnative.torch.TorchRuntime;

/**
 * One attention layer of the harness's model, forward + backward, fp32: B 2, 8 heads, head_dim 64, T tokens, with a
 * boolean causal + padding mask as the trainer builds for padded batches. {@code sdpaMasked}: libtorch's
 * {@code scaled_dot_product_attention} (what DecoderModel runs); {@code eager}: matmul, additive mask, fp32
 * softmax, matmul (what the PyTorch 1.13 reference runs). The end-to-end harness found sft-native's backward pass
 * slower than the reference's at these shapes; this isolates the attention part. (DecoderModel additionally keeps
 * OpenBLAS single-threaded inside SDPA; this benchmark calls the kernels bare.) {@code nativeCausal} /
 * {@code nativePadded}: our kernel ({@code flash_attn: fa2}, docs/attention.md) through its autograd hooks;
 * {@code sdpaCausal}: SDPA with is_causal and no mask. {@code sdpaCausalBf16} / {@code nativeCausalBf16}: the same
 * on bf16 copies of the inputs (what a {@code bf16: true} step runs).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class AttentionBench {
    private static final long B = 2;
    private static final long H = 8;
    private static final long D = 64;

    @Param({"352", "512"})
    long seq;

    private Tensor q; // (B, H, T, D) leaf, requires grad
    private Tensor k; // (B, H, T, D) leaf, requires grad
    private Tensor v; // (B, H, T, D) leaf, requires grad
    private Tensor grad; // (B, H, T, D)
    private Tensor visible; // (B, 1, T, T) bool: causal
    private Tensor additive; // (B, 1, T, T) fp32: 0 where visible, float min elsewhere

    @Setup(Level.Trial)
    public void setup() {
        TorchRuntime.boot();
        try (PointerScope scope = new PointerScope()) {
            q = torch.randn(B, H, seq, D).requires_grad_(true).retainReference();
            k = torch.randn(B, H, seq, D).requires_grad_(true).retainReference();
            v = torch.randn(B, H, seq, D).requires_grad_(true).retainReference();
            grad = torch.randn(B, H, seq, D).retainReference();
            visible = torch.ones(new long[] {seq, seq}, new TensorOptions(ScalarType.Bool)).tril()
                    .view(1, 1, seq, seq).expand(B, 1, seq, seq).contiguous().retainReference();
            additive = torch.zeros(new long[] {B, 1, seq, seq}).masked_fill(visible.logical_not(),
                    new Scalar(-3.4028234663852886e38)).retainReference();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : new Tensor[] {q, k, v, grad, visible, additive}) {
            t.releaseReference();
        }
    }

    @Benchmark
    public long sdpaMasked() {
        try (PointerScope scope = new PointerScope()) {
            Tensor out = torch.scaled_dot_product_attention(q, k, v, new TensorOptional(visible), 0.0, false,
                    new DoubleOptional(1.0 / Math.sqrt(D)), false); // (B, H, T, D)
            return backward(out);
        }
    }

    @Benchmark
    public long eager() {
        try (PointerScope scope = new PointerScope()) {
            Tensor w = torch.matmul(q, k.transpose(2, 3)).mul(new Scalar(1.0 / Math.sqrt(D))).add(additive); // (B,H,T,T)
            Tensor p = torch.softmax(w, -1, new ScalarTypeOptional(ScalarType.Float)); // (B, H, T, T)
            return backward(torch.matmul(p, v)); // (B, H, T, D)
        }
    }

    /** libtorch SDPA with is_causal and no mask (the unpadded causal case). */
    @Benchmark
    public long sdpaCausal() {
        try (PointerScope scope = new PointerScope()) {
            Tensor out = torch.scaled_dot_product_attention(q, k, v, new TensorOptional(), 0.0, true,
                    new DoubleOptional(1.0 / Math.sqrt(D)), false); // (B, H, T, D)
            return backward(out);
        }
    }

    /** SDPA causal on bf16 copies of q, k, v (what a bf16 autocast step runs), backward into the fp32 leaves. */
    @Benchmark
    public long sdpaCausalBf16() {
        try (PointerScope scope = new PointerScope()) {
            Tensor out = torch.scaled_dot_product_attention(q.to(ScalarType.BFloat16), k.to(ScalarType.BFloat16),
                    v.to(ScalarType.BFloat16), new TensorOptional(), 0.0, true, new DoubleOptional(1.0 / Math.sqrt(D)),
                    false); // (B, H, T, D) bf16
            return backward(out.to(ScalarType.Float));
        }
    }

    /**
     * Our kernel on bf16 copies of q, k, v (jbnb_attention_*_cpu_bf16: bf16 in memory, fp32 inside), causal, backward
     * into the fp32 leaves: the counterpart of {@link #sdpaCausalBf16}.
     */
    @Benchmark
    public long nativeCausalBf16() {
        try (PointerScope scope = new PointerScope()) {
            Tensor out = FlashAttention.attention(q.to(ScalarType.BFloat16), k.to(ScalarType.BFloat16),
                    v.to(ScalarType.BFloat16), KeyRanges.CAUSAL, 1.0 / Math.sqrt(D), 0.0); // (B, H, T, D) bf16
            return backward(out.to(ScalarType.Float));
        }
    }

    /** Our kernel (FlashAttention: native/src/cpu/attention_cpu.cpp), causal, through its autograd hooks. */
    @Benchmark
    public long nativeCausal() {
        try (PointerScope scope = new PointerScope()) {
            return backward(FlashAttention.attention(q, k, v, KeyRanges.CAUSAL, 1.0 / Math.sqrt(D), 0.0));
        }
    }

    /** Our kernel with per-query key ranges (right padding: row 1 is 3/4 real tokens), no (B, 1, T, T) mask. */
    @Benchmark
    public long nativePadded() {
        try (PointerScope scope = new PointerScope()) {
            KeyRanges r = FlashAttention.ranges(B, seq, null, new long[] {seq, seq * 3 / 4}, null);
            return backward(FlashAttention.attention(q, k, v, r, 1.0 / Math.sqrt(D), 0.0));
        }
    }

    private long backward(Tensor out) {
        torch.backward(new TensorVector(out), new TensorVector(grad), new BoolOptional(), false, new TensorVector());
        q.grad().zero_();
        k.grad().zero_();
        v.grad().zero_();
        return out.numel();
    }
}
