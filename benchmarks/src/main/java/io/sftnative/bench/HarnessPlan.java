package io.sftnative.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import io.sftnative.files.AtomicFiles;

/**
 * What the end-to-end harness runs, written once to {@code WORK/plan.json} and read by every child process (ours in
 * Java, the reference in Python): the model shape, the hyper-parameters both sides share, the modes and the runs.
 *
 * <p>A mode is {@code <finetuning>-<layout>-<loss>}: {@code full | lora}, {@code padded} (dynamic padding to the
 * longest row, a multiple of 8) {@code | packed} (LLaMA-Factory's greedy knapsack into rows of cutoff_len),
 * {@code plain} (full logits, then cross-entropy) {@code | fused} (sft-native's chunked LM-head cross-entropy). The
 * reference runs every plain mode: torch 1.13 has no fused cross-entropy.
 */
final class HarnessPlan {
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** The default modes (about 15-20 minutes on 2 cores) and the {@code --quick} ones (a few minutes). */
    static final List<String> DEFAULT_MODES = List.of("full-padded-plain", "full-padded-fused", "full-packed-plain",
            "full-packed-fused", "lora-padded-plain", "lora-packed-fused");
    static final List<String> QUICK_MODES = List.of("full-padded-plain", "full-packed-fused", "lora-padded-plain");

    private HarnessPlan() {}

    /** One mode: what trains, how rows are laid out, which loss. */
    record Mode(String name, boolean lora, boolean packing, boolean fused) {
        static Mode parse(String name) {
            String[] p = name.split("-");
            if (p.length != 3 || !List.of("full", "lora").contains(p[0]) || !List.of("padded", "packed").contains(p[1])
                    || !List.of("plain", "fused").contains(p[2])) {
                throw new IllegalArgumentException("unknown mode '" + name + "': a mode is <full|lora>-<padded|packed>-"
                        + "<plain|fused>, e.g. full-padded-plain");
            }
            return new Mode(name, p[0].equals("lora"), p[1].equals("packed"), p[2].equals("fused"));
        }

        String layout() {
            return packing ? "packed" : "padded";
        }

        /** The reference's run this mode is compared with: same fine-tuning and batches, plain cross-entropy. */
        String referenceMode() {
            return (lora ? "lora" : "full") + "-" + layout() + "-plain";
        }
    }

    /**
     * The settings both sides share.
     *
     * @param examples     training examples (max_samples): every mode trains one epoch over the same ones, so every
     *                     mode sees the same target tokens
     * @param warmupSteps  leading steps left out of the timing on both sides (first-touch allocation, kernel set-up)
     */
    record Settings(int threads, int examples, int batchSize, int accumulation, int cutoffLen, int warmupSteps,
            long seed, double learningRate, String scheduler, double warmupRatio, double weightDecay,
            double maxGradNorm, int loraRank, double loraAlpha, Map<String, Object> model, String optim) {

        /** Ours trains with {@code optim: adamw_torch_fused} (the native one-pass AdamW; --optim adamw_torch for the
         * libtorch ops); the reference always runs torch 1.13's AdamW. */
        static Settings defaults(int threads, boolean quick) {
            return new Settings(threads, quick ? 16 : 100, 2, 1, 512, quick ? 1 : 2, 42, 2e-4, "cosine", 0.1, 0.01,
                    1.0, 16, 32.0, modelKeys(), "adamw_torch_fused");
        }

        Settings withExamples(int n) {
            return new Settings(threads, n, batchSize, accumulation, cutoffLen, warmupSteps, seed, learningRate,
                    scheduler, warmupRatio, weightDecay, maxGradNorm, loraRank, loraAlpha, model, optim);
        }

        Settings withOptim(String o) {
            return new Settings(threads, examples, batchSize, accumulation, cutoffLen, warmupSteps, seed, learningRate,
                    scheduler, warmupRatio, weightDecay, maxGradNorm, loraRank, loraAlpha, model, o);
        }
    }

