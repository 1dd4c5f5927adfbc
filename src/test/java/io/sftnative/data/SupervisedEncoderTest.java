package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.sftnative.data.SupervisedEncoder.Encoded;
import io.sftnative.data.SupervisedEncoder.Masking;
import io.sftnative.template.EncodedPair;

/** Exact ids and labels for every masking option, on hand-built turns (spec section 3). */
class SupervisedEncoderTest {
    static final int X = SupervisedEncoder.IGNORE_INDEX;
    static final int EOS = 99;
    // turn 0: source 1 2 3, target 4 5; turn 1: source 6 7, target 8 9 10
    static final List<EncodedPair> TWO_TURNS = List.of(
            new EncodedPair(new int[] {1, 2, 3}, new int[] {4, 5}),
            new EncodedPair(new int[] {6, 7}, new int[] {8, 9, 10}));

    static Encoded enc(int cutoff, boolean trainOnPrompt, boolean maskHistory, boolean efficientEos) {
        return SupervisedEncoder.encode(TWO_TURNS, cutoff, new Masking(trainOnPrompt, maskHistory, efficientEos),
                EOS);
    }

    @Test
    void defaultMasksEveryPrompt() {
        Encoded e = enc(100, false, false, false);
        assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, e.ids());
        assertArrayEquals(new int[] {X, X, X, 4, 5, X, X, 8, 9, 10}, e.labels());
        assertFalse(e.truncated());
    }

    @Test
    void trainOnPromptLabelsEverything() {
        Encoded e = enc(100, true, false, false);
        assertArrayEquals(e.ids(), e.labels());
    }

    @Test
    void maskHistoryTrainsOnlyTheLastTurn() {
        Encoded e = enc(100, false, true, false);
        assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, e.ids(), "turn order is kept");
        assertArrayEquals(new int[] {X, X, X, X, X, X, X, 8, 9, 10}, e.labels());
    }

    @Test
    void efficientEosLabelsTheNextPromptsFirstTokenAndAppendsOneEos() {
        Encoded e = enc(100, false, false, true);
        assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, EOS}, e.ids());
        assertArrayEquals(new int[] {X, X, X, 4, 5, EOS, X, 8, 9, 10, EOS}, e.labels());
    }

    @Test
    void efficientEosWithMaskHistoryFollowsTheReversedTurnIndex() {
        // With mask_history the turns are visited last-first: the earlier turn is t = 1, so its first prompt token
        // carries EOS and its target is masked (LLaMA-Factory's exact behaviour).
        Encoded e = enc(100, false, true, true);
        assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, EOS}, e.ids());
        assertArrayEquals(new int[] {EOS, X, X, X, X, X, X, 8, 9, 10, EOS}, e.labels());
    }

    @Test
    void invalidCombinationsAreErrors() {
        assertThrows(DataException.class, () -> new Masking(true, true, false));
        assertThrows(DataException.class, () -> new Masking(true, false, true));
    }

    @Test
    void inferSeqlenFollowsTheSpec() {
        assertArrayEquals(new int[] {6, 2}, SupervisedEncoder.inferSeqlen(10, 2, 8), "2T < C: cut the source");
        assertArrayEquals(new int[] {2, 6}, SupervisedEncoder.inferSeqlen(2, 10, 8), "2S < C: cut the target");
        assertArrayEquals(new int[] {3, 3}, SupervisedEncoder.inferSeqlen(5, 5, 6), "both: int(6 * 5/10) = 3");
        assertArrayEquals(new int[] {5, 2}, SupervisedEncoder.inferSeqlen(7, 5, 7), "int(7 * 5/12) = int(2.92) = 2");
    }

    @Test
    void cutoffKeepsHeadsAndDropsLaterTurns() {
        // budget 5: turn 0 takes 3 + 2, turn 1 gets nothing
        Encoded e = enc(5, false, false, false);
        assertArrayEquals(new int[] {1, 2, 3, 4, 5}, e.ids());
        assertArrayEquals(new int[] {X, X, X, 4, 5}, e.labels());
        assertTrue(e.truncated());
        // budget 4: infer_seqlen(3, 2, 4): 2T = 4 is not < 4, 2S = 6 is not < 4 -> maxT = int(4 * 2/5) = 1
        Encoded f = enc(4, false, false, false);
        assertArrayEquals(new int[] {1, 2, 3, 4}, f.ids());
        assertArrayEquals(new int[] {X, X, X, 4}, f.labels());
        // mask_history gives the last turn the budget first: it keeps 2 + 3, the earlier turn is dropped
        Encoded g = enc(5, false, true, false);
        assertArrayEquals(new int[] {6, 7, 8, 9, 10}, g.ids());
        assertArrayEquals(new int[] {X, X, 8, 9, 10}, g.labels());
        // efficient_eos reserves one token for the final EOS
        Encoded h = enc(6, false, false, true);
        assertArrayEquals(new int[] {1, 2, 3, 4, 5, EOS}, h.ids());
        assertArrayEquals(new int[] {X, X, X, 4, 5, EOS}, h.labels());
    }
}
