package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import io.sftnative.batch.Collator;
import io.sftnative.checkpoint.ResumeResolver;
import io.sftnative.checkpoint.TorchRng;
import io.sftnative.checkpoint.TrainingCheckpoint;
import io.sftnative.config.ConfigException;
import io.sftnative.config.ModelArgs;
import io.sftnative.config.SftConfig;
import io.sftnative.config.TrainingArgs;
import io.sftnative.data.DataPipeline;
import io.sftnative.distributed.DataParallel;
import io.sftnative.eval.LossEvaluator;
import io.sftnative.distributed.DistributedEnv;
import io.sftnative.distributed.GradientSync;
import io.sftnative.distributed.ZeroCheckpoint;
import io.sftnative.loss.LossComputation;
import io.sftnative.loss.MemoryEfficientLoss;
import io.sftnative.model.VocabResize;
import io.sftnative.model.DenseLinear;
import io.sftnative.model.LinearLayer;
import io.sftnative.model.moe.RouterLog;
import io.sftnative.optim.Adafactor;
import io.sftnative.optim.AdamW;
import io.sftnative.optim.Optimizer;
import io.sftnative.optim.ParamGroups;
import io.sftnative.optim.Sgd;
import io.sftnative.optim.LrSchedule;
import io.sftnative.torch.Autocast;
import io.sftnative.tokenizer.AddedTokens;
import io.sftnative.torch.TorchRuntime;

/**
 * What both recipes do before the first step, in order: libtorch and seeds, where the run resumes from, data,
 * model, loss, optimizer, schedule, and (resuming) the optimizer, random and data state of the checkpoint. Owns
 * the data and the model; closing it frees them.
 */
final class RunSetup implements AutoCloseable {
    final SftConfig cfg;
    final RunOptions opts;
    final Path outputDir;
    final TrainingCheckpoint.Loaded resume; // null for a fresh run
    final DataPipeline.Prepared data;
    final TrainableModel model;
    final Autocast autocast;
    final LossComputation loss;
    final Collator collator;
    final Path tokenizerDir; // null when the model has no tokenizer files (pre-tokenized data)
    final DataParallel parallel; // this process's part in a data-parallel job (single() in one process)
    final GradientSync sync;
    private final AddedTokens addedTokens; // the tokenizer copy with add_tokens, or null; deleted on close

    private RunSetup(SftConfig cfg, RunOptions opts, Path outputDir, TrainingCheckpoint.Loaded resume,
            DataPipeline.Prepared data, TrainableModel model, Path tokenizerDir, DataParallel parallel,
            AddedTokens addedTokens) {
        this.cfg = cfg;
        this.addedTokens = addedTokens;
        this.opts = opts;
        this.parallel = parallel;
        // ZeRO-2/3 work layer by layer when the loss step checkpoints layers (it then calls parallel.layerHooks())
        boolean layerwise = opts.loss() == null && cfg.training().gradientCheckpointing();
        this.sync = parallel.worldSize() > 1 ? parallel.prepare(model.trainable(), gradientsOutsideAutograd(model),
                layerwise) : parallel.prepare(model.trainable());
        this.outputDir = outputDir;
        this.resume = resume;
        this.data = data;
        this.model = model;
        this.tokenizerDir = tokenizerDir;
        this.autocast = Autocast.of(cfg.training().bf16(), cfg.training().fp16());
        TrainingArgs t = cfg.training();
        this.loss = opts.loss() != null ? opts.loss()
                : new MemoryEfficientLoss(t.gradientCheckpointing(), t.fusedCrossEntropy(), 0, autocast)
                        .withHooks(layerwise ? parallel.layerHooks() : io.sftnative.loss.LayerHooks.NONE);
        this.collator = new Collator(data.data().padId(), cfg.data().padToMultipleOf(), data.data().neatPacking());
    }

    /**
     * LLaMA-Factory's rope_scaling key: training and evaluation scale RoPE for model_max_length = cutoff_len (as
     * LLaMA-Factory's get_train_args sets it).
     */
    private static void applyRopeScaling(TrainableModel model, SftConfig cfg, RunOptions opts) {
        String type = cfg.model().ropeScaling();
        if (type == null) {
            return;
        }
        io.sftnative.model.DecoderModel m = model.model();
        io.sftnative.model.ModelConfig scaled = m.config().withLlamaFactoryRopeScaling(type, cfg.data().cutoffLen(),
                opts::say);
        if (scaled != m.config()) {
            m.rescaleRope(scaled);
        }
    }