    /**
     * The 58M-parameter Qwen2-shaped decoder of DecoderStepBench: hidden 512, 8 layers, 8 attention heads and 8 KV
     * heads (no grouping), intermediate 1408, vocab 32000, untied LM head, fp32. No pad_token_id: no embedding row
     * is special (both sides).
     */
    static Map<String, Object> modelKeys() {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", "qwen2");
        k.put("architectures", List.of("Qwen2ForCausalLM"));
        k.put("hidden_size", 512);
        k.put("num_hidden_layers", 8);
        k.put("num_attention_heads", 8);
        k.put("num_key_value_heads", 8);
        k.put("intermediate_size", 1408);
        k.put("vocab_size", 32000);
        k.put("tie_word_embeddings", false);
        k.put("rope_theta", 1000000.0);
        k.put("rms_norm_eps", 1e-6);
        k.put("max_position_embeddings", 4096);
        k.put("hidden_act", "silu");
        k.put("initializer_range", 0.02);
        k.put("use_sliding_window", false);
        k.put("torch_dtype", "float32");
        return k;
    }

    /** One process to run: a mode on one side. */
    record Run(String mode, String side) {
        static final String OURS = "ours";
        static final String REFERENCE = "reference";

        String id() {
            return side + "-" + mode;
        }
    }

    /**
     * Every mode's run of ours, and the reference's run of every mode's {@link Mode#referenceMode} (once), interleaved
     * mode by mode: every mode has a reference side.
     */
    static List<Run> runs(List<String> modes) {
        List<Run> runs = new ArrayList<>();
        for (String m : modes) {
            Mode mode = Mode.parse(m);
            runs.add(new Run(m, Run.OURS));
            Run ref = new Run(mode.referenceMode(), Run.REFERENCE); // a fused mode: the plain run on its batches
            if (!runs.contains(ref)) {
                runs.add(ref);
            }
        }
        return runs;
    }

    /** Paths inside the work directory. */
    record Work(Path dir) {
        Path plan() {
            return dir.resolve("plan.json");
        }

        Path model() {
            return dir.resolve("model");
        }

        Path adapterInit() {
            return dir.resolve("adapter_init");
        }

        Path trainJsonl() {
            return dir.resolve("data").resolve("train.jsonl");
        }

        Path batches(String layout) {
            return dir.resolve("data").resolve("batches-" + layout + ".jsonl");
        }

        Path cache() {
            return dir.resolve("cache");
        }

        Path result(Run r) {
            return dir.resolve("results").resolve(r.id() + ".json");
        }

        Path log(Run r) {
            return dir.resolve("logs").resolve(r.id() + ".log");
        }

        Path output(Run r) {
            return dir.resolve("runs").resolve(r.id());
        }
    }

    /**
     * The trainer's config keys for {@code mode} (LLaMA-Factory names): one epoch over the first {@code examples}
     * rows of the pre-tokenized data. The harness builds its batch plan from the same keys, so the trainer's batches
     * are the plan's.
     */
    static Map<String, Object> oursKeys(Settings s, Mode mode, Work work, Path outputDir) {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_name_or_path", work.model().toString());
        k.put("dataset", work.trainJsonl().toString());
        k.put("max_samples", s.examples());
        k.put("cutoff_len", s.cutoffLen());
        k.put("packing", mode.packing());
        k.put("stage", "sft");
        k.put("finetuning_type", mode.lora() ? "lora" : "full");
        if (mode.lora()) {
            k.put("adapter_name_or_path", work.adapterInit().toString()); // the same A, B as the reference
        }
        k.put("per_device_train_batch_size", s.batchSize());
        k.put("gradient_accumulation_steps", s.accumulation());
        k.put("num_train_epochs", 1.0);
        k.put("learning_rate", s.learningRate());
        k.put("lr_scheduler_type", s.scheduler());
        k.put("warmup_ratio", s.warmupRatio());
        k.put("weight_decay", s.weightDecay());
        k.put("optim", s.optim());
        k.put("max_grad_norm", s.maxGradNorm());
        k.put("seed", s.seed());
        k.put("threads", s.threads());
        k.put("fused_cross_entropy", mode.fused());
        k.put("gradient_checkpointing", false);
        k.put("bf16", false);
        k.put("logging_steps", 10);
        k.put("save_steps", 1_000_000);
        k.put("plot_loss", false);
        k.put("output_dir", outputDir.toString());
        k.put("overwrite_output_dir", true);
        return k;
    }

    static void write(Path file, Object value) throws IOException {
        AtomicFiles.writeString(file, JSON.writeValueAsString(value) + "\n");
    }

    static String f(String format, Object... args) {
        return String.format(Locale.ROOT, format, args);
    }
}
