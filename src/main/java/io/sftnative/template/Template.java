package io.sftnative.template;

import java.util.List;

import io.sftnative.tokenizer.Tokenizer;

/**
 * A chat format: turns a conversation into token ids, one (source, target) pair per user/assistant turn.
 *
 * <p>Named templates ({@link Templates#named}) are data and reproduce LLaMA-Factory's; {@link Templates#auto} runs
 * the model's own Jinja {@code chat_template}. Both emit special tokens as ids.
 */
public interface Template {

    String name();

    /**
     * Renders and tokenizes a conversation.
     *
     * @param messages alternating prompt (USER/OBSERVATION) and answer (ASSISTANT/FUNCTION) messages, even count
     * @param system   the system text, or null/empty for the template's default system
     * @param tools    the tool definitions as a JSON array string, or null/empty for none
     * @return one (source ids, target ids) pair per (prompt, answer) message pair
     * @throws TemplateException when this template cannot render the conversation (e.g. tool calls it lacks)
     */
    List<EncodedPair> encodeMultiturn(Tokenizer tokenizer, List<Message> messages, String system, String tools);

    /** The rendered text of the conversation (special tokens as their text), as the model would see it. */
    String render(Tokenizer tokenizer, List<Message> messages, String system, String tools);

    /** The end-of-turn id the labels use: the tokenizer's EOS, or the first stop word for replace_eos templates. */
    int eosId(Tokenizer tokenizer);

    /**
     * Ids that end an answer at generation time: the template's EOS, its stop words, the tokenizer's EOS (those the
     * vocabulary has).
     */
    java.util.Set<Integer> stopTokenIds(Tokenizer tokenizer);

    /** Templates without an end-of-turn token in the answer (baichuan, chatglm): one EOS at the very end instead. */
    boolean efficientEos();

    /** The template with another default system prompt (the {@code default_system} key). */
    Template withDefaultSystem(String defaultSystem);

    /** A stable description of everything that changes the ids (cache key). */
    String fingerprint();
}
