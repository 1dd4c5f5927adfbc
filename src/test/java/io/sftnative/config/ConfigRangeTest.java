package io.sftnative.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 13: numbers never wrap, NaN never passes, a key given twice is never silent. */
class ConfigRangeTest {
    @TempDir
    Path tmp;

    static String error(Path yaml, String... overrides) {
        return assertThrows(ConfigException.class, () -> SftConfig.load(yaml, List.of(overrides), w -> {}))
                .getMessage();
    }

    @Test
    void integersOutOfRangeNameKeyValueAndRange() {
        String e = error(null, "max_steps=18446744073709551617");
        assertTrue(e.contains("key 'max_steps' (command line) is 18446744073709551617, out of range"), e);
        e = error(null, "per_device_train_batch_size=4294967300");
        assertTrue(e.contains("'per_device_train_batch_size'") && e.contains("4294967300")
                && e.contains("2147483647"), e);
        e = error(null, "cutoff_len=0");
        assertTrue(e.contains("key 'cutoff_len' (command line) is 0, out of range: it must be at least 1"), e);
        e = error(null, "lora_rank=2.5");
        assertTrue(e.contains("key 'lora_rank' (command line) must be a whole number, got '2.5'"), e);
        assertEquals(1000, SftConfig.load(null, List.of("max_steps=1e3"), w -> {}).training().maxSteps());
    }

    @Test
    void yamlIntegersTooLargeForTheKeyAreRangeErrors() throws Exception {
        Path yaml = Files.writeString(tmp.resolve("c.yaml"), "max_steps: 18446744073709551617\n");
        assertTrue(error(yaml).contains("key 'max_steps' (" + yaml + ") is 18446744073709551617, out of range"));
        yaml = Files.writeString(tmp.resolve("d.yaml"), "per_device_train_batch_size: 4294967300\n");
        assertTrue(error(yaml).contains("4294967300, out of range"));
    }

    @Test
    void nanAndInfinityAreRejectedByKey() throws Exception {
        Path yaml = Files.writeString(tmp.resolve("c.yaml"), "learning_rate: .nan\n");
        String e = error(yaml);
        assertTrue(e.contains("key 'learning_rate' (" + yaml + ") must be a finite number, got '.nan'"), e);
        assertTrue(error(null, "lora_dropout=NaN").contains("key 'lora_dropout' (command line) must be a finite"));
        assertTrue(error(null, "weight_decay=.inf").contains("key 'weight_decay' (command line) must be a finite"));
    }

    @Test
    void aKeyGivenTwiceNamesBothLines() throws Exception {
        Path yaml = Files.writeString(tmp.resolve("c.yaml"),
                "learning_rate: 1.0e-3\nlora_rank: 8\nlearning_rate: 2.0e-3\n");
        String e = error(yaml);
        assertTrue(e.contains("key 'learning_rate' is set twice, at line 1 and at line 3"), e);
    }

    @Test
    void anEmptyValueWarnsThatTheDefaultIsUsed() throws Exception {
        Path yaml = Files.writeString(tmp.resolve("c.yaml"), "learning_rate:\nlora_rank: 4\n");
        List<String> warnings = new ArrayList<>();
        SftConfig c = SftConfig.load(yaml, List.of(), warnings::add);
        assertEquals(5e-5, c.training().learningRate());
        assertTrue(warnings.stream().anyMatch(w -> w.contains("config key 'learning_rate' (" + yaml
                + ") has no value; its default is used")), warnings.toString());
    }
}