    /**
     * Trainable parameters whose gradient the loss writes outside autograd or over several backward passes: the
     * LM head (the fused kernel adds its gradient after the graph's backward; an adapted head backpropagates chunk
     * by chunk) and an embedding tied to it. Data parallelism reduces them after backward, not from its hooks.
     */
    static Set<String> gradientsOutsideAutograd(TrainableModel model) {
        Set<String> late = new HashSet<>();
        boolean tied = model.model().config().tieWordEmbeddings();
        LinearLayer head = model.model().linear("lm_head");
        Tensor w = head instanceof DenseLinear d ? d.weight() : null; // (V, H)
        for (Map.Entry<String, Tensor> e : model.trainable().entrySet()) {
            String name = e.getKey();
            if (name.startsWith("lm_head.") || (tied && name.contains("embed_tokens."))
                    || (w != null && e.getValue().is_alias_of(w))) {
                late.add(name);
            }
        }
        return late;
    }

    /** LLaMA-Factory's moe_aux_loss_coef sets the router_aux_loss_coef of a mixture-of-experts model. */
    private static void applyMoeAuxLossCoef(TrainableModel model, ModelArgs m, RunOptions opts) {
        RouterLog log = model.model().routerLog();
        if (m.moeAuxLossCoef() != null && log != null) {
            log.setAuxLossCoef(m.moeAuxLossCoef());
        } else if (m.moeAuxLossCoef() != null) {
            opts.say("note: moe_aux_loss_coef has no effect: " + model.model().config().modelType()
                    + " is not a mixture-of-experts model");
        }
        if (log != null) {
            opts.say("mixture of experts: " + model.model().moe().numExperts() + " experts, top-"
                    + model.model().moe().topK() + ", load-balancing loss coefficient " + log.auxLossCoef());
        }
    }

    static RunSetup open(SftConfig cfg, String stage, RunOptions opts) throws IOException {
        TorchRuntime.boot(cfg.model().threads() > 0 ? cfg.model().threads() : TorchRuntime.defaultThreads());
        String device = TorchRuntime.deviceName(cfg.model().device()); // before the data work: a bad device fails now
        if (cfg.training().fp16() && !device.startsWith("cuda")) {
            throw new ConfigException("fp16: true needs a CUDA GPU, and this run is on " + device + " (HF refuses fp16"
                    + " mixed precision without a GPU too: fp16 matrix products on a CPU are slow and lose range)."
                    + " On a CPU use bf16: true, or neither");
        }
        DistributedEnv rank = opts.rank() != null ? opts.rank() : DistributedEnv.fromEnvironment();
        opts = rank.isMain() ? opts : opts.quiet(); // only rank 0 prints
        if (rank.distributed() && device.startsWith("cuda")) {
            // as torchrun / HF: every rank of a node uses the GPU of its LOCAL_RANK (NCCL refuses two ranks on one)
            device = TorchRuntime.deviceName("cuda:" + rank.localRank());
        }
        String bf16Warning = cfg.training().bf16() && device.startsWith("cpu") ? io.sftnative.torch.CpuBf16.warning()
                : null;
        if (bf16Warning != null) {
            opts.say(bf16Warning); // once per run
        }
        String tracking = io.sftnative.config.Tracking.unsupportedWarning(cfg.training().reportTo());
        if (tracking != null) {
            opts.say(tracking);
        }
        DataParallel.checkOptimizer(cfg.distributed(), cfg.training().optim(), rank.worldSize());
        DataParallel.checkStage3(cfg.distributed(), rank.worldSize(), cfg.training().gradientCheckpointing(),
                cfg.model().quantizationBit());
        DataParallel parallel = DataParallel.join(rank, cfg.distributed(), !device.startsWith("cpu"), opts::say);
        try {
            return open(cfg, stage, opts, parallel, device);
        } catch (IOException | RuntimeException e) {
            parallel.close();
            throw e;
        }
    }

