package io.sftnative.template;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import io.sftnative.tokenizer.Tokenizer;

/**
 * A chat template as data (LLaMA-Factory's {@code register_template} entries): slots for each role, tokenized slot by
 * slot exactly as LLaMA-Factory's {@code Template._encode} does.
 *
 * @param prefix        emitted before the first message (e.g. BOS)
 * @param user          user slot; {@code {{content}}} and {@code {{idx}}} (turn number) are filled in
 * @param assistant     assistant slot
 * @param system        system slot, emitted with the first message when there is a system text (or tools)
 * @param function      slot for tool-call answers (content = the formatted calls)
 * @param observation   slot for tool results
 * @param defaultSystem system text used when an example has none ("" for none)
 * @param stopWords     end-of-turn tokens; with {@code replaceEos} the first one is the EOS the labels use
 * @param efficientEos  no EOS after answers; one EOS at the very end (baichuan, chatglm)
 * @param foldSystem    llama2/mistral style: the rendered system text is put inside the first user message
 * @param toolFormat    how tools and tool calls are written (LLaMA-Factory's format_tools and format_function)
 * @param reasoning     thought words and, for reasoning templates, what happens to thoughts
 */
public record SlotTemplate(String name, List<Slot> prefix, List<Slot> user, List<Slot> assistant, List<Slot> system,
        List<Slot> function, List<Slot> observation, String defaultSystem, List<String> stopWords,
        boolean replaceEos, boolean efficientEos, boolean foldSystem, ToolFormat toolFormat, Reasoning reasoning)
        implements Template {

    /** LLaMA-Factory's tool-call words: text around such a block in a function message is kept as a thought. */
    private static final String[] TOOL_CALL_WORDS = {"<tool_call>", "</tool_call>"};

    /** Ids of constant texts (template strings, the default system slot): the same for every example. */
    private static final Map<String, int[]> CONSTANT_IDS = new ConcurrentHashMap<>();
    private static final int CONSTANT_CACHE_MAX = 4096;

    public SlotTemplate {
        prefix = List.copyOf(prefix);
        user = List.copyOf(user);
        assistant = List.copyOf(assistant);
        system = List.copyOf(system);
        function = List.copyOf(function);
        observation = List.copyOf(observation);
        defaultSystem = defaultSystem == null ? "" : defaultSystem;
        stopWords = List.copyOf(stopWords);
        reasoning = reasoning == null ? Reasoning.NONE : reasoning;
    }

    /** A template without reasoning (thought words {@code <think>\n} / {@code \n</think>\n\n}). */
    public SlotTemplate(String name, List<Slot> prefix, List<Slot> user, List<Slot> assistant, List<Slot> system,
            List<Slot> function, List<Slot> observation, String defaultSystem, List<String> stopWords,
            boolean replaceEos, boolean efficientEos, boolean foldSystem, ToolFormat toolFormat) {
        this(name, prefix, user, assistant, system, function, observation, defaultSystem, stopWords, replaceEos,
                efficientEos, foldSystem, toolFormat, Reasoning.NONE);
    }

    @Override
    public Template withDefaultSystem(String newDefault) {
        return new SlotTemplate(name, prefix, user, assistant, system, function, observation, newDefault, stopWords,
                replaceEos, efficientEos, foldSystem, toolFormat, reasoning);
    }

    /**
     * The {@code tool_format} key, as LLaMA-Factory applies it: tools and calls in that format, and the function
     * slot becomes the plain answer slot ({@code {{content}}} then EOS, or no EOS for efficient_eos templates).
     */
    public SlotTemplate withToolFormat(ToolFormat format) {
        List<Slot> plain = efficientEos ? List.of(Slot.text("{{content}}"))
                : List.of(Slot.text("{{content}}"), Slot.EOS);
        return new SlotTemplate(name, prefix, user, assistant, system, plain, observation, defaultSystem, stopWords,
                replaceEos, efficientEos, foldSystem, format, reasoning);
    }

    /** The reasoning keys ({@code enable_thinking}, {@code preserve_thinking}) and {@code mask_history}. */
    public SlotTemplate withReasoning(Boolean enableThinking, boolean preserveThinking, boolean maskHistory) {
        return new SlotTemplate(name, prefix, user, assistant, system, function, observation, defaultSystem,
                stopWords, replaceEos, efficientEos, foldSystem, toolFormat,
                reasoning.with(enableThinking, preserveThinking, maskHistory));
    }

    @Override
    public int eosId(Tokenizer tok) {
        if (replaceEos) {
            return tok.requireTokenId(stopWords.get(0));
        }
        if (tok.eosId() >= 0) {
            return tok.eosId();
        }
        return tok.requireTokenId("<|endoftext|>"); // LLaMA-Factory adds it as EOS when a tokenizer has none
    }

    @Override
    public java.util.Set<Integer> stopTokenIds(Tokenizer tok) {
        java.util.Set<Integer> ids = new java.util.LinkedHashSet<>();
        ids.add(eosId(tok));
        for (String w : stopWords) {
            if (tok.tokenId(w) >= 0) {
                ids.add(tok.tokenId(w));
            }
        }
        if (tok.eosId() >= 0) {
            ids.add(tok.eosId());
        }
        return ids;
    }

    @Override
    public String fingerprint() {
        return toString();
    }

    @Override
    public List<EncodedPair> encodeMultiturn(Tokenizer tok, List<Message> messages, String sys, String tools) {
        if (messages.size() % 2 != 0) {
            throw new TemplateException("a conversation must have an even number of messages (prompt, answer"
                    + " pairs); got " + messages.size());
        }
        List<int[]> encoded = new ArrayList<>(messages.size());
        List<List<Object>> elements = turnElements(messages, sys, tools);
        for (List<Object> e : elements) {
            encoded.add(toIds(tok, e));
        }
        List<EncodedPair> pairs = new ArrayList<>(messages.size() / 2);
        for (int i = 0; i < encoded.size(); i += 2) {
            pairs.add(new EncodedPair(encoded.get(i), encoded.get(i + 1)));
        }
        return pairs;
    }

    @Override
    public EncodedPair encodeOneturn(Tokenizer tok, List<Message> messages, String sys, String tools) {
        if (!reasoning.enabled()) {
            return Template.super.encodeOneturn(tok, messages, sys, tools);
        }
        List<List<Object>> el = oneturnElements(messages, sys, tools);
        return new EncodedPair(toIds(tok, el.get(0)), toIds(tok, el.get(1)));
    }

    /** {@link #encodeOneturn}'s (prompt, answer) elements for a reasoning template. */
    List<List<Object>> oneturnElements(List<Message> messages, String sys, String tools) {
        List<Message> msgs = new ArrayList<>(messages);
        if (!reasoning.preserveThinking()) {
            for (int i = 1; i < msgs.size() - 2; i += 2) {
                msgs.set(i, withoutThought(msgs.get(i)));
            }
        }
        int last = msgs.size() - 1;
        if (Boolean.FALSE.equals(reasoning.enableThinking())) {
            msgs.set(last, withoutThought(msgs.get(last)));
        }
        List<List<Object>> el = elements(msgs, sys, tools);
        List<Object> prompt = new ArrayList<>();
        el.subList(0, last).forEach(prompt::addAll);
        List<Object> answer = new ArrayList<>(el.get(last));
        if (!reasoning.hasThoughtWords(msgs.get(last).content())) {
            if (Boolean.TRUE.equals(reasoning.enableThinking())) {
                answer.add(0, reasoning.emptyThought());
            } else {
                prompt.add(reasoning.emptyThought());
            }
        }
        return List.of(prompt, answer);
    }

    @Override
    public String render(Tokenizer tok, List<Message> messages, String sys, String tools) {
        StringBuilder sb = new StringBuilder();
        for (List<Object> e : turnElements(messages, sys, tools)) {
            for (Object o : e) {
                switch (o) {
                    case String s -> sb.append(s);
                    case Slot.Bos b -> {
                        if (tok.specialTokens().bos() != null) {
                            sb.append(tok.specialTokens().bos());
                        }
                    }
                    case Slot.Eos x -> sb.append(tok.decode(new int[] {eosId(tok)}, false));
                    case Slot.Token t -> sb.append(t.token());
                    default -> throw new IllegalStateException(String.valueOf(o));
                }
            }
        }
        return sb.toString();
    }

    /**
     * Per message, the elements that are tokenized one by one: Strings and non-text slots (ids). Reasoning templates
     * first drop thoughts (enable_thinking false: all; mask_history without preserve_thinking: all but the last
     * answer's), then give each answer without thought words an empty thought, as LLaMA-Factory's ReasoningTemplate
     * does: after the prompt (not trained) when thinking is off, before the answer (trained) when it is on.
     */
    List<List<Object>> turnElements(List<Message> messages, String sys, String tools) {
        if (!reasoning.enabled()) {
            return elements(messages, sys, tools);
        }
        List<Message> msgs = new ArrayList<>(messages);
        boolean discardHistory = reasoning.maskHistory() && !reasoning.preserveThinking();
        if (Boolean.FALSE.equals(reasoning.enableThinking())) {
            for (int i = 1; i < msgs.size(); i += 2) {
                msgs.set(i, withoutThought(msgs.get(i)));
            }
        }
        if (discardHistory) {
            for (int i = 1; i < msgs.size() - 2; i += 2) {
                msgs.set(i, withoutThought(msgs.get(i)));
            }
        }
        List<List<Object>> el = elements(msgs, sys, tools);
        for (int i = discardHistory ? msgs.size() - 2 : 0; i < msgs.size(); i += 2) {
            if (!reasoning.hasThoughtWords(msgs.get(i + 1).content())) {
                if (Boolean.TRUE.equals(reasoning.enableThinking())) {
                    el.get(i + 1).add(0, reasoning.emptyThought()); // trained: the model learns to skip thinking
                } else {
                    el.get(i).add(reasoning.emptyThought()); // prompt: thinking is switched off for the model
                }
            }
        }
        return el;
    }

    private Message withoutThought(Message m) {
        return new Message(m.role(), reasoning.removeThought(m.content()));
    }

    /** Per message, the formatted elements: Strings (to tokenize) and non-text slots (ids). */
    private List<List<Object>> elements(List<Message> messages, String sys, String tools) {
        String systemText = sys == null || sys.isEmpty() ? defaultSystem : sys;
        boolean hasTools = tools != null && !tools.isBlank();
        List<List<Object>> out = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            List<Object> el = new ArrayList<>();
            String folded = "";
            if (i == 0) {
                el.addAll(apply(prefix, null, null));
                if (!systemText.isEmpty() || hasTools) {
                    String toolText = hasTools ? toolFormat.formatTools(tools, name) : "";
                    if (foldSystem) {
                        List<Object> sysEl = apply(system, systemText + toolText, null);
                        folded = sysEl.isEmpty() || !(sysEl.get(0) instanceof String s) ? "" : s;
                    } else {
                        el.addAll(apply(system, systemText + toolText, null));
                    }
                }
            }
            switch (m.role()) {
                case USER -> el.addAll(foldSystem ? apply(user, folded + m.content(), null)
                        : apply(user, m.content(), String.valueOf(i / 2)));
                case ASSISTANT -> el.addAll(apply(assistant, m.content(), null));
                case OBSERVATION -> el.addAll(apply(observation, m.content(), null));
                case FUNCTION -> el.addAll(apply(function, foldSystem
                        ? toolFormat.formatFunction(m.content(), null, null, name) // LLaMA-Factory's Llama2Template
                        : toolFormat.formatFunction(m.content(), reasoning.thoughtWords(), TOOL_CALL_WORDS, name),
                        null));
                case SYSTEM -> throw new TemplateException("a system message may only come first in a conversation");
            }
            out.add(el);
        }
        return out;
    }

    /** LLaMA-Factory's StringFormatter: the first {{content}}, then the first {{idx}}, are replaced. */
    private static List<Object> apply(List<Slot> slots, String content, String idx) {
        List<Object> out = new ArrayList<>(slots.size());
        for (Slot s : slots) {
            if (s instanceof Slot.Text t) {
                String text = t.text();
                if (content != null) {
                    text = replaceFirst(text, "{{content}}", content);
                }
                if (idx != null) {
                    text = replaceFirst(text, "{{idx}}", idx);
                }
                out.add(text);
            } else {
                out.add(s);
            }
        }
        return out;
    }

    private static String replaceFirst(String s, String target, String replacement) {
        int at = s.indexOf(target);
        return at < 0 ? s : s.substring(0, at) + replacement + s.substring(at + target.length());
    }

    private int[] toIds(Tokenizer tok, List<Object> elements) {
        int[][] parts = new int[elements.size()][];
        int total = 0;
        for (int i = 0; i < parts.length; i++) {
            Object o = elements.get(i);
            parts[i] = switch (o) {
                case String s -> s.isEmpty() ? new int[0] : encodeText(tok, s);
                case Slot.Bos b -> tok.bosId() >= 0 ? new int[] {tok.bosId()} : new int[0];
                case Slot.Eos e -> new int[] {eosId(tok)};
                case Slot.Token t -> new int[] {tok.requireTokenId(t.token())};
                default -> throw new IllegalStateException(String.valueOf(o));
            };
            total += parts[i].length;
        }
        int[] ids = new int[total];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, ids, at, p.length);
            at += p.length;
        }
        return ids;
    }

    /** Template text and the default system slot repeat in every example: their ids are computed once. */
    private int[] encodeText(Tokenizer tok, String s) {
        if (!isConstant(s)) {
            return tok.encode(s);
        }
        String key = tok.fingerprint() + '\u0000' + s;
        int[] ids = CONSTANT_IDS.get(key);
        if (ids == null) {
            ids = tok.encode(s);
            if (CONSTANT_CACHE_MAX > CONSTANT_IDS.size()) {
                CONSTANT_IDS.put(key, ids);
            }
        }
        return ids;
    }

    private boolean isConstant(String s) {
        if (s.length() > 4096) {
            return false;
        }
        if (s.equals(reasoning.emptyThought())) {
            return true;
        }
        for (Slot slot : system) {
            if (slot instanceof Slot.Text t && s.equals(replaceFirst(t.text(), "{{content}}", defaultSystem))) {
                return true;
            }
        }
        for (List<Slot> group : List.of(prefix, user, assistant, system, function, observation)) {
            for (Slot slot : group) {
                if (slot instanceof Slot.Text t && s.equals(t.text())) {
                    return true;
                }
            }
        }
        return false;
    }
}
