package io.sftnative.cli;

import static io.sftnative.testing.Cli.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.nio.file.Path;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.testing.Cli.Run;
import io.sftnative.torch.TorchRuntime;

class ModelCommandsTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/model");

    @Test
    void infoPrintsArchitectureParametersDtypeAndMemory() {
        Run r = run("info", GOLDEN.resolve("llama_gqa/checkpoint").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("LlamaForCausalLM"), r.out());
        assertTrue(r.out().contains("4 query heads, 2 key/value heads (GQA)"), r.out());
        assertTrue(r.out().contains("llama3 scaling x8.0"), r.out());
        assertTrue(r.out().contains("parameters:     119,104"), r.out());
        assertTrue(r.out().contains("F32 on disk"), r.out());
        assertTrue(r.out().contains("memory:"), r.out());
    }

    @Test
    void generateContinuesIdsLikeTheReference() throws Exception {
        JsonNode gen = new ObjectMapper().readTree(GOLDEN.resolve("llama_gqa/expected.json").toFile()).get("generate");
        String prompt = StreamSupport.stream(gen.get("prompts").get(0).spliterator(), false).map(JsonNode::asText)
                .collect(Collectors.joining(","));
        String expected = StreamSupport.stream(gen.get("greedy").get(0).spliterator(), false).map(JsonNode::asText)
                .collect(Collectors.joining(" "));
        Run r = run("generate", GOLDEN.resolve("llama_gqa/checkpoint").toString(), "--ids", prompt, "--ids", "7,8",
                "--greedy", "--max-new-tokens", "12", "--stop-ids", "-1", "--threads", "2");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(2, lines.length, r.out());
        assertEquals(expected, lines[0]);

        Run onCpu = run("generate", GOLDEN.resolve("llama_gqa/checkpoint").toString(), "--ids", prompt, "--ids", "7,8",
                "--greedy", "--max-new-tokens", "12", "--stop-ids", "-1", "--threads", "2", "--device", "cpu");
        assertEquals(0, onCpu.code(), onCpu.err());
        assertEquals(r.out(), onCpu.out(), "--device cpu is what the default picks on this machine");
    }

    @Test
    void aGpuThatIsNotThereIsOneClearLine() {
        assumeFalse(TorchRuntime.info().cuda(), "needs a process without a usable GPU");
        Run r = run("generate", GOLDEN.resolve("llama_gqa/checkpoint").toString(), "--ids", "1,2", "--threads", "2",
                "--device", "cuda");
        assertEquals(1, r.code(), r.out());
        assertTrue(r.err().startsWith("error: device is 'cuda' but no GPU can be used: "), r.err());
        assertTrue(r.err().contains("Set device to cpu"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertEquals("", r.out());
        r = run("generate", GOLDEN.resolve("llama_gqa/checkpoint").toString(), "--ids", "1,2", "--device", "gpu");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("error: device must be auto, cpu, cuda or cuda:N"), r.err());
    }

    @Test
    void badInputsGiveOneClearLine() {
        Run r = run("generate", GOLDEN.resolve("llama_gqa/checkpoint").toString(), "--ids", "1,x", "--threads", "2");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("error: --ids must be comma-separated token ids, got 'x'"), r.err());
        r = run("info", "/nonexistent/model");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("config.json"), r.err());
    }
}
