package io.sftnative.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SftConfigTest {
    @TempDir
    Path dir;

    @Test
    void readsYamlAndOverridesWin() throws Exception {
        Path yaml = dir.resolve("c.yaml");
        Files.writeString(yaml, """
                model_name_or_path: /models/qwen
                stage: sft
                finetuning_type: lora
                lora_rank: 16
                learning_rate: 1.0e-4
                dataset: alpaca_en_demo,identity
                cutoff_len: 1024
                report_to: none
                trust_remote_code: true
                """);
        List<String> warnings = new ArrayList<>();
        SftConfig c = SftConfig.load(yaml, List.of("lora_rank=4", "max_steps=10"), warnings::add);
        assertEquals("/models/qwen", c.model().modelNameOrPath());
        assertEquals(4, c.finetuning().loraRank());
        assertEquals(8.0, c.finetuning().loraAlpha(), 0.0, "alpha defaults to 2 * the final rank");
        assertEquals(1e-4, c.training().learningRate(), 0.0);
        assertEquals(10, c.training().maxSteps());
        assertEquals(List.of("alpaca_en_demo", "identity"), c.data().dataset());
        assertEquals(List.of("all"), c.finetuning().loraTarget());
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).contains("trust_remote_code"));
    }

    @Test
    void unknownKeyNamesNearestValidKey() throws Exception {
        Path yaml = dir.resolve("c.yaml");
        Files.writeString(yaml, "lora_rnak: 8\n");
        ConfigException e = assertThrows(ConfigException.class, () -> SftConfig.load(yaml, List.of(), w -> {}));
        assertTrue(e.getMessage().contains("'lora_rnak'"), e.getMessage());
        assertTrue(e.getMessage().contains("did you mean 'lora_rank'"), e.getMessage());
        assertTrue(e.getMessage().contains(yaml.toString()), e.getMessage());
    }

    @Test
    void badValuesAndFilesGiveClearErrors() throws Exception {
        assertThrows(ConfigException.class, () -> SftConfig.load(null, List.of("lora_rank=eight"), w -> {}));
        assertThrows(ConfigException.class, () -> SftConfig.load(null, List.of("finetuning_type=qlora"), w -> {}));
        assertThrows(ConfigException.class, () -> SftConfig.load(null, List.of("nonsense"), w -> {}));
        assertThrows(ConfigException.class, () -> SftConfig.load(dir.resolve("missing.yaml"), List.of(), w -> {}));
        Path broken = dir.resolve("broken.yaml");
        Files.writeString(broken, "a: [1, 2\nb: 3\n");
        ConfigException e = assertThrows(ConfigException.class, () -> SftConfig.load(broken, List.of(), w -> {}));
        assertTrue(e.getMessage().contains("line"), e.getMessage());
        assertThrows(ConfigException.class,
                () -> SftConfig.load(null, List.of("train_on_prompt=true", "mask_history=true"), w -> {}));
    }

    @Test
    void packingDefaultsFollowStage() {
        SftConfig c = SftConfig.load(null, List.of(), w -> {});
        assertTrue(c.data().packingFor("pt"));
        assertFalse(c.data().packingFor("sft"));
        assertTrue(SftConfig.load(null, List.of("neat_packing=true"), w -> {}).data().packingFor("sft"));
    }

    @Test
    void deviceKeyTakesAutoCpuCudaOrCudaN() {
        assertEquals("auto", SftConfig.load(null, List.of(), w -> {}).model().device());
        assertEquals("cpu", SftConfig.load(null, List.of("device=cpu"), w -> {}).model().device());
        assertEquals("CUDA:1", SftConfig.load(null, List.of("device= CUDA:1 "), w -> {}).model().device(),
                "kept as written (trimmed); the runtime canonicalises it");
        ConfigException e = assertThrows(ConfigException.class,
                () -> SftConfig.load(null, List.of("device=gpu"), w -> {}));
        assertTrue(e.getMessage().startsWith("key 'device' ("), e.getMessage());
        assertTrue(e.getMessage().contains("must be auto, cpu, cuda or cuda:N") && e.getMessage().contains("'gpu'"),
                e.getMessage());
        e = assertThrows(ConfigException.class, () -> SftConfig.load(null, List.of("device=cuda:-1"), w -> {}));
        assertTrue(e.getMessage().contains("'cuda:-1'"), e.getMessage());
    }
}
