package io.sftnative.cli;

import static io.sftnative.testing.Cli.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.config.RawConfig;
import io.sftnative.config.TrainingArgs;
import io.sftnative.model.DecoderModel;
import io.sftnative.testing.Cli;
import io.sftnative.testing.Cli.Run;
import io.sftnative.testing.Shared;
import io.sftnative.testing.TempDatasetCache;
import io.sftnative.torch.TorchRuntime;

/** Commands as LLaMA-Factory users type them: --key value, chat/export with a config, do_* defaults, Modelfile. */
@ExtendWith(TempDatasetCache.class)
class LlamaFactoryCommandsTest {
    @TempDir
    Path tmp;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void dashDashKeyValueIsKeyEqualsValue() {
        assertEquals(List.of("c.yaml", "template=qwen", "max_samples=5", "do_train=true", "x=1", "plot_loss=true"),
                ConfigArgs.normalized(List.of("c.yaml", "--template", "qwen", "--max_samples=5", "--do_train",
                        "--x", "1", "--plot_loss")));
        // as HF's parser: the token after --key is its value, even one holding '='
        assertEquals(List.of("default_system=a=b"), ConfigArgs.normalized(List.of("--default_system", "a=b")));
    }

    @Test
    void preflightTakesLlamaFactoryCliSpelling() throws Exception {
        Path tok = Shared.require("assets/tokenizers/qwen2_5");
        Path data = Shared.require("data/llamafactory-demo");
        Run r = run("preflight", "--model_name_or_path", tok.toString(), "--dataset", "identity", "--dataset_dir",
                data.toString(), "--template=qwen", "--max_samples", "7", "--stage", "sft");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("examples read 7, kept 7"), r.out());
        r = run("preflight", "--model_name_or_path", tok.toString(), "--datset", "identity");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("unknown config key 'datset'") && r.err().contains("did you mean 'dataset'"),
                r.err());
    }

    @Test
    void doTrainDefaultsAsLlamaFactoryPredictConfigs() {
        TrainingArgs predict = TrainingArgs.from(RawConfig.of(Map.of("do_predict", true)));
        assertFalse(predict.doTrain());
        assertTrue(predict.doPredict());
        assertFalse(TrainingArgs.from(RawConfig.of(Map.of("do_eval", "true"))).doTrain());
        assertTrue(TrainingArgs.from(RawConfig.of(Map.of())).doTrain(), "nothing set: train (documented)");
        assertTrue(TrainingArgs.from(RawConfig.of(Map.of("do_predict", true, "do_train", true))).doTrain());
        assertTrue(TrainingArgs.from(RawConfig.of(Map.of("eval_strategy", "steps"))).doEval(), "HF: eval_strategy");
        assertFalse(TrainingArgs.from(RawConfig.of(Map.of("eval_strategy", "no"))).doEval());
    }

    @Test
    void keysNotImplementedStopTheRunNamingTheKey() {
        for (Map<String, Object> keys : List.<Map<String, Object>>of(Map.of("media_dir", "m"),
                Map.of("preprocessing_batch_size", 64), Map.of("eval_num_beams", 4))) {
            String key = keys.keySet().iterator().next();
            var e = org.junit.jupiter.api.Assertions.assertThrows(io.sftnative.config.ConfigException.class,
                    () -> io.sftnative.config.SftConfig.from(RawConfig.of(keys), w -> {}));
            assertTrue(e.getMessage().contains("'" + key + "'") && e.getMessage().contains("not implemented in"
                    + " sft-native"), e.getMessage());
        }
        // their defaults are accepted (LLaMA-Factory configs carry them)
        io.sftnative.config.SftConfig.from(RawConfig.of(Map.of("streaming", false, "resize_vocab", false,
                "preprocessing_batch_size", 1000, "ignore_pad_token_for_loss", true)), w -> {});
    }

    /** The rigged tiny model of ChatSessionTest with the demo tokenizer. */
    private Path chatModel() throws Exception {
        Path dir = tmp.resolve("chat-model");
        try (DecoderModel m = ChatSessionTest.riggedModel()) {
            m.save(dir);
        }
        Files.copy(ChatSessionTest.DEMO.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.copy(ChatSessionTest.DEMO.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        return dir;
    }

    @Test
    void chatAndExportTakeTheSameConfigFiles() throws Exception {
        Path model = chatModel();
        Path yaml = tmp.resolve("inference.yaml");
        Files.writeString(yaml, "model_name_or_path: " + model + "\ntemplate: qwen\ninfer_backend: huggingface\n"
                + "trust_remote_code: true\ndo_sample: false\nmax_new_tokens: 3\n");
        Run r = Cli.runWithInput("hello\n", "chat", yaml.toString(), "--threads", "2");
        assertEquals(0, r.code(), r.err());
        assertEquals(1, r.out().split("Assistant: ", -1).length - 1, r.out());
        r = Cli.runWithInput("", "chat", yaml.toString(), "template=nope", "--threads", "2");
        assertTrue(r.err().contains("unknown template 'nope'"), r.err());
        r = Cli.runWithInput("", "chat", model.toString(), "template=qwen");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("overrides go with a config file"), r.err());

        Path out = tmp.resolve("merged");
        Path export = tmp.resolve("export.yaml");
        Files.writeString(export, "model_name_or_path: " + model + "\ntemplate: qwen\nexport_dir: " + out
                + "\nexport_device: cpu\n");
        r = run("export", export.toString(), "--threads", "2");
        assertEquals(0, r.code(), r.err());
        String modelfile = Files.readString(out.resolve("Modelfile"));
        assertEquals("""
                # ollama modelfile auto-generated by llamafactory

                FROM .

                TEMPLATE \"""{{ if .System }}<|im_start|>system
                {{ .System }}<|im_end|>
                {{ end }}{{ range .Messages }}{{ if eq .Role "user" }}<|im_start|>user
                {{ .Content }}<|im_end|>
                <|im_start|>assistant
                {{ else if eq .Role "assistant" }}{{ .Content }}<|im_end|>
                {{ end }}{{ end }}\"""

                SYSTEM \"""You are Qwen, created by Alibaba Cloud. You are a helpful assistant.\"""

                PARAMETER stop "<|im_end|>"
                PARAMETER num_ctx 4096
                """, modelfile);
    }
}
