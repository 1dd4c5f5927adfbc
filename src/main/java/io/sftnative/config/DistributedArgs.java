package io.sftnative.config;

/**
 * How ranks of a data-parallel run talk to each other (HF's {@code ddp_*} keys, plus our own liveness check). Used
 * only when the process is one rank of a job with more than one rank (torchrun's environment, or
 * {@code train --nproc-per-node N}); a single process reads and checks them, then ignores them.
 *
 * @param backend          {@code ddp_backend}: gloo (CPU tensors) or nccl (CUDA tensors); null = gloo on the CPU
 * @param timeoutSeconds   {@code ddp_timeout}: how long a collective or the rendezvous waits for the other ranks
 *                         (HF's default 1800 s)
 * @param findUnused       {@code ddp_find_unused_parameters}: true lets a trainable parameter get no gradient on
 *                         every rank (the optimizer then skips it, as a single process does); false stops the run
 *                         naming it (torch DDP's error); null = true
 * @param livenessSeconds  {@code ddp_liveness_timeout} (sft-native): a rank whose heartbeat stops for this long is
 *                         reported and the run stops, independently of {@code ddp_timeout}; 0 turns it off
 * @param bucketCapMb      {@code ddp_bucket_cap_mb}: the largest gradient bucket, in MiB (HF/DDP's default 25); a
 *                         bucket's all-reduce starts during backward once its gradients are all computed
 * @param sharding         ZeRO stage from {@code deepspeed: file.json} or {@code fsdp} ({@link DeepSpeedConfig#NONE})
 */
public record DistributedArgs(String backend, long timeoutSeconds, Boolean findUnused, long livenessSeconds,
        DeepSpeedConfig sharding, double bucketCapMb) {

    public static final DistributedArgs DEFAULTS = new DistributedArgs(null, 1800, null, 60, DeepSpeedConfig.NONE,
            25);

    public static DistributedArgs from(RawConfig c, TrainingArgs t) {
        String backend = c.has("ddp_backend") ? c.string("ddp_backend", null).toLowerCase(java.util.Locale.ROOT) : null;
        DistributedArgs d = new DistributedArgs(backend,
                c.longValue("ddp_timeout", 1800),
                c.has("ddp_find_unused_parameters") ? c.bool("ddp_find_unused_parameters", true) : null,
                c.longValue("ddp_liveness_timeout", 60),
                DeepSpeedConfig.from(c, t),
                c.number("ddp_bucket_cap_mb", 25));
        if (backend != null && !backend.equals("gloo") && !backend.equals("nccl")) {
            throw new ConfigException("key 'ddp_backend' (" + c.origin("ddp_backend") + ") is " + backend
                    + ": sft-native runs gloo (CPU tensors) or nccl (CUDA tensors); mpi, ccl, hccl and xccl are not"
                    + " available");
        }
        if (d.timeoutSeconds < 1) {
            throw new ConfigException("key 'ddp_timeout' (" + c.origin("ddp_timeout") + ") must be >= 1 second, got "
                    + d.timeoutSeconds);
        }
        if (d.livenessSeconds < 0) {
            throw new ConfigException("key 'ddp_liveness_timeout' (" + c.origin("ddp_liveness_timeout")
                    + ") must be >= 0 seconds (0 = off), got " + d.livenessSeconds);
        }
        if (!(d.bucketCapMb > 0) || d.bucketCapMb > 1 << 20) {
            throw new ConfigException("key 'ddp_bucket_cap_mb' (" + c.origin("ddp_bucket_cap_mb") + ") must be a"
                    + " positive number of MiB (HF's default 25), got " + d.bucketCapMb);
        }
        return d;
    }

    /** ddp_bucket_cap_mb in bytes. */
    public long bucketCapBytes() {
        return Math.max(1, (long) (bucketCapMb * (1L << 20)));
    }

    /** ddp_find_unused_parameters with its default. */
    public boolean allowUnusedParameters() {
        return findUnused == null || findUnused;
    }
}
