package io.sftnative.distributed;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.loss.LayerHooks;
import io.sftnative.optim.AdamW;
import io.sftnative.optim.Optimizer;
import io.sftnative.torch.Devices;

/**
 * ZeRO's components driven by hand on one device, as the training step drives them, at world size 1 (the NCCL test
 * cannot have two ranks on one GPU): five small parameters named like a decoder's (embedding, two layers, head),
 * three steps of synthetic gradients (one parameter without a gradient in the second step), clipping that acts,
 * AdamW, buckets of 16 elements so every collective runs in several. The starting weights and the gradients are made
 * on the host and copied to the device, so every device starts from the same numbers. {@link ZeroDeviceTest} (CPU)
 * and {@link ZeroNcclTest} (GPU) read the results.
 */
@SuppressWarnings("try")
final class ZeroComponents {
    static final long BUCKET_BYTES = 64; // 16 fp32 elements per bucket: the 80-element space moves in 5 of them
    static final double LR = 1e-2;
    static final double MAX_NORM = 0.5; // the gradients' norms are 1-2: the clip acts in every step
    static final int STEPS = 3;
    static final long CHECKPOINT_STEP = STEPS;
    private static final Map<String, long[]> SHAPES = new LinkedHashMap<>();

    static {
        SHAPES.put("model.embed_tokens.weight", new long[] {5, 4});
        SHAPES.put("model.layers.0.mlp.weight", new long[] {3, 7});
        SHAPES.put("model.layers.0.input_layernorm.weight", new long[] {7}); // no weight decay
        SHAPES.put("model.layers.1.mlp.weight", new long[] {4, 3});
        SHAPES.put("lm_head.weight", new long[] {5, 4});
    }

    private ZeroComponents() {}

    /** How the gradients are synchronised and the optimizer sharded. */
    enum Mode {
        /** one process: no synchronisation, AdamW over the whole parameters (the reference) */
        PLAIN,
        /** bucketed all-reduce, AdamW over this rank's slice, all-gather of the slices */
        STAGE1,
        /** reduce-scatter after backward into the gradient slice */
        STAGE2,
        /** reduce to the owner unit by unit during backward (gradient checkpointing's layer hooks) */
        STAGE2_LAYERWISE,
        /** stage 2 layer-wise, and the weights sharded: gathered per unit */
        STAGE3
    }

    /** What a run ends with, in host memory (fp32). */
    record Result(float[] weights, double[] norms, double[] losses, Map<String, float[]> moments) {}

    /** The components of one mode, built over {@code params}; close() frees them. */
    record Built(GradientSync sync, LayerHooks hooks, Optimizer opt, ShardedGradients grads, ShardedAdamW zero)
            implements AutoCloseable {
        @Override
        public void close() throws Exception {
            opt.close();
            if (sync instanceof AutoCloseable c) {
                c.close();
            }
        }
    }

