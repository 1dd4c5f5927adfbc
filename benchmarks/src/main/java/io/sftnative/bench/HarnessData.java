package io.sftnative.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import org.bytedeco.pytorch.global.torch.ScalarType;

import com.fasterxml.jackson.core.JsonFactoryBuilder;
import com.fasterxml.jackson.core.JsonGenerator;

import io.sftnative.batch.Batch;
import io.sftnative.batch.Collator;
import io.sftnative.config.ConfigLoader;
import io.sftnative.config.DataArgs;
import io.sftnative.config.SftConfig;
import io.sftnative.data.DataPipeline;
import io.sftnative.data.Example;
import io.sftnative.data.ExampleSet;
import io.sftnative.files.AtomicFiles;
import io.sftnative.lora.LoraAdapters;
import io.sftnative.lora.LoraSpec;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.torch.TorchRuntime;
import io.sftnative.train.DataOrder;
import io.sftnative.train.Demo;

/**
 * What both sides train on, made once per harness run: the tokenized data (ids mapped into the model's vocabulary),
 * the random-init checkpoint, the initial LoRA adapter, and for each layout the exact batches of every step.
 *
 * <p>Data: {@code alpaca_en_demo} from the shared directory, tokenized by sft-native's own pipeline with the
 * Qwen2.5 tokenizer and the {@code qwen} template (prompt labels -100), at cutoff_len - 1 = 511 tokens: what
 * LLaMA-Factory's packing encodes at cutoff_len 512, so padded and packed runs train on the same target tokens.
 * Without the shared directory it falls back to the project's demo data (its own 751-token tokenizer). Token ids
 * are mapped into the 32000-entry vocabulary of the 58M model as {@code id % 32000} (labels too, -100 kept); the
 * same mapped ids feed both sides.
 */
final class HarnessData {
    private HarnessData() {}

    /** Where the raw data came from (recorded in the plan and the results). */
    record Source(String description, Path tokenizerDir, String dataset, Path datasetDir) {}

    /** Picks alpaca_en_demo + the Qwen2.5 tokenizer from {@code shared}, or writes the demo assets into work. */
    static Source source(Path shared, HarnessPlan.Work work, long seed) throws IOException {
        Path data = shared == null ? null : shared.resolve("data/llamafactory-demo");
        Path tok = shared == null ? null : shared.resolve("assets/tokenizers/qwen2_5");
        if (data != null && Files.isRegularFile(data.resolve("alpaca_en_demo.json"))
                && Files.isRegularFile(tok.resolve("tokenizer.json"))) {
            return new Source("alpaca_en_demo (" + data + "), Qwen2.5 tokenizer, qwen template", tok, "alpaca_en_demo",
                    data);
        }
        Path demo = work.dir().resolve("demo");
        Path model = Demo.writeAssets(demo, seed); // tokenizer files + a tiny model we do not use
        return new Source("the project's demo data (" + (shared == null ? "no shared directory" : shared
                + " has no alpaca_en_demo") + "): demo_sft, demo tokenizer, qwen template", model, "demo_sft",
                demo.resolve("data"));
    }

    /** Tokenizes the source and writes {@code train.jsonl} with ids mapped into {@code vocab}; returns the count. */
    static int tokenize(Source src, HarnessPlan.Settings s, HarnessPlan.Work work, Consumer<String> log)
            throws IOException {
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put("dataset", src.dataset());
        keys.put("dataset_dir", src.datasetDir().toString());
        keys.put("template", "qwen");
        keys.put("cutoff_len", s.cutoffLen() - 1);
        DataArgs args = dataArgs(keys);
        int vocab = ((Number) s.model().get("vocab_size")).intValue();
        try (DataPipeline.Prepared p = DataPipeline.prepare(src.tokenizerDir(), args, "sft", s.seed(), false, log)) {
            ExampleSet train = p.data().train();
            Path out = work.trainJsonl();
            Files.createDirectories(out.getParent());
            AtomicFiles.write(out, os -> {
                try (JsonGenerator g = jsonLines(os)) {
                    for (int i = 0; i < train.size(); i++) {
                        Example e = train.get(i);
                        g.writeStartObject();
                        g.writeFieldName("input_ids");
                        g.writeArray(mapIds(e.inputIds(), vocab), 0, e.length());
                        g.writeFieldName("labels");
                        g.writeArray(mapIds(e.labels(), vocab), 0, e.length());
                        g.writeEndObject();
                    }
                    g.writeRaw('\n');
                }
            });
            return train.size();
        }
    }

