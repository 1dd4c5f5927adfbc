package io.sftnative.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;

import org.junit.jupiter.api.Test;

class NearestNameTest {
    @Test
    void distances() {
        assertEquals(0, NearestName.levenshtein("lora_rank", "lora_rank"));
        assertEquals(3, NearestName.levenshtein("kitten", "sitting"));
        assertEquals(5, NearestName.levenshtein("", "alpha"));
    }

    @Test
    void nearestWithinTheLimitFirstOfEqualsWins() {
        List<String> keys = List.of("learning_rate", "lora_rank", "lora_alpha");
        assertEquals("learning_rate", NearestName.of("learning_rat", keys, 3));
        assertEquals("lora_rank", NearestName.of("lora_ran", keys, 1));
        assertNull(NearestName.of("lora_r", keys, 2)); // 3 edits from lora_rank
        assertEquals("ab", NearestName.of("a", List.of("ab", "ac"), 1)); // tie: iteration order
        assertEquals("ac", NearestName.of("a", List.of("ac", "ab"), 1));
        assertNull(NearestName.of("x", List.of(), 10));
    }
}
