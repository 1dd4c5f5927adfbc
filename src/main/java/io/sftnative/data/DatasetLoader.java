package io.sftnative.data;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.function.Supplier;

import io.sftnative.config.DataArgs;
import io.sftnative.template.Template;
import io.sftnative.tokenizer.Fingerprint;
import io.sftnative.tokenizer.Tokenizer;

/**
 * Datasets to train/eval examples, as LLaMA-Factory builds them: read (streaming) → convert → template → labels →
 * packing / pt blocks, on all cores in chunks of 1000 records, written to a tokenized cache that later runs reuse.
 *
 * <p>The cache file is named by a hash of the data files' content, the tokenizer files, the template and every
 * option that changes the ids; it is written atomically and checksummed, so a crash mid-way leaves no half cache and
 * a corrupt one is rebuilt. Memory stays bounded: records stream in, a few chunks are in flight, examples are read
 * back from the memory-mapped cache.
 */
public final class DatasetLoader {
    private DatasetLoader() {}

    /**
     * Plain parameters of the pipeline.
     *
     * @param datasets    dataset names (dataset_info.json) or file paths, concatenated in order
     * @param evalDatasets evaluation datasets (instead of a val_size split); may be empty
     * @param stage       sft or pt
     * @param maxSamples  at most this many records per dataset (0 = all)
     * @param valSize     fraction (&lt; 1) or count (&ge; 1) of examples split off for evaluation (0 = none)
     * @param packing     pack sft examples / cut pt texts into blocks
     * @param workers     preprocessing threads (0 = all processors)
     * @param cacheDir    where tokenized caches live
     * @param seed        the val_size split's shuffle
     * @param progress    show a progress bar on stderr
     * @param mix         how several datasets are merged, and whether eval datasets are kept apart
     * @param tokenizedPath LLaMA-Factory's tokenized_path ({@link TokenizedDir}), or null
     * @param streamBuffer  streaming: true with this buffer_size (the train data streams while training runs,
     *                      {@link StreamedExamples}); 0 = off
     */
    public record Options(List<String> datasets, List<String> evalDatasets, Path datasetDir, String stage,
            int cutoffLen, int maxSamples, double valSize, boolean packing, boolean neatPacking,
            boolean trainOnPrompt, boolean maskHistory, int workers, boolean overwriteCache, Path cacheDir, long seed,
            boolean progress, Mix mix, Path tokenizedPath, int streamBuffer) {

        public Options {
            datasets = List.copyOf(datasets);
            evalDatasets = List.copyOf(evalDatasets);
            packing = packing || neatPacking;
        }

        /** Concatenated datasets (LLaMA-Factory's default mix_strategy). */
        public Options(List<String> datasets, List<String> evalDatasets, Path datasetDir, String stage,
                int cutoffLen, int maxSamples, double valSize, boolean packing, boolean neatPacking,
                boolean trainOnPrompt, boolean maskHistory, int workers, boolean overwriteCache, Path cacheDir,
                long seed, boolean progress) {
            this(datasets, evalDatasets, datasetDir, stage, cutoffLen, maxSamples, valSize, packing, neatPacking,
                    trainOnPrompt, maskHistory, workers, overwriteCache, cacheDir, seed, progress, Mix.CONCAT, null, 0);
        }

        public Options(List<String> datasets, List<String> evalDatasets, Path datasetDir, String stage,
                int cutoffLen, int maxSamples, double valSize, boolean packing, boolean neatPacking,
                boolean trainOnPrompt, boolean maskHistory, int workers, boolean overwriteCache, Path cacheDir,
                long seed, boolean progress, Mix mix) {
            this(datasets, evalDatasets, datasetDir, stage, cutoffLen, maxSamples, valSize, packing, neatPacking,
                    trainOnPrompt, maskHistory, workers, overwriteCache, cacheDir, seed, progress, mix, null, 0);
        }

        public Options(List<String> datasets, List<String> evalDatasets, Path datasetDir, String stage,
                int cutoffLen, int maxSamples, double valSize, boolean packing, boolean neatPacking,
                boolean trainOnPrompt, boolean maskHistory, int workers, boolean overwriteCache, Path cacheDir,
                long seed, boolean progress, Mix mix, Path tokenizedPath) {
            this(datasets, evalDatasets, datasetDir, stage, cutoffLen, maxSamples, valSize, packing, neatPacking,
                    trainOnPrompt, maskHistory, workers, overwriteCache, cacheDir, seed, progress, mix, tokenizedPath,
                    0);
        }

        /** The same options with the training data streamed (streaming: true, buffer_size); 0 = off. */
        public Options withStreaming(int bufferSize) {
            return new Options(datasets, evalDatasets, datasetDir, stage, cutoffLen, maxSamples, valSize, packing,
                    neatPacking, trainOnPrompt, maskHistory, workers, overwriteCache, cacheDir, seed, progress, mix,
                    tokenizedPath, bufferSize);
        }

        public Options withProgress(boolean show) {
            return new Options(datasets, evalDatasets, datasetDir, stage, cutoffLen, maxSamples, valSize, packing,
                    neatPacking, trainOnPrompt, maskHistory, workers, overwriteCache, cacheDir, seed, show, mix,
                    tokenizedPath, streamBuffer);
        }

        boolean pretrain() {
            return "pt".equals(stage);
        }
    }

