package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.VoidTensorHook;
import org.bytedeco.pytorch.Work;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.model.Tensors;

/**
 * Data-parallel gradient synchronisation that overlaps the backward pass, DDP's design: the trainable parameters
 * are grouped into flat buckets (in reverse order, as their gradients become ready: the last layers first; the
 * first bucket at most {@link #FIRST_BUCKET_BYTES} so communication starts early, the others at most
 * {@code ddp_bucket_cap_mb}, 25 MiB by default), an autograd hook on each parameter copies its final gradient into its bucket during the
 * backward pass of the step's <b>last</b> micro-batch on this rank, and a bucket whose parameters are all in starts
 * its asynchronous SUM all-reduce at once, while backward goes on. Earlier micro-batches only accumulate (DDP's
 * {@code no_sync}). {@link #afterBackward} packs what the hooks did not (see below), starts the remaining buckets,
 * waits for every bucket (before clipping) and copies the sums back into {@code .grad}.
 *
 * <p>Launch order is the bucket order on every rank (bucket k starts only after buckets 0..k-1), so the collectives
 * of all ranks match whatever order the hooks fire in. The hook sees the incoming gradient before autograd adds it
 * to {@code .grad}, so it packs {@code .grad + incoming} (the accumulated micro-batches plus this one).
 *
 * <p>Parameters whose gradient is (also) written outside autograd ({@code lateParams}: the fused LM-head loss adds
 * the head's gradient after the graph's backward; a LoRA head backpropagates chunk by chunk) get no hook; they sit
 * in the last buckets, which start after backward. A parameter whose hook fires again after its bucket started
 * (a component that runs several backward passes over it) is caught: every rank then redoes the step's reduction
 * from {@code .grad} after backward (correct, without overlap) and says so once.
 *
 * <p>A parameter with no gradient on this rank (a rank without micro-batches in an epoch's short last step, an
 * expert that got no tokens, a parameter the graph did not reach) contributes zeros, so no rank ever waits for it;
 * one without a gradient on every rank stays without one (the optimizer skips it, as in one process) when
 * {@code ddp_find_unused_parameters} allows it, else the run stops naming it. Owns its buckets and hooks;
 * {@link #close()} frees the buckets and makes the hooks inert.
 */
@SuppressWarnings("try") // scopes and guards are held for their side effect
public final class BucketedAllReduce implements GradientSync, AutoCloseable {
    /** DDP's first bucket (1 MiB): the first all-reduce starts after the last layers' gradients. */
    public static final long FIRST_BUCKET_BYTES = 1L << 20;

    private final DistributedGroup group;
    private final List<String> names; // as given (the optimizer's order)
    private final List<Tensor> params;
    private final boolean allowUnused;
    private final boolean overlap;
    private final long capBytes;
    private final List<Bucket> buckets = new ArrayList<>();
    private final int[] bucketOf; // parameter index -> bucket index
    private final long[] offsetOf; // parameter index -> element offset in its bucket
    private final boolean[] filled; // the hook packed this parameter's gradient in this step
    private final List<VoidTensorHook> hooks = new ArrayList<>(); // strongly reachable while registered
    private final List<int[]> hookHandles = new ArrayList<>(); // (parameter index, libtorch hook position)
    private final Work[] works;
    private int nextLaunch;
    private boolean armed;
    private boolean spoiled;
    private boolean spoiledReported;
    private RuntimeException hookError;
    private double commMillis;
    private long backwardLaunches;
    private long launches;
    private long steps;
    private double exposedMillis; // summed over steps

    /** Parameters {@code members} (indices into the list), packed into {@code flat} (n,) in their dtype. */
    private static final class Bucket {
        final int[] members;
        final Tensor flat;
        final boolean late;
        int pending;

        Bucket(int[] members, Tensor flat, boolean late) {
            this.members = members;
            this.flat = flat;
            this.late = late;
        }
    }