    private static RunSetup open(SftConfig cfg, String stage, RunOptions opts, DataParallel parallel, String device)
            throws IOException {
        TrainingArgs t = cfg.training();
        parallel.checkSame("config", StartupHash.of(cfg.toString()));
        TorchRng.manualSeed(t.seed());
        Path outputDir = Path.of(t.outputDir());
        Optional<Path> from = ResumeResolver.resolve(t.resumeFromCheckpoint(), outputDir, t.overwriteOutputDir(),
                t.doTrain());
        TrainingCheckpoint.Loaded resume = from.isPresent() ? TrainingCheckpoint.read(from.get()) : null;
        if (!t.doTrain() && !t.doEval() && !t.doPredict()) {
            throw new ConfigException("do_train, do_eval and do_predict are all false: nothing to do");
        }
        Path modelDir = TrainableModel.modelDir(cfg.model());
        if (!cfg.model().trainFromScratch() && Files.isRegularFile(modelDir.resolve("config.json"))) {
            io.sftnative.quant.BnbCheckpoint.quantMethod(modelDir); // a GPTQ/AWQ/... base stops before the data
        }
        AddedTokens added = NewTokens.stage(cfg.model().newTokens(), hasTokenizer(modelDir) ? modelDir : null,
                opts::say);
        try {
            return open(cfg, stage, opts, parallel, device, resume, outputDir, modelDir, added);
        } catch (IOException | RuntimeException e) {
            if (added != null) {
                added.close();
            }
            throw e;
        }
    }