    /**
     * LLaMA-Factory's dataset mixing keys.
     *
     * @param strategy          concat, interleave_under, interleave_over or interleave_once
     * @param interleaveProbs   one probability per dataset for interleaving, or empty for round-robin
     * @param evalOnEachDataset evaluate each eval_dataset on its own (metrics eval_NAME_loss) instead of merged
     */
    public record Mix(String strategy, List<Double> interleaveProbs, boolean evalOnEachDataset) {
        public static final Mix CONCAT = new Mix("concat", List.of(), false);

        public Mix {
            interleaveProbs = List.copyOf(interleaveProbs);
            DatasetSampling.MixStrategy.of(strategy); // fails on an unknown name
            if (!interleaveProbs.isEmpty() && "concat".equals(strategy)) {
                throw new DataException("interleave_probs is only valid with an interleave mix_strategy"
                        + " (LLaMA-Factory rejects it with concat)", null, -1, "interleave_probs");
            }
        }

        double[] probs() {
            return interleaveProbs.isEmpty() ? null : interleaveProbs.stream().mapToDouble(Double::doubleValue)
                    .toArray();
        }
    }

    /** The options a config asks for. */
    public static Options options(DataArgs d, String stage, long seed) {
        return new Options(d.dataset(), d.evalDataset(), d.datasetDir() == null ? null : Path.of(d.datasetDir()),
                stage, d.cutoffLen(), d.maxSamples(), d.valSize(), d.packingFor(stage), d.neatPacking(),
                d.trainOnPrompt(), d.maskHistory(), d.workers(), d.overwriteCache(), defaultCacheDir(), seed, true,
                new Mix(d.mixStrategy(), d.interleaveProbs(), d.evalOnEachDataset()),
                d.tokenizedPath() == null ? null : Path.of(d.tokenizedPath()), d.streaming() ? d.bufferSize() : 0);
    }

    /** {@code -Dsft.cache.dir}, else {@code $SFT_CACHE_DIR}, else {@code ~/.cache/sft-native/datasets}. */
    public static Path defaultCacheDir() {
        String prop = System.getProperty("sft.cache.dir");
        if (prop != null && !prop.isBlank()) {
            return Path.of(prop);
        }
        String env = System.getenv("SFT_CACHE_DIR");
        return env != null && !env.isBlank() ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache", "sft-native", "datasets");
    }

