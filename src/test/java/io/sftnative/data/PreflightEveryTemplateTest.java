package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.sftnative.template.Message;
import io.sftnative.template.Role;
import io.sftnative.template.Template;
import io.sftnative.template.TemplateOptions;
import io.sftnative.template.Templates;
import io.sftnative.testing.Shared;
import io.sftnative.tokenizer.Tokenizer;

/**
 * preflight's example view for every named template: the prompt is shown masked in «», the answers are trained, and a
 * reasoning template shows where its empty thought goes (trained with enable_thinking, masked without).
 */
class PreflightEveryTemplateTest {
    private static final List<Message> CONVERSATION = List.of(Message.user("What is 2+2?"), Message.assistant("4"),
            Message.user("Weather in Paris?"),
            new Message(Role.FUNCTION, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"),
            new Message(Role.OBSERVATION, "{\"temp\": 21}"), Message.assistant("It is 21 degrees."));
    private static final String TOOLS = "[{\"name\": \"get_weather\", \"description\": \"Weather of a city\","
            + " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},"
            + " \"required\": [\"city\"]}}]";

    @Test
    void everyTemplateShowsMaskedPromptsAndTrainedAnswers() {
        try (Tokenizer qwen3 = Tokenizer.load(Shared.require("assets/tokenizers/qwen3"));
                Tokenizer llama3 = Tokenizer.load(Shared.require("assets/tokenizers/llama3"));
                Tokenizer mistral = Tokenizer.load(Shared.require("assets/tokenizers/mistral"))) {
            int shown = 0;
            for (String name : Templates.names()) {
                if (name.startsWith("baichuan") || name.startsWith("chatglm")) {
                    continue; // their special tokens are not in these vocabularies
                }
                Tokenizer tok = name.startsWith("llama3") || name.equals("openchat-3.6") ? llama3
                        : name.contains("mistral") || name.equals("ministral") ? mistral : qwen3;
                String shownText = show(tok, Templates.named(name));
                assertTrue(shownText.startsWith("«"), name + ": the prompt is masked: " + shownText);
                assertTrue(shownText.contains("It is 21 degrees.") && !shownText.contains("«It is 21"),
                        name + ": the last answer is trained: " + shownText);
                assertTrue(shownText.contains("get_weather") && shownText.contains("Paris"),
                        name + ": the tool call is rendered: " + shownText);
                shown++;
            }
            assertTrue(shown >= 30, "templates shown: " + shown);

            String thinking = show(qwen3, Templates.resolve(new TemplateOptions("qwen3", null, null, null, false,
                    false), qwen3));
            assertTrue(thinking.contains("assistant\n»<think>\n\n</think>\n\n4<|im_end|>"), thinking);
            String notThinking = show(qwen3, Templates.resolve(new TemplateOptions("qwen3", null, null, false, false,
                    false), qwen3));
            assertTrue(notThinking.contains("assistant\n<think>\n\n</think>\n\n»4<|im_end|>"), notThinking);
        }
    }

    private static String show(Tokenizer tok, Template t) {
        var pairs = t.encodeMultiturn(tok, CONVERSATION, null, TOOLS);
        var enc = SupervisedEncoder.encode(pairs, 4096,
                new SupervisedEncoder.Masking(false, false, t.efficientEos()), t.eosId(tok));
        String shown = Preflight.showExample(tok, Example.of(enc.ids(), enc.labels()));
        System.out.println("== " + t.name() + "\n" + shown);
        return shown;
    }
}
