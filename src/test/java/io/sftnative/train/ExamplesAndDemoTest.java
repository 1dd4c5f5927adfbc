package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.TrainResult;
import io.sftnative.config.SftConfig;
import io.sftnative.testing.Cli;
import io.sftnative.testing.Shared;
import io.sftnative.testing.TempDatasetCache;

/** The shipped examples/ configs load (no unknown or ignored key) and run; the built-in demo runs. */
@ExtendWith(TempDatasetCache.class)
class ExamplesAndDemoTest {
    static final Path EXAMPLES = Path.of("examples");

    @TempDir
    Path dir;

    static List<Path> examples() throws Exception {
        try (Stream<Path> s = Files.list(EXAMPLES)) {
            return s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
        }
    }

    @Test
    void everyExampleLoadsWithoutUnknownOrIgnoredKeys() throws Exception {
        List<Path> all = examples();
        assertTrue(all.size() >= 5, "examples: " + all);
        for (Path p : all) {
            List<String> warnings = new ArrayList<>();
            SftConfig cfg = SftConfig.load(p, List.of(), warnings::add);
            assertTrue(warnings.isEmpty(), p + ": " + warnings);
            assertTrue(cfg.model().modelNameOrPath() != null, p + " names a model");
        }
    }

    /**
     * A tiny Qwen2 with Qwen2.5's real tokenizer (vocab 151,936): the examples' data, template and method keys run
     * as written, with only the model, paths and sizes overridden.
     */
    Path tinyQwen() throws Exception {
        Path tok = Shared.require("assets/tokenizers/qwen2_5");
        Path model = dir.resolve("tiny-qwen2.5");
        Files.createDirectories(model);
        for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
            Files.copy(tok.resolve(f), model.resolve(f));
        }
        Files.writeString(model.resolve("config.json"), """
                {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 151936,
                 "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                 "num_key_value_heads": 1, "max_position_embeddings": 512, "rope_theta": 1000000.0,
                 "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "hidden_act": "silu",
                 "initializer_range": 0.02, "eos_token_id": 151645, "torch_dtype": "float32"}
                """);
        return model;
    }

    TrainResult runExample(String name, Path model, String... extra) throws Exception {
        Path data = Shared.require("data/llamafactory-demo");
        List<String> overrides = new ArrayList<>(List.of("model_name_or_path=" + model, "dataset_dir=" + data,
                "output_dir=" + dir.resolve(name), "max_steps=2", "max_samples=16", "cutoff_len=64",
                "per_device_train_batch_size=1", "gradient_accumulation_steps=1", "per_device_eval_batch_size=2",
                "preprocessing_num_workers=1"));
        overrides.addAll(List.of(extra));
        return SftTrainer.builder().config(EXAMPLES.resolve(name)).overrides(overrides).build().run();
    }

    @Test
    void loraAndFreezeSftExamplesRun() throws Exception {
        Path model = tinyQwen();
        // the pretrained model's weights do not exist here: random-init them from its config
        TrainResult lora = runExample("qwen2_5_lora_sft.yaml", model, "train_from_scratch=true");
        assertEquals(TrainResult.Status.COMPLETED, lora.status());
        assertTrue(lora.metrics().containsKey("train_loss"));
        assertTrue(Files.exists(dir.resolve("qwen2_5_lora_sft.yaml/adapter_model.safetensors")));
        TrainResult freeze = runExample("qwen2_5_freeze_sft.yaml", model, "train_from_scratch=true",
                "max_new_tokens=4");
        assertTrue(freeze.metrics().containsKey("predict_bleu-4"), freeze.metrics().toString());
        assertTrue(Files.exists(dir.resolve("qwen2_5_freeze_sft.yaml/generated_predictions.jsonl")));
    }

    @Test
    void pretrainingFromScratchExampleRuns() throws Exception {
        TrainResult r = runExample("qwen2_5_pt_from_scratch.yaml", tinyQwen(), "warmup_steps=0");
        assertEquals(2, r.globalStep());
        assertTrue(r.metrics().containsKey("perplexity"), r.metrics().toString());
        assertTrue(Files.exists(dir.resolve("qwen2_5_pt_from_scratch.yaml/model.safetensors")));
    }

    @Test
    void theBuiltInDemoRunsAndShowsBeforeAndAfter() throws Exception {
        Path out = dir.resolve("demo");
        Cli.Run r = Cli.run("train", "--demo", "num_train_epochs=1", "output_dir=" + out);
        String text = r.out();
        assertEquals(0, r.code(), text + r.err());
        assertTrue(text.contains("Generations (greedy) for prompts from the training set"), text);
        assertEquals(Demo.PROMPTS.size(), text.lines().filter(l -> l.contains("after:")).count(), text);
        assertTrue(text.contains("adapter: " + out.resolve("adapter_model.safetensors")), text);
        for (String f : List.of("adapter_model.safetensors", "adapter_config.json", "training_loss.png",
                "trainer_log.jsonl", "base_model/model.safetensors", "base_model/tokenizer.json",
                "data/demo_sft.json")) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        assertFalse(text.contains("warning"), text);
    }

    @Test
    void aMalformedDemoOverrideFailsBeforeWritingAnything() throws Exception {
        Path out = dir.resolve("demo-bad");
        Cli.Run r = Cli.run("train", "--demo", "output_dir=" + out, "foo");
        assertEquals(1, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("override 'foo' must look like key=value"), r.err());
        assertFalse(Files.exists(out), "nothing written for a rejected command line");
    }
}
