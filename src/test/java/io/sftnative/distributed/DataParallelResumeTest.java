package io.sftnative.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.api.SftTrainer;
import io.sftnative.files.AtomicFiles;
import io.sftnative.testing.TempDatasetCache;

/**
 * Resuming a data-parallel run. With the same world size the resumed run is the same computation as the
 * uninterrupted one (every rank's dropout stream is in the checkpoint), so it must match bit for bit. With another
 * world size the replicated state (weights, AdamW moments, schedule) and the data order continue exactly; the
 * gradients are then summed in another order, so the steps after the resume match within the tolerances of
 * {@link DataParallelEquivalenceTest} (derived there).
 */
@ExtendWith(TempDatasetCache.class)
class DataParallelResumeTest {
    @TempDir
    Path dir;

    /** LoRA, 21 rows, batch 2: 6 steps of 4 rows (2 ranks x accumulation 1, or 1 x 2), a checkpoint every 2. */
    static Map<String, Object> config(double dropout) {
        Map<String, Object> m = DataParallelEquivalenceTest.common("lora");
        m.put("lora_dropout", dropout);
        m.put("num_train_epochs", 1);
        m.put("save_steps", 2);
        return m;
    }

    static List<String> args(Map<String, Object> cfg, String... more) {
        List<String> a = new ArrayList<>();
        cfg.forEach((k, v) -> a.add(k + "=" + v));
        a.addAll(List.of(more));
        return a;
    }

    /** 2 ranks, LoRA dropout 0.1: resumed from checkpoint-2, the rest of the run is bit-identical. */
    @Test
    void sameWorldSizeWithDropoutResumesBitExactly() throws Exception {
        Map<String, Object> cfg = config(0.1);
        Path full = dir.resolve("uninterrupted");
        Files.createDirectories(dir.resolve("a"));
        DataParallelEquivalenceTest.runRanks(2, args(cfg, "gradient_accumulation_steps=1", "output_dir=" + full),
                dir.resolve("a"));
        JsonNode rng = new ObjectMapper().readTree(full.resolve("checkpoint-2/rng_state.json").toFile());
        assertEquals(2, rng.get("torch_cpu_ranks").size(), "every rank's generator is in the checkpoint");
        assertNotEquals(rng.get("torch_cpu_ranks").get(0).asText(), rng.get("torch_cpu_ranks").get(1).asText(),
                "each rank draws its own dropout masks");

        Path resumed = dir.resolve("resumed");
        copy(full.resolve("checkpoint-2"), resumed.resolve("checkpoint-2"));
        Files.createDirectories(dir.resolve("b"));
        DataParallelEquivalenceTest.runRanks(2, args(cfg, "gradient_accumulation_steps=1", "output_dir=" + resumed,
                "resume_from_checkpoint=" + resumed.resolve("checkpoint-2")), dir.resolve("b"));

        Map<Long, Double> a = losses(full);
        Map<Long, Double> b = losses(resumed);
        assertEquals(6, a.size(), "steps of the uninterrupted run: " + a);
        for (long step = 3; step <= 6; step++) {
            assertEquals(a.get(step), b.get(step), "loss of step " + step + " after the resume (bit-exact)");
        }
        double[] w = DataParallelEquivalenceTest.maxDiff(full.resolve("adapter_model.safetensors"),
                resumed.resolve("adapter_model.safetensors"));
        System.out.printf("2 ranks, lora_dropout 0.1, resumed at step 2: steps 3-6 losses equal, max |adapter diff|"
                + " %.3g%n", w[0]);
        assertEquals(0.0, w[0], "final adapter weights bit-identical");
    }

    /**
     * One process with accumulation 2, resumed at step 2 by 2 ranks with accumulation 1 (the same 2 micro-batches
     * per step): the data order continues, losses and weights match within reduction-order rounding.
     */
    @Test
    void anotherWorldSizeContinuesTheDataOrder() throws Exception {
        Map<String, Object> cfg = config(0.0);
        Path single = dir.resolve("single");
        SftTrainer.Builder builder = SftTrainer.builder();
        cfg.forEach(builder::set);
        builder.set("gradient_accumulation_steps", 2).set("output_dir", single.toString());
        builder.build().run();

        Path multi = dir.resolve("multi");
        copy(single.resolve("checkpoint-2"), multi.resolve("checkpoint-2"));
        DataParallelEquivalenceTest.runRanks(2, args(cfg, "gradient_accumulation_steps=1", "output_dir=" + multi,
                "resume_from_checkpoint=" + multi.resolve("checkpoint-2")), dir);
        String log = DataParallelEquivalenceTest.log(dir, 0);
        assertTrue(log.contains("holds the random state of 1 process, this job has 2"), log);
        assertTrue(!log.contains("data order after the resume differs"), log);

        Map<Long, Double> a = losses(single);
        Map<Long, Double> b = losses(multi);
        double d = 0;
        for (long step = 3; step <= 6; step++) {
            d = Math.max(d, Math.abs(a.get(step) - b.get(step)));
        }
        double[] w = DataParallelEquivalenceTest.maxDiff(single.resolve("adapter_model.safetensors"),
                multi.resolve("adapter_model.safetensors"));
        System.out.printf("1 process x accumulation 2 resumed by 2 ranks x 1 at step 2: steps 3-6 max |loss diff|"
                + " %.3g, max |adapter diff| %.3g (max |weight| %.3g)%n", d, w[0], w[1]);
        assertTrue(d < 1e-5, "losses " + a + " vs " + b);
        assertTrue(w[0] < 1e-5 * Math.max(1, w[1]), "adapter diff " + w[0]);
    }

    /** step -> loss from trainer_log.jsonl (full precision; a resumed run keeps the lines up to its start). */
    static Map<Long, Double> losses(Path out) throws IOException {
        ObjectMapper json = new ObjectMapper();
        Map<Long, Double> m = new TreeMap<>();
        for (String line : Files.readAllLines(out.resolve("trainer_log.jsonl"))) {
            JsonNode n = json.readTree(line);
            if (n.has("loss") && !n.get("loss").isNull()) {
                m.put(n.get("current_steps").asLong(), n.get("loss").asDouble());
            }
        }
        return m;
    }

    static void copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (var s = Files.list(from)) {
            for (Path f : s.toList()) {
                AtomicFiles.writeBytes(to.resolve(f.getFileName()), Files.readAllBytes(f));
            }
        }
    }
}
