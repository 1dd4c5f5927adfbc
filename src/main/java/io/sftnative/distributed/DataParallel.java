package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;

import org.bytedeco.pytorch.Tensor;

import io.sftnative.config.ConfigException;
import io.sftnative.config.DistributedArgs;
import io.sftnative.loss.LayerHooks;
import io.sftnative.optim.Optimizer;

/**
 * A run's part in a data-parallel job, or nothing ({@link #single()}): the one owner of the process group, the
 * gradient synchronisation and the liveness check, created before the data and the model and closed after them.
 *
 * <pre>
 *   DataParallel dp = DataParallel.join(env, args, cuda, log);   // rendezvous (blocks until every rank is there)
 *   dp.checkSame("config", hash) ...                             // every rank runs the same job
 *   GradientSync sync = dp.prepare(trainable, seed);             // rank 0's weights everywhere, own dropout stream
 *   ... training steps: sync.totals(...), sync.afterBackward(...) ...
 *   dp.finish();                                                 // all ranks leave together
 * </pre>
 */
public final class DataParallel implements AutoCloseable {
    private static final DataParallel SINGLE = new DataParallel(DistributedEnv.SINGLE, null, null, true, 0, 0, s -> {});

    /**
     * Gradient reduction during backward (autograd hooks); {@code -Dsft.ddp.overlap=false} reduces after backward
     * instead (for benchmarks measuring what the overlap hides).
     */
    static final boolean OVERLAP = !"false".equals(System.getProperty("sft.ddp.overlap"));

    private final DistributedEnv env;
    private final DistributedGroup group; // null in a single process
    private final Liveness liveness; // null in a single process or when off
    private final boolean allowUnused;
    private final long bucketCap;
    private final Consumer<String> log;
    private final int stage; // ZeRO stage (0 = DDP)
    private GradientSync sync; // BucketedAllReduce (DDP, ZeRO-1) or ShardedGradients (ZeRO-2)
    private ZeroPartition partition; // ZeRO only

    private DataParallel(DistributedEnv env, DistributedGroup group, Liveness liveness, boolean allowUnused,
            int stage, long bucketCap, Consumer<String> log) {
        this.stage = stage;
        this.env = env;
        this.group = group;
        this.liveness = liveness;
        this.allowUnused = allowUnused;
        this.bucketCap = bucketCap;
        this.log = log;
    }

    /** One process: every call is a no-op. */
    public static DataParallel single() {
        return SINGLE;
    }

    /** Joins the job {@code env} describes (a single process when it has one rank). libtorch must be booted. */
    public static DataParallel join(DistributedEnv env, DistributedArgs args, boolean cudaDevice, Consumer<String> log) {
        int stage = args.sharding().stage();
        if (!env.distributed()) {
            if (stage > 0) {
                log.accept("ZeRO stage " + stage + " (" + args.sharding().origin() + ") in one process: nothing to"
                        + " shard, training as usual");
            }
            return SINGLE;
        }
        checkSupported(args, env.worldSize());
        // every stage runs on a GPU too: ZeRO's flat buffers take the parameters' device (ZeroPartition.options), so
        // their collectives go over NCCL there, and the step's counts and hashes stay float64 on Gloo
        long t0 = System.nanoTime();
        DistributedGroup group = DistributedGroup.join(env, args, cudaDevice);
        Liveness live = null;
        try {
            if (args.livenessSeconds() > 0) {
                live = Liveness.start(group, args.livenessSeconds());
            }
        } catch (RuntimeException e) {
            group.close();
            throw e;
        }
        log.accept(String.format(java.util.Locale.ROOT, "rank %d of %d joined %s:%d (%s, %.1f s)", env.rank(),
                env.worldSize(), env.masterAddr(), env.masterPort(), cudaDevice ? "gloo + nccl" : "gloo", (System.nanoTime() - t0) / 1e9));
        return new DataParallel(env, group, live, args.allowUnusedParameters(), stage, args.bucketCapBytes(),
                log);
    }

    /**
     * Fails when the config asks for something a job of {@code worldSize} ranks cannot do here. Every ZeRO stage
     * 0-3 runs; what stage 3 needs besides is checked by {@link #checkStage3}.
     */
    public static void checkSupported(DistributedArgs args, int worldSize) {
        if (worldSize > 1 && (args.sharding().stage() < 0 || args.sharding().stage() > 3)) {
            throw new ConfigException("ZeRO stage " + args.sharding().stage() + " (" + args.sharding().origin()
                    + ") does not exist: use 0, 1, 2 or 3");
        }
    }

