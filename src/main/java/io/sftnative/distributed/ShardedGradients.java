package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * ZeRO stage 2's gradient synchronisation: after the step's last backward the gradients are <b>reduce-scattered</b>
 * instead of all-reduced, so each rank ends up with the summed gradient of its own slice of the flat parameter
 * space only ({@link #shard()}, {@code shardSize} elements), and the parameters' full-size gradients are freed at
 * once. The transfer runs in buckets of at most ddp_bucket_cap_mb (25 MiB by default) (one (N, k) send buffer,
 * allocated once).
 *
 * <p>Clipping needs the norm of the whole gradient: each rank sums the squares of its slice's pieces (float64), one
 * all-reduce adds them, and every rank scales its slice by the same coefficient — computed in fp32 as
 * {@code torch.nn.utils.clip_grad_norm_} does, so the clip matches plain data parallelism to rounding.
 *
 * <p>A parameter without a gradient on every rank stays without one ({@link #present}), as with the all-reduce.
 * Owns its buffers; {@link #close()} frees them.
 */
@SuppressWarnings("try") // scopes and guards are held for their side effect
public final class ShardedGradients implements GradientSync, AutoCloseable {
    private final DistributedGroup group;
    private final ZeroPartition part;
    private final boolean allowUnused;
    private final Tensor shard; // (shardSize,) this rank's summed gradient slice
    private final Tensor send; // (N * k,) one bucket of every rank's block
    private final long bucket; // k: elements per rank per bucket
    private final boolean[] present; // per parameter: some rank had a gradient this step
    private double commMillis;

    public ShardedGradients(DistributedGroup group, ZeroPartition part, boolean allowUnused, long bucketBytes) {
        this.group = group;
        this.part = part;
        this.allowUnused = allowUnused;
        TensorOptions dtype = new TensorOptions(part.params().get(0).scalar_type());
        this.bucket = part.bucketElements(bucketBytes);
        this.shard = torch.zeros(new long[] {part.shardSize()}, dtype).retainReference();
        this.send = torch.zeros(new long[] {part.worldSize() * bucket}, dtype).retainReference();
        this.present = new boolean[part.params().size()];
    }

    @Override
    public StepTotals totals(long targets, long tokens, boolean stop) {
        double[] sums = group.allReduceSum(new double[] {targets, tokens, stop ? 1 : 0});
        return new StepTotals((long) sums[0], (long) sums[1], sums[2] > 0);
    }

    @Override
    public double[] sumOverRanks(double[] values) {
        return group.allReduceSum(values);
    }

    @Override
    public double afterBackward(double lossSum) {
        long t0 = System.nanoTime();
        List<Tensor> params = part.params();
        double[] local = new double[1 + params.size()];
        local[0] = lossSum;
        for (int i = 0; i < params.size(); i++) {
            try (Tensor g = params.get(i).grad()) {
                local[1 + i] = g.defined() ? 1 : 0;
            }
        }
        double[] global = group.allReduceSum(local); // the loss, and how many ranks have each gradient
        List<String> unused = new ArrayList<>();
        for (int i = 0; i < params.size(); i++) {
            present[i] = global[1 + i] > 0;
            if (!present[i]) {
                unused.add(part.names().get(i));
            }
        }
        if (!unused.isEmpty() && !allowUnused) {
            throw new DistributedException("rank " + group.rank() + ": " + unused.size() + " trainable parameter(s)"
                    + " received no gradient on any rank (ddp_find_unused_parameters: false): "
                    + String.join(", ", unused.subList(0, Math.min(8, unused.size())))
                    + ". Set ddp_find_unused_parameters: true to let the optimizer skip them.");
        }
        int n = part.worldSize();
        long size = part.shardSize();
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            int buckets = (int) ((size + bucket - 1) / bucket);
            for (int b = 0; b < buckets; b++) {
                long at = b * bucket;
                long len = Math.min(bucket, size - at);
                Tensor in = send.narrow(0, 0, n * len); // (N * len,) block r = rank r's elements [at, at + len)
                for (int r = 0; r < n; r++) {
                    part.pack(r * size + at, r * size + at + len, in.narrow(0, r * len, len), true);
                }
                group.reduceScatter(shard.narrow(0, at, len), in, "gradient reduce-scatter (bucket " + (b + 1)
                        + " of " + buckets + ")");
            }
        }
        for (Tensor p : params) { // the full-size gradients are no longer needed: free them now
            try (Tensor g = p.mutable_grad()) {
                g.reset();
            }
        }
        commMillis = (System.nanoTime() - t0) / 1e6;
        return global[0];
    }

    /**
     * The total L2 norm of the whole (summed) gradient from the slices — one float64 all-reduce of the squared
     * norms — and, when {@code maxNorm > 0}, every slice scaled by {@code min(1, maxNorm / (norm + 1e-6))}.
     * {@code trainable} is not read: the gradients live in {@link #shard()} now.
     */
    @Override
    public double clipGradNorm(Collection<Tensor> trainable, double maxNorm) {
        double squares = 0;
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            for (ZeroPartition.Piece piece : part.pieces()) {
                if (present[piece.index()]) {
                    double norm = torch.linalg_vector_norm(shard.narrow(0, piece.shardOffset(), piece.length()))
                            .item_double();
                    squares += norm * norm;
                }
            }
            float total = (float) Math.sqrt(group.allReduceSum(new double[] {squares})[0]); // torch: fp32 norm
            if (maxNorm > 0 && Float.isFinite(total)) {
                float coef = Math.min(1f, (1f / (total + 1e-6f)) * (float) maxNorm); // clip_grad_norm_'s fp32 ops
                shard.mul_(new Scalar(coef));
            }
            return total;
        }
    }

    /** This rank's summed gradient slice (shardSize,); valid after {@link #afterBackward}. */
    Tensor shard() {
        return shard;
    }

    /** Whether parameter {@code index} got a gradient on some rank in the last step. */
    boolean present(int index) {
        return present[index];
    }

    public double lastMillis() {
        return commMillis;
    }

    public String describe() {
        return String.format(java.util.Locale.ROOT, "ZeRO-2 gradients: reduce-scatter in buckets of %,d elements"
                + " per rank, %.1f MB gradient slice per rank", bucket, part.shardSize() * part.elementSize() / 1e6);
    }

    @Override
    public void close() {
        shard.releaseReference();
        send.releaseReference();
    }
}
