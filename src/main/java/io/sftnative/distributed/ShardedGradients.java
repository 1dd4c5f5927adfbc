package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

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
 * <p>Layer-wise ({@link #layers()} not null: gradient checkpointing on, and always at stage 3): the training step's
 * {@link io.sftnative.loss.LayerHooks} reduce each unit's gradients into the slice right after that unit's backward,
 * micro-batch by micro-batch ({@link LayerShards}), so at most two units' full-size gradients exist at a time; the
 * slice is zeroed at the start of each step ({@link #totals}) and {@link #afterBackward} only sums the loss. A rank
 * with fewer micro-batches in a step replays the others' collectives with zero gradients.
 *
 * <p>A parameter without a gradient on every rank stays without one ({@link #present}), as with the all-reduce.
 * Owns its buffers, which live on the parameters' device in their dtype (on a GPU the reduce-scatter and the
 * layer-wise reduces run over NCCL; the step's counts and the norm's sum of squares stay float64 on Gloo);
 * {@link #close()} frees them.
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
    private final LayerShards layers; // layer-wise reduction (and stage 3's weights), or null: after backward
    private int replays; // layer-wise: micro-batches this rank lacks in the current step
    private double commMillis;

    public ShardedGradients(DistributedGroup group, ZeroPartition part, boolean allowUnused, long bucketBytes) {
        this(group, part, allowUnused, bucketBytes, false, false, java.util.Set.of());
    }

    /**
     * @param layerwise    reduce unit by unit from the training step's layer hooks (needs gradient checkpointing)
     * @param shardWeights ZeRO stage 3: the weights are sharded too (layer-wise only)
     * @param lateParams   parameters whose gradient the LM head's loss writes (see {@link LayerShards})
     */
    public ShardedGradients(DistributedGroup group, ZeroPartition part, boolean allowUnused, long bucketBytes,
            boolean layerwise, boolean shardWeights, java.util.Set<String> lateParams) {
        this.group = group;
        this.part = part;
        this.allowUnused = allowUnused;
        TensorOptions like = part.options(); // the parameters' dtype and device: on a GPU the collectives use NCCL
        this.bucket = part.bucketElements(bucketBytes);
        this.shard = torch.zeros(new long[] {part.shardSize()}, like).retainReference();
        this.send = layerwise ? null : torch.zeros(new long[] {part.worldSize() * bucket}, like).retainReference();
        this.present = new boolean[part.params().size()];
        this.layers = layerwise ? new LayerShards(group, part, shard, shardWeights, lateParams) : null;
    }

    @Override
    public StepTotals totals(long targets, long tokens, boolean stop) {
        return totals(targets, tokens, 1, stop);
    }

    /** Also (layer-wise) zeroes the gradient slice and learns how many micro-batches each rank runs. */
    @Override
    public StepTotals totals(long targets, long tokens, int microBatches, boolean stop) {
        int n = part.worldSize();
        double[] mine = new double[3 + n];
        mine[0] = targets;
        mine[1] = tokens;
        mine[2] = stop ? 1 : 0;
        mine[3 + part.rank()] = microBatches;
        double[] sums = group.allReduceSum(mine);
        if (layers != null) {
            try (NoGradGuard noGrad = new NoGradGuard()) {
                shard.zero_();
            }
            int most = 0;
            for (int r = 0; r < n; r++) {
                most = Math.max(most, (int) sums[3 + r]);
            }
            replays = most - microBatches;
        }
        return new StepTotals((long) sums[0], (long) sums[1], sums[2] > 0);
    }

    @Override
    public double[] sumOverRanks(double[] values) {
        return group.allReduceSum(values);
    }

    @Override
    public double afterBackward(double lossSum) {
        long t0 = System.nanoTime();
        if (layers != null) {
            layers.replay(replays); // first: the other ranks are still in their micro-batches' collectives
            replays = 0;
            layers.endStep();
        }
        List<Tensor> params = part.params();
        double[] local = new double[1 + params.size()];
        local[0] = lossSum;
        for (int i = 0; i < params.size(); i++) {
            if (layers != null) {
                local[1 + i] = layers.takeLocalGradient(i) ? 1 : 0;
                continue;
            }
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
        if (layers != null) { // reduced unit by unit during backward already
            commMillis = (System.nanoTime() - t0) / 1e6;
            return global[0];
        }
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
            for (double norm : pieceNorms()) {
                squares += norm * norm;
            }
            float total = (float) Math.sqrt(group.allReduceSum(new double[] {squares})[0]); // torch: fp32 norm
            if (maxNorm > 0 && Float.isFinite(total)) {
                float coef = Math.min(1f, (1f / (total + 1e-6f)) * (float) maxNorm); // clip_grad_norm_'s fp32 ops
                shard.mul_(new Scalar(coef));
            }
            return total;
        }
    }

    /**
     * The L2 norm of each piece of the slice that has a gradient, in piece order, each computed in the slice's dtype
     * on its device. They are stacked and copied to the host together: the one device-to-host wait of the clip,
     * needed because the sum of squares crosses the ranks as a float64 over Gloo (CPU) and the clip coefficient is
     * computed on the host (fp32, as torch). The widening to float64 is exact, so the values are those of
     * {@code item_double()} per piece.
     */
    private double[] pieceNorms() {
        TensorVector norms = new TensorVector();
        for (ZeroPartition.Piece piece : part.pieces()) {
            if (present[piece.index()]) {
                norms.push_back(torch.linalg_vector_norm(shard.narrow(0, piece.shardOffset(), piece.length()))); // ()
            }
        }
        if (norms.empty()) {
            return new double[0];
        }
        Tensor host = Devices.toHost(torch.stack(norms).to(ScalarType.Double)).contiguous(); // (pieces,) float64
        double[] out = new double[(int) host.numel()];
        host.data_ptr_double().get(out);
        return out;
    }

    /** This rank's summed gradient slice (shardSize,); valid after {@link #afterBackward}. */
    Tensor shard() {
        return shard;
    }

    /** The flat buffers it owns (the gradient slice, the reduce-scatter bucket when there is one). */
    List<Tensor> buffers() {
        return send == null ? List.of(shard) : List.of(shard, send);
    }

    /** Whether parameter {@code index} got a gradient on some rank in the last step. */
    boolean present(int index) {
        return present[index];
    }

    public double lastMillis() {
        return commMillis;
    }

    /** The layer-wise reduction and stage 3's weight gathering, or null (reduce-scatter after backward). */
    LayerShards layers() {
        return layers;
    }

    public String describe() {
        return layers != null ? String.format(java.util.Locale.ROOT, "ZeRO-%d gradients: %s, %.1f MB gradient slice"
                + " per rank", layers.shardsWeights() ? 3 : 2, layers.describe(),
                part.shardSize() * part.elementSize() / 1e6)
                : String.format(java.util.Locale.ROOT, "ZeRO-2 gradients: reduce-scatter in buckets of %,d elements"
                + " per rank, %.1f MB gradient slice per rank", bucket, part.shardSize() * part.elementSize() / 1e6);
    }

    /** Frees the gradient slice early (training is over: nothing reduces into it any more). */
    void freeShard() {
        shard.set_();
    }

    @Override
    public void close() {
        if (layers != null) {
            layers.close();
        }
        shard.releaseReference();
        if (send != null) {
            send.releaseReference();
        }
    }
}