    /**
     * Loads (or reuses from the cache) the examples of a run.
     *
     * @param tokenizer null only when every dataset is pre-tokenized
     * @param template  the chat template (sft); null for pt or pre-tokenized data
     * @param log       one-line messages for the user (cache reuse, warnings, the preprocessing summary)
     */
    public static LoadedData load(Options o, Tokenizer tokenizer, Template template, Consumer<String> log) {
        if (o.streamBuffer() > 0) {
            StreamingRules.check(o);
        }
        if (o.tokenizedPath() != null && TokenizedDir.hasData(o.tokenizedPath())) {
            return TokenizedDir.load(o.tokenizedPath(), o, tokenizer, template, log);
        }
        if (o.datasets().isEmpty() && o.evalDatasets().isEmpty()) {
            throw new DataException("no dataset: set the dataset key to names from dataset_info.json or to data"
                    + " files (.json, .jsonl, .txt, .csv, .parquet, .arrow)", null, -1, "dataset");
        }
        if (!o.evalDatasets().isEmpty() && o.valSize() > 1e-6) {
            throw new DataException("val_size cannot be combined with eval_dataset: use one way of getting"
                    + " evaluation data", null, -1, "val_size");
        }
        if (o.neatPacking() && o.pretrain()) {
            throw new DataException("neat_packing is for sft; pt always cuts texts into blocks", null, -1,
                    "neat_packing");
        }
        ChunkProcessor.Settings settings = settings(o, tokenizer, template);
        List<DatasetSpec> specs = o.datasets().stream().map(d -> DatasetSpec.resolve(d, o.datasetDir(), log)).toList();
        List<DatasetSpec> evalSpecs = o.evalDatasets().stream().map(d -> DatasetSpec.resolve(d, o.datasetDir(), log))
                .toList();
        if (o.streamBuffer() > 0) {
            StreamingRules.checkSpecs(specs);
            StreamingRules.checkSpecs(evalSpecs);
        }
        if (o.mix().evalOnEachDataset() && evalSpecs.isEmpty()) {
            log.accept("note: eval_on_each_dataset applies to eval_dataset only (LLaMA-Factory); the val_size split"
                    + " is one evaluation set");
        }
        Draws draws = new Draws(o.seed(), specs, evalSpecs);
        List<AutoCloseable> owned = new ArrayList<>();
        try {
            if (specs.isEmpty() && o.valSize() > 1e-6) {
                throw new DataException("val_size splits the dataset, and no dataset is set (LLaMA-Factory rejects"
                        + " val_size without dataset)", null, -1, "val_size");
            }
            // a predict/eval-only config may have eval_dataset and no dataset (LLaMA-Factory's predict examples)
            StreamedExamples streamed = null;
            if (o.streamBuffer() > 0 && !specs.isEmpty()) {
                int workers = o.workers() > 0 ? o.workers() : Runtime.getRuntime().availableProcessors();
                streamed = new StreamedExamples(specs, settings, o.neatPacking(), o.streamBuffer(), o.seed(), workers,
                        log);
                owned.add(streamed);
                log.accept("streaming the train data (buffer_size " + o.streamBuffer() + ", seed " + o.seed()
                        + "): training starts once the shuffle buffer is full");
            }
            TokenizedStore train = specs.isEmpty() || streamed != null ? null : build(specs, o, settings, tokenizer,
                    template, log, "train", draws.mixing(o, true), "");
            PreprocessReport trainReport = new PreprocessReport.Builder(o.cutoffLen()).build();
            if (train != null) {
                owned.add(train);
                trainReport = report(train);
                requireExamples(train, trainReport, o.datasets());
            }
            ExampleSet trainSet;
            ExampleSet evalSet;
            PreprocessReport evalReport = null;
            Map<String, ExampleSet> evalSets = new LinkedHashMap<>();
            Map<String, TokenizedStore> evalStores = new LinkedHashMap<>(); // by LLaMA-Factory's split name
            if (!evalSpecs.isEmpty()) {
                String trainKey = draws.evalDependsOnTrain() ? cacheKey(specs, o, settings, tokenizer, template, "")
                        : "";
                List<List<DatasetSpec>> groups = o.mix().evalOnEachDataset()
                        ? evalSpecs.stream().map(List::of).toList() : List.of(evalSpecs);
                evalSet = null;
                for (List<DatasetSpec> group : groups) {
                    String what = o.mix().evalOnEachDataset() ? "eval " + group.get(0).name() : "eval";
                    TokenizedStore eval = build(group, o, settings, tokenizer, template, log, what,
                            draws.mixing(o, false), trainKey);
                    owned.add(eval);
                    PreprocessReport r = report(eval);
                    requireExamples(eval, r, group.stream().map(DatasetSpec::name).toList());
                    ExampleSet set = new ExampleSet(eval, range(eval.size()));
                    evalStores.put(o.mix().evalOnEachDataset() ? "validation_" + group.get(0).name() : "validation",
                            eval);
                    if (evalSet == null) {
                        evalSet = set;
                        evalReport = r;
                    }
                    if (o.mix().evalOnEachDataset()) {
                        evalSets.put(group.get(0).name(), set);
                    }
                }
                trainSet = streamed != null ? new ExampleSet(streamed)
                        : train == null ? new ExampleSet((TokenizedStore) owned.get(0), new int[0])
                        : new ExampleSet(train, range(train.size()));
            } else if (o.valSize() > 1e-6) {
                int[][] split = split(train.size(), o.valSize(), o.seed());
                trainSet = new ExampleSet(train, split[0]);
                evalSet = new ExampleSet(train, split[1]);
            } else if (streamed != null) {
                trainSet = new ExampleSet(streamed);
                evalSet = new ExampleSet(null, new int[0]);
            } else {
                trainSet = new ExampleSet(train, range(train.size()));
                evalSet = new ExampleSet(train, new int[0]);
            }
            if (o.tokenizedPath() != null) {
                TokenizedDir.save(o.tokenizedPath(), o, tokenizer, template, train, evalStores, log);
            }
            List<AutoCloseable> closeAll = List.copyOf(owned);
            return new LoadedData(trainSet, evalSet, trainReport, evalReport, settings.padId(), o.neatPacking(),
                    () -> {
                        for (AutoCloseable c : closeAll) {
                            c.close();
                        }
                    }, evalSets);
        } catch (RuntimeException e) {
            for (AutoCloseable c : owned) {
                try {
                    c.close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }

    /**
     * numpy's global state as LLaMA-Factory leaves it for num_samples: seeded once, drawn by the train datasets
     * first, then by the eval datasets. When the train rows come from the tokenized cache, the train draws are
     * replayed (counting records only) before an eval dataset draws.
     */
    private static final class Draws {
        private final long seed;
        private final List<DatasetSpec> trainSpecs;
        private final boolean evalDraws;
        private NumpyRandomState rng;
        private boolean trainDrawn;

        Draws(long seed, List<DatasetSpec> train, List<DatasetSpec> eval) {
            this.seed = seed;
            this.trainSpecs = train;
            this.evalDraws = eval.stream().anyMatch(s -> s.numSamples() != null);
        }

        boolean evalDependsOnTrain() {
            return evalDraws && trainSpecs.stream().anyMatch(s -> s.numSamples() != null);
        }

        /** The mixing of the train list (drawn first) or of an eval list. */
        RecordPlan.Mixing mixing(Options o, boolean train) {
            Supplier<NumpyRandomState> draw = train ? () -> {
                trainDrawn = true;
                return rng();
            } : () -> {
                if (!trainDrawn) {
                    RecordPlan.advance(trainSpecs, rng());
                    trainDrawn = true;
                }
                return rng();
            };
            return new RecordPlan.Mixing(o.maxSamples(), DatasetSampling.MixStrategy.of(o.mix().strategy()),
                    o.mix().probs(), o.seed(), draw);
        }

        private NumpyRandomState rng() {
            if (rng == null) {
                if (seed < 0 || seed > 0xFFFFFFFFL) {
                    throw new DataException("num_samples draws with numpy's generator, whose seed must be between 0"
                            + " and 2**32 - 1 (as in LLaMA-Factory); seed is " + seed, null, -1, "seed");
                }
                rng = new NumpyRandomState(seed);
            }
            return rng;
        }
    }

    static ChunkProcessor.Settings settings(Options o, Tokenizer tok, Template template) {
        if (o.cutoffLen() < 2) {
            throw new DataException("cutoff_len must be at least 2", null, -1, "cutoff_len");
        }
        boolean efficientEos = template != null && template.efficientEos() && !o.pretrain();
        SupervisedEncoder.Masking masking = new SupervisedEncoder.Masking(o.trainOnPrompt(), o.maskHistory(),
                efficientEos);
        int eos = -1;
        int pad = 0;
        int bos = -1;
        boolean addBos = false;
        if (tok != null) {
            eos = template != null ? template.eosId(tok) : tok.eosId();
            if (o.pretrain() && template != null && "llama3".equals(template.name())) {
                eos = tok.requireTokenId("<|end_of_text|>"); // LLaMA-Factory's pt special case for llama3
            }
            pad = tok.specialTokens().padId() >= 0 ? tok.specialTokens().padId() : eos;
            bos = tok.bosId();
            addBos = tok.config().addBosToken();
            if (eos < 0 && o.pretrain()) {
                throw new DataException("the tokenizer in " + tok.directory() + " has no EOS token, which pt appends"
                        + " to every text: set eos_token in tokenizer_config.json", null, -1, "eos_token");
            }
        }
        return new ChunkProcessor.Settings(o.pretrain(), o.cutoffLen(), o.packing(), masking, tok,
                o.pretrain() ? null : template, eos, Math.max(pad, 0), bos, addBos);
    }

    private static TokenizedStore build(List<DatasetSpec> specs, Options o, ChunkProcessor.Settings settings,
            Tokenizer tok, Template template, Consumer<String> log, String what, RecordPlan.Mixing mixing,
            String dependsOn) {
        String key = cacheKey(specs, o, settings, tok, template, dependsOn);
        Path file = o.cacheDir().resolve(key + ".sftds");
        if (Files.exists(file) && !o.overwriteCache()) {
            try {
                TokenizedStore store = TokenizedStore.open(file);
                log.accept("using the tokenized " + what + " cache " + file + " (" + store.size() + " rows; set"
                        + " overwrite_cache: true to rebuild)");
                log.accept(what + " data: " + report(store).summary());
                return store;
            } catch (IOException e) {
                log.accept("warning: the tokenized cache " + file + " is unusable (" + e.getMessage()
                        + "); rebuilding it");
            }
        }
        int workers = o.workers() > 0 ? o.workers() : Runtime.getRuntime().availableProcessors();
        try {
            PreprocessReport[] report = new PreprocessReport[1];
            TokenizedStore.Writer.write(file, o.neatPacking(), settings.padId(), w -> {
                report[0] = ChunkPipeline.run(specs, o, settings, workers, w, log, what, mixing);
                return report[0].toJson();
            });
            log.accept(what + " data: " + report[0].summary());
            return TokenizedStore.open(file);
        } catch (IOException e) {
            throw new DataException("cannot write the tokenized cache " + file + ": " + e.getMessage()
                    + " (set SFT_CACHE_DIR to a writable directory)", file, -1, null);
        }
    }

    private static PreprocessReport report(TokenizedStore store) {
        try {
            return PreprocessReport.fromJson(store.reportJson());
        } catch (IOException e) {
            throw new DataException("the tokenized cache's report is unreadable: " + e.getMessage()
                    + "; set overwrite_cache: true");
        }
    }

    private static void requireExamples(TokenizedStore store, PreprocessReport r, List<String> names) {
        if (store.size() > 0) {
            return;
        }
        String why = r.read() == 0 ? "no records were read"
                : r.kept() == 0 ? "every record was dropped" : "no row could be built (texts shorter than one"
                        + " cutoff_len block?)";
        throw new DataException("dataset " + String.join(",", names) + " gives no examples: " + why + ".\n"
                + r.summary(), null, -1, "dataset");
    }

    static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }

    /** {train indices, eval indices}: a seeded permutation, the first nEval to eval (HF train_test_split). */
    static int[][] split(int n, double valSize, long seed) {
        int nEval = valSize >= 1 ? (int) valSize : (int) Math.ceil(valSize * n);
        if (nEval >= n) {
            throw new DataException("val_size " + valSize + " leaves no training examples out of " + n, null, -1,
                    "val_size");
        }
        int[] perm = range(n);
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        return new int[][] {java.util.Arrays.copyOfRange(perm, nEval, n), java.util.Arrays.copyOf(perm, nEval)};
    }

    /** Everything that changes the stored rows: data content, tokenizer, template, options, format version. */
    private static String cacheKey(List<DatasetSpec> specs, Options o, ChunkProcessor.Settings s, Tokenizer tok,
            Template template, String dependsOn) {
        StringBuilder k = new StringBuilder("sftds-v").append(TokenizedStore.VERSION).append('\n');
        k.append(dependsOn).append('\n'); // the train list's key when its num_samples draws shift the eval draws
        boolean seeded = specs.stream().anyMatch(sp -> sp.numSamples() != null)
                || specs.size() > 1 && !o.mix().strategy().equals("concat") && !o.mix().interleaveProbs().isEmpty();
        if (specs.size() > 1) {
            k.append(o.mix().strategy()).append(o.mix().interleaveProbs()).append('\n');
        }
        if (seeded) {
            k.append("seed ").append(o.seed()).append('\n');
        }
        for (DatasetSpec spec : specs) {
            k.append(spec.formatting()).append(spec.columns()).append(spec.tags()).append(" num_samples ")
                    .append(spec.numSamples()).append('\n');
            for (Path f : spec.files()) {
                k.append(Fingerprint.of(f)).append('\n');
            }
        }
        k.append(tok == null ? "no-tokenizer" : tok.fingerprint()).append('\n');
        k.append(template == null || o.pretrain() ? "no-template" : template.fingerprint()).append('\n');
        k.append(o.stage()).append(' ').append(o.cutoffLen()).append(' ').append(o.packing()).append(' ')
                .append(o.neatPacking()).append(' ').append(o.trainOnPrompt()).append(' ').append(o.maskHistory())
                .append(' ').append(o.maxSamples()).append(' ').append(s.eosId()).append(' ').append(s.padId())
                .append(' ').append(s.bosId()).append(' ').append(s.addBos());
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            return HexFormat.of().formatHex(md.digest(k.toString().getBytes(StandardCharsets.UTF_8)), 0, 12);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
