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

    /**
     * The conversation as one (prompt, answer) pair, as LLaMA-Factory's encode_oneturn (its chat and predict prompt):
     * everything before the last message is the prompt. Reasoning templates first drop earlier answers' thoughts
     * (unless preserve_thinking) and put the empty thought of a thought-less last answer in the answer (enable_thinking)
     * or the prompt (not).
     */
    default EncodedPair encodeOneturn(Tokenizer tokenizer, List<Message> messages, String system, String tools) {
        List<EncodedPair> pairs = encodeMultiturn(tokenizer, messages, system, tools);
        int n = 0;
        for (int i = 0; i < pairs.size(); i++) {
            n += pairs.get(i).source().length + (i < pairs.size() - 1 ? pairs.get(i).target().length : 0);
        }
        int[] prompt = new int[n];
        int k = 0;
        for (int i = 0; i < pairs.size(); i++) {
            System.arraycopy(pairs.get(i).source(), 0, prompt, k, pairs.get(i).source().length);
            k += pairs.get(i).source().length;
            if (i < pairs.size() - 1) {
                System.arraycopy(pairs.get(i).target(), 0, prompt, k, pairs.get(i).target().length);
                k += pairs.get(i).target().length;
            }
        }
        return new EncodedPair(prompt, pairs.getLast().target());
    }

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
