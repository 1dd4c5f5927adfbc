package io.sftnative.cli;

import static io.sftnative.testing.Cli.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.testing.Cli.Run;
import io.sftnative.testing.Shared;
import io.sftnative.testing.TempDatasetCache;

/** The template keys through a config, as a LLaMA-Factory user writes them. */
@ExtendWith(TempDatasetCache.class)
class PreflightTemplateKeysTest {
    @TempDir
    Path dir;

    @Test
    void reasoningAndToolKeysWorkThroughTheConfig() throws Exception {
        Path tok = Shared.require("assets/tokenizers/qwen3");
        Path data = Shared.require("data/llamafactory-demo");
        Path yaml = dir.resolve("qwen3.yaml");
        Files.writeString(yaml, "model_name_or_path: " + tok + "\nstage: sft\ndataset: glaive_toolcall_en_demo\n"
                + "dataset_dir: " + data + "\ntemplate: qwen3\nenable_thinking: false\ncutoff_len: 1024\n"
                + "max_samples: 8\n");
        Run r = run("preflight", yaml.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("template qwen3"), r.out());
        assertTrue(r.out().contains("kept 8, dropped 0"), r.out());
        assertTrue(r.out().contains("<|im_start|>assistant\n<think>\n\n</think>\n\n»"),
                "the empty thought is prompt: " + r.out());

        Run llama = run("preflight", yaml.toString(), "template=qwen", "tool_format=llama3");
        assertEquals(0, llama.code(), llama.err());
        assertTrue(llama.out().contains("Cutting Knowledge Date"), llama.out());

        Run auto = run("preflight", yaml.toString(), "template=auto", "tool_format=qwen");
        assertEquals(1, auto.code());
        assertTrue(auto.err().contains("tool_format 'qwen' applies to named templates"), auto.err());

        Run bad = run("preflight", yaml.toString(), "tool_format=hermes");
        assertEquals(1, bad.code());
        assertTrue(bad.err().contains("unknown tool_format 'hermes'"), bad.err());
    }

    @Test
    void openaiFormattingThroughDatasetInfo() throws Exception {
        Path tok = Shared.require("assets/tokenizers/qwen3");
        Files.writeString(dir.resolve("dataset_info.json"), """
                {"chats": {"file_name": "chats.jsonl", "formatting": "openai",
                  "columns": {"messages": "messages", "tools": "tools"},
                  "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                           "assistant_tag": "assistant", "observation_tag": "tool", "function_tag": "function",
                           "system_tag": "system"}}}
                """);
        Files.writeString(dir.resolve("chats.jsonl"), """
                {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}, \
                {"role": "assistant", "content": "Hello"}]}
                {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": null, \
                "tool_calls": [{"id": "1", "type": "function", "function": {"name": "get_weather", \
                "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "sunny"}, \
                {"role": "assistant", "content": "Sunny."}], "tools": [{"type": "function", "function": \
                {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}
                """);
        Run r = run("preflight", "model_name_or_path=" + tok, "dataset=chats", "dataset_dir=" + dir,
                "template=qwen3_nothink", "--show", "1");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("kept 2, dropped 0"), r.out());
        assertTrue(r.out().contains("{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"), r.out());
        assertTrue(r.out().contains("<tool_response>\nsunny\n</tool_response>"), r.out());
    }
}
