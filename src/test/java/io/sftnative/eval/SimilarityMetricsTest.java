package io.sftnative.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sftnative.testing.Shared;
import org.junit.jupiter.api.Test;

/**
 * LLaMA-Factory's ComputeSimilarity against the reference (jieba + nltk's sentence_bleu + rouge-chinese's scoring):
 * golden from tools/golden/gen_metrics_golden.py.
 */
class SimilarityMetricsTest {
    private static final String[] KEYS = {"rouge-1", "rouge-2", "rouge-l", "bleu-4"};

    private static double[] values(SimilarityMetrics.Example e) {
        return new double[] {e.rouge1(), e.rouge2(), e.rougeL(), e.bleu4()};
    }

    @Test
    void handWrittenPairsMatchTheReference() throws Exception {
        SimilarityMetrics m = new SimilarityMetrics();
        double[] sums = new double[4];
        JsonNode hand = JiebaTest.golden("similarity.json").get("hand");
        for (JsonNode c : hand) {
            String pred = c.get("pred").asText();
            String label = c.get("label").asText();
            SimilarityMetrics.Example e = m.add(pred, label);
            double[] got = values(e);
            for (int i = 0; i < 4; i++) {
                assertEquals(c.get("rounded").get(KEYS[i]).asDouble(), got[i], 0.0, KEYS[i] + " of " + c);
                sums[i] += got[i];
            }
            // unrounded: BLEU through its own entry point, ROUGE through Rouge
            assertEquals(c.get("raw").get("bleu-4").asDouble(), Bleu.charBleu4(pred, label), 1e-15, "bleu " + c);
        }
        Map<String, Double> result = m.result();
        assertEquals(java.util.List.of(KEYS), java.util.List.copyOf(result.keySet()));
        for (int i = 0; i < 4; i++) {
            assertEquals(sums[i] / hand.size(), result.get(KEYS[i]), 1e-9);
        }
    }

    @Test
    void demoDataPairsMatchTheReference() throws Exception {
        Path demo = Shared.require("data/llamafactory-demo");
        ObjectMapper json = new ObjectMapper();
        SimilarityMetrics m = new SimilarityMetrics();
        double maxRawError = 0;
        JsonNode rows = null;
        String rowsFile = null;
        int checked = 0;
        for (JsonNode c : JiebaTest.golden("similarity.json").get("shared")) {
            if (!c.get("file").asText().equals(rowsFile)) {
                rowsFile = c.get("file").asText();
                rows = json.readTree(demo.resolve(rowsFile).toFile());
            }
            int i = c.get("index").asInt();
            String a = rows.get(i).get("output").asText();
            String b = rows.get((i + 1) % (rowsFile.contains("_zh_") ? 300 : 60)).get("output").asText();
            String label = a;
            String pred = prefix(a, half(a)) + suffix(b, half(b));
            double[] got = values(m.score(pred, label));
            for (int k = 0; k < 4; k++) {
                assertEquals(c.get("rounded").get(KEYS[k]).asDouble(), got[k], 0.0,
                        KEYS[k] + " of " + rowsFile + "#" + i);
            }
            maxRawError = Math.max(maxRawError,
                    Math.abs(c.get("raw").get("bleu-4").asDouble() - Bleu.charBleu4(pred, label)));
            checked++;
        }
        assertEquals(360, checked);
        assertTrue(maxRawError < 1e-15, "BLEU differs from nltk by " + maxRawError);
    }

    private static int half(String s) {
        return s.codePointCount(0, s.length()) / 2;
    }

    private static String prefix(String s, int codePoints) {
        return s.substring(0, s.offsetByCodePoints(0, codePoints));
    }

    private static String suffix(String s, int fromCodePoint) {
        return s.substring(s.offsetByCodePoints(0, fromCodePoint));
    }

    @Test
    void nltkDocumentedExamples() {
        // from nltk's SmoothingFunction docstring: method3 on this pair gives 0.4118...
        String hyp = "It is a guide to action which ensures that the military always obeys the commands of the party";
        String ref = "It is a guide to action that ensures that the military will forever heed Party commands";
        assertEquals(0.4118, Bleu.sentenceBleu4(java.util.List.of(hyp.split(" ")), java.util.List.of(ref.split(" "))),
                1e-4);
        assertEquals(0.0, Bleu.charBleu4("", "abc"));
        assertEquals(0.0, Bleu.charBleu4("xyz", "abc")); // no unigram match
        assertEquals(1.0, Bleu.charBleu4("abcd", "abcd"), 1e-15);
    }

    @Test
    void rougeUsesDistinctNgramsAndPlainLcs() {
        Rouge.Scores s = Rouge.score("重复 重复 重复", "重复");
        assertEquals(2 * (1.0 * 1.0) / (2 + 1e-8), s.rouge1(), 1e-15); // one distinct unigram on each side
        assertEquals(0.0, s.rouge2());
        double p = 1.0 / 3;
        assertEquals(2 * (p * 1.0) / (p + 1.0 + 1e-8), s.rougeL(), 1e-15);
        assertEquals(java.util.List.of("你好 。", "世界 ！", "再见"), Rouge.sentences("你好 。世界 ！再见"));
    }

    @Test
    void blankTextsScoreZeroAndEmptyResultIsEmpty() {
        SimilarityMetrics m = new SimilarityMetrics();
        assertTrue(m.result().isEmpty());
        SimilarityMetrics.Example e = m.add(" \n ", "参考");
        assertEquals(0.0, e.rouge1());
        assertEquals(0.0, e.bleu4());
        assertEquals(1, m.count());
    }
}
