package io.sftnative.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.testing.Cli;
import io.sftnative.testing.Shared;
import io.sftnative.testing.TempDatasetCache;
import io.sftnative.torch.TorchRuntime;

/**
 * LLaMA-Factory's own example configs (copied unchanged into {@code src/test/resources/llamafactory-examples} with
 * their licence notice) through sft-native's command line, as a LLaMA-Factory user runs them from its repository
 * root. Every text-model example either runs a few steps / its chat or export, or stops with the documented message
 * for a feature sft-native does not implement ({@link #REFUSED}); {@link #everyCopiedExampleIsCovered} keeps the
 * list complete.
 *
 * <p>What the test changes, and nothing else: a hub model id becomes a tiny random-init model of the same family with
 * the real tokenizer from {@code ../shared/assets/tokenizers} (a pre-quantized GPTQ/AWQ/AQLM id becomes that tiny
 * model with the same {@code quantization_config.quant_method}); relative paths ({@code output_dir},
 * {@code adapter_name_or_path}, {@code deepspeed}, {@code tokenized_path}, {@code dataset_dir}, ...) are resolved
 * against a stand-in for LLaMA-Factory's working directory whose {@code data/} is LLaMA-Factory's demo data
 * ({@code ../shared/data/llamafactory-demo}) and whose {@code examples/} are the copies, so {@code saves/...} written
 * by one example is read by the next, as there; the run length is cut ({@link #SHORT}). The runs are ordered:
 * training before the inference and merge configs that read its output.
 */
