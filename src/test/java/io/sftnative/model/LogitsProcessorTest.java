package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** HF logits-processor semantics on small hand-made rows (no libtorch needed). */
class LogitsProcessorTest {
    static final float NEG = Float.NEGATIVE_INFINITY;

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOnce() {
        float[] l = {2f, -2f, 1f, 4f};
        LogitsProcessor.repetitionPenalty(l, new long[] {0, 1, 0, 1, 3}, 5, 2f);
        assertArrayEquals(new float[] {1f, -4f, 1f, 2f}, l);
    }

    @Test
    void topKKeepsTiesAtTheKthValue() {
        float[] l = {1f, 3f, 2f, 3f, 0f};
        LogitsProcessor.topK(l, 2);
        assertArrayEquals(new float[] {NEG, 3f, NEG, 3f, NEG}, l);
        float[] m = {1f, 5f, 2f, 3f};
        LogitsProcessor.topK(m, 3);
        assertArrayEquals(new float[] {NEG, 5f, 2f, 3f}, m);
    }

    @Test
    void topPRemovesTheTailWhoseMassIsAtMostOneMinusP() {
        // probabilities 0.1, 0.2, 0.3, 0.4 (as logits of their logs)
        float[] l = {(float) Math.log(0.1), (float) Math.log(0.2), (float) Math.log(0.3), (float) Math.log(0.4)};
        float[] p75 = l.clone();
        LogitsProcessor.topP(p75, 0.75); // ascending cumulative 0.1, 0.3, 0.6, 1.0: only 0.1 <= 0.25
        assertArrayEquals(new float[] {NEG, l[1], l[2], l[3]}, p75);
        float[] p65 = l.clone();
        LogitsProcessor.topP(p65, 0.65); // 0.1 and 0.3 <= 0.35
        assertArrayEquals(new float[] {NEG, NEG, l[2], l[3]}, p65);
        float[] tiny = l.clone();
        LogitsProcessor.topP(tiny, 0.01); // always keeps the most likely token
        assertArrayEquals(new float[] {NEG, NEG, NEG, l[3]}, tiny);
    }

    @Test
    void argmaxTakesTheFirstOfEqualMaxima() {
        assertEquals(1, LogitsProcessor.argmax(new float[] {0f, 2f, 2f, -1f}));
    }
}
