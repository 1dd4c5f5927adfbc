package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.Work;
import org.bytedeco.pytorch.global.torch;

/**
 * {@link LayerShards}' collectives for one unit (or any set of parameters), started when made and completed by
 * {@code finish}: a parameter's pieces are the runs of the flat parameter space where it meets each owner's slice,
 * and each piece travels in its own Gloo collective, in parameter then owner order (the same on every rank, which
 * is what c10d matches collectives by). Each object owns its buffers and works until {@code finish} or
 * {@code abandon}; a collective still running holds its own references to its work and tensors, so dropping the
 * handles without waiting (a failed step) is memory-safe.
 */
@SuppressWarnings("try") // scopes and guards are held for their side effect
final class UnitTransfers {
    private UnitTransfers() {}

    /** The pieces of parameter {@code i}: {owner rank, lo, hi} per owner whose slice meets it, in rank order. */
    static List<long[]> pieces(ZeroPartition part, int i) {
        long size = part.shardSize();
        long at = part.paramOffset(i);
        long numel = part.paramNumel(i);
        List<long[]> out = new ArrayList<>();
        for (int r = 0; r < part.worldSize(); r++) {
            long lo = Math.max(at, r * size);
            long hi = Math.min(at + numel, (r + 1) * size);
            if (hi > lo) {
                out.add(new long[] {r, lo, hi});
            }
        }
        return out;
    }

    /**
     * Parameters' weights on their way (stage 3: a unit's, prefetched, or released ones gathered now): a full-size
     * buffer per parameter, each piece <b>broadcast</b> from its owner (the owner's piece copied from its slice
     * first).
     */
    static final class Gather {
        final int unit; // the unit prefetched, or Integer.MIN_VALUE
        private final DistributedGroup group;
        private final ZeroPartition part;
        private final int[] idx;
        private final Tensor[] buffers; // per idx entry: (the parameter's full shape), owned
        private final List<Work> works = new ArrayList<>(); // owned
        private final List<String> what = new ArrayList<>(); // per work, for its error

        /**
         * @param paramShard (shardSize,) this rank's weight slice
         * @param shapes     per parameter, its full shape
         */
        Gather(DistributedGroup group, ZeroPartition part, Tensor paramShard, long[][] shapes, int unit, int[] idx) {
            this.unit = unit;
            this.group = group;
            this.part = part;
            this.idx = idx;
            this.buffers = new Tensor[idx.length];
            long size = part.shardSize();
            try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
                for (int k = 0; k < idx.length; k++) {
                    int i = idx[k];
                    Tensor p = part.params().get(i);
                    buffers[k] = torch.empty(shapes[i], p.options(), new MemoryFormatOptional()).retainReference();
                    Tensor flat = buffers[k].view(-1); // (numel,)
                    for (long[] piece : pieces(part, i)) {
                        int r = (int) piece[0];
                        long lo = piece[1];
                        long hi = piece[2];
                        Tensor dst = flat.narrow(0, lo - part.paramOffset(i), hi - lo); // (hi - lo,) contiguous
                        if (r == part.rank()) {
                            dst.copy_(paramShard.narrow(0, lo - r * size, hi - lo));
                        }
                        String w = "weight gather of '" + part.names().get(i) + "'";
                        works.add(group.broadcastAsync(dst, r, w));
                        what.add(w);
                    }
                }
            } catch (RuntimeException e) {
                abandon();
                throw e;
            }
        }

        /**
         * Waits for every broadcast; then, unless {@code released} is null, each buffer becomes the storage of its
         * parameter if that one is released ({@code set_data}; its flag cleared), else is discarded.
         */
        void finish(boolean[] released) {
            try {
                for (int k = 0; k < works.size(); k++) {
                    group.await(works.get(k), what.get(k));
                }
                if (released != null) {
                    try (PointerScope scope = new PointerScope()) {
                        for (int k = 0; k < idx.length; k++) {
                            if (released[idx[k]]) {
                                part.params().get(idx[k]).set_data(buffers[k]);
                                released[idx[k]] = false;
                            }
                        }
                    }
                }
            } finally {
                abandon();
            }
        }

        /** Drops the handles without waiting; a parameter given a buffer by {@link #finish} keeps it. */
        void abandon() {
            works.forEach(Work::releaseReference);
            works.clear();
            for (int k = 0; k < buffers.length; k++) {
                if (buffers[k] != null) {
                    buffers[k].releaseReference();
                    buffers[k] = null;
                }
            }
        }
    }

    /**
     * One unit's gradients on their way (stages 2 and 3): each piece of each parameter's gradient (zeros where this
     * rank has none) SUM-<b>reduced</b> to its owner in place; the gradients leave the parameters at once, and the
     * pieces keep them until {@link #finish} added this rank's into its slice.
     */
    static final class Reduce {
        private final DistributedGroup group;
        private final List<Work> works = new ArrayList<>(); // owned
        private final List<Tensor> pieces = new ArrayList<>(); // per work: (length,) reduced in place, owned
        private final List<Long> into = new ArrayList<>(); // per work: offset in this rank's slice, or -1
        private final List<String> what = new ArrayList<>();

        /** @param localGrad per parameter: set when this rank had a gradient for it */
        Reduce(DistributedGroup group, ZeroPartition part, int[] idx, boolean[] localGrad) {
            this.group = group;
            long size = part.shardSize();
            try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
                for (int i : idx) {
                    Tensor p = part.params().get(i);
                    Tensor g = p.grad(); // p's shape, or undefined (not used by this rank's micro-batch)
                    localGrad[i] |= g.defined();
                    Tensor flat = g.defined() ? g.reshape(-1) : null; // (numel,)
                    for (long[] piece : pieces(part, i)) {
                        int r = (int) piece[0];
                        long lo = piece[1];
                        long hi = piece[2];
                        Tensor buf = (flat != null ? flat.narrow(0, lo - part.paramOffset(i), hi - lo) // (hi - lo,)
                                : torch.zeros(new long[] {hi - lo}, p.options())).retainReference();
                        pieces.add(buf);
                        into.add(r == part.rank() ? lo - r * size : -1L);
                        String w = "gradient reduce of '" + part.names().get(i) + "'";
                        what.add(w);
                        works.add(group.reduceAsync(buf, r, w));
                    }
                    try (Tensor slot = p.mutable_grad()) {
                        slot.reset(); // the pieces keep the full-size gradient until their reduces completed
                    }
                }
            } catch (RuntimeException e) {
                abandon();
                throw e;
            }
        }

        /**
         * Waits for every reduce and adds this rank's pieces into {@code gradShard} (shardSize,), piece by piece in
         * the order they were started (as a synchronous reduce would: the same sums, bit for bit).
         */
        void finish(Tensor gradShard) {
            try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
                for (int k = 0; k < works.size(); k++) {
                    group.await(works.get(k), what.get(k));
                    if (into.get(k) >= 0) {
                        gradShard.narrow(0, into.get(k), pieces.get(k).numel()).add_(pieces.get(k));
                    }
                }
            } finally {
                abandon();
            }
        }

        /** Drops the handles without waiting. */
        void abandon() {
            works.forEach(Work::releaseReference);
            works.clear();
            pieces.forEach(Tensor::releaseReference);
            pieces.clear();
        }
    }
}
