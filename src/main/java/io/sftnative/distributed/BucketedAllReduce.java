package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.Work;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.model.Tensors;

/**
 * Data-parallel gradient synchronisation: after the step's last backward, the gradients of the trainable parameters
 * are packed into flat buckets of at most {@link #BUCKET_BYTES} (DDP's default cap), and each bucket's SUM
 * all-reduce starts as soon as it is packed, so the network moves one bucket while the next is copied. The buckets
 * are allocated once and reused (first touch of fresh memory is slow; the spec measured 75 ms for 12.6 MB).
 *
 * <p>Why after backward and not from autograd hooks during it (c10d's Reducer): the fused LM-head loss writes the
 * head's gradient outside autograd and gradient checkpointing runs one backward pass per layer, so hooks would miss
 * or double-count gradients. Every parameter of the list takes part, whatever the loss computation did.
 *
 * <p>A parameter with no gradient on this rank (a rank without micro-batches in an epoch's short last step, or a
 * parameter the graph did not reach) contributes zeros; one without a gradient on every rank stays without one (the
 * optimizer skips it, as in one process) when {@code ddp_find_unused_parameters} allows it, else the run stops
 * naming it. Owns its buckets; {@link #close()} frees them.
 */
@SuppressWarnings("try") // scopes and guards are held for their side effect
public final class BucketedAllReduce implements GradientSync, AutoCloseable {
    /** DDP's bucket_cap_mb default (25 MiB). */
    public static final long BUCKET_BYTES = 25L << 20;

    private final DistributedGroup group;
    private final List<String> names;
    private final List<Tensor> params;
    private final boolean allowUnused;
    private final List<Bucket> buckets = new ArrayList<>();
    private double commMillis;

    /** Parameters [first, first + count) of the list, packed into {@code flat} (n,) in their dtype. */
    private record Bucket(int first, int count, Tensor flat) {}

    /**
     * @param params      the trainable parameters by name, in the same order on every rank (float tensors)
     * @param allowUnused ddp_find_unused_parameters
     */
    public BucketedAllReduce(DistributedGroup group, Map<String, Tensor> params, boolean allowUnused) {
        this.group = group;
        this.names = new ArrayList<>(params.keySet());
        this.params = new ArrayList<>(params.values());
        this.allowUnused = allowUnused;
        int first = 0;
        long elements = 0;
        for (int i = 0; i < this.params.size(); i++) {
            Tensor p = this.params.get(i);
            boolean dtypeChanges = p.scalar_type().value != this.params.get(first).scalar_type().value;
            if (i > first && (dtypeChanges || (elements + p.numel()) * p.element_size() > BUCKET_BYTES)) {
                buckets.add(bucket(first, i, elements));
                first = i;
                elements = 0;
            }
            elements += p.numel();
        }
        if (first < this.params.size()) {
            buckets.add(bucket(first, this.params.size(), elements));
        }
    }

    private Bucket bucket(int from, int to, long elements) {
        Tensor p = params.get(from);
        Tensor flat = torch.zeros(new long[] {elements}, new TensorOptions(p.scalar_type())).retainReference(); // (n,)
        return new Bucket(from, to - from, flat);
    }

    @Override
    public StepTotals totals(long targets, long tokens, boolean stop) {
        double[] sums = group.allReduceSum(new double[] {targets, tokens, stop ? 1 : 0});
        return new StepTotals((long) sums[0], (long) sums[1], sums[2] > 0);
    }

    @Override
    public double afterBackward(double lossSum) {
        long t0 = System.nanoTime();
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
            if (global[1 + i] == 0) {
                unused.add(names.get(i));
            }
        }
        if (!unused.isEmpty() && !allowUnused) {
            throw new DistributedException("rank " + group.rank() + ": " + unused.size() + " trainable parameter(s)"
                    + " received no gradient on any rank (ddp_find_unused_parameters: false): " + preview(unused)
                    + ". Set ddp_find_unused_parameters: true to let the optimizer skip them.");
        }
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Work[] works = new Work[buckets.size()];
            for (int b = 0; b < buckets.size(); b++) {
                pack(buckets.get(b));
                works[b] = group.allReduceAsync(buckets.get(b).flat());
            }
            for (int b = 0; b < buckets.size(); b++) {
                group.await(works[b], "gradient all-reduce (bucket " + (b + 1) + " of " + buckets.size() + ")");
                unpack(buckets.get(b), global);
            }
        }
        commMillis = (System.nanoTime() - t0) / 1e6;
        return global[0];
    }

    private void pack(Bucket b) {
        long offset = 0;
        for (int i = b.first(); i < b.first() + b.count(); i++) {
            Tensor p = params.get(i);
            Tensor view = b.flat().narrow(0, offset, p.numel()).view(Tensors.shape(p)); // p's shape
            Tensor g = p.grad();
            if (g.defined()) {
                view.copy_(g);
            } else {
                view.zero_();
            }
            offset += p.numel();
        }
    }

    private void unpack(Bucket b, double[] global) {
        long offset = 0;
        for (int i = b.first(); i < b.first() + b.count(); i++) {
            Tensor p = params.get(i);
            if (global[1 + i] > 0) {
                Tensor view = b.flat().narrow(0, offset, p.numel()).view(Tensors.shape(p)); // p's shape
                Tensor g = p.grad();
                if (g.defined()) {
                    g.copy_(view);
                } else {
                    p.mutable_grad().put(view.clone()); // this rank had no gradient: it now has the sum
                }
            }
            offset += p.numel();
        }
    }

    /** Wall time of the last {@link #afterBackward} (packing, communication, unpacking), in milliseconds. */
    public double lastMillis() {
        return commMillis;
    }

    /** Buckets and their sizes, for the log. */
    public String describe() {
        long bytes = 0;
        for (Bucket b : buckets) {
            bytes += b.flat().numel() * b.flat().element_size();
        }
        return String.format(java.util.Locale.ROOT, "%d parameters in %d bucket(s), %.1f MB of gradients",
                params.size(), buckets.size(), bytes / 1e6);
    }

    private static String preview(List<String> names) {
        return names.size() <= 8 ? String.join(", ", names) : String.join(", ", names.subList(0, 8)) + ", ...";
    }

    @Override
    public void close() {
        for (Bucket b : buckets) {
            b.flat().releaseReference();
        }
        buckets.clear();
    }
}
