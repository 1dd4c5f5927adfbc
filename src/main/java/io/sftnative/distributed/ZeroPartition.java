package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;

import io.sftnative.config.ConfigException;
import io.sftnative.torch.Devices;

/**
 * ZeRO's partition of the trainable parameters: their elements, concatenated in the trainable order into one flat
 * space of {@code total} elements, padded to {@code worldSize × shardSize} and cut into contiguous slices; rank r
 * owns flat elements {@code [r·shardSize, (r+1)·shardSize)}. A rank's slice meets each parameter in at most one
 * contiguous run of elements, its {@link Piece}; the pieces are what the rank's optimizer updates.
 *
 * <p>Collectives move the space in buckets: bucket b holds elements {@code [b·k, (b+1)·k)} of every rank's slice
 * (k = {@link #bucketElements}), so a reduce-scatter or all-gather of one bucket is one call with contiguous
 * per-rank blocks. No tensors are owned and nothing is communicated here: {@link #pack} / {@link #unpack} copy
 * between a flat range and the parameters (values or gradients) for the collectives of the callers.
 */
public final class ZeroPartition {
    private final List<String> names;
    private final List<Tensor> params;
    private final long[] offsets; // flat offset of each parameter; offsets[n] = total
    private final int worldSize;
    private final int rank;
    private final long shardSize;
    private final List<Piece> pieces;

    /**
     * This rank's part of parameter {@code index}: elements {@code [paramOffset, paramOffset + length)} of the
     * parameter (row-major), stored at {@code [shardOffset, shardOffset + length)} of the rank's slice.
     */
    public record Piece(int index, String name, long paramOffset, long length, long shardOffset) {}