    private static RunSetup open(SftConfig cfg, String stage, RunOptions opts, DataParallel parallel, String device,
            TrainingCheckpoint.Loaded resume, Path outputDir, Path modelDir, AddedTokens added) throws IOException {
        TrainingArgs t = cfg.training();
        // with add_tokens the run reads and saves the tokenizer with the new tokens (HF's Trainer saves it so)
        Path tokenizerDir = added != null ? added.directory() : hasTokenizer(modelDir) ? modelDir : null;
        DataPipeline.Prepared data = DataPipeline.prepare(tokenizerDir, cfg.data(), stage, t.seed(), opts.console(),
                opts::say, t.doTrain());
        try {
            VocabResize.Plan vocab = NewTokens.plan(cfg.model().newTokens(), data.tokenizer(), added);
            if (t.doTrain() && data.data().train().isEmpty()) {
                throw new ConfigException("do_train needs training data: set dataset (this config only has"
                        + " eval_dataset; set do_train: false to only evaluate or predict)");
            }
            boolean streaming = data.data().train().streaming();
            if (streaming && parallel.worldSize() > 1) {
                throw new ConfigException("key 'streaming': not implemented in sft-native: streaming: true with"
                        + " data-parallel training (" + parallel.worldSize() + " ranks); train on one process or"
                        + " turn streaming off");
            }
            if (t.doTrain() && !streaming && data.data().trainReport().trainableTokens() == 0) { // loss 0
                throw new ConfigException("no trainable tokens: every token of the " + data.data().trainReport()
                        .kept() + " training examples is masked (prompt, template) or cut by cutoff_len="
                        + cfg.data().cutoffLen() + "; raise cutoff_len, or check the dataset's columns");
            }
            if (!streaming) { // a stream cannot be hashed up front (one process only, checked above)
                parallel.checkSame("training data (tokenized)", StartupHash.of(data.data().train()));
            }
            parallel.checkSame("resume point", String.valueOf(resume == null ? "none" : resume.dir()));
            if ((t.doEval() || t.doPredict()) && data.data().eval().isEmpty()) {
                throw new ConfigException("do_eval / do_predict need evaluation data: set val_size (a fraction or a"
                        + " count of the training examples) or eval_dataset");
            }
            TrainableModel model = t.doTrain()
                    ? TrainableModel.forTraining(cfg.model(), cfg.finetuning(), t.bf16(), t.seed(),
                            resume == null ? null : resume.dir(), vocab, opts::say)
                    : TrainableModel.forInference(cfg.model(), t.bf16(), vocab, t.seed());
            try {
                applyMoeAuxLossCoef(model, cfg.model(), opts);
                applyRopeScaling(model, cfg, opts);
                checkVocabulary(model, data);
            } catch (RuntimeException e) {
                model.close();
                throw e;
            }
            opts.say("device: " + device);
            if (resume != null) {
                opts.say("resuming from " + resume.dir() + " (step " + resume.position().globalStep()
                        + ")");
            }
            try {
                RunSetup run = new RunSetup(cfg, opts, outputDir, resume, data, model, tokenizerDir, parallel, added);
                if (parallel.describe() != null) {
                    opts.say(parallel.describe());
                }
                return run;
            } catch (RuntimeException e) {
                model.close();
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            data.close();
            throw e;
        }
    }

    /** This rank's share of an evaluation (every batch in a single process). */
    LossEvaluator.Shard evalShard() {
        return new LossEvaluator.Shard(parallel.rank(), parallel.worldSize(), parallel::sumOverRanks);
    }

    /** The optimizer over the trainable parameters, with the checkpoint's state when resuming. */
    Optimizer optimizer() throws IOException {
        TrainingArgs t = cfg.training();
        Optimizer opt = switch (t.optim()) {
            case "sgd" -> new Sgd(model.trainable(), t.weightDecay(), ParamGroups::decays);
            case "adafactor" -> new Adafactor(model.trainable(), t.weightDecay(), ParamGroups::decays);
            case "adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit" -> io.sftnative.optim.AdamW8bit.withHfGroups(
                    model.trainable(), t.weightDecay(), t.adamBeta1(), t.adamBeta2(), t.adamEpsilon());
            default -> {
                Function<Map<String, Tensor>, Optimizer> adamW = params -> AdamW.withHfGroups(params,
                        t.weightDecay(), t.adamBeta1(), t.adamBeta2(), t.adamEpsilon()).fused(t.fusedAdamW());
                // ZeRO 1/2: AdamW over this rank's slice of the parameters only
                yield parallel.zeroStage() > 0 ? parallel.shardedAdamW(adamW) : adamW.apply(model.trainable());
            }
        };
        double loraplus = cfg.finetuning().loraplusLrRatio();
        if (loraplus > 0) {
            opt.lrScales(io.sftnative.optim.LoraPlus.scales(model.trainable(), loraplus,
                    cfg.finetuning().loraplusLrEmbedding(), t.learningRate()));
            opts.say("LoRA+: lora_B and 1-d parameters at learning_rate x " + loraplus);
        }
        if (resume != null) {
            try {
                ZeroCheckpoint.load(resume.dir(), opt, model.trainable()); // plain, or re-sliced ZeRO shards
            } catch (IOException | RuntimeException e) {
                opt.close();
                throw e;
            }
        }
        return opt;
    }

    DataOrder order() {
        TrainingArgs t = cfg.training();
        if (data.data().train().streaming()) {
            // HF Trainer on an iterable dataset: no sampler, max_steps steps make one "epoch" (what logs show);
            // the order's indices are positions in the shuffled stream
            long rows = t.maxSteps() * t.perDeviceTrainBatchSize() * (long) t.gradientAccumulationSteps();
            if (t.maxSteps() <= 0 || rows > Integer.MAX_VALUE) {
                throw new ConfigException("streaming: true needs max_steps > 0 (LLaMA-Factory: \"Please specify"
                        + " `max_steps` in streaming mode.\") and max_steps x batch x accumulation below 2^31");
            }
            return new DataOrder((int) rows, t.perDeviceTrainBatchSize(), t.gradientAccumulationSteps(), t.seed(),
                    false);
        }
        return new DataOrder(data.data().train().size(), t.perDeviceTrainBatchSize(), t.gradientAccumulationSteps(),
                t.seed(), !t.run().disableShuffling(), parallel.worldSize(), parallel.rank());
    }

    LrSchedule schedule(long totalSteps) {
        TrainingArgs t = cfg.training();
        try {
            return LrSchedule.of(t.lrSchedulerType(), t.learningRate(), totalSteps, t.warmupSteps(), t.warmupRatio(),
                    t.lrSchedulerKwargs());
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage(), e);
        }
    }

