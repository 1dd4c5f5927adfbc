package io.sftnative.loss;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.Kernels;
import io.sftnative.bindings.TensorMemory;

/**
 * Cross-entropy fused with the LM head, computed in row chunks so the (N, V) logits never exist (spec §4.4–§4.6,
 * Liger's scheme). Per chunk of rows: {@code Z = H_c W^T} (libtorch matmul, model dtype), then the native kernel
 * replaces Z in place by {@code d(loss)/dZ = (softmax(Z) - onehot(target)) / numItems} (fp32 math, fp64 loss sum),
 * then {@code dH_c = dZ W} and {@code dW += dZ^T H_c} (fp32 accumulator).
 *
 * <p>Java cannot subclass autograd::Function, so the op is eager: {@link #forwardBackward} returns the loss
 * <em>and</em> the gradients, and {@link #backward} continues the backward pass into the model
 * ({@code torch::autograd::backward({hidden}, {gradHidden})}) and accumulates {@code gradWeight} into the LM-head
 * weight's {@code .grad}. {@link FusedCrossEntropyLoss} packages both as the trainer's loss step.
 *
 * <p>Label shift: {@link #causalLm} takes the collator's <em>unshifted</em> labels (B, T) and applies the causal
 * shift itself (row (b, t) predicts {@code labels[b, t + 1]}; the last position of each sequence predicts nothing),
 * exactly as transformers' {@code ForCausalLMLoss}. {@link #forwardBackward} takes targets already aligned with the
 * rows (row i predicts {@code targets[i]}). Targets equal to {@value #IGNORE_INDEX} contribute nothing.
 *
 * <p>{@code numItems} is the loss divisor: the number of target tokens of the whole accumulated batch for gradient
 * accumulation (so every token weighs the same), or {@code <= 0} for this call's own target count (a plain mean).
 * When nothing is a target and numItems is automatic the loss is 0 and the gradients are zero.
 */
// PointerScope blocks own every tensor created inside them; the scope variable itself is never read
@SuppressWarnings("try")
public final class FusedLinearCrossEntropy {
    public static final long IGNORE_INDEX = -100;

    /**
     * The outcome of one call. Owns its gradient tensors ({@link #close()} frees them).
     *
     * @param loss         lossSum / divisor (what the trainer logs and HF reports)
     * @param lossSum      sum of the per-token losses (fp64)
     * @param targetTokens number of rows with a target (not ignored)
     * @param divisor      the divisor used (numItems, or targetTokens when automatic)
     * @param gradHidden   d(loss)/d(hidden), same shape and dtype as hidden
     * @param gradWeight   d(loss)/d(weight) (V, H) fp32, or null when not requested
     */
    public record Result(double loss, double lossSum, long targetTokens, double divisor, Tensor gradHidden,
            Tensor gradWeight) implements AutoCloseable {
        @Override
        public void close() {
            gradHidden.close();
            if (gradWeight != null) {
                gradWeight.close();
            }
        }
    }

    private FusedLinearCrossEntropy() {}

    /**
     * Causal-LM loss: hidden (B, T, H), weight (V, H), unshifted labels (B, T) int64 (shift applied here).
     * chunkRows: rows per chunk, {@code <= 0} for {@link #defaultChunkRows}. gradWeight: whether to compute dW.
     */
    public static Result causalLm(Tensor hidden, Tensor weight, Tensor labels, double numItems, int chunkRows,
            boolean gradWeight) {
        if (hidden.dim() != 3 || labels.dim() != 2 || hidden.size(0) != labels.size(0) || hidden.size(1) != labels.size(1)) {
            throw new IllegalArgumentException("causalLm needs hidden (B, T, H) and labels (B, T), got hidden "
                    + shape(hidden) + " and labels " + shape(labels));
        }
        return run(hidden, weight, labels, true, hidden.size(1), numItems, chunkRows, gradWeight);
    }

