package io.sftnative.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.lora.LoraAdapters;
import io.sftnative.lora.LoraSpec;
import io.sftnative.model.DecoderModel;
import io.sftnative.testing.Cli;
import io.sftnative.testing.Cli.Run;
import io.sftnative.torch.TorchRuntime;

class ExportChatCommandsTest {
    static final Path LLAMA = Path.of("src/test/resources/golden/model/llama_gqa/checkpoint");

    @TempDir
    Path tmp;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    private Path adapterFor(Path modelDir, Path dir, int rank) throws Exception {
        try (DecoderModel m = DecoderModel.load(modelDir, null);
                LoraAdapters lora = LoraAdapters.attach(m, new LoraSpec(rank, 2.0 * rank, 0, List.of("all"), false,
                        List.of()), 1)) {
            lora.save(dir, modelDir.toString());
        }
        return dir;
    }

    @Test
    void exportFromYamlWritesAShardedModelDirectory() throws Exception {
        Path adapter = adapterFor(LLAMA, tmp.resolve("adapter"), 4);
        Path out = tmp.resolve("merged");
        Path yaml = tmp.resolve("export.yaml");
        Files.writeString(yaml, "model_name_or_path: " + LLAMA + "\nadapter_name_or_path: " + adapter
                + "\ntemplate: qwen\nfinetuning_type: lora\nexport_dir: " + out + "\nexport_size: 0.0002\n"
                + "export_device: cpu\nexport_legacy_format: false\n");
        Run r = Cli.run("export", yaml.toString(), "--threads", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("with 1 merged adapter(s)") && r.out().contains("model.safetensors.index.json"),
                r.out());
        assertTrue(r.err().contains("no tokenizer"), r.err()); // the golden checkpoint has no tokenizer files
        assertTrue(Files.exists(out.resolve("model-00001-of-00003.safetensors")), r.out());
        try (DecoderModel m = DecoderModel.load(out, null)) {
            assertEquals(2, m.config().numHiddenLayers());
        }
    }

    @Test
    void exportErrorsAreOneClearLine() throws Exception {
        Path yaml = tmp.resolve("export.yaml");
        Files.writeString(yaml, "model_name_or_path: " + LLAMA + "\n");
        Run r = Cli.run("export", yaml.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("error: export needs export_dir"), r.err());
        r = Cli.run("export", yaml.toString(), "export_dir=" + tmp.resolve("o"),
                "export_legacy_format=true");
        assertTrue(r.err().contains("export_legacy_format") && r.err().contains("safetensors only"), r.err());
        r = Cli.run("export", yaml.toString(), "export_dir=" + tmp.resolve("o"),
                "adapter_name_or_path=" + tmp.resolve("nowhere"));
        assertEquals(1, r.code());
        assertTrue(r.err().contains("nowhere") && r.err().contains("adapter directory not found"), r.err());
        Path other = adapterFor(Path.of("src/test/resources/golden/model/qwen3_qknorm/checkpoint"),
                tmp.resolve("qwen3-adapter"), 4);
        r = Cli.run("export", yaml.toString(), "export_dir=" + tmp.resolve("o"),
                "adapter_name_or_path=" + other, "--threads", "2");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight'")
                && r.err().contains("[128, 4]") && r.err().contains("[64, 4]") && r.err().contains("different model"),
                r.err());
        r = Cli.run("export", yaml.toString(), "export_dir=" + tmp.resolve("o"),
                "adapter_name_or_path=" + other, "finetuning_type=full");
        assertTrue(r.err().contains("only valid with finetuning_type: lora"), r.err());
        r = Cli.run("export", yaml.toString(), "export_dir=" + tmp.resolve("o"), "template=qwenn");
        assertTrue(r.err().contains("unknown template 'qwenn'"), r.err());
        assertFalse(Files.exists(tmp.resolve("o")));
    }

    @Test
    void chatReadsStdinRendersTheTemplateAndStopsAtTheEndOfTurn() throws Exception {
        Path dir = tmp.resolve("chat-model");
        try (DecoderModel m = ChatSessionTest.riggedModel()) {
            m.save(dir);
        }
        Files.copy(ChatSessionTest.DEMO.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.copy(ChatSessionTest.DEMO.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        Run r = Cli.runWithInput("hello\n/clear\nhi again\n/exit\nnever read\n", "chat", dir.toString(),
                "--template", "qwen", "--greedy", "--max-new-tokens", "4", "--threads", "2");
        assertEquals(0, r.code(), r.err());
        assertEquals(4, r.out().split("User: ", -1).length - 1, r.out()); // hello, /clear, hi again, /exit
        assertEquals(2, r.out().split("Assistant: ", -1).length - 1, r.out());
        assertTrue(r.out().contains("History has been removed."), r.out());

        Path adapter = adapterFor(dir, tmp.resolve("chat-adapter"), 2);
        r = Cli.runWithInput("hello\n", "chat", dir.toString(), "--adapter", adapter.toString(), "--greedy",
                "--threads", "2", "--max-new-tokens", "2");
        assertEquals(0, r.code(), r.err()); // default template: the tokenizer's chat_template; end of input quits
        assertEquals(1, r.out().split("Assistant: ", -1).length - 1, r.out());

        r = Cli.runWithInput("", "chat", dir.toString(), "--adapter", tmp.resolve("none").toString(), "--threads", "2");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("adapter directory not found"), r.err());
        r = Cli.runWithInput("", "chat", dir.toString(), "--template", "nope", "--threads", "2");
        assertTrue(r.err().contains("unknown template 'nope'"), r.err());
    }
}
