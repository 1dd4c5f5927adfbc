package io.sftnative.cli;

import static io.sftnative.testing.Cli.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.testing.Cli.Run;
import io.sftnative.testing.Shared;
import io.sftnative.testing.TempDatasetCache;

@ExtendWith(TempDatasetCache.class)
class PreflightCommandTest {
    @TempDir
    Path dir;

    @Test
    void reportsShowsAnExampleAndDumpsEveryExample() throws Exception {
        Path tok = Shared.require("assets/tokenizers/qwen2_5");
        Path data = Shared.require("data/llamafactory-demo");
        Path yaml = dir.resolve("c.yaml");
        Files.writeString(yaml, "model_name_or_path: " + tok + "\nstage: sft\ndataset: identity\ndataset_dir: " + data
                + "\ntemplate: qwen\ncutoff_len: 128\n");
        Path dump = dir.resolve("dump.jsonl");
        Run r = run("preflight", yaml.toString(), "max_samples=20", "--show", "1", "--dump", dump.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("examples read 20, kept 20, dropped 0"), r.out());
        assertTrue(r.out().contains("«<|im_start|>system"), r.out());
        assertTrue(r.out().contains("trainable tokens:"), r.out());
        List<String> lines = Files.readAllLines(dump);
        assertEquals(20, lines.size());
        JsonNode first = new ObjectMapper().readTree(lines.get(0));
        assertEquals(first.get("input_ids").size(), first.get("labels").size());
        assertTrue(first.get("text").asText().startsWith("<|im_start|>system\n"), first.toString());
    }

    @Test
    void warnsWhenTheTemplateDoesNotMatchTheModel() throws Exception {
        Path tok = Shared.require("assets/tokenizers/qwen2_5");
        Path data = Shared.require("data/llamafactory-demo");
        Run r = run("preflight", "model_name_or_path=" + tok, "dataset=identity", "dataset_dir=" + data,
                "template=alpaca", "max_samples=5");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("renders conversations differently"), r.out());
    }

    @Test
    void badInputIsOneClearErrorLine() throws Exception {
        Path tok = Shared.require("assets/tokenizers/qwen2_5");
        Run r = run("preflight", "model_name_or_path=" + tok, "dataset=nope_dataset", "template=qwen");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("error: unknown dataset 'nope_dataset'"), r.err());
        Run t = run("preflight", "model_name_or_path=" + tok, "dataset=x", "template=qwen7");
        assertTrue(t.err().contains("unknown template 'qwen7'"), t.err());
    }
}