    /**
     * Aligned targets: hidden (N, H), weight (V, H), targets (N) int64 where row i predicts targets[i] (shift done by
     * the caller). Computes dW.
     */
    public static Result forwardBackward(Tensor hidden, Tensor weight, Tensor targets, double numItems, int chunkRows) {
        return forwardBackward(hidden, weight, targets, numItems, chunkRows, true);
    }

    public static Result forwardBackward(Tensor hidden, Tensor weight, Tensor targets, double numItems, int chunkRows,
            boolean gradWeight) {
        if (hidden.dim() != 2 || targets.dim() != 1 || hidden.size(0) != targets.size(0)) {
            throw new IllegalArgumentException("forwardBackward needs hidden (N, H) and targets (N), got hidden "
                    + shape(hidden) + " and targets " + shape(targets));
        }
        return run(hidden, weight, targets, false, 1, numItems, chunkRows, gradWeight);
    }

    /**
     * Continues the backward pass: {@code hidden.backward(gradHidden)} when hidden requires grad (its graph reaches
     * the model's parameters), then adds gradWeight to {@code weight.grad} when the weight requires grad (after the
     * graph's own contribution, so tied embeddings accumulate correctly).
     */
    public static void backward(Result r, Tensor hidden, Tensor weight) {
        backward(r, hidden, weight, null);
    }

    /**
     * As above, backpropagating {@code extra} (a scalar with a graph into the model, e.g. the MoE load-balancing
     * term; null for none) with gradient 1 in the same pass as the hidden states.
     */
    public static void backward(Result r, Tensor hidden, Tensor weight, Tensor extra) {
        if (hidden.requires_grad()) {
            try (PointerScope scope = new PointerScope()) {
                TensorVector roots = new TensorVector(hidden);
                TensorVector grads = new TensorVector(r.gradHidden());
                if (extra != null) {
                    roots.push_back(extra);
                    grads.push_back(torch.ones_like(extra));
                }
                torch.backward(roots, grads, new BoolOptional(), false, new TensorVector());
            }
        }
        if (weight.requires_grad() && r.gradWeight() != null) {
            try (PointerScope scope = new PointerScope()) {
                Tensor g = weight.grad();
                Tensor add = r.gradWeight().to(weight.scalar_type());
                if (g.defined()) {
                    g.add_(add);
                } else {
                    weight.mutable_grad().put(add.clone());
                }
            }
        }
    }

    /**
     * Loss terms in labels (B, T) for the {@code numItems} of gradient accumulation (spec §4.2): with
     * {@code shifted} the true count of causal-LM targets (labels[:, 1:] != -100, what {@link #causalLm} counts);
     * without, transformers' {@code num_items_in_batch} (labels != -100, one more per sequence whose first label
     * is not -100) for HF-identical losses. Sum it over the micro-batches of one optimizer step.
     */
    public static long countTargets(Tensor labels, boolean shifted) {
        if (labels.dim() != 2) {
            throw new IllegalArgumentException("labels must be (B, T), got " + shape(labels));
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor l = shifted ? labels.narrow(1, 1, labels.size(1) - 1) : labels;
            return l.ne(new org.bytedeco.pytorch.Scalar(IGNORE_INDEX)).sum().item_long();
        }
    }

    /** Memory for one chunk of logits that {@link #defaultChunkRows} aims at. */
    public static final long CHUNK_BUDGET_BYTES = 256L << 20;

    /**
     * Rows per chunk: the larger of Liger's rule ({@code next_pow2(ceil(N / ceil(V / H)))}, spec §4.4) and the
     * largest power of two whose (rows, V) chunk fits {@link #CHUNK_BUDGET_BYTES} (fp32), capped at N. Fewer, larger
     * chunks matter on the CPU: every chunk re-reads W and re-writes the (V, H) weight gradient, and small-row GEMMs
     * run far below peak (at V = 151936, H = 896: 256 rows, a 148 MiB chunk; benchmarks/RESULTS.md).
     */
    public static int defaultChunkRows(long rows, long vocab, long hidden) {
        long inc = Math.max(1, (vocab + hidden - 1) / hidden);
        long liger = Math.max(1, (rows + inc - 1) / inc);
        long pow2 = Long.highestOneBit(liger);
        if (pow2 < liger) {
            pow2 <<= 1;
        }
        long budget = Math.max(1, Long.highestOneBit(Math.max(1, CHUNK_BUDGET_BYTES / (vocab * 4))));
        return (int) Math.max(1, Math.min(Math.max(pow2, budget), rows));
    }

