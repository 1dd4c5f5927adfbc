package io.sftnative.api;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import io.sftnative.config.ConfigLoader;
import io.sftnative.config.SftConfig;
import io.sftnative.distributed.DataParallel;
import io.sftnative.distributed.DistributedEnv;
import io.sftnative.distributed.LocalLauncher;
import io.sftnative.files.OutputDirLock;
import io.sftnative.loss.LossComputation;
import io.sftnative.torch.TorchRuntime;
import io.sftnative.train.OutputDirCheck;
import io.sftnative.train.PretrainRecipe;
import io.sftnative.train.RunOptions;
import io.sftnative.train.SftRecipe;

/**
 * Fine-tunes or pretrains a model from a JVM service: the same runs as {@code sft-native train}.
 *
 * <pre>{@code
 * SftTrainer trainer = SftTrainer.builder()
 *         .config(Path.of("examples/qwen2_5_lora_sft.yaml"))      // optional: LLaMA-Factory YAML
 *         .set("output_dir", "saves/run-7").set("max_steps", 200)  // keys as in the YAML, code wins
 *         .listener(new TrainingListener() {
 *             public void onStep(StepEvent e) { metrics.record(e.step(), e.loss()); }
 *         })
 *         .build();                                                  // validates the config
 * try (TrainingRun run = trainer.start()) {                          // trains on its own thread
 *     ...
 *     run.cancel();                                                  // saves a checkpoint, then stops
 *     TrainResult r = run.await();                                   // COMPLETED or CANCELLED
 * }
 * }</pre>
 * Starting again with the same {@code output_dir} resumes from its latest checkpoint (LLaMA-Factory's rule), or
 * set {@code resume_from_checkpoint}.
 */
public final class SftTrainer {
    private final SftConfig config;
    private final TrainingListener listener;
    private final LossComputation loss;
    private final boolean console;
    private final DistributedEnv job; // null: torchrun's environment decides
    private final List<String> trainArgs; // the config as `train` arguments (null when built from an SftConfig)

