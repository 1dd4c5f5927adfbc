package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.TrainResult;
import io.sftnative.config.ConfigException;
import io.sftnative.config.ModelArgs;
import io.sftnative.config.RawConfig;
import io.sftnative.lora.ModelExport;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.model.Tensors;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.testing.Shared;
import io.sftnative.testing.TempDatasetCache;
import io.sftnative.tokenizer.Tokenizer;
import io.sftnative.torch.TorchRuntime;

/**
 * add_tokens through the trainer on a tiny random llama with Mistral's real tokenizer (32000 tokens): the
 * embedding grows to 32064 rows, LoRA trains embed_tokens and lm_head as modules_to_save, the adapter holds them
 * under PEFT's keys with the tokenizer (new tokens included) next to it, and reloading it (LLaMA-Factory's way: the
 * same keys; or from the adapter alone, for chat and export) gives the same model; full fine-tuning saves the resized
 * model.
 */
@ExtendWith(TempDatasetCache.class)
class NewTokensTrainingTest {
    @TempDir
    Path dir;

    private Path base() throws Exception {
        TorchRuntime.boot(2);
        Path mistral = Shared.require("assets/tokenizers/mistral");
        Path base = dir.resolve("base");
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", "llama");
        k.put("vocab_size", 32000);
        k.put("hidden_size", 16);
        k.put("intermediate_size", 24);
        k.put("num_hidden_layers", 1);
        k.put("num_attention_heads", 2);
        k.put("num_key_value_heads", 1);
        k.put("tie_word_embeddings", false);
        try (DecoderModel m = RandomInit.create(ModelConfig.fromMap(k), 5, ScalarType.Float)) {
            m.save(base);
        }
        for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
            Files.copy(mistral.resolve(f), base.resolve(f));
        }
        Path data = dir.resolve("d.jsonl");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 6; i++) {
            sb.append("{\"instruction\": \"call tool ").append(i).append("\", \"output\": \"<tool_a> ").append(i)
                    .append(" <|b|>\"}\n");
        }
        Files.writeString(data, sb.toString());
        return base;
    }

    private SftTrainer.Builder run(Path base, Path out, String type) {
        return SftTrainer.builder().console(false)
                .set("model_name_or_path", base.toString()).set("dataset", dir.resolve("d.jsonl").toString())
                .set("eval_dataset", dir.resolve("d.jsonl").toString()).set("template", "mistral")
                .set("output_dir", out.toString()).set("finetuning_type", type).set("lora_rank", 2)
                .set("add_tokens", "<tool_a>").set("add_special_tokens", "<|b|>")
                .set("max_steps", 3).set("per_device_train_batch_size", 2).set("learning_rate", 0.05)
                .set("cutoff_len", 64).set("logging_steps", 1).set("save_steps", 1000).set("seed", 3)
                .set("preprocessing_num_workers", 1).set("do_train", true).set("do_eval", true).set("report_to", "none");
    }

    @Test
    void loraTrainsTheGrownEmbeddingsSavesThemAsModulesToSaveAndReloads() throws Exception {
        Path base = base();
        Path out = dir.resolve("lora");
        TrainResult r = run(base, out, "lora").build().run();
        assertEquals(TrainResult.Status.COMPLETED, r.status());
        double trainedEval = ((Number) r.metrics().get("eval_loss")).doubleValue();

        // PEFT's adapter: modules_to_save with the grown (32064, 16) matrices under PEFT's saved keys
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile());
        assertEquals("[\"embed_tokens\",\"lm_head\"]", cfg.get("modules_to_save").toString());
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("adapter_model.safetensors"));
                SafetensorsFile b = SafetensorsFile.open(base.resolve("model.safetensors"));
                PointerScope scope = new PointerScope()) {
            for (String key : List.of("base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight")) {
                assertEquals("[32064, 16]", java.util.Arrays.toString(f.entry(key).shape()), key);
            }
            // trained in full: the rows of tokens in the data moved away from the base's
            Tensor embed = f.load("base_model.model.model.embed_tokens.weight"); // (32064, 16)
            Tensor old = b.load("model.embed_tokens.weight"); // (32000, 16)
            assertFalse(embed.narrow(0, 0, 32000).equal(old), "embed_tokens trained");
            assertFalse(b.load("lm_head.weight").equal(f.load("base_model.model.lm_head.weight").narrow(0, 0, 32000)),
                    "lm_head trained");
            assertTrue(io.sftnative.model.FiniteCheck.problem(embed) == null);
        }
        // the tokenizer with the new tokens next to the adapter
        try (Tokenizer tok = Tokenizer.load(out)) {
            assertEquals(32000, tok.tokenId("<tool_a>"));
            assertEquals(32001, tok.tokenId("<|b|>"));
            assertTrue(tok.specialTokenIds().containsKey("<|b|>"));
        }
        assertTrue(Files.readString(base.resolve("tokenizer.json")).indexOf("<tool_a>") < 0, "base untouched");

        // LLaMA-Factory's reload: the same add_tokens with adapter_name_or_path, evaluated: the same loss
        TrainResult again = run(base, dir.resolve("eval"), "lora").set("do_train", false)
                .set("adapter_name_or_path", out.toString()).build().run();
        double reloadedEval = ((Number) again.metrics().get("eval_loss")).doubleValue();
        System.out.printf("NEW TOKENS LoRA: eval_loss after training %.7f, after reload %.7f%n", trainedEval,
                reloadedEval);
        assertEquals(trainedEval, reloadedEval, 1e-6 * Math.abs(trainedEval));

        // an adapter as PEFT saves a resized model (save_embedding_layers="auto"): the extra embedding copies are
        // ignored, the trained rows come from <module>.weight
        Path peft = dir.resolve("peft-layout");
        Files.createDirectories(peft);
        Files.copy(out.resolve("adapter_config.json"), peft.resolve("adapter_config.json"));
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("adapter_model.safetensors"));
                PointerScope scope = new PointerScope()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String n : f.names()) {
                tensors.put(n, f.load(n));
            }
            Tensor zeros = org.bytedeco.pytorch.global.torch.zeros(32064, 16);
            tensors.put("base_model.model.model.embed_tokens.original_module.weight", zeros);
            tensors.put("base_model.model.model.embed_tokens.modules_to_save.weight", zeros);
            tensors.put("base_model.model.lm_head.original_module.weight", zeros);
            io.sftnative.model.safetensors.SafetensorsWriter.write(peft.resolve("adapter_model.safetensors"),
                    tensors, Map.of("format", "pt"));
        }
        ModelArgs peftArgs = ModelArgs.from(RawConfig.of(Map.of("model_name_or_path", base.toString(),
                "adapter_name_or_path", peft.toString())));

        // the adapter alone (chat / export with adapter_name_or_path, no add_tokens): the base grows to its rows
        long[] ids = {1, 32000, 415, 32001};
        ModelArgs withTokens = ModelArgs.from(RawConfig.of(Map.of("model_name_or_path", base.toString(),
                "adapter_name_or_path", out.toString(), "add_tokens", "<tool_a>", "add_special_tokens", "<|b|>")));
        ModelArgs adapterOnly = ModelArgs.from(RawConfig.of(Map.of("model_name_or_path", base.toString(),
                "adapter_name_or_path", out.toString())));
        try (TrainableModel a = TrainableModel.forInference(adapterOnly, false);
                TrainableModel c = TrainableModel.forInference(peftArgs, false);
                TrainableModel b = TrainableModel.forInference(withTokens, false,
                        new io.sftnative.model.VocabResize.Plan(32002, new int[] {32000, 32001}, List.of(),
                                "noise_init"), 3);
                PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            assertEquals(32064, a.model().config().vocabSize());
            Tensor la = a.model().forward(Tensors.longs(ids, 1, 4)); // (1, 4, 32064)
            Tensor lb = b.model().forward(Tensors.longs(ids, 1, 4));
            assertTrue(la.equal(lb), "the adapter's rows replace whatever the resize initialised");
            assertTrue(la.equal(c.model().forward(Tensors.longs(ids, 1, 4))), "PEFT's extra copies are ignored");
        }

        // chat: the base grows to the adapter's rows and the tokenizer saved with the adapter is used
        assertEquals(out, io.sftnative.lora.AdapterChain.tokenizerDir(base, List.of(out)));
        assertEquals(base, io.sftnative.lora.AdapterChain.tokenizerDir(base, List.of(dir.resolve("no-tokenizer"))));
        io.sftnative.testing.Cli.Run chat = io.sftnative.testing.Cli.runWithInput("call tool 1\n", "chat",
                base.toString(), "--adapter", out.toString(), "--template", "mistral", "--greedy",
                "--max-new-tokens", "4", "--threads", "2");
        assertEquals(0, chat.code(), chat.err());
        // chat CONFIG.yaml: the configured tokens must be in the adapter's tokenizer, never silently missing
        Path yaml = dir.resolve("chat.yaml");
        Files.writeString(yaml, "model_name_or_path: " + base + "\nadapter_name_or_path: " + out
                + "\ntemplate: mistral\nadd_tokens: <tool_a>\nadd_special_tokens: <|b|>\n");
        chat = io.sftnative.testing.Cli.runWithInput("", "chat", yaml.toString(), "--threads", "2");
        assertEquals(0, chat.code(), chat.err());
        chat = io.sftnative.testing.Cli.runWithInput("", "chat", yaml.toString(), "add_tokens=<other>",
                "--threads", "2");
        assertTrue(chat.code() != 0 && chat.err().contains("[<other>]") && chat.err().contains("does not have"),
                chat.err());

        // export: the merged model is resized and carries the adapter's tokenizer
        Path exported = dir.resolve("merged");
        ModelExport.export(base, List.of(out), exported, Long.MAX_VALUE, null, s -> { });
        assertEquals(32064, ModelConfig.read(exported).vocabSize());
        try (Tokenizer tok = Tokenizer.load(exported)) {
            assertEquals(32001, tok.tokenId("<|b|>"));
        }
    }

    @Test
    void resumingALoraRunWithNewTokensContinuesExactly() throws Exception {
        Path base = base();
        List<Double> whole = new java.util.ArrayList<>();
        run(base, dir.resolve("whole"), "lora").set("max_steps", 4).set("save_steps", 2).set("do_eval", false)
                .listener(new io.sftnative.api.TrainingListener() {
                    @Override
                    public void onStep(io.sftnative.api.StepEvent e) {
                        whole.add(e.loss());
                    }
                }).build().run();
        List<Double> resumed = new java.util.ArrayList<>();
        run(base, dir.resolve("resumed"), "lora").set("max_steps", 4).set("save_steps", 2).set("do_eval", false)
                .set("resume_from_checkpoint", dir.resolve("whole").resolve("checkpoint-2").toString())
                .listener(new io.sftnative.api.TrainingListener() {
                    @Override
                    public void onStep(io.sftnative.api.StepEvent e) {
                        resumed.add(e.loss());
                    }
                }).build().run();
        System.out.println("NEW TOKENS resume: whole " + whole + ", resumed " + resumed);
        assertEquals(whole.subList(2, 4), resumed, "steps 3 and 4 after resuming from checkpoint-2");
    }

    @Test
    void fullFineTuningSavesTheResizedModelWithItsTokenizer() throws Exception {
        Path base = base();
        Path out = dir.resolve("full");
        TrainResult r = run(base, out, "full").build().run();
        assertEquals(TrainResult.Status.COMPLETED, r.status());
        ModelConfig saved = ModelConfig.read(out);
        assertEquals(32064, saved.vocabSize());
        try (DecoderModel m = DecoderModel.load(out, ScalarType.Float); Tokenizer tok = Tokenizer.load(out)) {
            assertEquals(32064, m.embedWeight().size(0));
            assertEquals(32064, m.lmHeadWeight().size(0));
            assertEquals(32000, tok.tokenId("<tool_a>"));
        }
        // the saved model is used as it is: its tokenizer has the tokens, so nothing is added or resized again
        TrainResult again = SftTrainer.builder().console(false).set("model_name_or_path", out.toString())
                .set("dataset", dir.resolve("d.jsonl").toString()).set("template", "mistral")
                .set("output_dir", dir.resolve("eval").toString()).set("do_train", false).set("do_eval", true)
                .set("eval_dataset", dir.resolve("d.jsonl").toString()).set("cutoff_len", 64)
                .set("preprocessing_num_workers", 1).build().run();
        assertEquals(((Number) r.metrics().get("eval_loss")).doubleValue(),
                ((Number) again.metrics().get("eval_loss")).doubleValue(), 1e-6);
    }

    @Test
    void badNewTokenKeysAreRefusedBeforeTraining() throws Exception {
        Path base = base();
        ConfigException present = assertThrows(ConfigException.class, () -> run(base, dir.resolve("x"), "lora")
                .set("add_special_tokens", "</s>").build().run());
        assertTrue(present.getMessage().contains("already in the vocabulary"), present.getMessage());
        ConfigException empty = assertThrows(ConfigException.class, () -> run(base, dir.resolve("y"), "lora")
                .set("add_tokens", "<a>,,<b>").build().run());
        assertTrue(empty.getMessage().contains("'add_tokens'") && empty.getMessage().contains("empty token"),
                empty.getMessage());
        ConfigException qlora = assertThrows(ConfigException.class, () -> run(base, dir.resolve("z"), "lora")
                .set("resize_vocab", true).set("quantization_bit", 4).build().run());
        assertTrue(qlora.getMessage().contains("'resize_vocab'") && qlora.getMessage().contains("quantized"),
                qlora.getMessage());
        ConfigException grow = assertThrows(ConfigException.class, () -> run(base, dir.resolve("q"), "lora")
                .set("quantization_bit", 4).build().run());
        assertTrue(grow.getMessage().contains("32002 tokens but the embedding 32000 rows")
                && grow.getMessage().contains("quantized model cannot be resized"), grow.getMessage());
        assertFalse(Files.exists(dir.resolve("x").resolve("adapter_model.safetensors")));
    }
}
