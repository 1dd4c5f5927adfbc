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
 * @param toolFormat    how tools and tool calls are written
 */
public record SlotTemplate(String name, List<Slot> prefix, List<Slot> user, List<Slot> assistant, List<Slot> system,
        List<Slot> function, List<Slot> observation, String defaultSystem, List<String> stopWords,
        boolean replaceEos, boolean efficientEos, boolean foldSystem, ToolFormat toolFormat) implements Template {

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
    }

    @Override
    public Template withDefaultSystem(String newDefault) {
        return new SlotTemplate(name, prefix, user, assistant, system, function, observation, newDefault, stopWords,
                replaceEos, efficientEos, foldSystem, toolFormat);
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
        List<List<Object>> elements = elements(messages, sys, tools);
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
    public String render(Tokenizer tok, List<Message> messages, String sys, String tools) {
        StringBuilder sb = new StringBuilder();
        for (List<Object> e : elements(messages, sys, tools)) {
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
                case FUNCTION -> el.addAll(apply(function, toolFormat.formatFunction(m.content(), name), null));
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
