package io.sftnative.cli;

import static io.sftnative.testing.Cli.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.testing.Cli.Run;
import io.sftnative.testing.TempDatasetCache;

/**
 * {@code eval}: the causal-LM loss over a pre-tokenized dataset, printed as JSON on the last line, equals the torch
 * reference (tools/golden/gen_train_golden.py: summed loss over all target tokens / their count).
 */
@ExtendWith(TempDatasetCache.class)
class EvalCommandTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/train");

    @TempDir
    Path dir;

    static JsonNode lastLine(Run r) throws Exception {
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().toList();
        return new ObjectMapper().readTree(lines.get(lines.size() - 1));
    }

    static void check(JsonNode got, String golden) throws Exception {
        JsonNode exp = new ObjectMapper().readTree(GOLDEN.resolve(golden).resolve("expected.json").toFile());
        double want = exp.get("eval_loss_initial").asDouble();
        double rel = Math.abs(got.get("eval_loss").asDouble() - want) / want;
        System.out.printf("eval %s: eval_loss %.7f, reference %.7f, relative error %.2e%n", golden,
                got.get("eval_loss").asDouble(), want, rel);
        assertTrue(rel < 1e-6, got.toString());
        assertEquals(exp.get("eval_tokens").asLong(), got.get("eval_tokens").asLong());
        assertEquals(Math.exp(got.get("eval_loss").asDouble()), got.get("perplexity").asDouble(), 1e-9);
    }

    @Test
    void lossOfAModelOverPreTokenizedBlocks() throws Exception {
        Run r = run("eval", "model_name_or_path=" + GOLDEN.resolve("pt_full/model"),
                "dataset=" + GOLDEN.resolve("pt_full/train.jsonl"), "stage=pt", "cutoff_len=32",
                "per_device_eval_batch_size=4");
        check(lastLine(r), "pt_full");
    }

    @Test
    void lossOfAModelPlusAdapterFromAYamlWithOverrides() throws Exception {
        Path yaml = dir.resolve("eval.yaml");
        java.nio.file.Files.writeString(yaml, "model_name_or_path: " + GOLDEN.resolve("sft_lora/model")
                + "\nadapter_name_or_path: " + GOLDEN.resolve("sft_lora/adapter_init") + "\ncutoff_len: 64\n"
                + "per_device_eval_batch_size: 2\n");
        Run r = run("eval", yaml.toString(), "dataset=" + GOLDEN.resolve("sft_lora/train.jsonl"),
                "per_device_eval_batch_size=4");
        JsonNode got = lastLine(r);
        check(got, "sft_lora");
        assertEquals(21, got.get("eval_examples").asLong());
        assertEquals(6, got.get("eval_batches").asLong(), "per_device_eval_batch_size=4 overrides the YAML's 2");
    }

    @Test
    void unknownKeyFailsWithTheNearestKey() {
        Run r = run("eval", "model_name_or_path=" + GOLDEN.resolve("pt_full/model"), "datset=x.jsonl");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("did you mean 'dataset'?"), r.err());
    }
}
