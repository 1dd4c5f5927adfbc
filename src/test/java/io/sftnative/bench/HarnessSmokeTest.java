package io.sftnative.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.sftnative.files.AtomicFiles;

/**
 * The harness's Java side on a tiny model (no Python, no timing asserted): the batch plan, two training steps of
 * sft-native's trainer through {@link OursRun} checked against that plan, and the report (table, JSON, PNG) with a
 * reference result made from ours, so every ratio and loss difference is known.
 */
class HarnessSmokeTest {
    @TempDir
    Path tmp;

    @Test
    void plansTrainsOursAndReports() throws Exception {
        Map<String, Object> model = HarnessPlan.modelKeys();
        model.put("hidden_size", 32);
        model.put("num_hidden_layers", 2);
        model.put("num_attention_heads", 4);
        model.put("num_key_value_heads", 2);
        model.put("intermediate_size", 64);
        model.put("vocab_size", 96);
        HarnessPlan.Settings s = new HarnessPlan.Settings(1, 4, 2, 1, 64, 1, 42, 1e-3, "cosine", 0.0, 0.01, 1.0, 4,
                8.0, model, "adamw_torch_fused");
        HarnessPlan.Work work = new HarnessPlan.Work(tmp.resolve("work"));
        writeData(work, 6);
        HarnessData.writeModel(s, work);
        HarnessPlan.Mode mode = HarnessPlan.Mode.parse("full-padded-plain");
        List<String> log = new ArrayList<>();
        List<Map<String, Object>> steps = HarnessData.writeBatches(s, mode, work, log::add);
        assertEquals(2, steps.size(), "4 examples in batches of 2: two steps");
        assertEquals(2, Files.readAllLines(work.batches("padded")).size(), "one line per micro-batch");

        Map<String, Object> plan = new LinkedHashMap<>();
        plan.put("created", "now");
        plan.put("settings", s);
        plan.put("modes", List.of(mode.name()));
        plan.put("source", "synthetic");
        plan.put("vocab_mapping", "none");
        plan.put("model_dir", work.model().toString());
        plan.put("adapter_init", work.adapterInit().toString());
        plan.put("model_parameters", 1);
        plan.put("reference_torch", "none");
        plan.put("layouts", Map.of("padded", Map.of("batches", work.batches("padded").toString(), "steps", steps)));
        HarnessPlan.write(work.plan(), plan);

        String cache = System.getProperty("sft.cache.dir");
        System.setProperty("sft.cache.dir", tmp.resolve("cache").toString());
        try {
            OursRun.main(new String[] {"--work", work.dir().toString(), "--mode", mode.name()});
        } finally {
            if (cache == null) {
                System.clearProperty("sft.cache.dir");
            } else {
                System.setProperty("sft.cache.dir", cache);
            }
        }
        HarnessPlan.Run ours = new HarnessPlan.Run(mode.name(), HarnessPlan.Run.OURS);
        HarnessPlan.Run ref = new HarnessPlan.Run(mode.name(), HarnessPlan.Run.REFERENCE);
        ObjectNode r = (ObjectNode) HarnessPlan.JSON.readTree(work.result(ours).toFile());
        assertEquals(2, r.get("steps").size());
        assertFalse(Files.exists(work.output(ours)), "the run's weights are deleted after the run");

        // the report's arithmetic, not the clock: a tiny step can take under one CPU-time tick (10 ms), so ours
        // is given 0.25 s of CPU per step
        for (JsonNode st : r.get("steps")) {
            ((ObjectNode) st).put("cpu_seconds", 0.25);
        }
        HarnessPlan.write(work.result(ours), r);
        // a "reference" that took exactly twice as long per step, used half the memory, and lost 1e-3 more
        ObjectNode fake = r.deepCopy();
        fake.put("side", HarnessPlan.Run.REFERENCE);
        fake.put("peak_rss_bytes", r.get("peak_rss_bytes").asLong() / 2);
        for (JsonNode st : fake.get("steps")) {
            ((ObjectNode) st).put("seconds", st.get("seconds").asDouble() * 2);
            ((ObjectNode) st).put("cpu_seconds", st.get("cpu_seconds").asDouble() * 2);
            ((ObjectNode) st).put("loss", st.get("loss").asDouble() + 1e-3);
        }
        HarnessPlan.write(work.result(ref), fake);

        JsonNode planJson = HarnessPlan.JSON.readTree(work.plan().toFile());
        HarnessReport.Summary summary = HarnessReport.build(planJson, work, List.of(ours, ref));
        HarnessReport.RunStats o = summary.runs().get(0);
        assertTrue(o.batchesMatch(), "the trainer trained the plan's batches: " + o.warnings());
        assertEquals(1, o.timedSteps(), "the first step is the warm-up");
        HarnessReport.Comparison c = summary.comparisons().get(0);
        assertEquals(2.0, c.speedup(), 1e-9);
        assertEquals(2.0, c.rssRatio(), 1e-3);
        assertEquals(1e-3, c.maxLossDiff(), 1e-9);
        assertEquals(2, c.lossSteps());
        assertEquals(2.0, c.cpuSpeedup(), 1e-9);
        HarnessReport.Target shapes = summary.targets().get(0);
        assertEquals(mode.name(), shapes.name());
        assertEquals(1.3, shapes.threshold());
        assertEquals(2.0, shapes.value(), 1e-9);
        assertTrue(shapes.met());

        Path out = tmp.resolve("out");
        HarnessReport.write(summary, out);
        String md = Files.readString(out.resolve("e2e.md"));
        assertTrue(md.contains("**2.00x**"), md);
        assertTrue(md.contains("max |loss ours − loss reference| = 1.00e-03 over 2 steps"), md);
        assertTrue(Files.size(out.resolve("e2e.png")) > 1000);
        assertEquals(2, HarnessPlan.JSON.readTree(out.resolve("e2e.json").toFile()).get("runs").size());

        Path results = tmp.resolve("RESULTS.md");
        Files.writeString(results, "# Results\n\nbefore\n");
        HarnessReport.record(summary, results);
        HarnessReport.record(summary, results); // replaces its own section, never duplicates it
        String text = Files.readString(results);
        assertTrue(text.startsWith("# Results\n\nbefore\n"));
        assertEquals(text.indexOf("e2e-harness:begin"), text.lastIndexOf("e2e-harness:begin"));
    }