    /** {@code id % vocab}; -100 (no loss) stays. */
    static int[] mapIds(int[] ids, int vocab) {
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = ids[i] < 0 ? ids[i] : ids[i] % vocab;
        }
        return out;
    }

    /**
     * The random-init checkpoint both sides load (transformers' init, seeded) and, on it, a LoRA adapter in PEFT
     * format (A ~ kaiming-uniform, B = 0; r and alpha of the settings; every linear layer but the LM head).
     */
    static long writeModel(HarnessPlan.Settings s, HarnessPlan.Work work) throws IOException {
        TorchRuntime.boot(s.threads());
        try (DecoderModel model = RandomInit.create(ModelConfig.fromMap(s.model()), s.seed(), ScalarType.Float)) {
            model.save(work.model());
            try (LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(s.loraRank(), s.loraAlpha(), 0.0,
                    List.of("all"), false, List.of()), s.seed() + 1)) {
                lora.save(work.adapterInit(), work.model().toString());
            }
            return model.parameterCount();
        }
    }

    /**
     * Writes the batches the trainer will train on for {@code mode}'s layout: the trainer's own data pipeline on the
     * trainer's keys, its epoch order ({@link DataOrder}) and its collator. One JSON line per micro-batch
     * ({@code step}, {@code B}, {@code T}, flat row-major {@code input_ids}, {@code labels}, {@code attention_mask},
     * {@code position_ids}); returns per-step statistics.
     */
    static List<Map<String, Object>> writeBatches(HarnessPlan.Settings s, HarnessPlan.Mode mode,
            HarnessPlan.Work work, Consumer<String> log) throws IOException {
        SftConfig cfg = config(HarnessPlan.oursKeys(s, mode, work, work.dir().resolve("unused")));
        List<Map<String, Object>> steps = new ArrayList<>();
        try (DataPipeline.Prepared p = DataPipeline.prepare(null, cfg.data(), "sft", s.seed(), false, log)) {
            ExampleSet train = p.data().train();
            DataOrder order = new DataOrder(train.size(), s.batchSize(), s.accumulation(), s.seed(), true);
            Collator collator = new Collator(p.data().padId(), cfg.data().padToMultipleOf(), p.data().neatPacking());
            long total = order.totalSteps(1.0, -1);
            Path file = work.batches(mode.layout());
            AtomicFiles.write(file, os -> {
                try (JsonGenerator g = jsonLines(os)) {
                    for (long step = 0; step < total; step++) {
                        long tokens = 0;
                        long targets = 0;
                        long padded = 0;
                        double attention = 0; // sum over rows of (real tokens in the row)^2
                        for (int[] micro : order.microBatches(step)) {
                            List<Example> rows = new ArrayList<>();
                            for (int i : micro) {
                                rows.add(train.get(i));
                            }
                            Batch b = collator.collate(rows);
                            writeBatch(g, step, b);
                            targets += b.targetTokens();
                            padded += (long) b.batchSize() * b.seqLen();
                            for (int r = 0; r < b.batchSize(); r++) {
                                long n = 0;
                                for (int t = 0; t < b.seqLen(); t++) {
                                    n += b.attentionMask()[r * b.seqLen() + t] != 0 ? 1 : 0;
                                }
                                tokens += n;
                                attention += (double) n * n;
                            }
                        }
                        Map<String, Object> st = new LinkedHashMap<>();
                        st.put("step", step + 1);
                        st.put("tokens", tokens);
                        st.put("targets", targets);
                        st.put("padded_tokens", padded);
                        st.put("attention_sq", attention);
                        steps.add(st);
                    }
                    g.writeRaw('\n');
                }
            });
            log.accept(HarnessPlan.f("%s: %d rows from %d examples, %d steps -> %s", mode.layout(), train.size(),
                    s.examples(), total, file));
        }
        return steps;
    }

    private static void writeBatch(JsonGenerator g, long step, Batch b) throws IOException {
        g.writeStartObject();
        g.writeNumberField("step", step + 1);
        g.writeNumberField("B", b.batchSize());
        g.writeNumberField("T", b.seqLen());
        g.writeFieldName("input_ids");
        g.writeArray(b.inputIds(), 0, b.inputIds().length);
        g.writeFieldName("labels");
        g.writeArray(b.labels(), 0, b.labels().length);
        g.writeFieldName("attention_mask");
        g.writeArray(b.attentionMask(), 0, b.attentionMask().length);
        g.writeFieldName("position_ids");
        g.writeArray(b.positionIds(), 0, b.positionIds().length);
        g.writeEndObject();
    }

    /** A generator writing one JSON value per line (JSONL); leaves {@code os} open. */
    private static JsonGenerator jsonLines(java.io.OutputStream os) throws IOException {
        JsonGenerator g = new JsonFactoryBuilder().rootValueSeparator("\n").build().createGenerator(os);
        g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
        return g;
    }

    static SftConfig config(Map<String, Object> keys) {
        return SftConfig.from(ConfigLoader.load(null, List.of(), keys), w -> {});
    }

    private static DataArgs dataArgs(Map<String, Object> keys) {
        Map<String, Object> k = new LinkedHashMap<>(keys);
        k.put("output_dir", "unused");
        return config(k).data();
    }
}