    /**
     * @param trainable the trainable parameters by name, in the same order on every rank; one floating dtype, one
     *                  device, contiguous (the optimizer updates them through flat views)
     */
    public ZeroPartition(Map<String, Tensor> trainable, int worldSize, int rank) {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " of " + worldSize);
        }
        this.names = List.copyOf(trainable.keySet());
        this.params = List.copyOf(trainable.values());
        this.worldSize = worldSize;
        this.rank = rank;
        this.offsets = new long[params.size() + 1];
        String first = params.isEmpty() ? null : deviceOf(params.get(0));
        for (int i = 0; i < params.size(); i++) {
            Tensor p = params.get(i);
            if (!p.is_contiguous()) {
                throw new ConfigException("ZeRO: trainable parameter '" + names.get(i) + "' is not contiguous in"
                        + " memory, so it cannot be updated through a flat view; train it with plain data"
                        + " parallelism (zero_optimization.stage 0)");
            }
            String device = deviceOf(p);
            if (!device.equals(first)) {
                throw new ConfigException("ZeRO: the trainable parameters are on several devices ('" + names.get(0)
                        + "' on " + first + ", '" + names.get(i) + "' on " + device + "); the"
                        + " shard buffers live on the parameters' one device. Put the whole model on one device");
            }
            if (p.scalar_type().value != params.get(0).scalar_type().value) {
                throw new ConfigException("ZeRO: the trainable parameters mix dtypes ('" + names.get(0) + "' is "
                        + params.get(0).scalar_type() + ", '" + names.get(i) + "' is " + p.scalar_type() + "); one"
                        + " flat buffer needs one dtype. Use zero_optimization.stage 0 for this run");
            }
            offsets[i + 1] = offsets[i] + p.numel();
        }
        this.shardSize = (total() + worldSize - 1) / worldSize;
        List<Piece> mine = new ArrayList<>();
        long lo = rank * shardSize;
        long hi = Math.min(total(), lo + shardSize);
        forEach(lo, hi, (i, paramOffset, length, at) -> mine.add(new Piece(i, names.get(i), paramOffset, length,
                at)));
        this.pieces = Collections.unmodifiableList(mine);
    }

    /** Elements of all trainable parameters together. */
    public long total() {
        return offsets[params.size()];
    }

    /** Flat offset of parameter {@code i}'s first element. */
    public long paramOffset(int i) {
        return offsets[i];
    }

    /** Elements of parameter {@code i} (as it was when the partition was made: ZeRO-3 swaps its storage out). */
    public long paramNumel(int i) {
        return offsets[i + 1] - offsets[i];
    }

    /** Elements of every rank's slice (the last rank's slice is padded with {@code worldSize·shardSize - total}). */
    public long shardSize() {
        return shardSize;
    }

    public int worldSize() {
        return worldSize;
    }

    public int rank() {
        return rank;
    }

    /** This rank's pieces, in flat order. */
    public List<Piece> pieces() {
        return pieces;
    }

    public List<String> names() {
        return names;
    }

    public List<Tensor> params() {
        return params;
    }

    /**
     * Options for a new flat buffer of the parameters (gradient slice, bucket, weight slice): their dtype and their
     * device, so on a GPU every ZeRO buffer is a CUDA tensor and its collectives run over NCCL. Needs a parameter.
     */
    public TensorOptions options() {
        return params.get(0).options();
    }

    /** Bytes of one element (all parameters share the dtype). */
    public long elementSize() {
        return params.isEmpty() ? 4 : params.get(0).element_size();
    }

    /**
     * Elements per rank in one bucket: {@code worldSize} blocks of it fill at most {@code bucketBytes}, so the
     * (N, k) buffer a collective needs stays bounded whatever the model size.
     */
    public long bucketElements(long bucketBytes) {
        return Math.max(1, Math.min(shardSize, bucketBytes / (worldSize * elementSize())));
    }

    /** What {@link #forEach} reports for each parameter that meets a flat range. */
    public interface Visitor {
        /**
         * @param index       the parameter
         * @param paramOffset first element of the parameter in the range
         * @param length      elements
         * @param rangeOffset where they sit relative to the start of the range
         */
        void visit(int index, long paramOffset, long length, long rangeOffset);
    }

    /** Visits the parameters overlapping flat elements {@code [from, to)} in order (padding beyond total: none). */
    public void forEach(long from, long to, Visitor v) {
        to = Math.min(to, total());
        if (from >= to) {
            return;
        }
        int i = firstParamAt(from);
        for (; i < params.size() && offsets[i] < to; i++) {
            long a = Math.max(from, offsets[i]);
            long b = Math.min(to, offsets[i + 1]);
            if (b > a) {
                v.visit(i, a - offsets[i], b - a, a - from);
            }
        }
    }

    /** The index of the parameter holding flat element {@code at} (binary search over the offsets). */
    private int firstParamAt(long at) {
        int lo = 0;
        int hi = params.size() - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (offsets[mid] <= at) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }

    /**
     * Copies flat elements {@code [from, to)} of the parameters' gradients ({@code grads}) or values into
     * {@code buf} (to - from,); a missing gradient and the padding beyond {@link #total} become zeros. Call under a
     * NoGradGuard and a PointerScope.
     */
    public void pack(long from, long to, Tensor buf, boolean grads) {
        buf.zero_();
        forEach(from, to, (i, paramOffset, length, at) -> {
            Tensor p = params.get(i);
            Tensor src = grads ? p.grad() : p; // p's shape, or an undefined gradient
            if (src.defined()) {
                buf.narrow(0, at, length).copy_(src.reshape(-1).narrow(0, paramOffset, length));
            }
        });
    }

    /** Writes {@code buf} (to - from,) into flat elements {@code [from, to)} of the parameters' values. */
    public void unpack(long from, long to, Tensor buf) {
        forEach(from, to, (i, paramOffset, length, at) -> flatView(i).narrow(0, paramOffset, length)
                .copy_(buf.narrow(0, at, length)));
    }

    private static String deviceOf(Tensor t) {
        try (PointerScope scope = new PointerScope()) {
            return Devices.name(t.device());
        }
    }

    /** Parameter {@code i} as a flat (numel,) view sharing its storage (it is contiguous). */
    public Tensor flatView(int i) {
        return params.get(i).detach().view(-1);
    }

    /** A one-line description for the log. */
    public String describe() {
        return String.format(java.util.Locale.ROOT, "%d parameters (%,d elements) in %d slices of %,d; this rank"
                + " updates %d piece(s)", params.size(), total(), worldSize, shardSize, pieces.size());
    }
}
