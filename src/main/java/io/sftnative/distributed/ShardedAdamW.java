package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.optim.Optimizer;

/**
 * ZeRO stages 1 and 2: AdamW whose moments exist only for this rank's slice of the flat parameter space
 * ({@link ZeroPartition}), so each rank holds {@code 1/N} of them. One step:
 * <pre>
 *   piece grads  = this rank's part of the summed, clipped gradients   (stage 1: views into the all-reduced
 *                                                                        parameter gradients; stage 2: views into
 *                                                                        the reduce-scattered slice)
 *   AdamW.step   over the pieces, which are flat views into the parameters, so they are updated in place
 *   all-gather   every rank's updated slice into every rank's parameters (buckets of at most 25 MiB)
 * </pre>
 * The update is AdamW's own ({@link io.sftnative.optim.AdamW} over the pieces, keyed by parameter name, so weight
 * decay groups and LoRA+ factors apply as usual) on the same numbers as plain data parallelism: elementwise, so
 * a slice gets exactly the values the whole tensor would. The master weights are the parameters themselves (their
 * dtype: fp32 unless pure_bf16), so no second copy is kept.
 *
 * <p>Stage 3 ({@code weights} given): the pieces are views into this rank's weight slice instead of the parameters
 * (which hold nothing between their unit's gathers, {@link LayerShards}); the step updates the slice and nothing is
 * all-gathered: the next forward gathers the updated weights unit by unit.
 *
 * <p>Everything lives on the parameters' device: the pieces view the parameters (or stage 3's weight slice), so
 * AdamW's moments are created beside them, and the all-gather buckets take the parameters' options; on a GPU the
 * step runs there and the all-gather goes over NCCL.
 *
 * <p>The state ({@link #stateDict()}) is this rank's: {@code <name>.exp_avg} etc. shaped like the piece (1-d);
 * {@link ZeroCheckpoint} writes one file per rank and re-slices them for another world size.
 */
@SuppressWarnings("try") // scopes and guards are held for their side effect
public final class ShardedAdamW implements Optimizer {
    private final DistributedGroup group;
    private final ZeroPartition part;
    private final ShardedGradients grads; // null at stage 1
    private final List<Tensor> views = new ArrayList<>(); // per piece: (length,) view into its parameter
    private final Optimizer inner; // over the views; null when this rank's slice is empty (tiny models)
    private final Tensor send; // (k,) this rank's part of one all-gather bucket
    private final Tensor recv; // (N * k,) every rank's
    private final long bucket;
    private final int stage;
    private boolean closed;
    private double commMillis;

    /**
     * @param grads  stage 2's sharded gradients, or null (stage 1: the parameters hold the all-reduced gradients)
     * @param adamW  builds the AdamW for named flat tensors (the pieces), with the run's hyper-parameters
     * @param bucketBytes  the all-gather bucket size (ddp_bucket_cap_mb)
     */
    public ShardedAdamW(DistributedGroup group, ZeroPartition part, ShardedGradients grads,
            Function<Map<String, Tensor>, Optimizer> adamW, long bucketBytes) {
        this(group, part, grads, adamW, bucketBytes, null);
    }