    /**
     * ZeRO stage 3 gathers each decoder layer's weights for its forward and again for its recomputation in the
     * backward pass, which is what gradient checkpointing's layer-by-layer backward provides: without it the run
     * is refused, as is a quantized base (FSDP-QLoRA), whose packed 4/8-bit weights are not sharded here.
     */
    public static void checkStage3(DistributedArgs args, int worldSize, boolean gradientCheckpointing,
            int quantizationBit) {
        if (worldSize < 2 || args.sharding().stage() != 3) {
            return;
        }
        String what = "ZeRO stage 3 (" + args.sharding().origin() + ")";
        if (quantizationBit > 0) {
            throw new ConfigException(what + " with quantization_bit: " + quantizationBit + " (FSDP-QLoRA) is not"
                    + " implemented in sft-native: the quantized base weights are not sharded, and the LoRA"
                    + " adapters are too small for stage 3 to save memory. Use zero_optimization.stage 0-2 (or fsdp:"
                    + " shard_grad_op / no_shard): the frozen quantized base is then replicated on every rank");
        }
        if (!gradientCheckpointing) {
            throw new ConfigException(what + " gathers every decoder layer's weights for its forward and again for"
                    + " its recomputation in the backward pass, which needs gradient checkpointing: remove"
                    + " disable_gradient_checkpointing: true (or set gradient_checkpointing: true), or use"
                    + " zero_optimization.stage 2 / fsdp: shard_grad_op");
        }
    }

    /**
     * ZeRO stages 1 and 2 shard AdamW's state: another optimizer ({@code optim}) is refused over several ranks,
     * before anything starts.
     */
    public static void checkOptimizer(DistributedArgs args, String optim, int worldSize) {
        int stage = args.sharding().stage();
        if (worldSize > 1 && stage > 0 && (!optim.startsWith("adamw") || optim.contains("8bit"))) {
            throw new ConfigException("ZeRO stage " + stage + " (" + args.sharding().origin() + ") shards AdamW's"
                    + " moments in fp32; optim: " + optim + " is not sharded here. Use optim: adamw_torch (or"
                    + " adamw_torch_fused), or zero_optimization.stage 0 / fsdp: no_shard");
        }
    }

    /** The ZeRO stage this job runs: 0 = plain data parallel (always 0 in a single process). */
    public int zeroStage() {
        return group == null ? 0 : stage;
    }

    /**
     * The optimizer of a ZeRO run ({@link #zeroStage()} 1 or 2; after {@link #prepare}): {@code adamW} builds AdamW
     * over named flat tensors, here this rank's pieces of the parameters.
     */
    public ShardedAdamW shardedAdamW(Function<Map<String, Tensor>, Optimizer> adamW) {
        if (partition == null) {
            throw new IllegalStateException("shardedAdamW needs a ZeRO run after prepare()");
        }
        LayerShards l = layers();
        Tensor weights = l != null && l.shardsWeights() ? l.shardWeights() : null; // stage 3: the slice only
        return new ShardedAdamW(group, partition, sync instanceof ShardedGradients g ? g : null, adamW,
                bucketCap, weights);
    }

    public DistributedEnv env() {
        return env;
    }

    /** Rank 0 (or a single process): the one that writes logs, checkpoints and results. */
    public boolean isMain() {
        return env.isMain();
    }

    public int worldSize() {
        return env.worldSize();
    }

    public int rank() {
        return env.rank();
    }

    /**
     * Stops with an error on every rank when {@code value} (a hash of what must agree: the resolved config, the
     * tokenized data) differs from rank 0's; the message names the ranks and {@code what}.
     */
    public void checkSame(String what, String value) {
        if (group != null) {
            Consistency.check(group, what, value);
        }
    }

    /**
     * Before the first step: copies rank 0's trainable weights to every rank (so every rank starts from the same
     * point whatever its random initialisation did) and returns the gradient synchronisation for them.
     */
    public GradientSync prepare(Map<String, Tensor> trainable) {
        return prepare(trainable, Set.of());
    }

    /**
     * As {@link #prepare(Map)}; {@code lateParams}: names of trainable parameters whose gradient is written outside
     * autograd (reduced after backward instead of from autograd hooks during it).
     */
    public GradientSync prepare(Map<String, Tensor> trainable, Set<String> lateParams) {
        return prepare(trainable, lateParams, false);
    }

