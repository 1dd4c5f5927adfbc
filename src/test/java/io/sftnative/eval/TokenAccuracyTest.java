package io.sftnative.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class TokenAccuracyTest {
    @Test
    void shiftsAndMasksLikeLlamaFactory() {
        TokenAccuracy acc = new TokenAccuracy();
        // labels[1:] = (-100, 7, 8, 9) vs preds[:-1] = (5, 7, 0, 9): 2 of 3 targets right
        assertEquals(2.0 / 3, acc.add(new long[] {5, 7, 0, 9, 1}, new long[] {-100, -100, 7, 8, 9}), 1e-15);
        assertEquals(1.0, acc.add(new long[] {4, 0}, new long[] {-100, 4}));
        assertEquals((2.0 / 3 + 1.0) / 2, acc.result(), 1e-15);
        assertTrue(Double.isNaN(new TokenAccuracy().add(new long[] {1, 2}, new long[] {-100, -100})));
        assertThrows(IllegalArgumentException.class, () -> acc.add(new long[] {1}, new long[] {1, 2}));
    }
}