    private static Result run(Tensor hidden, Tensor weight, Tensor labels, boolean shift, long seqLen, double numItems,
            int chunkRows, boolean wantGradWeight) {
        if (weight.dim() != 2 || weight.size(1) != hidden.size(hidden.dim() - 1)) {
            throw new IllegalArgumentException("weight must be (V, H) with H = " + hidden.size(hidden.dim() - 1)
                    + ", got " + shape(weight));
        }
        if (!(numItems <= 0) && !(numItems > 0 && Double.isFinite(numItems))) {
            throw new IllegalArgumentException("numItems must be a finite count > 0, or <= 0 for automatic; got " + numItems);
        }
        long h = weight.size(1);
        long v = weight.size(0);
        long n = hidden.numel() / h;
        Kernels.Dtype dtype = TensorMemory.dtype(hidden, "hidden");
        if (!TensorMemory.same(hidden.scalar_type(), weight.scalar_type())) {
            throw new IllegalArgumentException("hidden and weight must have the same dtype, got "
                    + hidden.scalar_type() + " and " + weight.scalar_type());
        }
        boolean cuda = hidden.is_cuda();
        if (cuda != weight.is_cuda()) {
            throw new IllegalArgumentException("hidden and weight must be on the same device");
        }
        // Outputs belong to the caller (its PointerScope, if any); everything else to the scope below.
        TensorOptions opts = new TensorOptions(hidden.scalar_type()).device(new DeviceOptional(hidden.device()));
        Tensor gradHidden = torch.empty(hidden.sizes().vec().get(), opts, new MemoryFormatOptional()); // like hidden
        Tensor gradWeight = wantGradWeight
                ? torch.zeros(new long[] {v, h}, new TensorOptions(ScalarType.Float).device(new DeviceOptional(hidden.device())))
                : null; // (V, H) fp32
        try (PointerScope scope = new PointerScope()) {
            Tensor x = hidden.detach().reshape(n, h).contiguous(); // (N, H)
            Tensor w = weight.detach().contiguous(); // (V, H)
            Tensor wt = w.t(); // (H, V) view
            Tensor lab = labels.detach().reshape(-1).to(ScalarType.Long).contiguous(); // (N) int64, device of labels
            long[] hostLabels = hostLongs(lab);
            long targets = validateAndCount(hostLabels, v, shift, seqLen);
            double divisor = numItems > 0 ? numItems : Math.max(1, targets);
            float scale = (float) (1.0 / divisor);
            Tensor dev = cuda ? lab.to(hidden.device(), ScalarType.Long).contiguous() : lab.is_cuda() ? lab.cpu() : lab;
            int chunk = chunkRows > 0 ? (int) Math.min(chunkRows, n) : defaultChunkRows(n, v, h);
            Tensor buf = torch.empty(new long[] {chunk, v}, opts, new MemoryFormatOptional()); // (chunk, V) logits/grad
            Tensor gh = gradHidden.reshape(n, h); // (N, H) view
            Tensor dht = torch.empty(new long[] {h, chunk}, opts, new MemoryFormatOptional()); // (H, chunk) dH^T
            Tensor rowLoss = cuda ? torch.zeros(new long[] {chunk}, new TensorOptions(ScalarType.Float)
                    .device(new DeviceOptional(hidden.device()))) : null; // (chunk) fp32
            Tensor lossAcc = cuda ? torch.zeros(new long[] {1}, new TensorOptions(ScalarType.Double)
                    .device(new DeviceOptional(hidden.device()))) : null;
            Kernels k = Kernels.of(cuda ? Kernels.Device.CUDA : Kernels.Device.CPU);
            double lossSum = 0;
            for (long r0 = 0; r0 < n; r0 += chunk) {
                try (PointerScope step = new PointerScope()) {
                    long rows = Math.min(chunk, n - r0);
                    Tensor hc = x.narrow(0, r0, rows); // (rows, H)
                    Tensor z = buf.narrow(0, 0, rows); // (rows, V)
                    torch.mm_out(z, hc, wt); // logits
                    MemorySegment zs = TensorMemory.segment(z, "logits chunk");
                    if (cuda) {
                        k.ceChunkDevice(dtype, zs, rows, v, TensorMemory.segment(dev, "labels"), n, r0, seqLen, shift,
                                IGNORE_INDEX, scale, TensorMemory.segment(rowLoss, "row loss"), MemorySegment.NULL);
                        lossAcc.add_(rowLoss.narrow(0, 0, rows).sum(new ScalarTypeOptional(ScalarType.Double)));
                    } else {
                        lossSum += k.ceChunk(dtype, zs, rows, v, TensorMemory.segment(dev, "labels"), n, r0, seqLen,
                                shift, IGNORE_INDEX, scale, MemorySegment.NULL, MemorySegment.NULL).lossSum();
                    }
                    // dH_c = dZ W (rows, H), computed as (W^T dZ^T)^T: with K = V huge and few rows, this operand
                    // order runs 3-7x faster in libtorch's CPU GEMM (benchmarks/RESULTS.md)
                    Tensor dhtc = rows == chunk ? dht : torch.empty(new long[] {h, rows}, opts, new MemoryFormatOptional());
                    torch.mm_out(dhtc, wt, z.t()); // (H, rows)
                    gh.narrow(0, r0, rows).copy_(dhtc.t());
                    if (gradWeight != null) { // dW += dZ^T H_c   (V, H), fp32 accumulator
                        if (dtype == Kernels.Dtype.FP32) {
                            gradWeight.addmm_(z.t(), hc);
                        } else {
                            gradWeight.addmm_(z.t().to(ScalarType.Float), hc.to(ScalarType.Float));
                        }
                    }
                }
            }
            if (cuda) {
                lossSum = lossAcc.item_double();
            }
            double loss = targets == 0 && numItems <= 0 ? 0.0 : lossSum / divisor;
            return new Result(loss, lossSum, targets, divisor, gradHidden, gradWeight);
        } catch (RuntimeException e) {
            gradHidden.close();
            if (gradWeight != null) {
                gradWeight.close();
            }
            throw e;
        }
    }

    /** Checks every label before any work (bad ones name their position) and counts the loss terms. */
    private static long validateAndCount(long[] labels, long vocab, boolean shift, long seqLen) {
        long count = 0;
        for (int i = 0; i < labels.length; i++) {
            long y = labels[i];
            if (y != IGNORE_INDEX && (y < 0 || y >= vocab)) {
                throw new IllegalArgumentException("label " + y + " at position " + i + " (sequence " + i / seqLen
                        + ", token " + i % seqLen + ") is outside [0, " + vocab + ") and is not " + IGNORE_INDEX
                        + ": the tokenizer and the LM head disagree on the vocabulary size");
            }
            boolean predicted = !shift || i % seqLen != 0; // with the shift, position 0 of a sequence is never a target
            if (y != IGNORE_INDEX && predicted) {
                count++;
            }
        }
        return count;
    }

    private static long[] hostLongs(Tensor t) {
        Tensor c = t.is_cuda() ? t.cpu().contiguous() : t;
        if (c.numel() == 0) {
            return new long[0];
        }
        return TensorMemory.segment(c, "labels").toArray(ValueLayout.JAVA_LONG);
    }

    private static String shape(Tensor t) {
        return java.util.Arrays.toString(t.sizes().vec().get());
    }
}