    /**
     * As {@link #prepare(Map, Set)}; {@code layerwise}: the training step calls {@link #layerHooks()} around every
     * decoder layer (gradient checkpointing), so ZeRO-2 reduces each layer's gradients right after its backward
     * and ZeRO-3 (which needs it) gathers each layer's weights for its forward and backward.
     */
    public GradientSync prepare(Map<String, Tensor> trainable, Set<String> lateParams, boolean layerwise) {
        if (group == null || trainable.isEmpty()) {
            return GradientSync.LOCAL;
        }
        if (stage == 3 && !layerwise) {
            throw new ConfigException("ZeRO stage 3 needs the training step's layer-by-layer backward: turn"
                    + " gradient checkpointing on (remove disable_gradient_checkpointing: true)");
        }
        group.broadcastFromRank0(new ArrayList<>(trainable.values()));
        closeSync();
        partition = stage > 0 ? new ZeroPartition(trainable, env.worldSize(), env.rank()) : null;
        sync = stage >= 2 ? new ShardedGradients(group, partition, allowUnused, bucketCap, layerwise, stage == 3,
                lateParams) : new BucketedAllReduce(group, trainable, lateParams, allowUnused, OVERLAP, bucketCap);
        return sync;
    }

    /**
     * What the training step calls around each unit (decoder layer, embedding, head): ZeRO-2/3's layer-wise
     * gradient reduction and stage 3's weight gathering; {@link LayerHooks#NONE} otherwise.
     */
    public LayerHooks layerHooks() {
        return layers() != null ? layers() : LayerHooks.NONE;
    }

    private LayerShards layers() {
        return sync instanceof ShardedGradients g ? g.layers() : null;
    }

    /**
     * ZeRO-3: every weight gathered until the returned scope closes (evaluation, checkpoint saves; every rank must
     * call it at the same point). A no-op scope otherwise.
     */
    public FullWeights fullWeights() {
        LayerShards l = layers();
        if (l == null || !l.sharded()) {
            return () -> {};
        }
        l.gatherAll();
        return l::releaseAll;
    }

    /** A scope in which the weights are whole ({@link #fullWeights()}). */
    public interface FullWeights extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * After the last training step: ZeRO-3 gathers every weight for good (saving, evaluation and prediction
     * then see whole weights) and the gradient slice is freed; a no-op otherwise. Every rank calls it.
     */
    public void endTraining() {
        LayerShards l = layers();
        if (l != null) {
            l.unshard();
            ((ShardedGradients) sync).freeShard();
        }
    }

    /** The gradient synchronisation {@link #prepare} made (LOCAL in a single process or before it). */
    public GradientSync sync() {
        return sync != null ? sync : GradientSync.LOCAL;
    }

    /** Sums {@code values} over the ranks (float64 all-reduce); the values themselves in a single process. */
    public double[] sumOverRanks(double[] values) {
        return group == null ? values : group.allReduceSum(values);
    }

    /**
     * Every rank's {@code mine} (all the same length, e.g. a generator state), by rank; {@code [mine]} in a single
     * process. Bytes travel as float64 in a SUM all-reduce (each rank fills its own slot): exact, and small.
     */
    public List<byte[]> allGather(byte[] mine) {
        if (group == null) {
            return List.of(mine);
        }
        int world = env.worldSize();
        int slot = mine.length + 1;
        double[] all = new double[world * slot];
        all[env.rank() * slot] = mine.length;
        for (int i = 0; i < mine.length; i++) {
            all[env.rank() * slot + 1 + i] = mine[i];
        }
        all = group.allReduceSum(all);
        List<byte[]> out = new ArrayList<>(world);
        for (int r = 0; r < world; r++) {
            if (all[r * slot] != mine.length) {
                throw new DistributedException("rank " + env.rank() + ": rank " + r + "'s state has "
                        + (long) all[r * slot] + " bytes, this rank's " + mine.length + " (different libtorch builds?)");
            }
            byte[] b = new byte[mine.length];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) all[r * slot + 1 + i];
            }
            out.add(b);
        }
        return out;
    }

    /** One line for the log (null in a single process). */
    public String describe() {
        String how = sync instanceof BucketedAllReduce b ? b.describe()
                : sync instanceof ShardedGradients g ? g.describe() : null;
        return group == null ? null : "data parallel: rank " + env.rank() + " of " + env.worldSize()
                + (partition != null ? ", ZeRO stage " + stage + ": " + partition.describe() : "")
                + (how != null ? ", " + how : "");
    }

    private void closeSync() {
        if (sync instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        sync = null;
    }

    /** Waits for every rank at the end of a successful run, so none closes the group under another. */
    public void finish() {
        if (group != null) {
            if (liveness != null) {
                liveness.finished(); // before the barrier: a rank waiting there for a slow rank 0 is not lost
            }
            if (sync instanceof BucketedAllReduce b && b.steps() > 0) {
                log.accept(b.summary());
            }
            LayerShards l = layers();
            if (l != null && l.shardsWeights() && l.steps() > 0) {
                log.accept(l.summary());
            }
            group.barrier("the final barrier");
        }
    }

    @Override
    public void close() {
        if (group == null) {
            return;
        }
        try {
            if (liveness != null) {
                liveness.close();
            }
            closeSync();
        } finally {
            group.close();
        }
    }
}