    private SftTrainer(SftConfig config, TrainingListener listener, LossComputation loss, boolean console,
            DistributedEnv job, List<String> trainArgs) {
        this.config = config;
        this.listener = listener;
        this.loss = loss;
        this.console = console;
        this.job = job;
        this.trainArgs = trainArgs;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The validated configuration this trainer runs. */
    public SftConfig config() {
        return config;
    }

    /** Starts training on a new thread and returns its handle at once. */
    public TrainingRun start() {
        AtomicBoolean cancel = new AtomicBoolean();
        return TrainingRun.start(() -> execute(cancel), cancel);
    }

    /** Trains in the calling thread until done. Failures are thrown as they happen (config, data, divergence). */
    public TrainResult run() throws IOException {
        return execute(new AtomicBoolean());
    }

    private TrainResult execute(AtomicBoolean cancel) throws IOException {
        RunOptions opts = new RunOptions(listener, cancel::get, loss, console, job);
        // subnormals slow every GEMM that reads them (TorchRuntime.flushDenormals); restored for the caller's thread
        OutputDirCheck.check(config); // before any heavy work: a bad output_dir fails in milliseconds
        boolean flushing = TorchRuntime.flushDenormals(true);
        // one run per output_dir for the run's whole life; cleaning leftovers of earlier runs happens under it.
        // In a data-parallel job rank 0 holds it: it alone writes, the other ranks share its output_dir
        boolean writes = (opts.rank() != null ? opts.rank() : DistributedEnv.fromEnvironment()).isMain();
        try (OutputDirLock lock = writes ? OutputDirLock.acquire(Path.of(config.training().outputDir())) : null) {
            return "pt".equals(config.finetuning().stage()) ? PretrainRecipe.run(config, opts)
                    : SftRecipe.run(config, opts);
        } finally {
            if (flushing) {
                TorchRuntime.flushDenormals(false);
            }
        }
    }

    /**
     * Trains as a data-parallel job of {@code nprocPerNode} ranks on this machine, as {@code train --nproc-per-node}
     * does: each rank is a child JVM (this JVM's java, flags and class path) running this trainer's config; rank 0
     * prints to this process's standard output, the others' lines are prefixed with their rank. Returns when every
     * rank has finished; the results are in {@code output_dir}. Listeners are not called (the ranks are other
     * processes). Needs a trainer built from a YAML file, overrides or {@code set} values (not an SftConfig).
     *
     * @throws TrainingFailedException when a rank fails (the others are stopped), naming its exit status
     */
    public void runLocalRanks(int nprocPerNode) throws IOException, InterruptedException {
        if (trainArgs == null) {
            throw new IllegalStateException("runLocalRanks gives the ranks the config as a YAML file and key=value"
                    + " settings; this trainer was built from an SftConfig object or set a mapping value in code:"
                    + " put those in the YAML file");
        }
        LocalLauncher.Job local = new LocalLauncher.Job(nprocPerNode, 1, 0, "127.0.0.1", 0);
        DataParallel.checkSupported(config.distributed(), local.worldSize());
        DataParallel.checkStage3(config.distributed(), local.worldSize(), config.training()
                .gradientCheckpointing(), config.model().quantizationBit());
        int status = LocalLauncher.run(local, LocalLauncher.trainCommand(trainArgs), LocalLauncher.RANK_ENVIRONMENT,
                System.err);
        if (status != 0) {
            throw new TrainingFailedException(new IOException("a rank of the " + nprocPerNode + "-rank job exited"
                    + " with status " + status + " (its error is printed above)"));
        }
    }

    /** Configuration from a YAML file, command-line style overrides and values set in code (later wins). */
    public static final class Builder {
        private Path yaml;
        private final List<String> overrides = new ArrayList<>();
        private final Map<String, Object> values = new LinkedHashMap<>();
        private SftConfig config;
        private TrainingListener listener = TrainingListener.NONE;
        private LossComputation loss;
        private boolean console;
        private DistributedEnv job;

        private Builder() {}

        /**
         * Joins a data-parallel job as one of its ranks: {@code DistributedEnv(rank, worldSize, localRank,
         * localWorldSize, masterAddr, masterPort)}, or {@code DistributedEnv.from(map)} for torchrun-style variables.
         * Every rank must be started with the same config; rank 0 hosts the rendezvous and writes the results. Not
         * called: the process's environment decides (torchrun's RANK, WORLD_SIZE, ...; a single process without).
         * {@code DistributedEnv.SINGLE} trains alone even where that environment is set.
         */
        public Builder distributed(DistributedEnv job) {
            this.job = job;
            return this;
        }

        /** {@link #distributed} for one rank of a job over one machine or several (local rank = rank). */
        public Builder joinJob(int rank, int worldSize, String masterAddr, int masterPort) {
            return distributed(new DistributedEnv(rank, worldSize, rank, worldSize, masterAddr, masterPort));
        }

        /** A LLaMA-Factory-style YAML config file. */
        public Builder config(Path yaml) {
            this.yaml = yaml;
            return this;
        }

        /** An already validated config (other config calls are then ignored). */
        public Builder config(SftConfig config) {
            this.config = config;
            return this;
        }

        /** {@code key=value} strings as on the command line. */
        public Builder overrides(List<String> keyValues) {
            overrides.addAll(keyValues);
            return this;
        }

        /** One config key (LLaMA-Factory's names, e.g. {@code learning_rate}); wins over file and overrides. */
        public Builder set(String key, Object value) {
            values.put(key, value);
            return this;
        }

        public Builder listener(TrainingListener listener) {
            this.listener = listener == null ? TrainingListener.NONE : listener;
            return this;
        }

        /** Replaces the micro-batch forward/loss/backward (e.g. a memory-saving variant); default: plain. */
        public Builder lossComputation(LossComputation loss) {
            this.loss = loss;
            return this;
        }

        /** Print progress and messages to standard output as the CLI does (default: off). */
        public Builder console(boolean console) {
            this.console = console;
            return this;
        }

        /** Validates the configuration: an unknown key or a bad value fails here with the key named. */
        public SftTrainer build() {
            SftConfig cfg = config;
            if (cfg == null) {
                List<String> warnings = new ArrayList<>();
                cfg = SftConfig.from(ConfigLoader.load(yaml, overrides, values), warnings::add);
                String rank = System.getenv("RANK"); // a data-parallel job's other ranks do not repeat them
                boolean rankZero = job != null ? job.isMain()
                        : rank == null || rank.isBlank() || rank.trim().equals("0");
                for (String w : warnings) {
                    if (console && rankZero) {
                        System.err.println("warning: " + w);
                    }
                    listener.onMessage("warning: " + w);
                }
            }
            return new SftTrainer(cfg, listener, loss, console, job, config != null ? null : trainArgs());
        }

        /** The config as `train` arguments: the YAML file, the overrides, then the set values as key=value. */
        private List<String> trainArgs() {
            List<String> args = new ArrayList<>();
            if (yaml != null) {
                args.add(yaml.toString());
            }
            args.addAll(overrides);
            for (Map.Entry<String, Object> e : values.entrySet()) {
                if (e.getValue() instanceof Map) {
                    return null; // not expressible as key=value: runLocalRanks says so
                }
                args.add(e.getKey() + "=" + (e.getValue() instanceof java.util.Collection<?> c ? String.join(",",
                        c.stream().map(String::valueOf).toList()) : e.getValue()));
            }
            return args;
        }
    }

}
