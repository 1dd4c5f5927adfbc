package io.sftnative.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;

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
                () -> LrSchedule.of("polynomial", 1e-4, 10, 0, 0));
        assertTrue(e.getMessage().contains("lr_scheduler_type"), e.getMessage());
    }
}
