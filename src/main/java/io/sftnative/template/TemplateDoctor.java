package io.sftnative.template;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import io.sftnative.tokenizer.Tokenizer;

/**
 * Compares the configured template with the model's own chat_template (tokenizer_config.json) on a few probe
 * conversations, before any training: a template that does not match the model is the most common cause of a
 * fine-tuned model that never stops or uses the wrong stop token.
 */
public final class TemplateDoctor {
    private TemplateDoctor() {}

    private record Probe(String what, String system, List<Message> messages) {}

    private static final List<Probe> PROBES = List.of(
            new Probe("one turn", null, List.of(Message.user("Hello"), Message.assistant("Hi! How can I help?"))),
            new Probe("one turn with a system prompt", "You are a helpful assistant.",
                    List.of(Message.user("What is 2+2?"), Message.assistant("4"))),
            new Probe("two turns", null, List.of(Message.user("Hi"), Message.assistant("Hello!"),
                    Message.user("Tell me a joke."), Message.assistant("Why did the chicken cross the road?"))));

    /**
     * A warning with the first difference, or empty when the model has no chat_template, the template is the
     * model's own ({@code auto}), or both render the probes identically (a generation prompt that a chat_template
     * appends unconditionally, as Llama-3's does, is not a difference).
     */
    public static Optional<String> check(Template template, Tokenizer tokenizer) {
        Optional<ModelChatTemplate> own = ModelChatTemplate.of(tokenizer);
        if (own.isEmpty() || template instanceof JinjaTemplate) {
            return Optional.empty();
        }
        boolean reasoning = template instanceof SlotTemplate s && s.reasoning().enabled();
        Map<String, Object> kwargs = new HashMap<>();
        if (reasoning) {
            kwargs.put("enable_thinking", Boolean.TRUE.equals(((SlotTemplate) template).reasoning().enableThinking()));
        }
        JinjaTemplate model = new JinjaTemplate(own.get().select(false), null, "", kwargs);
        for (Probe p : PROBES) {
            if (reasoning && p.messages().size() > 2) {
                // LLaMA-Factory's reasoning templates keep (empty) thoughts in earlier turns, which reasoning models'
                // chat templates drop: a deliberate difference, so only single-turn probes are compared
                continue;
            }
            String ours;
            String theirs;
            String theirsPrompt;
            try {
                ours = template.render(tokenizer, p.messages(), p.system(), null);
                theirs = model.render(tokenizer, p.messages(), p.system(), null);
                theirsPrompt = model.renderPrompt(tokenizer, p.messages().subList(0, p.messages().size() - 1),
                        p.system(), null);
            } catch (TemplateException e) {
                return Optional.of("template check skipped: " + e.getMessage());
            }
            if (theirs.equals(ours) || (theirs.startsWith(ours)
                    && theirsPrompt.endsWith(theirs.substring(ours.length())))) {
                continue;
            }
            return Optional.of(describe(template.name(), p.what(), ours, theirs));
        }
        return Optional.empty();
    }

    private static String describe(String name, String what, String ours, String theirs) {
        int at = 0;
        while (at < ours.length() && at < theirs.length() && ours.charAt(at) == theirs.charAt(at)) {
            at++;
        }
        return "warning: template '" + name + "' renders conversations differently from the model's own"
                + " chat_template (chat_template.jinja or tokenizer_config.json).\n"
                + "  probe: " + what + "; first difference at character " + at + ":\n"
                + "    template '" + name + "': " + excerpt(ours, at) + "\n"
                + "    chat_template : " + excerpt(theirs, at) + "\n"
                + "  A template that does not match the model teaches it another format (it may not stop, or stop"
                + " on the wrong token). Use template: auto (the model's own) or the template that matches it.";
    }

    private static String excerpt(String s, int at) {
        int from = Math.max(0, at - 30);
        int to = Math.min(s.length(), at + 50);
        String body = s.substring(from, to).replace("\n", "\\n");
        return (from > 0 ? "..." : "") + body + (to < s.length() ? "..." : "") + (at >= s.length() ? "<end>" : "");
    }
}