    @Test
    void modesAndRuns() {
        assertEquals(List.of(new HarnessPlan.Run("full-padded-plain", "ours"),
                new HarnessPlan.Run("full-padded-plain", "reference"), new HarnessPlan.Run("lora-packed-fused", "ours"),
                new HarnessPlan.Run("lora-packed-plain", "reference")),
                HarnessPlan.runs(List.of("full-padded-plain", "lora-packed-fused")));
        assertEquals("lora-packed-plain", HarnessPlan.Mode.parse("lora-packed-fused").referenceMode());
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> HarnessPlan.Mode.parse("full-padded"));
        assertTrue(e.getMessage().contains("<full|lora>-<padded|packed>-<plain|fused>"));
        assertEquals(List.of(-100, 5, 0, 31999), java.util.Arrays.stream(HarnessData.mapIds(new int[] {-100, 32005,
                32000, 31999}, 32000)).boxed().toList());
    }

    /** Pre-tokenized rows with a prompt (labels -100) and an answer, ids in [2, 96). */
    private static void writeData(HarnessPlan.Work work, int rows) throws IOException {
        SplittableRandom rnd = new SplittableRandom(3);
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < rows; i++) {
            int n = rnd.nextInt(8, 40);
            int prompt = n / 3;
            List<Integer> ids = new ArrayList<>();
            List<Integer> labels = new ArrayList<>();
            for (int t = 0; t < n; t++) {
                int id = rnd.nextInt(2, 96);
                ids.add(id);
                labels.add(t < prompt ? -100 : id);
            }
            b.append("{\"input_ids\": ").append(ids).append(", \"labels\": ").append(labels).append("}\n");
        }
        AtomicFiles.writeString(work.trainJsonl(), b.toString());
    }
}