    /**
     * @param params      the trainable parameters by name, in the same order on every rank (float tensors)
     * @param lateParams  names of parameters whose gradient is written outside autograd (reduced after backward)
     * @param allowUnused ddp_find_unused_parameters
     * @param overlap     false: no hooks, every bucket is reduced after backward (benchmark comparisons)
     * @param capBytes    the largest bucket (ddp_bucket_cap_mb; the first is at most 1 MiB of it)
     */
    public BucketedAllReduce(DistributedGroup group, Map<String, Tensor> params, Set<String> lateParams,
            boolean allowUnused, boolean overlap, long capBytes) {
        this.capBytes = capBytes;
        this.group = group;
        this.names = new ArrayList<>(params.keySet());
        this.params = new ArrayList<>(params.values());
        this.allowUnused = allowUnused;
        this.overlap = overlap;
        int n = this.params.size();
        bucketOf = new int[n];
        offsetOf = new long[n];
        filled = new boolean[n];
        List<Integer> early = new ArrayList<>();
        List<Integer> late = new ArrayList<>();
        for (int i = n - 1; i >= 0; i--) { // reverse: gradients of the last layers are ready first
            (overlap && !lateParams.contains(names.get(i)) ? early : late).add(i);
        }
        assign(early, false);
        assign(late, true);
        works = new Work[buckets.size()];
        if (overlap) {
            for (int i : early) {
                VoidTensorHook h = hook(i);
                hooks.add(h);
                hookHandles.add(new int[] {i, this.params.get(i).register_hook(h)});
            }
        }
    }

    /** Buckets over {@code order}: a new one when the dtype changes or the cap would be passed. */
    private void assign(List<Integer> order, boolean late) {
        List<Integer> members = new ArrayList<>();
        long bytes = 0;
        for (int i : order) {
            Tensor p = params.get(i);
            long cap = buckets.isEmpty() ? Math.min(FIRST_BUCKET_BYTES, capBytes) : capBytes;
            boolean dtypeChanges = !members.isEmpty()
                    && p.scalar_type().value != params.get(members.get(0)).scalar_type().value;
            if (!members.isEmpty() && (dtypeChanges || bytes + p.numel() * p.element_size() > cap)) {
                addBucket(members, late);
                members = new ArrayList<>();
                bytes = 0;
            }
            members.add(i);
            bytes += p.numel() * p.element_size();
        }
        if (!members.isEmpty()) {
            addBucket(members, late);
        }
    }

    private void addBucket(List<Integer> members, boolean late) {
        int[] m = members.stream().mapToInt(Integer::intValue).toArray();
        long elements = 0;
        for (int i : m) {
            bucketOf[i] = buckets.size();
            offsetOf[i] = elements;
            elements += params.get(i).numel();
        }
        Tensor p = params.get(m[0]);
        // (n,) on the parameters' device: Gloo reduces CPU buffers, NCCL CUDA ones
        Tensor flat = torch.zeros(new long[] {elements}, p.options()).retainReference();
        buckets.add(new Bucket(m, flat, late));
    }

    /** The autograd hook of parameter {@code i}: runs on the thread that called backward, before accumulation. */
    private VoidTensorHook hook(int i) {
        return new VoidTensorHook() {
            @Override
            public void call(TensorBase incoming) {
                if (!armed) {
                    return; // not the step's last micro-batch: autograd accumulates, nothing is sent (no_sync)
                }
                try {
                    onGradient(i, incoming);
                } catch (RuntimeException e) { // never let an exception cross the native frame
                    if (hookError == null) {
                        hookError = e;
                    }
                    spoiled = true;
                }
            }
        };
    }

