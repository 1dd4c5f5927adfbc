package io.sftnative.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

class LrScheduleTest {
    @Test
    void matchesTransformersFormulasOnGoldenCases() throws Exception {
        JsonNode cases;
        try (InputStream in = getClass().getResourceAsStream("/golden/optim/schedules.json")) {
            cases = new ObjectMapper().readTree(in).get("cases");
        }
        assertTrue(cases.size() >= 32);
        for (JsonNode c : cases) {
            String type = c.get("type").asText();
            long total = c.get("total_steps").asLong();
            LrSchedule s = LrSchedule.of(type, 2e-4, total, c.get("warmup_steps").asLong(),
                    c.get("warmup_ratio").asDouble());
            assertEquals(c.get("num_warmup").asLong(), s.warmupSteps(), "warmup of " + c);
            JsonNode m = c.get("multipliers");
            for (int step = 0; step < m.size(); step++) {
                assertEquals(m.get(step).asDouble(), s.multiplier(step), 1e-15, type + " step " + step + " of " + c);
                assertEquals(2e-4 * m.get(step).asDouble(), s.lr(step), 1e-19);
            }
        }
    }

    @Test
    void warmupStepsWinOverRatioAndRatioRoundsUp() {
        assertEquals(5, LrSchedule.numWarmupSteps(100, 5, 0.5));
        assertEquals(4, LrSchedule.numWarmupSteps(33, 0, 0.1)); // ceil(3.3)
        assertEquals(0, LrSchedule.numWarmupSteps(100, 0, 0.0));
    }

    @Test
    void linearWithWarmupShape() {
        LrSchedule s = LrSchedule.of("linear", 1.0, 10, 2, 0);
        assertEquals(0.0, s.lr(0));
        assertEquals(0.5, s.lr(1));
        assertEquals(1.0, s.lr(2));
        assertEquals(0.5, s.lr(6));
        assertEquals(0.0, s.lr(10));
        assertEquals(0.0, s.lr(12)); // past the end: clamped at 0, never negative
    }

    @Test
    void unknownTypeNamesTheKey() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LrSchedule.of("cosine_forever", 1e-4, 10, 0, 0));
        assertTrue(e.getMessage().contains("lr_scheduler_type"), e.getMessage());
    }

    private static JsonNode hfGolden() throws Exception {
        try (InputStream in = LrScheduleTest.class.getResourceAsStream("/golden/optim/hf_schedules.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    private static Map<String, Object> kwargs(JsonNode k) {
        Map<String, Object> m = new LinkedHashMap<>();
        k.fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue().isNumber() ? e.getValue().asDouble()
                : e.getValue().asText()));
        return m;
    }

    /** Every HF lr_scheduler_type with kwargs, against HF's formulas run through torch's LambdaLR. */
    @Test
    void everyHfScheduleMatchesTorchLambdaLr() throws Exception {
        JsonNode cases = hfGolden().get("lambda_cases");
        assertTrue(cases.size() >= 100, "cases: " + cases.size());
        java.util.Set<String> types = new java.util.TreeSet<>();
        for (JsonNode c : cases) {
            String type = c.get("type").asText();
            types.add(type);
            double lr0 = c.get("learning_rate").asDouble();
            LrSchedule s = LrSchedule.of(type, lr0, c.get("total_steps").asLong(), c.get("warmup_steps").asLong(),
                    0.0, kwargs(c.get("kwargs")));
            JsonNode lrs = c.get("lrs");
            for (int step = 0; step < lrs.size(); step++) {
                double want = lrs.get(step).asDouble();
                // LambdaLR computes base_lr * lambda in double, as we do: equal up to the last bit or two
                assertEquals(want, s.lr(step), 1e-12 * lr0, type + " step " + step + " of " + c);
            }
        }
        assertEquals(10, types.size(), "types covered: " + types);
    }

    /** reduce_lr_on_plateau against torch's ReduceLROnPlateau on a metric sequence, with a checkpoint mid-way. */
    @Test
    void reduceLrOnPlateauMatchesTorchAndResumesExactly() throws Exception {
        for (JsonNode c : hfGolden().get("plateau_cases")) {
            double lr0 = c.get("learning_rate").asDouble();
            LrSchedule s = LrSchedule.of("reduce_lr_on_plateau", lr0, 100, 5, 0.0, kwargs(c.get("kwargs")));
            LrScheduler sched = new LrScheduler(s);
            assertTrue(sched.needsEvaluations());
            assertEquals(lr0, sched.lr(0), "no warmup: starts at learning_rate");
            JsonNode metrics = c.get("metrics");
            JsonNode want = c.get("lrs_after_each_eval");
            LrScheduler resumed = null;
            for (int i = 0; i < metrics.size(); i++) {
                sched.onEvaluation(Map.of("eval_loss", metrics.get(i).asDouble()), "eval_loss");
                assertEquals(want.get(i).asDouble(), sched.lr(1000), 1e-18, "eval " + i + " of " + c);
                if (resumed != null) {
                    resumed.onEvaluation(Map.of("eval_loss", metrics.get(i).asDouble()), "eval_loss");
                    assertEquals(sched.lr(0), resumed.lr(0), "resumed copy at eval " + i);
                }
                if (i == 6) { // checkpoint through JSON, as scheduler.json stores it
                    ObjectMapper json = new ObjectMapper();
                    Map<String, Object> st = json.readValue(json.writeValueAsString(sched.state()),
                            new com.fasterxml.jackson.core.type.TypeReference<Map<String, Object>>() { });
                    resumed = new LrScheduler(s);
                    resumed.restore(st);
                    assertEquals(sched.state(), resumed.state());
                }
            }
        }
    }

    @Test
    void kwargsAreCheckedPerType() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LrSchedule.of("cosine", 1e-4, 10, 0, 0, Map.of("min_lr_rate", 0.1)));
        assertTrue(e.getMessage().contains("min_lr_rate") && e.getMessage().contains("num_cycles"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LrSchedule.of("cosine_with_min_lr", 1e-4, 10, 0, 0, Map.of()));
        assertTrue(e.getMessage().contains("min_lr_rate"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LrSchedule.of("warmup_stable_decay", 1e-4, 10, 0, 0, Map.of()));
        assertTrue(e.getMessage().contains("num_decay_steps"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LrSchedule.of("polynomial", 1e-8, 10, 0, 0, Map.of()));
        assertTrue(e.getMessage().contains("lr_end"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LrSchedule.of("warmup_stable_decay", 1e-4, 10, 0, 0,
                Map.of("num_decay_steps", 2, "decay_type", "exp")));
        assertTrue(e.getMessage().contains("decay_type"), e.getMessage());
        // numbers from key=value overrides arrive as strings
        LrSchedule s = LrSchedule.of("cosine_with_min_lr", 1.0, 10, 0, 0, Map.of("min_lr_rate", "0.25"));
        assertEquals(0.25, s.multiplier(10), 1e-12);
    }
}