    /** The parameters with their starting values on {@code device} in {@code dtype} (the caller's scope). */
    static Map<String, Tensor> params(Device device, ScalarType dtype) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        int i = 0;
        for (Map.Entry<String, long[]> e : SHAPES.entrySet()) {
            Tensor host = values(e.getValue(), 0.37, 0.5 * i++, 1.0).to(dtype); // made on the host
            out.put(e.getKey(), Devices.to(host, device).requires_grad_(true));
        }
        return out;
    }

    /** {@code scale · sin(k · step + phase)} over the elements, in {@code shape} (fp32, host). */
    private static Tensor values(long[] shape, double step, double phase, double scale) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return torch.arange(new Scalar(n)).to(ScalarType.Float).mul(new Scalar(step)).add(new Scalar(phase)).sin()
                .mul(new Scalar(scale)).reshape(shape);
    }

    /** Builds the gradient synchronisation and the optimizer of {@code mode} over {@code params}. */
    static Built build(DistributedGroup group, Map<String, Tensor> params, Mode mode) {
        Function<Map<String, Tensor>, Optimizer> adamW = p -> AdamW.withHfGroups(p, 0.1, 0.9, 0.999, 1e-8);
        if (mode == Mode.PLAIN) {
            return new Built(GradientSync.LOCAL, LayerHooks.NONE, adamW.apply(params), null, null);
        }
        ZeroPartition part = new ZeroPartition(params, 1, 0);
        if (mode == Mode.STAGE1) {
            BucketedAllReduce sync = new BucketedAllReduce(group, params, Set.of(), true, false, BUCKET_BYTES);
            ShardedAdamW opt = new ShardedAdamW(group, part, null, adamW, BUCKET_BYTES);
            return new Built(sync, LayerHooks.NONE, opt, null, opt);
        }
        boolean layerwise = mode != Mode.STAGE2;
        ShardedGradients grads = new ShardedGradients(group, part, true, BUCKET_BYTES, layerwise,
                mode == Mode.STAGE3, Set.of());
        Tensor weights = mode == Mode.STAGE3 ? grads.layers().shardWeights() : null; // (80,)
        ShardedAdamW opt = new ShardedAdamW(group, part, grads, adamW, BUCKET_BYTES, weights);
        return new Built(grads, layerwise ? grads.layers() : LayerHooks.NONE, opt, grads, opt);
    }

    /**
     * Trains {@code STEPS} steps in {@code mode} on {@code device}; with {@code checkpointDir} the sharded optimizer
     * is staged there afterwards ({@link ZeroCheckpoint#stage}, step {@link #CHECKPOINT_STEP}). {@code check} sees
     * the built components after the first step (the moments exist then).
     */
    static Result run(DistributedGroup group, Device device, ScalarType dtype, Mode mode, Path checkpointDir,
            java.util.function.Consumer<Built> check) throws Exception {
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> params = params(device, dtype);
            double[] norms = new double[STEPS];
            double[] losses = new double[STEPS];
            try (Built b = build(group, params, mode)) {
                for (int s = 0; s < STEPS; s++) {
                    b.sync().totals(10, 10, 1, false);
                    b.sync().beforeBackward(true);
                    int step = s;
                    if (b.hooks() == LayerHooks.NONE) {
                        params.forEach((name, p) -> setGrad(name, p, step, device));
                    } else { // the backward's order: head, the layers from the last, the embedding
                        for (int unit : new int[] {LayerHooks.HEAD, 1, 0, LayerHooks.EMBEDDING}) {
                            b.hooks().gather(unit);
                            params.forEach((name, p) -> {
                                if (unitOf(name) == unit) {
                                    setGrad(name, p, step, device);
                                }
                            });
                            b.hooks().gradientsReady(unit);
                            b.hooks().release(unit);
                        }
                    }
                    losses[s] = b.sync().afterBackward(1.5 + s);
                    norms[s] = b.sync().clipGradNorm(params.values(), MAX_NORM);
                    b.opt().step(LR);
                    b.opt().zeroGrad();
                    if (s == 0 && check != null) {
                        check.accept(b);
                    }
                }
                if (checkpointDir != null) {
                    ZeroCheckpoint.stage(checkpointDir, CHECKPOINT_STEP, b.zero());
                }
                Map<String, float[]> moments = host(b.opt().stateDict());
                if (mode == Mode.STAGE3) {
                    b.grads().layers().gatherAll(); // the whole weights, to read them
                }
                List<Tensor> all = new ArrayList<>();
                params.values().forEach(p -> all.add(p.detach().reshape(-1)));
                float[] weights = host(torch.cat(new org.bytedeco.pytorch.TensorVector(all.toArray(new Tensor[0]))));
                return new Result(weights, norms, losses, moments);
            }
        }
    }

    /**
     * A fresh run's optimizer of {@code mode} on {@code device} (untrained weights) resumed from the staged files of
     * {@link #run} in {@code checkpointDir}; returns its state in host memory; {@code check} sees it first.
     */
    static Map<String, float[]> resume(DistributedGroup group, Device device, ScalarType dtype, Mode mode,
            Path checkpointDir, java.util.function.Consumer<Built> check) throws Exception {
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> params = params(device, dtype);
            try (Built b = build(group, params, mode)) {
                ZeroCheckpoint.load(ZeroCheckpoint.stagingDir(checkpointDir, CHECKPOINT_STEP), b.opt(), params);
                if (check != null) {
                    check.accept(b);
                }
                return host(b.opt().stateDict());
            }
        }
    }

    /**
     * Checks that every flat buffer of the built components (gradient slice and bucket, all-gather buckets) and every
     * AdamW moment is on {@code device} in {@code dtype}, as the parameters are.
     */
    static java.util.function.Consumer<Built> placedOn(Device device, ScalarType dtype) {
        String want = Devices.name(device);
        return b -> {
            List<Tensor> all = new ArrayList<>();
            if (b.grads() != null) {
                all.addAll(b.grads().buffers());
            }
            if (b.zero() != null) {
                all.addAll(b.zero().buffers());
            }
            b.opt().stateDict().forEach((k, v) -> {
                if (!k.endsWith(".step")) {
                    all.add(v);
                }
            });
            if (all.size() < 5 * 2) {
                throw new AssertionError("expected the moments of 5 parameters and the buffers, got " + all.size());
            }
            for (Tensor t : all) {
                String got = Devices.name(t.device());
                if (!got.equals(want) || t.scalar_type().value != dtype.value) {
                    throw new AssertionError("a ZeRO tensor of " + t.numel() + " elements is " + t.scalar_type()
                            + " on " + got + ", the parameters are " + dtype + " on " + want);
                }
            }
        };
    }

    /** The unit a parameter belongs to, as {@link LayerShards} assigns it. */
    private static int unitOf(String name) {
        return name.startsWith("model.layers.") ? Integer.parseInt(name.split("\\.")[2])
                : name.contains("embed_tokens.") ? LayerHooks.EMBEDDING : LayerHooks.HEAD;
    }

    /** Step {@code s}'s gradient of a parameter (host-made, norm about 1-2 in all); none for layer 1 at step 1. */
    private static void setGrad(String name, Tensor p, int s, Device device) {
        if (s == 1 && name.startsWith("model.layers.1.")) {
            return; // a parameter without a gradient: the optimizer skips it
        }
        Tensor g = values(SHAPES.get(name), 0.61 + 0.1 * s, name.length(), 0.3).to(p.scalar_type()); // p's shape
        try (Tensor slot = p.mutable_grad()) {
            slot.put(Devices.to(g, device));
        }
    }

    private static Map<String, float[]> host(Map<String, Tensor> state) {
        Map<String, float[]> out = new LinkedHashMap<>();
        state.forEach((k, v) -> out.put(k, host(v.reshape(-1))));
        return out;
    }

    static float[] host(Tensor t) {
        Tensor h = Devices.toHost(t.detach().to(ScalarType.Float)).contiguous();
        float[] out = new float[(int) h.numel()];
        h.data_ptr_float().get(out);
        return out;
    }

    /** The largest |a[i] - b[i]|. */
    static double maxDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError(a.length + " vs " + b.length + " elements");
        }
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((double) a[i] - b[i]));
        }
        return m;
    }

    /** The largest |a[i]|. */
    static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }
}
