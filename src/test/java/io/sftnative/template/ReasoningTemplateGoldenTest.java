package io.sftnative.template;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.testing.Shared;
import io.sftnative.tokenizer.Tokenizer;

/**
 * The qwen3 reasoning template against Qwen3's own Jinja chat template (goldens rendered by jinja2 with
 * tools/golden/gen_template_golden.py), and {@code template: auto} with chat_template.jinja and enable_thinking.
 */
class ReasoningTemplateGoldenTest {
    private static final Pattern THOUGHT = Pattern.compile("<think>\n.*?\n</think>\n\n", Pattern.DOTALL);

    private static TemplateOptions qwen3(Boolean enableThinking, boolean maskHistory) {
        return new TemplateOptions("qwen3", null, null, enableThinking, false, maskHistory);
    }

    private static Boolean enableThinking(TemplateGoldenTest.Case c) {
        return (Boolean) c.kwargs().get("enable_thinking");
    }

    /** One turn: the same text and ids; the empty thought is trained (enable_thinking) or in the prompt (off). */
    @Test
    void singleTurnsMatchQwen3ChatTemplate() throws IOException {
        try (Tokenizer tok = TemplateGoldenTest.tokenizer("qwen3")) {
            int checked = 0;
            for (TemplateGoldenTest.Case c : TemplateGoldenTest.cases("qwen3")) {
                if (c.messages().size() != 2 || c.tools() != null || !c.namedEqual()) {
                    continue;
                }
                Boolean thinking = enableThinking(c);
                Template t = Templates.resolve(qwen3(thinking, false), tok);
                assertEquals(c.full(), t.render(tok, c.messages(), c.system(), null), c.name());
                List<EncodedPair> pairs = t.encodeMultiturn(tok, c.messages(), c.system(), null);
                assertArrayEquals(tok.encode(c.full()), TemplateGoldenTest.concat(pairs), c.name() + ": ids");
                String source = tok.decode(pairs.get(0).source(), false);
                String target = tok.decode(pairs.get(0).target(), false);
                boolean hasThought = c.messages().get(1).content().contains("<think>");
                if (Boolean.FALSE.equals(thinking)) {
                    // the prompt is Qwen3's generation prompt with enable_thinking=False: the empty thought is not
                    // trained
                    assertEquals(c.prompts().get(0), source, c.name());
                } else {
                    assertEquals(c.prompts().get(0), source, c.name());
                    assertTrue(hasThought || target.startsWith("<think>\n\n</think>\n\n"), c.name() + ": " + target);
                }
                checked++;
            }
            assertTrue(checked >= 5, "checked " + checked);
        }
    }

    /**
     * Several turns: LLaMA-Factory keeps each earlier answer's thought (an empty one when it had none), where Qwen3's
     * template drops thoughts before the last user turn; with mask_history (and no preserve_thinking) LLaMA-Factory
     * drops them too and the texts are equal.
     */
    @Test
    void multiTurnDiffersOnlyInEarlierThoughts() throws IOException {
        try (Tokenizer tok = TemplateGoldenTest.tokenizer("qwen3")) {
            int checked = 0;
            for (TemplateGoldenTest.Case c : TemplateGoldenTest.cases("qwen3")) {
                if (c.messages().size() < 4 || c.tools() != null) {
                    continue;
                }
                Boolean thinking = enableThinking(c);
                String ours = Templates.resolve(qwen3(thinking, false), tok).render(tok, c.messages(), c.system(),
                        null);
                assertEquals(c.full(), withoutEarlierThoughts(ours, c.messages().size() / 2 - 1), c.name());
                String masked = Templates.resolve(qwen3(thinking, true), tok).render(tok, c.messages(), c.system(),
                        null);
                assertEquals(c.full(), masked, c.name() + " with mask_history");
                checked++;
            }
            assertTrue(checked >= 4, "checked " + checked);
        }
    }

    private static String withoutEarlierThoughts(String text, int count) {
        Matcher m = THOUGHT.matcher(text);
        StringBuilder sb = new StringBuilder();
        int removed = 0;
        while (removed < count && m.find()) {
            m.appendReplacement(sb, "");
            removed++;
        }
        m.appendTail(sb);
        return sb.toString();
    }

    /** transformers' rule: chat_template.jinja takes priority over tokenizer_config.json's chat_template. */
    @Test
    void autoReadsChatTemplateJinjaAndPassesEnableThinking(@TempDir Path dir) throws IOException {
        Path shared = Shared.require("assets/tokenizers/qwen3");
        String jinja;
        try (Tokenizer tok = Tokenizer.load(shared)) {
            jinja = tok.config().chatTemplate();
        }
        Files.copy(shared.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(
                shared.resolve("tokenizer_config.json").toFile());
        config.put("chat_template", "{{ 'not the model template' }}"); // chat_template.jinja must win
        json.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        Files.writeString(dir.resolve("chat_template.jinja"), jinja);
        try (Tokenizer tok = Tokenizer.load(dir)) {
            int checked = 0;
            for (TemplateGoldenTest.Case c : TemplateGoldenTest.cases("qwen3")) {
                Boolean thinking = enableThinking(c);
                JinjaTemplate auto = (JinjaTemplate) Templates.resolve(
                        new TemplateOptions("auto", null, null, thinking, false, false), tok);
                assertEquals(c.full(), auto.render(tok, c.messages(), c.system(), c.tools()), c.name());
                for (int k = 0; k < c.prompts().size(); k++) {
                    assertEquals(c.prompts().get(k), auto.renderPrompt(tok, c.messages().subList(0, 2 * k + 1),
                            c.system(), c.tools()), c.name() + ": prompt " + k);
                }
                checked++;
            }
            assertTrue(checked >= 10, "checked " + checked);
        }
    }
}