    /** The step to start from: the checkpoint's, after checking it fits this run and restoring its random state. */
    long startStep(DataOrder order, LrSchedule schedule) {
        if (resume == null) {
            return 0;
        }
        TrainingCheckpoint.Position p = resume.position();
        if (p.trainExamples() != order.examples()) {
            throw new ConfigException(resume.dir() + " was trained on " + p.trainExamples() + " training rows, this"
                    + " run has " + order.examples() + ": the data changed, so the run cannot continue where it"
                    + " stopped. Restore the data (dataset, max_samples, val_size, cutoff_len, packing) or start"
                    + " a new run (another output_dir, or overwrite_output_dir: true)");
        }
        if (p.batchSize() != order.batchSize() || p.accumulation() != order.microBatchesPerStep() || p.seed() != cfg
                .training().seed()) {
            opts.say("warning: the checkpoint was trained with batch size " + p.batchSize()
                    + ", micro-batches per step (accumulation x ranks) " + p.accumulation() + ", seed " + p.seed()
                    + "; this run uses " + order.batchSize() + ", " + order.microBatchesPerStep() + ", "
                    + cfg.training().seed()
                    + ": the data order after the resume differs from an uninterrupted run");
        }
        TrainingCheckpoint.Schedule s = resume.schedule();
        if (!s.type().equals(schedule.type().configName()) || s.learningRate() != schedule.baseLr()
                || s.totalSteps() != schedule.totalSteps() || s.warmupSteps() != schedule.warmupSteps()) {
            opts.say("warning: the learning-rate schedule differs from the checkpoint's (" + s.type()
                    + ", lr " + s.learningRate() + ", " + s.totalSteps() + " steps, warmup " + s.warmupSteps()
                    + "); continuing with this run's");
        }
        try (PointerScope scope = new PointerScope()) {
            resume.rng().restore(model.model().device());
        }
        return p.globalStep();
    }

    /**
     * Ranks other than 0 draw their dropout masks from their own stream (rank 0 keeps the single-process stream):
     * resuming a checkpoint of a job with the same world size, each rank continues the stream it saved; otherwise
     * a rank r > 0 seeds it from seed, rank and the step training starts at.
     */
    void seedRankStream(long startStep) {
        List<byte[]> saved = resume == null ? null : resume.rng().rankCpu();
        if (saved != null && saved.size() == parallel.worldSize()) {
            TorchRng.setCpuState(saved.get(parallel.rank()));
        } else if (parallel.rank() > 0) {
            TorchRng.manualSeed(cfg.training().seed() + 1_000_003L * parallel.rank() + 7919L * startStep);
        }
        if (resume != null && parallel.worldSize() > 1 && (saved == null || saved.size() != parallel.worldSize())) {
            opts.say("note: " + resume.dir() + " holds the random state of " + (saved == null ? "1 process"
                    : saved.size() + " ranks") + ", this job has " + parallel.worldSize() + ": ranks > 0 draw new"
                    + " dropout streams (weights, optimizer state and data order continue exactly)");
        }
    }

    /** The log history of the resumed checkpoint (empty for a fresh run). */
    List<Map<String, Object>> history() {
        return resume == null ? List.of() : resume.state().logHistory();
    }

    long tokensSeen() {
        return resume == null ? 0 : resume.position().tokensSeen();
    }

    static boolean hasTokenizer(Path dir) {
        return Files.isRegularFile(dir.resolve("tokenizer.json")) || Files.isRegularFile(dir.resolve("tokenizer.model"));
    }

    /** Ids beyond the embedding would fail at the first step: say so before anything runs. */
    private static void checkVocabulary(TrainableModel model, DataPipeline.Prepared data) {
        if (data.tokenizer() != null && data.tokenizer().vocabSize() > model.model().config().vocabSize()) {
            throw new ConfigException("the tokenizer in " + data.tokenizer().directory() + " has "
                    + data.tokenizer().vocabSize() + " tokens but the model's vocab_size is "
                    + model.model().config().vocabSize() + ": the tokenizer does not belong to this model");
        }
    }

    @Override
    public void close() {
        try {
            parallel.close(); // first: its gradient hooks are removed from parameters the model still owns
        } finally {
            try {
                model.close();
            } finally {
                try {
                    data.close();
                } finally {
                    if (addedTokens != null) {
                        addedTokens.close();
                    }
                }
            }
        }
    }
}
