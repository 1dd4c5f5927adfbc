package io.sftnative.template;

import java.util.List;

/**
 * One template entry with LLaMA-Factory's {@code register_template} defaults: user and system slots
 * {@code {{content}}}; assistant {@code {{content}}} then EOS (no EOS for efficient_eos); the function slot is the
 * assistant slot when one is given; observations use the user slot; tool format {@code default}; thought words
 * {@code <think>\n} / {@code \n</think>\n\n}.
 */
final class TemplateBuilder {
    private static final Slot CONTENT = Slot.text("{{content}}");

    private final String name;
    private List<Slot> prefix = List.of();
    private List<Slot> user;
    private List<Slot> assistant;
    private List<Slot> system;
    private List<Slot> function;
    private List<Slot> observation;
    private ToolFormat toolFormat = ToolFormat.DEFAULT;
    private String defaultSystem = "";
    private List<String> stopWords = List.of();
    private boolean efficientEos;
    private boolean replaceEos;
    private boolean foldSystem;
    private boolean reasoning;
    private String open = "<think>\n";
    private String close = "\n</think>\n\n";
    private boolean closeOnlyEmptyThought;

    private TemplateBuilder(String name) {
        this.name = name;
    }

    static TemplateBuilder template(String name) {
        return new TemplateBuilder(name);
    }

    TemplateBuilder prefix(Slot... s) {
        prefix = List.of(s);
        return this;
    }

    TemplateBuilder user(Slot... s) {
        user = List.of(s);
        return this;
    }

    TemplateBuilder user(String text) {
        return user(Slot.text(text));
    }

    TemplateBuilder assistant(Slot... s) {
        assistant = List.of(s);
        return this;
    }

    TemplateBuilder assistant(String text) {
        return assistant(Slot.text(text));
    }

    TemplateBuilder system(Slot... s) {
        system = List.of(s);
        return this;
    }

    TemplateBuilder system(String text) {
        return system(Slot.text(text));
    }

    TemplateBuilder observation(Slot... s) {
        observation = List.of(s);
        return this;
    }

    TemplateBuilder observation(String text) {
        return observation(Slot.text(text));
    }

    /** The function slot and the tool format (LLaMA-Factory registers the same format for tools and calls). */
    TemplateBuilder function(ToolFormat format, Slot... s) {
        function = List.of(s);
        toolFormat = format;
        return this;
    }

    TemplateBuilder tools(ToolFormat format) {
        toolFormat = format;
        return this;
    }

    TemplateBuilder defaultSystem(String s) {
        defaultSystem = s;
        return this;
    }

    TemplateBuilder stopWords(String... w) {
        stopWords = List.of(w);
        return this;
    }

    TemplateBuilder efficientEos() {
        efficientEos = true;
        return this;
    }

    TemplateBuilder replaceEos() {
        replaceEos = true;
        return this;
    }

    /** LLaMA-Factory's Llama2Template: the system text goes inside the first user message. */
    TemplateBuilder foldSystem() {
        foldSystem = true;
        return this;
    }

    /** LLaMA-Factory's ReasoningTemplate. */
    TemplateBuilder reasoning() {
        reasoning = true;
        return this;
    }

    TemplateBuilder thoughtWords(String openWord, String closeWord) {
        open = openWord;
        close = closeWord;
        return this;
    }

    /** LLaMA-Factory's Glm47ReasoningTemplate: an empty thought is the closing word alone. */
    TemplateBuilder closeOnlyEmptyThought() {
        closeOnlyEmptyThought = true;
        return this;
    }

    SlotTemplate build() {
        List<Slot> defaultSlots = efficientEos ? List.of(CONTENT) : List.of(CONTENT, Slot.EOS);
        List<Slot> u = user != null ? user : List.of(CONTENT);
        List<Slot> a = assistant != null ? assistant : defaultSlots;
        List<Slot> f = function != null ? function : a;
        List<Slot> o = observation != null ? observation : u;
        List<Slot> s = system != null ? system : List.of(CONTENT);
        if (replaceEos && stopWords.isEmpty()) {
            throw new IllegalStateException(name + ": replace_eos needs stop words");
        }
        Reasoning r = Reasoning.words(open, close, reasoning);
        if (closeOnlyEmptyThought) {
            r = r.closeOnlyEmptyThought();
        }
        return new SlotTemplate(name, prefix, u, a, s, f, o, defaultSystem, stopWords, replaceEos, efficientEos,
                foldSystem, toolFormat, r);
    }
}
