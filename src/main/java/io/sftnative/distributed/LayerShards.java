package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.loss.LayerHooks;

/**
 * ZeRO stages 2 and 3 one unit at a time (FSDP's unit: a decoder layer, the embedding, the head), driven by the
 * training step's {@link LayerHooks}. The flat parameter space and who owns which slice are {@link ZeroPartition}'s;
 * a unit's parameters cover some runs of it, and each run meets one or more ranks' slices (the collectives are
 * {@link UnitTransfers}'):
 * <ul>
 * <li>{@link #gradientsReady}: for every (parameter, owner) piece of the unit, a SUM <b>reduce to the owner</b>, which
 * adds the result into its gradient slice ({@code gradShard}); the parameters' full-size gradients are freed once
 * reduced. Per micro-batch: with gradient accumulation the slice accumulates, so no full-size gradient outlives the
 * next unit's backward.</li>
 * <li>stage 3 ({@code shardWeights}), after {@link #shardWeights()}: each rank keeps only its slice of the weights
 * ({@code paramShard}, what its optimizer updates) and the parameters hold an empty (0,) tensor. {@link #gather}
 * gives a unit's parameters full-size storage ({@code Tensor.set_data}, so every module keeps its handles), each
 * piece <b>broadcast</b> from its owner; {@link #release} swaps the empty tensor back in, freeing them.</li>
 * </ul>
 * Broadcast and reduce per owner (instead of FSDP's per-unit all-gather / reduce-scatter) keep the one flat
 * partition of stages 1 and 2, so the optimizer, its checkpoints and their re-slicing stay the same at every stage.
 *
 * <p><b>Overlap</b> ({@code -Dsft.zero.overlap=false} turns it off): the units are gathered in a fixed order per
 * micro-batch ({@link LayerHooks}: embedding, layers 0..L-1, head, layers L-1..0, embedding; {@link #replay} follows
 * it too). When {@link #gather} has unit u's weights in place it starts the asynchronous broadcasts of the next unit
 * in that order into fresh full-size buffers (FSDP's forward / backward prefetch), which the next {@code gather}
 * waits for and swaps into the parameters; so that transfer runs (in Gloo's thread) during u's compute, and at most
 * two units' full weights exist at a time. Likewise {@link #gradientsReady} starts the unit's reduces and completes
 * the previous unit's. Every rank makes the same calls, so every rank starts the same collectives in the same order
 * (c10d matches them by order). Nothing is prefetched past a micro-batch's last gather (the optimizer may update
 * the slice before the next one); the step's end, evaluation and saves complete whatever is in flight first; a
 * gather out of that order waits for the prefetch and discards it. A broadcast copies bytes and the reduced pieces
 * are added in the same order: the results are bit-identical to synchronous collectives.
 */
@SuppressWarnings("try") // scopes and guards are held for their side effect
final class LayerShards implements LayerHooks {
    private static final Pattern LAYER = Pattern.compile("(?:^|\\.)layers\\.(\\d+)\\.");

    /**
     * Start the next unit's weight gather (stage 3) and this unit's gradient reduces without waiting, so they run
     * during the following compute; {@code -Dsft.zero.overlap=false}: every collective synchronous (benchmarks).
     */
    static final boolean OVERLAP = !"false".equals(System.getProperty("sft.zero.overlap"));

    private final DistributedGroup group;
    private final ZeroPartition part;
    private final Tensor gradShard; // (shardSize,) this rank's summed gradient slice, borrowed from ShardedGradients
    private final boolean shardWeights;
    private final Map<Integer, int[]> units = new LinkedHashMap<>(); // unit -> parameter indices, flat order
    private final List<Integer> layers = new ArrayList<>(); // decoder layer units, ascending
    private final long[][] shapes; // per parameter, its full shape
    private final boolean[] released; // per parameter: holds the empty tensor (stage 3, sharded)
    private final boolean[] localGrad; // per parameter: this rank had a gradient for it in this step
    private final int[] order; // the units in the order one micro-batch gathers them (forward, then backward)
    private final boolean overlap;
    private int cursor; // position in order of the next gather expected
    private UnitTransfers.Gather pending; // the next unit's weights on their way (prefetch), or null; owned
    private UnitTransfers.Reduce reducing; // the last unit's gradient reduces in flight, or null; owned
    private Tensor paramShard; // (shardSize,) stage 3 once sharded; owned
    private Tensor empty; // (0,) what a released parameter holds; owned
    private long gatherNanos; // time spent in gather() (waiting for weights, starting the next unit's)
    private long reduceNanos; // time spent in gradientsReady() (waiting for the last unit's reduces, starting these)
    private long gathers; // unit gathers
    private long prefetched; // of them, found prefetched
    private long steps;