    private void onGradient(int i, TensorBase incoming) {
        Bucket b = buckets.get(bucketOf[i]);
        if (works[bucketOf[i]] != null) {
            spoiled = true; // a second gradient after the bucket left: redo this step after backward
            return;
        }
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor p = params.get(i);
            Tensor view = view(b, i); // p's shape
            Tensor in = new Tensor(incoming); // p's shape
            if (filled[i]) {
                view.add_(in); // a second pass over the parameter before its bucket left
                return;
            }
            Tensor g = p.grad(); // accumulated micro-batches (same shape as p), or undefined
            if (g.defined()) {
                view.copy_(g).add_(in);
            } else {
                view.copy_(in);
            }
        }
        filled[i] = true;
        if (--b.pending == 0) {
            launchReady();
        }
    }

    /** Starts, in bucket order, every bucket whose parameters are all packed. */
    private void launchReady() {
        while (nextLaunch < buckets.size() && buckets.get(nextLaunch).pending == 0 && !buckets.get(nextLaunch).late) {
            works[nextLaunch] = start(buckets.get(nextLaunch));
            nextLaunch++;
            backwardLaunches++;
            launches++;
        }
    }

    private Tensor view(Bucket b, int i) {
        Tensor p = params.get(i);
        return b.flat.narrow(0, offsetOf[i], p.numel()).view(Tensors.shape(p)); // p's shape
    }

    @Override
    public StepTotals totals(long targets, long tokens, boolean stop) {
        double[] sums = group.allReduceSum(new double[] {targets, tokens, stop ? 1 : 0});
        return new StepTotals((long) sums[0], (long) sums[1], sums[2] > 0);
    }

    @Override
    public void beforeBackward(boolean last) {
        if (last) { // a fresh start even when an earlier step's backward failed half-way
            Arrays.fill(filled, false);
            for (Bucket b : buckets) {
                b.pending = b.late ? Integer.MAX_VALUE : b.members.length;
            }
        }
        armed = overlap && last;
    }

    @Override
    public double[] sumOverRanks(double[] values) {
        return group.allReduceSum(values);
    }

    @Override
    public double afterBackward(double lossSum) {
        long t0 = System.nanoTime();
        boolean wasArmed = armed;
        armed = false;
        if (!wasArmed) {
            Arrays.fill(filled, false); // no micro-batch on this rank, or no overlap: nothing was packed yet
        }
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            for (int b = nextLaunch; b < buckets.size(); b++) { // the rest, in bucket order
                pack(buckets.get(b), true);
                works[b] = start(buckets.get(b));
                launches++;
            }
            nextLaunch = buckets.size();
            double[] local = new double[2 + params.size()];
            local[0] = lossSum;
            local[1] = spoiled ? 1 : 0;
            for (int i = 0; i < params.size(); i++) {
                try (Tensor g = params.get(i).grad()) {
                    local[2 + i] = g.defined() ? 1 : 0;
                }
            }
            double[] global = group.allReduceSum(local); // the loss, a redo flag, how many ranks have each gradient
            checkUnused(global);
            awaitAll();
            if (global[1] > 0) { // some rank's hooks saw a parameter twice: reduce again from .grad, no overlap
                reportSpoiled();
                for (int b = 0; b < buckets.size(); b++) {
                    pack(buckets.get(b), false);
                    works[b] = start(buckets.get(b));
                }
                awaitAll();
            }
            for (Bucket b : buckets) {
                unpack(b, global);
            }
            return global[0];
        } finally {
            nextLaunch = 0;
            spoiled = false;
            Arrays.fill(works, null);
            commMillis = (System.nanoTime() - t0) / 1e6;
            exposedMillis += commMillis;
            steps++;
        }
    }

    /**
     * Starts {@code b}'s all-reduce. The work handle is retained: a hook runs inside whatever PointerScope the loss
     * computation has open, which closes long before {@link #afterBackward} waits.
     */
    private Work start(Bucket b) {
        Work w = group.allReduceAsync(b.flat);
        w.retainReference();
        return w;
    }

    private void awaitAll() {
        for (int b = 0; b < buckets.size(); b++) {
            if (works[b] != null) {
                Work w = works[b];
                works[b] = null;
                try {
                    group.await(w, "gradient all-reduce (bucket " + (b + 1) + " of " + buckets.size() + ")");
                } finally {
                    w.releaseReference();
                }
            }
        }
    }

    private void checkUnused(double[] global) {
        List<String> unused = new ArrayList<>();
        for (int i = 0; i < params.size(); i++) {
            if (global[2 + i] == 0) {
                unused.add(names.get(i));
            }
        }
        if (!unused.isEmpty() && !allowUnused) {
            awaitAll();
            throw new DistributedException("rank " + group.rank() + ": " + unused.size() + " trainable parameter(s)"
                    + " received no gradient on any rank (ddp_find_unused_parameters: false): " + preview(unused)
                    + ". Set ddp_find_unused_parameters: true to let the optimizer skip them.");
        }
    }

    private void reportSpoiled() {
        if (hookError != null) {
            RuntimeException e = hookError;
            hookError = null;
            throw new DistributedException("rank " + group.rank() + ": the gradient hook failed: " + e.getMessage(), e);
        }
        if (!spoiledReported) {
            spoiledReported = true;
            System.err.println("note: a parameter received a gradient after its bucket was sent (several backward"
                    + " passes over it); this step's gradients were reduced again after backward (correct, not"
                    + " overlapped)");
        }
    }

    /** Copies the gradients into {@code b}; {@code onlyMissing}: leaves what the hooks packed. */
    private void pack(Bucket b, boolean onlyMissing) {
        for (int i : b.members) {
            if (onlyMissing && filled[i]) {
                continue;
            }
            Tensor view = view(b, i); // p's shape
            Tensor g = params.get(i).grad(); // p's shape, or undefined
            if (g.defined()) {
                view.copy_(g);
            } else {
                view.zero_(); // no gradient on this rank: contribute zeros, so no rank waits for it
            }
        }
    }

    private void unpack(Bucket b, double[] global) {
        for (int i : b.members) {
            Tensor p = params.get(i);
            if (global[2 + i] > 0) {
                Tensor view = view(b, i); // p's shape
                Tensor g = p.grad();
                if (g.defined()) {
                    g.copy_(view);
                } else {
                    p.mutable_grad().put(view.clone()); // this rank had no gradient: it now has the sum
                }
            }
        }
    }

    /** Wall time of the last {@link #afterBackward} (what of the communication backward did not hide), in ms. */
    public double lastMillis() {
        return commMillis;
    }

    /** Buckets started from the hooks during backward since this object was made (the rest started after it). */
    public long bucketsStartedDuringBackward() {
        return backwardLaunches;
    }

    /** Steps synchronised so far. */
    public long steps() {
        return steps;
    }

    /** Mean wall time per step spent after backward on the synchronisation (what backward did not hide), in ms. */
    public double meanExposedMillis() {
        return steps == 0 ? 0 : exposedMillis / steps;
    }

    /** One line for the log at the end of a run. */
    public String summary() {
        return String.format(java.util.Locale.ROOT, "gradient sync: %d of %d bucket all-reduces started during"
                + " backward; %.1f ms per step spent after backward (%d steps)", backwardLaunches, launches,
                meanExposedMillis(), steps);
    }

    /** Buckets and their sizes, for the log. */
    public String describe() {
        long bytes = 0;
        for (Bucket b : buckets) {
            bytes += b.flat.numel() * b.flat.element_size();
        }
        return String.format(java.util.Locale.ROOT, "%d parameters in %d bucket(s), %.1f MB of gradients%s",
                params.size(), buckets.size(), bytes / 1e6, overlap ? ", reduced during backward" : "");
    }

    private static String preview(List<String> names) {
        return names.size() <= 8 ? String.join(", ", names) : String.join(", ", names.subList(0, 8)) + ", ...";
    }

    /** Removes the hooks from the parameters and frees the buckets. */
    @Override
    public void close() {
        armed = false;
        for (int[] h : hookHandles) {
            Tensor p = params.get(h[0]);
            if (!p.isNull()) { // a model closed first freed its parameters, and their hooks with them
                p.remove_hook(h[1]);
            }
        }
        hookHandles.clear();
        hooks.clear();
        for (Bucket b : buckets) {
            b.flat.releaseReference();
        }
        buckets.clear();
    }
}