@ExtendWith(TempDatasetCache.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class LlamaFactoryExamplesTest {
    static final Path ROOT = Path.of("src/test/resources/llamafactory-examples").toAbsolutePath();
    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    /** Run length and preprocessing threads: 2 steps of 1 row of at most 64 tokens, 8 records per dataset. */
    static final List<String> SHORT = List.of("max_steps=2", "gradient_accumulation_steps=1", "cutoff_len=64",
            "max_samples=8", "preprocessing_num_workers=1", "max_new_tokens=4");
    static final Set<String> PATH_KEYS = Set.of("output_dir", "adapter_name_or_path", "dataset_dir", "deepspeed",
            "tokenized_path", "export_dir", "export_quantization_dataset", "model_name_or_path");

    /** Examples that stop the run, and the words the message must hold (the feature, as documented). */
    static final Map<String, String> REFUSED = refused();

    private static Map<String, String> refused() {
        Map<String, String> m = new LinkedHashMap<>();
        // other training stages
        m.put("train_lora/qwen3_lora_dpo.yaml", "key 'stage' (%s) is 'dpo'; it must be one of sft, pt");
        m.put("train_lora/qwen3_lora_kto.yaml", "key 'stage' (%s) is 'kto'; it must be one of sft, pt");
        m.put("train_lora/qwen3_lora_reward.yaml", "key 'stage' (%s) is 'rm'; it must be one of sft, pt");
        // Ray launcher
        m.put("train_lora/qwen3_lora_sft_ray.yaml", "unknown config key 'ray_num_workers' (%s)");
        // pre-quantized bases
        for (String q : List.of("gptq", "awq", "aqlm")) {
            m.put("train_qlora/llama3_lora_sft_" + q + ".yaml", "quantization_config.quant_method '" + q
                    + "' is not supported");
        }
        // methods not implemented (docs/llamafactory-keys.md, "Adapters and methods")
        m.put("extras/adam_mini/qwen2_full_sft.yaml", "key 'use_adam_mini' (%s) asks for Adam-mini, which sft-native"
                + " does not implement");
        m.put("extras/apollo/llama3_full_sft.yaml", "key 'use_apollo' (%s) asks for APOLLO");
        m.put("extras/asft/llama2_full_asft.yaml", "key 'use_asft_loss' (%s) asks for the ASFT loss");
        m.put("extras/asft/qwen2_full_asft.yaml", "key 'use_asft_loss' (%s) asks for the ASFT loss");
        m.put("extras/badam/llama3_full_sft.yaml", "key 'use_badam' (%s) asks for BAdam");
        m.put("extras/dft/qwen2_full_sft.yaml", "key 'use_dft_loss' (%s) asks for the DFT loss");
        m.put("extras/eaft/qwen25_05b_eaft_full.yaml", "key 'use_eaft_loss' (%s) asks for the EAFT loss");
        // its DeepSpeed file offloads the optimizer (refused first); the YAML's fp8: true is refused after it
        m.put("extras/fp8/llama3_fp8_deepspeed_sft.yaml", "ds_z3_fp8_config.json: zero_optimization.offload_optimizer"
                + " not implemented");
        m.put("extras/fp8/llama3_fp8_fsdp_sft.yaml", "key 'fp8' (%s) asks for FP8 training");
        m.put("extras/galore/llama3_full_sft.yaml", "key 'use_galore' (%s) asks for GaLore");
        m.put("extras/llama_pro/llama3_freeze_sft.yaml", "key 'use_llama_pro' (%s) asks for LLaMA-Pro");
        // its paged_adamw_8bit is implemented; mixture_of_depths is not
        m.put("extras/mod/llama3_full_sft.yaml", "key 'mixture_of_depths' (%s) asks for Mixture-of-Depths");
        m.put("extras/muon/qwen2_full_sft.yaml", "key 'use_muon' (%s) asks for the Muon optimizer");
        m.put("extras/oft/llama3_oft_sft.yaml", "key 'finetuning_type' (%s) is 'oft'; it must be one of full, freeze,"
                + " lora");
        for (String q : List.of("awq", "bnb_npu", "gptq")) {
            m.put("extras/qoft/llama3_oft_sft_" + q + ".yaml", "key 'finetuning_type' (%s) is 'oft'");
        }
        // other backends: Ascend NPU kernels, KTransformers, Megatron-Core
        // Qwen3.5's template is checked before the key (Qwen3.5 is not an architecture sft-native loads)
        m.put("ascend/qwen3_5moe_lora_sft_fsdp2.yaml", "unknown template 'qwen3_5_nothink'");
        for (String a : List.of("qwen3_5_full_sft_fsdp2", "qwen3_full_sft_fsdp2", "qwen3moe_full_sft_fsdp")) {
            m.put("ascend/" + a + ".yaml", "key 'use_v1_kernels' (%s) asks for LLaMA-Factory's v1 fused kernels");
        }
        for (String k : List.of("deepseek_v2_lora_sft_kt", "deepseek_v3_int8_lora_sft_kt", "deepseek_v3_lora_sft_kt",
                "qwen3_5moe_lora_sft_kt", "qwen3moe_lora_sft_kt")) {
            m.put("ktransformers/train_lora/" + k + ".yaml", "key 'use_kt' (%s) asks for KTransformers");
        }
        m.put("megatron/qwen3_moe_full.yaml", "unknown config key 'tensor_model_parallel_size' (%s)");
        m.put("megatron_bridge/llama3_sft.yaml", "unknown config key 'tensor_model_parallel_size' (%s)");
        return m;
    }

    /** Examples that run, in {@link Order} of the tests below. */
    static final Set<String> RUN = new TreeSet<>(List.of("train_lora/qwen3_lora_sft.yaml",
            "train_lora/qwen3_lora_sft.sh", "train_lora/qwen3_lora_pretrain.yaml", "train_lora/qwen3_preprocess.yaml",
            "train_lora/qwen3_lora_sft_ds3.yaml", "train_full/qwen3_full_sft.yaml",
            "train_qlora/qwen3_lora_sft_otfq.yaml", "train_qlora/qwen3_lora_sft_bnb_npu.yaml",
            "extras/fsdp_qlora/llama3_lora_sft.yaml", "extras/loraplus/llama3_lora_sft.yaml",
            "extras/pissa/llama3_lora_sft.yaml",
            "extras/nlg_eval/llama3_lora_predict.yaml", "inference/qwen3.yaml", "inference/qwen3_lora_sft.yaml",
            "inference/qwen3_full_sft.yaml", "merge_lora/qwen3_lora_sft.yaml", "merge_lora/qwen3_full_sft.yaml",
            "merge_lora/qwen3_gptq.yaml"));

    @TempDir
    static Path tmp;

    static Path cwd;
    static Path qwen3;
    static Path llama3;

    @BeforeAll
    static void setUp() throws Exception {
        Path data = Shared.require("data/llamafactory-demo");
        TorchRuntime.boot(2);
        qwen3 = tiny("qwen3", "qwen3", 151936, 151645, null);
        llama3 = tiny("llama", "llama3", 128256, 128009, null);
        cwd = tmp.resolve("LLaMA-Factory");
        Files.createDirectories(cwd);
        Files.createSymbolicLink(cwd.resolve("examples"), ROOT.resolve("examples"));
        Files.createSymbolicLink(cwd.resolve("data"), data);
    }

    /** A 1-layer random-init model of {@code type} with the real tokenizer; {@code quant} marks it pre-quantized. */
    static Path tiny(String type, String tokenizer, int vocab, int eos, String quant) throws Exception {
        Path tok = Shared.require("assets/tokenizers/" + tokenizer);
        Path dir = tmp.resolve("tiny-" + tokenizer + (quant == null ? "" : "-" + quant));
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", type);
        k.put("vocab_size", vocab);
        k.put("hidden_size", 32);
        k.put("intermediate_size", 64);
        k.put("num_hidden_layers", 1);
        k.put("num_attention_heads", 2);
        k.put("num_key_value_heads", 1);
        k.put("head_dim", 16);
        k.put("max_position_embeddings", 512);
        k.put("tie_word_embeddings", true);
        k.put("eos_token_id", eos);
        try (DecoderModel m = RandomInit.create(ModelConfig.fromMap(k), 1, ScalarType.Float)) {
            m.save(dir);
        }
        for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
            Files.copy(tok.resolve(f), dir.resolve(f));
        }
        if (quant != null) {
            @SuppressWarnings("unchecked")
            Map<String, Object> cfg = YAML.readValue(dir.resolve("config.json").toFile(), Map.class);
            cfg.put("quantization_config", Map.of("quant_method", quant, "bits", quant.equals("aqlm") ? 2 : 4));
            Files.writeString(dir.resolve("config.json"), new ObjectMapper().writeValueAsString(cfg));
        }
        return dir;
    }

    /** The tiny stand-in for a hub model id: its family by name, pre-quantized when the id says so. */
    static Path modelFor(String id) throws Exception {
        String lower = id.toLowerCase(java.util.Locale.ROOT);
        for (String q : List.of("gptq", "awq", "aqlm")) {
            if (lower.contains(q)) {
                Path p = tmp.resolve("tiny-llama3-" + q);
                return Files.exists(p) ? p : tiny("llama", "llama3", 128256, 128009, q);
            }
        }
        return lower.contains("llama") ? llama3 : qwen3;
    }

    /** The example's overrides: its model and paths as described in the class comment, then {@code extra}. */
    static List<String> overrides(String example, boolean train, String... extra) throws Exception {
        @SuppressWarnings("unchecked")
        Map<String, Object> keys = YAML.readValue(ROOT.resolve("examples").resolve(example).toFile(), Map.class);
        List<String> out = new ArrayList<>();
        for (String key : PATH_KEYS) {
            Object v = keys.get(key);
            if (key.equals("dataset_dir") && v == null && train) {
                v = "data"; // LLaMA-Factory's default, relative to its working directory
            }
            if (v == null) {
                continue;
            }
            String s = v.toString();
            if (key.equals("model_name_or_path") && !s.startsWith("saves/")) {
                out.add(key + "=" + modelFor(s));
            } else if (!Path.of(s).isAbsolute()) {
                out.add(key + "=" + cwd.resolve(s));
            }
        }
        if (train) {
            out.addAll(SHORT);
        }
        out.addAll(List.of(extra));
        return out;
    }

    static Cli.Run train(String example, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("train", ROOT.resolve("examples").resolve(example).toString()));
        args.addAll(overrides(example, true, extra));
        return Cli.run(args.toArray(String[]::new));
    }

    static Path saved(String example) throws Exception {
        @SuppressWarnings("unchecked")
        Map<String, Object> keys = YAML.readValue(ROOT.resolve("examples").resolve(example).toFile(), Map.class);
        return cwd.resolve(keys.get("output_dir").toString());
    }

    static void ok(Cli.Run r, String example) {
        assertEquals(0, r.code(), example + ":\n" + r.out() + "\n" + r.err());
        assertTrue(!r.err().contains("unknown config key"), r.err());
    }

    @Test
    @Order(1)
    void loraSftAndItsShellScriptSpelling() throws Exception {
        String ex = "train_lora/qwen3_lora_sft.yaml";
        Cli.Run r = train(ex);
        ok(r, ex);
        Path out = saved(ex);
        assertTrue(Files.exists(out.resolve("adapter_model.safetensors")) && Files.exists(out.resolve(
                "adapter_config.json")), out.toString());
        assertTrue(Files.exists(out.resolve("training_loss.png")), "plot_loss: true");
        String log = Files.readString(out.resolve("trainer_log.jsonl"));
        assertTrue(log.contains("\"current_steps\": 2, \"total_steps\": 2"), log);

        // examples/train_lora/qwen3_lora_sft.sh: llamafactory-cli train --key value ... (same keys, CLI spelling)
        List<String> args = shellArgs(ROOT.resolve("examples/train_lora/qwen3_lora_sft.sh"));
        List<String> cli = new ArrayList<>(List.of("train"));
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            cli.add(a);
            if (a.equals("--model_name_or_path")) {
                cli.add(qwen3.toString());
                i++;
            } else if (a.equals("--output_dir")) {
                cli.add(cwd.resolve("saves/sh/lora/sft").toString());
                i++;
            }
        }
        cli.add("--dataset_dir=" + cwd.resolve("data"));
        SHORT.forEach(s -> cli.add("--" + s));
        r = Cli.run(cli.toArray(String[]::new));
        ok(r, "qwen3_lora_sft.sh");
        assertTrue(Files.exists(cwd.resolve("saves/sh/lora/sft/adapter_model.safetensors")));
    }

    /** The arguments after {@code llamafactory-cli train} in a shell example, with ${MODEL_PATH} left as a word. */
    static List<String> shellArgs(Path sh) throws Exception {
        String text = Files.readString(sh).replace("\\\n", " ");
        String line = text.lines().filter(l -> l.strip().startsWith("llamafactory-cli train")).findFirst()
                .orElseThrow();
        List<String> words = new ArrayList<>(List.of(line.strip().split("\\s+")));
        return words.subList(2, words.size());
    }

    @Test
    @Order(2)
    void loraPretrain() throws Exception {
        String ex = "train_lora/qwen3_lora_pretrain.yaml";
        Cli.Run r = train(ex);
        ok(r, ex);
        assertTrue(Files.exists(saved(ex).resolve("adapter_model.safetensors")));
    }

    @Test
    @Order(3)
    void preprocessSavesTheTokenizedDatasetAndALaterRunLoadsIt() throws Exception {
        String ex = "train_lora/qwen3_preprocess.yaml";
        Cli.Run r = train(ex);
        ok(r, ex);
        Path tokenized = cwd.resolve("saves/qwen3-4b/dataset/sft");
        assertTrue(Files.exists(tokenized.resolve("sft_native_tokenized.json")), r.err());
        r = train(ex, "output_dir=" + tmp.resolve("preprocess-again"));
        ok(r, ex);
        assertTrue((r.out() + r.err()).contains("loading the tokenized dataset from " + tokenized), r.out() + r.err());
    }

    @Test
    @Order(4)
    void qloraOnTheFlyQuantization() throws Exception {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // 4-bit kernels
        for (String ex : List.of("train_qlora/qwen3_lora_sft_otfq.yaml", "train_qlora/qwen3_lora_sft_bnb_npu.yaml",
                "extras/fsdp_qlora/llama3_lora_sft.yaml")) {
            Cli.Run r = train(ex, "output_dir=" + tmp.resolve(ex));
            ok(r, ex);
            assertTrue(Files.exists(tmp.resolve(ex).resolve("adapter_model.safetensors")), ex);
        }
    }

    @Test
    @Order(5)
    void deepSpeedZero3FullAndLora() throws Exception {
        String full = "train_full/qwen3_full_sft.yaml";
        Cli.Run r = train(full);
        ok(r, full);
        assertTrue(Files.exists(saved(full).resolve("model.safetensors")), r.err());
        String lora = "train_lora/qwen3_lora_sft_ds3.yaml";
        r = train(lora, "output_dir=" + tmp.resolve(lora));
        ok(r, lora);
    }

    @Test
    @Order(6)
    void loraPlusThenPredictWithItsAdapter() throws Exception {
        String ex = "extras/loraplus/llama3_lora_sft.yaml"; // writes saves/llama3-8b/lora/sft, which nlg_eval reads
        ok(train(ex), ex);
        String predict = "extras/nlg_eval/llama3_lora_predict.yaml";
        Cli.Run r = train(predict);
        ok(r, predict);
        Path out = saved(predict);
        assertEquals(16, Files.readAllLines(out.resolve("generated_predictions.jsonl")).size(),
                "identity + alpaca_en_demo, 8 records each");
        assertTrue(Files.readString(out.resolve("predict_results.json")).contains("predict_bleu-4"));
        assertTrue(!Files.exists(out.resolve("adapter_model.safetensors")), "do_predict alone does not train");
    }

    @Test
    @Order(6)
    void pissaInitialisesAndConvertsTheAdapter() throws Exception {
        String ex = "extras/pissa/llama3_lora_sft.yaml"; // pissa_init + pissa_convert, as LLaMA-Factory's callback
        Path out = tmp.resolve("pissa");
        Cli.Run r = train(ex, "output_dir=" + out);
        ok(r, ex);
        for (String d : List.of("pissa_init", "pissa_converted")) {
            assertTrue(Files.exists(out.resolve(d).resolve("adapter_model.safetensors")), d + ": " + r.err());
        }
    }

    @Test
    @Order(7)
    void inferenceConfigsChat() throws Exception {
        for (String ex : List.of("inference/qwen3.yaml", "inference/qwen3_lora_sft.yaml",
                "inference/qwen3_full_sft.yaml")) {
            List<String> args = new ArrayList<>(List.of("chat", ROOT.resolve("examples").resolve(ex).toString()));
            args.addAll(overrides(ex, false, "max_new_tokens=4"));
            Cli.Run r = Cli.runWithInput("hello\n", args.toArray(String[]::new));
            ok(r, ex);
            assertEquals(1, r.out().split("Assistant: ", -1).length - 1, ex + ": " + r.out());
        }
    }

    @Test
    @Order(8)
    void mergeConfigsExport() throws Exception {
        for (String ex : List.of("merge_lora/qwen3_lora_sft.yaml", "merge_lora/qwen3_full_sft.yaml")) {
            export(ex);
        }
    }

    @Test
    @Order(8)
    void quantizedExportConfig() throws Exception {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // 4-bit kernels
        Path out = export("merge_lora/qwen3_gptq.yaml"); // export_quantization_bit: 4, as bitsandbytes NF4
        String config = Files.readString(out.resolve("config.json"));
        assertTrue(config.matches("(?s).*\"quant_method\"\\s*:\\s*\"bitsandbytes\".*"), config);
    }

    static Path export(String ex) throws Exception {
        List<String> args = new ArrayList<>(List.of("export", ROOT.resolve("examples").resolve(ex).toString()));
        args.addAll(overrides(ex, false));
        Cli.Run r = Cli.run(args.toArray(String[]::new));
        ok(r, ex);
        @SuppressWarnings("unchecked")
        Map<String, Object> keys = YAML.readValue(ROOT.resolve("examples").resolve(ex).toFile(), Map.class);
        Path out = cwd.resolve(keys.get("export_dir").toString());
        assertTrue(Files.exists(out.resolve("config.json")) && Files.exists(out.resolve("Modelfile")), ex);
        return out;
    }

    @Test
    @Order(9)
    void unimplementedFeaturesStopWithTheirDocumentedMessage() throws Exception {
        List<String> wrong = new ArrayList<>();
        for (Map.Entry<String, String> e : REFUSED.entrySet()) {
            Path yaml = ROOT.resolve("examples").resolve(e.getKey());
            String want = e.getValue().replace("%s", yaml.toString());
            long t0 = System.nanoTime();
            Cli.Run r = train(e.getKey());
            System.out.printf("refused %s in %.2f s%n", e.getKey(), (System.nanoTime() - t0) / 1e9);
            if (r.code() != 1 || !r.err().contains(want)) {
                wrong.add(e.getKey() + " (exit " + r.code() + "): wanted '" + want + "', got:\n" + r.err());
            }
        }
        assertTrue(wrong.isEmpty(), String.join("\n\n", wrong));
    }

    @Test
    void everyCopiedExampleIsCovered() throws Exception {
        Set<String> copied = new TreeSet<>();
        try (Stream<Path> s = Files.walk(ROOT.resolve("examples"))) {
            s.filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".sh"))
                    .forEach(p -> copied.add(ROOT.resolve("examples").relativize(p).toString()));
        }
        copied.remove("extras/multi_tokens/tokens_cfg.yaml"); // token descriptions for new_special_tokens_config
        Set<String> covered = new TreeSet<>(RUN);
        covered.addAll(REFUSED.keySet());
        assertEquals(copied, covered);
    }
}