    /**
     * @param lateParams trainable parameters whose gradient the head writes (the LM head, an embedding tied to it):
     *                   an embedding among them belongs to the head unit too
     */
    LayerShards(DistributedGroup group, ZeroPartition part, Tensor gradShard, boolean shardWeights,
            Set<String> lateParams) {
        this.group = group;
        this.part = part;
        this.gradShard = gradShard;
        this.shardWeights = shardWeights;
        int n = part.params().size();
        this.shapes = new long[n][];
        this.released = new boolean[n];
        this.localGrad = new boolean[n];
        Map<Integer, List<Integer>> members = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            String name = part.names().get(i);
            shapes[i] = part.params().get(i).sizes().vec().get();
            Matcher m = LAYER.matcher(name);
            if (m.find()) {
                members.computeIfAbsent(Integer.parseInt(m.group(1)), k -> new ArrayList<>()).add(i);
            } else if (name.contains("embed_tokens.")) { // tied to lm_head: the head reads it as well
                members.computeIfAbsent(EMBEDDING, k -> new ArrayList<>()).add(i);
                if (lateParams.contains(name)) {
                    members.computeIfAbsent(HEAD, k -> new ArrayList<>()).add(i);
                }
            } else {
                members.computeIfAbsent(HEAD, k -> new ArrayList<>()).add(i);
            }
        }
        members.forEach((u, idx) -> units.put(u, idx.stream().mapToInt(Integer::intValue).toArray()));
        units.keySet().stream().filter(u -> u >= 0).sorted().forEach(layers::add);
        List<Integer> seq = new ArrayList<>();
        seq.add(EMBEDDING);
        seq.addAll(layers);
        seq.add(HEAD);
        seq.addAll(layers.reversed());
        seq.add(EMBEDDING);
        this.order = seq.stream().filter(units::containsKey).mapToInt(Integer::intValue).toArray();
        this.overlap = OVERLAP;
    }

    /** Stage 3: from now on each rank keeps only its slice of the weights; returns it (shardSize,), owned here. */
    Tensor shardWeights() {
        if (!shardWeights || paramShard != null) {
            throw new IllegalStateException("weights are not sharded at this stage, or already are");
        }
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            TensorOptions like = part.params().get(0).options(); // dtype and device of the parameters
            empty = torch.empty(new long[] {0}, like, new MemoryFormatOptional()).retainReference();
            paramShard = torch.zeros(new long[] {part.shardSize()}, like).retainReference();
            long mine = part.rank() * part.shardSize();
            part.pack(mine, mine + part.shardSize(), paramShard, false);
            for (int i = 0; i < released.length; i++) {
                releaseParam(i);
            }
        }
        return paramShard;
    }

    /**
     * Puts {@code unit}'s full weights into its parameters: the prefetched ones when they are {@code unit}'s, else
     * gathered now; then (overlap on) starts gathering the unit that comes next in {@link #order}.
     */
    @Override
    public void gather(int unit) {
        int[] idx = units.get(unit);
        if (idx == null || paramShard == null) {
            return;
        }
        long t0 = System.nanoTime();
        if (pending != null) {
            boolean mine = pending.unit == unit;
            UnitTransfers.Gather p = pending;
            pending = null;
            p.finish(mine ? released : null); // another unit's (calls out of order): waited for and discarded
            prefetched += mine ? 1 : 0;
        }
        gatherNow(idx); // whatever is still released: all of it when nothing was prefetched
        cursor = next(unit);
        if (overlap && cursor > 0) { // cursor 0: the micro-batch's last gather; the optimizer may step next
            int u = order[cursor];
            pending = new UnitTransfers.Gather(group, part, paramShard, shapes, u, units.get(u));
        }
        gathers++;
        gatherNanos += System.nanoTime() - t0;
    }

    /** The position in {@link #order} after {@code unit}'s gather: the expected one, or (out of order) the next. */
    private int next(int unit) {
        for (int k = 0; k < order.length; k++) {
            int at = (cursor + k) % order.length;
            if (order[at] == unit) {
                return (at + 1) % order.length;
            }
        }
        throw new IllegalStateException("unit " + unit + " is not in the gather order");
    }

    /**
     * Completes the gradient reduces and waits for a prefetch still in flight, discarding it; the next gather starts
     * a micro-batch.
     */
    private void settle() {
        completeReduces();
        if (pending != null) {
            UnitTransfers.Gather p = pending;
            pending = null;
            p.finish(null);
        }
        cursor = 0;
    }

    @Override
    public void release(int unit) {
        int[] idx = units.get(unit);
        if (idx != null && paramShard != null) {
            for (int i : idx) {
                releaseParam(i);
            }
        }
    }

    /**
     * Starts the SUM reduce of each of {@code unit}'s gradient pieces to its owner, after waiting for the previous
     * unit's (whose results it adds into the slice); with overlap off, waits for this unit's too. The full-size
     * gradients leave the parameters at once and are freed when their reduce completed.
     */
    @Override
    public void gradientsReady(int unit) {
        int[] idx = units.get(unit);
        if (idx == null) {
            return;
        }
        long t0 = System.nanoTime();
        completeReduces(); // at most two units' full gradients exist: this one's and the one in flight
        UnitTransfers.Reduce r = new UnitTransfers.Reduce(group, part, idx, localGrad);
        if (overlap) {
            reducing = r;
        } else {
            r.finish(gradShard);
        }
        reduceNanos += System.nanoTime() - t0;
    }

    /** Waits for the unit's gradient reduces still in flight and adds their results into the slice. */
    private void completeReduces() {
        if (reducing != null) {
            UnitTransfers.Reduce r = reducing;
            reducing = null;
            r.finish(gradShard);
        }
    }

    /**
     * The collectives of {@code passes} micro-batches without data: a rank with fewer micro-batches in a step (an
     * epoch's short last step) takes part in the others' gathers and reductions with zero gradients.
     */
    void replay(int passes) {
        settle(); // every micro-batch of the step ended at its last gather: nothing is in flight
        for (int k = 0; k < passes; k++) {
            gather(EMBEDDING);
            release(EMBEDDING);
            for (int i : layers) {
                gather(i);
                release(i);
            }
            gather(HEAD);
            gradientsReady(HEAD);
            release(HEAD);
            for (int j = layers.size() - 1; j >= 0; j--) {
                gather(layers.get(j));
                gradientsReady(layers.get(j));
                release(layers.get(j));
            }
            gather(EMBEDDING);
            gradientsReady(EMBEDDING);
            release(EMBEDDING);
        }
    }

    /** After a step's micro-batches (and {@link #replay}), before the optimizer updates the slice. */
    void endStep() {
        settle();
        steps++;
    }

    /** Steps ended so far. */
    long steps() {
        return steps;
    }

    /** One line for the log at the end of a stage-3 run: what the weight gathers cost the training step. */
    String summary() {
        return String.format(java.util.Locale.ROOT, "weight gathers: %d of %d unit gathers prefetched%s; %.1f ms per"
                + " step spent in weight gathers, %.1f ms in gradient reduces (%d steps)", prefetched, gathers,
                overlap ? "" : " (overlap off)", steps == 0 ? 0 : gatherNanos / 1e6 / steps,
                steps == 0 ? 0 : reduceNanos / 1e6 / steps, steps);
    }

    /** Whether this rank had a gradient for parameter {@code i} in this step; clears the flag. */
    boolean takeLocalGradient(int i) {
        boolean had = localGrad[i];
        localGrad[i] = false;
        return had;
    }

    /** Stage 3, sharded: every weight gathered (evaluation, checkpoints); a collective. No-op otherwise. */
    void gatherAll() {
        if (paramShard != null) {
            settle();
            gatherNow(IntStream.range(0, released.length).toArray());
        }
    }

    /** Stage 3, sharded: every weight released again (after {@link #gatherAll}). */
    void releaseAll() {
        if (paramShard != null) {
            for (int i = 0; i < released.length; i++) {
                releaseParam(i);
            }
        }
    }

    /** Stage 3: every weight gathered for good (training is over); the hooks do nothing from now on. */
    void unshard() {
        gatherAll();
        if (paramShard != null) {
            paramShard.releaseReference(); // the optimizer's views keep it until the optimizer closes
            paramShard = null;
        }
    }

    boolean sharded() {
        return paramShard != null;
    }

    /** Stage 3: the weights are (or will be, once the optimizer takes them) sharded. */
    boolean shardsWeights() {
        return shardWeights;
    }

    /** Gathers (and waits for) the weights of those parameters of {@code idx} that are released. */
    private void gatherNow(int[] idx) {
        int[] missing = Arrays.stream(idx).filter(i -> released[i]).toArray();
        if (missing.length > 0) {
            new UnitTransfers.Gather(group, part, paramShard, shapes, Integer.MIN_VALUE, missing).finish(released);
        }
    }

    private void releaseParam(int i) {
        if (released[i]) {
            return;
        }
        try (PointerScope scope = new PointerScope()) {
            part.params().get(i).set_data(empty);
        }
        released[i] = true;
    }

    /** Frees the weight slice (if the optimizer no longer holds it), the empty tensor and transfers left over. */
    void close() {
        if (pending != null) { // a failed step: its broadcasts keep their buffers alive until they end
            pending.abandon();
            pending = null;
        }
        if (reducing != null) {
            reducing.abandon();
            reducing = null;
        }
        if (paramShard != null) {
            paramShard.releaseReference();
            paramShard = null;
        }
        if (empty != null) {
            empty.releaseReference();
            empty = null;
        }
    }

    /** One line for the log. */
    String describe() {
        return String.format(java.util.Locale.ROOT, "%d units (%d decoder layers), gradients reduced per unit%s",
                units.size(), layers.size(), (!shardWeights ? "" : overlap ? ", weights gathered per unit, the next"
                        + " unit's prefetched" : ", weights gathered per unit") + (overlap ? ", overlapping compute"
                        : ", synchronously"));
    }
}
