package io.sftnative.template;

/**
 * A template's thought words and, for reasoning templates (LLaMA-Factory's {@code ReasoningTemplate}), what happens to
 * thoughts when examples are encoded.
 *
 * @param enabled          a reasoning template (qwen3, deepseekr1, ...): answers get an empty thought when they
 *                         have none
 * @param open             the opening thought word ({@code "<think>\n"})
 * @param close            the closing thought word ({@code "\n</think>\n\n"})
 * @param emptyThought     what an answer without thought gets ({@code open + close}; GLM-4.7 style: {@code close})
 * @param enableThinking   the {@code enable_thinking} key (LLaMA-Factory's default true; null counts as false for
 *                         the empty thought, as there)
 * @param preserveThinking the {@code preserve_thinking} key: with mask_history, keep earlier turns' thoughts
 * @param maskHistory      the {@code mask_history} key: earlier turns are not trained, so their thoughts are dropped
 *                         unless preserve_thinking
 */
public record Reasoning(boolean enabled, String open, String close, String emptyThought, Boolean enableThinking,
        boolean preserveThinking, boolean maskHistory) {

    /** A plain template: default thought words (used to keep a thought in front of tool calls), no reasoning. */
    public static final Reasoning NONE = words("<think>\n", "\n</think>\n\n", false);

    /** Thought words {@code open}/{@code close}; a reasoning template when {@code enabled}. */
    public static Reasoning words(String open, String close, boolean enabled) {
        return new Reasoning(enabled, open, close, open + close, Boolean.TRUE, false, false);
    }

    /** GLM-4.7: an empty thought is the closing word alone. */
    public Reasoning closeOnlyEmptyThought() {
        return new Reasoning(enabled, open, close, close, enableThinking, preserveThinking, maskHistory);
    }

    Reasoning with(Boolean enable, boolean preserve, boolean mask) {
        return new Reasoning(enabled, open, close, emptyThought, enable, preserve, mask);
    }

    String[] thoughtWords() {
        return new String[] {open, close};
    }

    /** Whether the answer has either thought word (stripped of whitespace), as LLaMA-Factory tests it. */
    boolean hasThoughtWords(String content) {
        return content.contains(open.strip()) || content.contains(close.strip());
    }

    /** Every {@code open ... close} removed, then leading newlines (LLaMA-Factory's remove_thought). */
    String removeThought(String content) {
        String out = ToolFormat.between(thoughtWords()).matcher(content).replaceAll("");
        int i = 0;
        while (i < out.length() && out.charAt(i) == '\n') {
            i++;
        }
        return out.substring(i);
    }
}
