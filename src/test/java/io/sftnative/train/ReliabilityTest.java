package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.files.OutputDirLock;
import io.sftnative.testing.Cli;
import io.sftnative.testing.Cli.Run;
import io.sftnative.testing.TempDatasetCache;

/** Issue 13: runs that would lose or silently corrupt data stop with a message instead. */
@ExtendWith(TempDatasetCache.class)
class ReliabilityTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/train/pt_full");

    @TempDir
    Path dir;

    List<String> ptArgs(String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "model_name_or_path=" + GOLDEN.resolve("model"),
                "dataset=" + GOLDEN.resolve("train.jsonl"), "stage=pt", "finetuning_type=full", "cutoff_len=32",
                "per_device_train_batch_size=2", "max_steps=2", "save_steps=2", "logging_steps=1",
                "preprocessing_num_workers=1", "output_dir=" + dir.resolve("out")));
        a.addAll(List.of(extra));
        return a;
    }

    static String errorLine(Run r) {
        assertEquals(1, r.code(), "exit code; stdout: " + r.out() + "\nstderr: " + r.err());
        String first = r.err().lines().filter(l -> l.startsWith("error: ")).findFirst().orElse("");
        assertFalse(first.isEmpty(), "one 'error:' line on stderr: " + r.err());
        return first;
    }

    @Test
    void outputDirThatIsTheModelThroughALinkIsRefused() throws Exception {
        Path model = dir.resolve("model");
        Files.createDirectories(model);
        try (var s = Files.list(GOLDEN.resolve("model"))) {
            for (Path p : s.toList()) {
                Files.copy(p, model.resolve(p.getFileName()));
            }
        }
        Path link = Files.createSymbolicLink(dir.resolve("model_link"), model);
        byte[] weights = Files.readAllBytes(model.resolve("model.safetensors"));
        String e = errorLine(Cli.run(ptArgs("model_name_or_path=" + link, "output_dir=" + model,
                "overwrite_output_dir=true").toArray(String[]::new)));
        assertTrue(e.contains("which this run reads"), e);
        assertTrue(java.util.Arrays.equals(weights, Files.readAllBytes(model.resolve("model.safetensors"))));
    }

    @Test
    void outputDirThatIsAFileFailsBeforeTheData() throws Exception {
        Path file = Files.writeString(dir.resolve("out.txt"), "notes");
        Run r = Cli.run(ptArgs("output_dir=" + file, "dataset=" + dir.resolve("missing.jsonl")).toArray(String[]::new));
        String e = errorLine(r);
        assertTrue(e.contains("output_dir " + file + " is a file, not a directory"), e);
    }

    @Test
    void aSecondRunOnTheSameOutputDirStopsNamingTheHolder() throws Exception {
        Path out = dir.resolve("out");
        try (OutputDirLock held = OutputDirLock.acquire(out)) {
            String e = errorLine(Cli.run(ptArgs().toArray(String[]::new)));
            assertTrue(e.contains("is in use by another run (pid " + ProcessHandle.current().pid()), e);
        }
        assertFalse(Files.exists(out.resolve("checkpoint-2")), "the refused run trained");
        Run ok = Cli.run(ptArgs().toArray(String[]::new));
        assertEquals(0, ok.code(), ok.err());
        assertTrue(Files.exists(out.resolve("checkpoint-2")));
    }

    @Test
    void aCutoffThatLeavesNoTrainableTokenStopsBeforeTraining() {
        Path sft = Path.of("src/test/resources/golden/train/sft_lora");
        String e = errorLine(Cli.run("train", "model_name_or_path=" + sft.resolve("model"),
                "dataset=" + sft.resolve("train.jsonl"), "stage=sft", "finetuning_type=lora", "cutoff_len=2",
                "per_device_train_batch_size=2", "max_steps=2", "preprocessing_num_workers=1",
                "output_dir=" + dir.resolve("out")));
        assertTrue(e.contains("no trainable tokens: every token of the") && e.contains("cutoff_len=2"), e);
        assertFalse(Files.exists(dir.resolve("out").resolve("checkpoint-2")));
    }

    @Test
    void aQuotedNumberInConfigJsonIsNamedAsAString() {
        java.util.Map<String, Object> k = new java.util.LinkedHashMap<>();
        k.put("model_type", "llama");
        k.put("vocab_size", 64);
        k.put("hidden_size", "256");
        k.put("intermediate_size", 64);
        k.put("num_hidden_layers", 1);
        k.put("num_attention_heads", 4);
        var e = org.junit.jupiter.api.Assertions.assertThrows(io.sftnative.model.ModelFormatException.class,
                () -> io.sftnative.model.ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("key 'hidden_size' must be a positive whole number")
                && e.getMessage().contains("got the string \"256\""), e.getMessage());
    }
}