    /**
     * @param weights stage 3: this rank's weight slice (shardSize,), which the pieces view and the step updates;
     *                null at stages 1 and 2 (the pieces view the parameters, all-gathered after each step)
     */
    public ShardedAdamW(DistributedGroup group, ZeroPartition part, ShardedGradients grads,
            Function<Map<String, Tensor>, Optimizer> adamW, long bucketBytes, Tensor weights) {
        this.group = group;
        this.part = part;
        this.grads = grads;
        this.stage = weights != null ? 3 : grads != null ? 2 : 1;
        Map<String, Tensor> pieces = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            for (ZeroPartition.Piece piece : part.pieces()) {
                Tensor v = (weights != null ? weights.narrow(0, piece.shardOffset(), piece.length())
                        : part.flatView(piece.index()).narrow(0, piece.paramOffset(), piece.length()))
                        .retainReference(); // (length,) shares the slice's or the parameter's storage
                views.add(v);
                pieces.put(piece.name(), v);
            }
        }
        this.inner = pieces.isEmpty() ? null : adamW.apply(pieces);
        TensorOptions like = part.options(); // the parameters' dtype and device: on a GPU the all-gather uses NCCL
        this.bucket = part.bucketElements(bucketBytes);
        this.send = stage == 3 ? null : torch.zeros(new long[] {bucket}, like).retainReference();
        this.recv = stage == 3 ? null : torch.zeros(new long[] {part.worldSize() * bucket}, like).retainReference();
    }

    /** Updates this rank's slice with its gradients, then all-gathers every rank's slice into the parameters. */
    @Override
    public void step(double lr) {
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            List<ZeroPartition.Piece> pieces = part.pieces();
            for (int j = 0; j < pieces.size(); j++) {
                ZeroPartition.Piece piece = pieces.get(j);
                Tensor g = pieceGrad(piece); // (length,) or undefined: the parameter got no gradient
                try (Tensor slot = views.get(j).mutable_grad()) {
                    if (g == null) {
                        slot.reset();
                    } else {
                        slot.put(g);
                    }
                }
            }
            if (inner != null) {
                inner.step(lr);
            }
            if (stage < 3) {
                allGather();
            }
        }
    }

    private Tensor pieceGrad(ZeroPartition.Piece piece) {
        if (grads != null) {
            return grads.present(piece.index()) ? grads.shard().narrow(0, piece.shardOffset(), piece.length())
                    : null;
        }
        Tensor g = part.params().get(piece.index()).grad(); // the parameter's shape, summed and clipped
        return g.defined() ? g.reshape(-1).narrow(0, piece.paramOffset(), piece.length()) : null;
    }

    /** Bucket b: every rank sends elements [b·k, (b+1)·k) of its slice and writes everyone's into the parameters. */
    private void allGather() {
        long t0 = System.nanoTime();
        int n = part.worldSize();
        long size = part.shardSize();
        long mine = part.rank() * size;
        int buckets = (int) ((size + bucket - 1) / bucket);
        for (int b = 0; b < buckets; b++) {
            long at = b * bucket;
            long len = Math.min(bucket, size - at);
            Tensor in = send.narrow(0, 0, len); // (len,)
            Tensor out = recv.narrow(0, 0, n * len); // (N * len,) block r = rank r's elements [at, at + len)
            part.pack(mine + at, mine + at + len, in, false);
            group.allGather(out, in, "parameter all-gather (bucket " + (b + 1) + " of " + buckets + ")");
            for (int r = 0; r < n; r++) {
                if (r != part.rank()) {
                    part.unpack(r * size + at, r * size + at + len, out.narrow(0, r * len, len));
                }
            }
        }
        commMillis = (System.nanoTime() - t0) / 1e6;
    }

    @Override
    public void lrScales(Map<String, Double> scales) {
        if (inner != null) {
            inner.lrScales(scales); // keyed by parameter name, as the pieces are
        }
    }

    /** Drops the pieces' gradient views and the parameters' gradients. */
    @Override
    public void zeroGrad() {
        if (inner != null) {
            inner.zeroGrad();
        }
        for (Tensor p : part.params()) {
            try (Tensor g = p.mutable_grad()) {
                g.reset();
            }
        }
    }

    /** This rank's state: {@code <name>.exp_avg}, {@code .exp_avg_sq} (piece-shaped, 1-d) and {@code .step}. */
    @Override
    public Map<String, Tensor> stateDict() {
        return inner == null ? new LinkedHashMap<>() : inner.stateDict();
    }

    /** Replaces this rank's state with piece-shaped tensors ({@link ZeroCheckpoint#read} cuts them). */
    @Override
    public void loadStateDict(Map<String, Tensor> state) {
        if (inner != null) {
            inner.loadStateDict(state);
        } else if (!state.isEmpty()) {
            throw new IllegalArgumentException("this rank's ZeRO slice is empty but state was given for "
                    + state.keySet());
        }
    }

    /** Waits for every rank (the checkpoint writers use it). */
    void barrier(String what) {
        group.barrier(what);
    }

    public ZeroPartition partition() {
        return part;
    }

    public int stage() {
        return stage;
    }

    /** The all-gather buckets it owns (send, receive); none at stage 3. */
    List<Tensor> buffers() {
        return send == null ? List.of() : List.of(send, recv);
    }

    /** Wall time of the last all-gather, in milliseconds. */
    public double lastMillis() {
        return commMillis;
    }

    @Override
    public void close() { // idempotent: a ZeRO-3 run closes it before gathering the weights at the end
        if (closed) {
            return;
        }
        closed = true;
        if (inner != null) {
            inner.close();
        }
        for (Tensor v : views) {
            v.releaseReference();
        }
        views.clear();
        if (send != null) {
            send.releaseReference();
            recv.releaseReference();
        }
    }
}
