package io.sftnative.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.sftnative.testing.Shared;

/**
 * Every named template, reasoning option and tool format against LLaMA-Factory's own template code: the elements
 * tokenized one by one for each (source, target) pair, recorded by tools/golden/gen_lf_template_golden.py (which runs
 * LLaMA-Factory's template.py, formatter.py and tool_utils.py with a recording tokenizer).
 */
class LlamaFactoryTemplateGoldenTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private Supplier<LocalDate> savedToday;

    @BeforeEach
    void pinDate() throws IOException {
        savedToday = ToolFormat.today;
        LocalDate date = LocalDate.parse(golden().get("llama3_date").asText());
        ToolFormat.today = () -> date;
    }

    @AfterEach
    void restoreDate() {
        ToolFormat.today = savedToday;
    }

    private static JsonNode golden() throws IOException {
        try (InputStream in = LlamaFactoryTemplateGoldenTest.class.getResourceAsStream(
                "/golden/template/llamafactory.json")) {
            return JSON.readTree(in);
        }
    }

    @Test
    void syntheticConversationsMatchLlamaFactory() throws IOException {
        int checked = 0;
        int refused = 0;
        for (JsonNode c : golden().get("cases")) {
            if (c.has("demo_index")) {
                continue;
            }
            List<Message> messages = new ArrayList<>();
            for (JsonNode m : c.get("messages")) {
                messages.add(new Message(Role.valueOf(m.get(0).asText().toUpperCase(Locale.ROOT)),
                        m.get(1).asText()));
            }
            refused += check(c, messages, text(c.get("system")), text(c.get("tools")));
            checked++;
        }
        assertTrue(checked > 500, "cases checked: " + checked);
        assertTrue(refused > 10, "refusals checked: " + refused);
    }

    /**
     * baichuan and baichuan2, which LLaMA-Factory removed on 2026-01-09 (commit 5cccaeec8, "clean obsolete models"),
     * against the last template.py that registers them (llamafactory_obsolete.json, same generator).
     */
    @Test
    void removedBaichuanTemplatesMatchTheirLastLlamaFactoryVersion() throws IOException {
        JsonNode golden;
        try (InputStream in = LlamaFactoryTemplateGoldenTest.class.getResourceAsStream(
                "/golden/template/llamafactory_obsolete.json")) {
            golden = JSON.readTree(in);
        }
        int checked = 0;
        for (JsonNode c : golden.get("cases")) {
            List<Message> messages = new ArrayList<>();
            for (JsonNode m : c.get("messages")) {
                messages.add(new Message(Role.valueOf(m.get(0).asText().toUpperCase(Locale.ROOT)),
                        m.get(1).asText()));
            }
            assertEquals(0, check(c, messages, text(c.get("system")), text(c.get("tools"))), c.toString());
            checked++;
        }
        assertEquals(18, checked, "baichuan and baichuan2, 9 conversations each");
    }

    /** LLaMA-Factory's glaive tool-call demo conversations (from ../shared) in every tool format. */
    @Test
    void glaiveToolCallsMatchLlamaFactory() throws IOException {
        Path demo = Shared.require("data/llamafactory-demo/glaive_toolcall_en_demo.json");
        JsonNode records = JSON.readTree(demo.toFile());
        int checked = 0;
        for (JsonNode c : golden().get("cases")) {
            if (!c.has("demo_index")) {
                continue;
            }
            JsonNode r = records.get(c.get("demo_index").asInt());
            List<Message> messages = new ArrayList<>();
            for (JsonNode m : r.get("conversations")) {
                Role role = switch (m.get("from").asText()) {
                    case "human" -> Role.USER;
                    case "gpt" -> Role.ASSISTANT;
                    case "function_call" -> Role.FUNCTION;
                    case "observation" -> Role.OBSERVATION;
                    default -> throw new IllegalStateException(m.toString());
                };
                messages.add(new Message(role, m.get("value").asText()));
            }
            String tools = r.path("tools").asText("");
            check(c, messages, null, tools.isEmpty() ? null : tools);
            checked++;
        }
        assertTrue(checked >= 5 * 14 * 3, "cases checked: " + checked);
    }

    /** Chat / predict prompts of reasoning templates: LLaMA-Factory's encode_oneturn. */
    @Test
    void oneturnPromptsMatchLlamaFactory() throws IOException {
        int checked = 0;
        for (JsonNode c : golden().get("oneturn")) {
            List<Message> messages = new ArrayList<>();
            for (JsonNode m : c.get("messages")) {
                messages.add(new Message(Role.valueOf(m.get(0).asText().toUpperCase(Locale.ROOT)),
                        m.get(1).asText()));
            }
            JsonNode o = c.get("options");
            SlotTemplate t = (SlotTemplate) Templates.resolve(new TemplateOptions(c.get("template").asText(), null,
                    null, o.has("enable_thinking") ? o.get("enable_thinking").asBoolean() : null,
                    o.path("preserve_thinking").asBoolean(false), false), null);
            List<List<Object>> pair = t.oneturnElements(messages, text(c.get("system")), null);
            ArrayNode ours = JsonNodeFactory.instance.arrayNode();
            ours.add(segments(pair.get(0)));
            ours.add(segments(pair.get(1)));
            assertEquals(c.get("pair"), ours, c.get("template").asText() + " " + o + " " + c.get("messages"));
            checked++;
        }
        assertEquals(18, checked);
    }

    /** Returns 1 when LLaMA-Factory refuses the case (and sft-native then must too), else 0. */
    private static int check(JsonNode c, List<Message> messages, String system, String tools) {
        JsonNode o = c.get("options");
        TemplateOptions options = new TemplateOptions(c.get("template").asText(), null,
                o.has("tool_format") ? o.get("tool_format").asText() : null,
                o.has("enable_thinking") ? o.get("enable_thinking").asBoolean() : null,
                o.path("preserve_thinking").asBoolean(false), o.path("mask_history").asBoolean(false));
        SlotTemplate t = (SlotTemplate) Templates.resolve(options, null);
        String what = c.get("template").asText() + " " + o + " " + c.get("conversation").asText();
        if (c.has("error")) {
            assertThrows(TemplateException.class, () -> t.turnElements(messages, system, tools),
                    what + ": LLaMA-Factory refuses it (" + c.get("error").asText() + ")");
            return 1;
        }
        List<List<Object>> elements = t.turnElements(messages, system, tools);
        ArrayNode pairs = JsonNodeFactory.instance.arrayNode();
        for (int i = 0; i < elements.size(); i += 2) {
            ArrayNode pair = pairs.addArray();
            pair.add(segments(elements.get(i)));
            pair.add(segments(elements.get(i + 1)));
        }
        assertEquals(c.get("pairs"), pairs, what);
        return 0;
    }

    private static ArrayNode segments(List<Object> elements) {
        ArrayNode out = JsonNodeFactory.instance.arrayNode();
        for (Object e : elements) {
            ObjectNode seg = JsonNodeFactory.instance.objectNode();
            switch (e) {
                case String s -> {
                    if (s.isEmpty()) {
                        continue; // LLaMA-Factory tokenizes nothing for an empty string
                    }
                    seg.put("text", s);
                }
                case Slot.Bos b -> seg.put("bos", true);
                case Slot.Eos x -> seg.put("eos", true);
                case Slot.Token k -> seg.put("token", k.token());
                default -> throw new IllegalStateException(String.valueOf(e));
            }
            out.add(seg);
        }
        return out;
    }

    private static String text(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText();
    }
}
