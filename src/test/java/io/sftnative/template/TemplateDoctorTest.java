package io.sftnative.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;

import org.junit.jupiter.api.Test;

import io.sftnative.testing.Shared;
import io.sftnative.tokenizer.Tokenizer;

class TemplateDoctorTest {
    @Test
    void matchingTemplatesPassAndMismatchesAreShown() {
        try (Tokenizer qwen = Tokenizer.load(Shared.require("assets/tokenizers/qwen2_5"));
                Tokenizer llama3 = Tokenizer.load(Shared.require("assets/tokenizers/llama3"));
                Tokenizer gpt2 = Tokenizer.load(Shared.require("assets/tokenizers/gpt2"))) {
            assertEquals(Optional.empty(), TemplateDoctor.check(Templates.named("qwen"), qwen));
            assertEquals(Optional.empty(), TemplateDoctor.check(Templates.named("llama3"), llama3),
                    "Llama-3's always-appended generation prompt is not a difference");
            assertEquals(Optional.empty(), TemplateDoctor.check(Templates.auto(qwen), qwen));
            assertEquals(Optional.empty(), TemplateDoctor.check(Templates.named("alpaca"), gpt2),
                    "no chat_template, nothing to compare");

            String w = TemplateDoctor.check(Templates.named("alpaca"), qwen).orElseThrow();
            assertTrue(w.contains("template 'alpaca'") && w.contains("<|im_start|>"), w);
            // chatml lacks Qwen's default system prompt, which the model's template inserts
            String c = TemplateDoctor.check(Templates.named("chatml"), qwen).orElseThrow();
            assertTrue(c.contains("You are Qwen"), c);
            String l = TemplateDoctor.check(Templates.named("qwen"), llama3).orElseThrow();
            assertTrue(l.contains("<|start_header_id|>"), l);

            // stop tokens for generation
            assertEquals(java.util.Set.of(128009, 128001), Templates.named("llama3").stopTokenIds(llama3),
                    "<|eom_id|> is Llama-3.1's; this Llama-3 vocabulary lacks it");
            assertEquals(java.util.Set.of(151645), Templates.named("qwen").stopTokenIds(qwen));
            assertEquals(java.util.Set.of(128001, 128009), Templates.auto(llama3).stopTokenIds(llama3));
            assertEquals(java.util.Set.of(151645), Templates.auto(qwen).stopTokenIds(qwen));
        }
    }

    /** Reasoning templates: compared on single turns (earlier thoughts are LLaMA-Factory's deliberate difference). */
    @Test
    void knowsTheReasoningTemplates() {
        try (Tokenizer qwen3 = Tokenizer.load(Shared.require("assets/tokenizers/qwen3"))) {
            assertEquals(Optional.empty(), TemplateDoctor.check(Templates.named("qwen3"), qwen3));
            assertEquals(Optional.empty(), TemplateDoctor.check(Templates.resolve(
                    new TemplateOptions("qwen3", null, null, false, false, false), qwen3), qwen3),
                    "enable_thinking false puts the same empty thought in the prompt");
            String w = TemplateDoctor.check(Templates.named("qwen3_nothink"), qwen3).orElseThrow();
            assertTrue(w.contains("template 'qwen3_nothink'") && w.contains("<think>"), w);
            String d = TemplateDoctor.check(Templates.named("deepseekr1"), qwen3).orElseThrow();
            assertTrue(d.contains("template 'deepseekr1'"), d);
        }
    }
}
