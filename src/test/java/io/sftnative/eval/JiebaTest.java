package io.sftnative.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sftnative.testing.Shared;
import org.junit.jupiter.api.Test;

/** Segmentation against Python jieba 0.42.1 (golden written by tools/golden/gen_metrics_golden.py). */
class JiebaTest {
    static JsonNode golden(String name) throws Exception {
        try (InputStream in = JiebaTest.class.getResourceAsStream("/golden/eval/" + name)) {
            return new ObjectMapper().readTree(in);
        }
    }

    @Test
    void matchesPythonJiebaOnHandWrittenTexts() throws Exception {
        for (JsonNode c : golden("jieba.json").get("hand")) {
            List<String> want = new ArrayList<>();
            c.get("tokens").forEach(t -> want.add(t.asText()));
            assertEquals(want, Jieba.shared().cut(c.get("text").asText()), "text: " + c.get("text"));
        }
    }

    @Test
    void matchesPythonJiebaOnDemoData() throws Exception {
        Path demo = Shared.require("data/llamafactory-demo");
        ObjectMapper json = new ObjectMapper();
        JsonNode golden = golden("jieba.json").get("shared");
        assertTrue(golden.size() >= 700);
        int mismatches = 0;
        List<String> firstFailures = new ArrayList<>();
        JsonNode rows = null;
        String rowsFile = null;
        for (JsonNode c : golden) {
            if (!c.get("file").asText().equals(rowsFile)) {
                rowsFile = c.get("file").asText();
                rows = json.readTree(demo.resolve(rowsFile).toFile());
            }
            String text = rows.get(c.get("index").asInt()).get(c.get("field").asText()).asText();
            List<Integer> want = new ArrayList<>();
            c.get("token_lengths").forEach(n -> want.add(n.asInt()));
            List<Integer> got = Jieba.shared().cut(text).stream().map(t -> t.codePointCount(0, t.length())).toList();
            if (!want.equals(got)) {
                mismatches++;
                if (firstFailures.size() < 3) {
                    firstFailures.add(rowsFile + "#" + c.get("index") + "." + c.get("field") + ": " + text);
                }
            }
        }
        assertEquals(0, mismatches, "texts segmented differently from Python jieba: " + firstFailures);
    }
}
