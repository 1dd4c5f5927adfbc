package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.template.Message;

/**
 * {@code formatting: openai} against LLaMA-Factory's own OpenAIDatasetConverter (goldens from
 * tools/golden/gen_lf_template_golden.py): tool_calls, joined tool messages, the system text, broken examples.
 */
class OpenAiConverterTest {
    @Test
    void convertsAsLlamaFactory() throws IOException {
        JsonNode golden;
        try (InputStream in = getClass().getResourceAsStream("/golden/template/llamafactory.json")) {
            golden = new ObjectMapper().readTree(in).get("openai");
        }
        JsonNode t = golden.get("tags");
        DatasetSpec.Tags tags = new DatasetSpec.Tags(t.get("role_tag").asText(), t.get("content_tag").asText(),
                t.get("user_tag").asText(), t.get("assistant_tag").asText(), t.get("observation_tag").asText(),
                t.get("function_tag").asText(), t.get("system_tag").asText());
        DatasetSpec.Columns columns = new DatasetSpec.Columns(null, null, null, null, "messages", null, "tools");
        int converted = 0;
        int dropped = 0;
        for (JsonNode c : golden.get("cases")) {
            JsonNode record = c.get("record");
            if (c.get("response").isEmpty()) { // LLaMA-Factory skips it: sft-native drops it with a reason
                assertThrows(DroppedException.class, () -> OpenAiConverter.convert(record, columns, tags),
                        record.toString());
                dropped++;
                continue;
            }
            Conversation conv = OpenAiConverter.convert(record, columns, tags);
            assertEquals(messages(c.get("prompt")), conv.prompt(), record.toString());
            assertEquals(messages(c.get("response")), conv.response(), record.toString());
            assertEquals(c.get("system").asText(), Objects.requireNonNullElse(conv.system(), ""), record.toString());
            assertEquals(c.get("tools").asText(), Objects.requireNonNullElse(conv.tools(), ""), record.toString());
            converted++;
        }
        assertEquals(5, converted);
        assertEquals(2, dropped);
    }

    private static List<Message> messages(JsonNode list) {
        List<Message> out = new ArrayList<>();
        for (JsonNode m : list) {
            out.add(new Message(io.sftnative.template.Role.valueOf(m.get(0).asText().toUpperCase()),
                    m.get(1).asText()));
        }
        return out;
    }
}
