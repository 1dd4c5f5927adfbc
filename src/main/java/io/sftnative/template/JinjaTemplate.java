package io.sftnative.template;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.tokenizer.Tokenizer;

/**
 * {@code template: auto}: the model's own Jinja {@code chat_template} ({@link ModelChatTemplate}), rendered with
 * jinjava with apply_chat_template's keyword arguments as variables, with the assistant spans made trainable.
 *
 * <p>Where each answer lies in the rendered text is found by rendering the conversation a second time with that
 * answer replaced by a sentinel: the two texts differ exactly where the answer's content went, whatever the template
 * wraps around it (trimming, think blocks, headers). The target is that content plus the end-of-turn special token
 * right after it (and whitespace before the next special token), as LLaMA-Factory's own templates do; everything
 * before it since the previous target is the source. Text after the last answer (e.g. a generation prompt some
 * templates always append) belongs to no pair and is not trained on.
 */
final class JinjaTemplate implements Template {
    private static final String SENTINEL = "\u0000\u0001";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String source;
    private final JinjaEngine engine;
    private final String toolUseSource;
    private final JinjaEngine toolUseEngine;
    private final String defaultSystem;
    private final Map<String, Object> kwargs;

    JinjaTemplate(String source, String defaultSystem) {
        this(source, null, defaultSystem, Map.of());
    }

    /**
     * @param toolUseSource the template for conversations with tools (transformers' "tool_use"), or null
     * @param kwargs        extra template variables, as apply_chat_template's keyword arguments (enable_thinking)
     */
    JinjaTemplate(String source, String toolUseSource, String defaultSystem, Map<String, Object> kwargs) {
        this.source = source;
        this.engine = new JinjaEngine(source);
        this.toolUseSource = toolUseSource;
        this.toolUseEngine = toolUseSource == null ? null : new JinjaEngine(toolUseSource);
        this.defaultSystem = defaultSystem == null ? "" : defaultSystem;
        this.kwargs = Map.copyOf(kwargs);
    }

    /** The engine apply_chat_template would use: the tool_use template when there are tools and it exists. */
    private JinjaEngine engine(String tools) {
        return toolUseEngine != null && tools != null && !tools.isBlank() ? toolUseEngine : engine;
    }

    @Override
    public String name() {
        return Templates.AUTO;
    }

    @Override
    public Template withDefaultSystem(String newDefault) {
        return new JinjaTemplate(source, toolUseSource, newDefault, kwargs);
    }

    @Override
    public int eosId(Tokenizer tok) {
        return tok.eosId() >= 0 ? tok.eosId() : tok.requireTokenId("<|endoftext|>");
    }

    /** The tokenizer's EOS and the special token the chat_template puts after an answer (found on a probe). */
    @Override
    public java.util.Set<Integer> stopTokenIds(Tokenizer tok) {
        java.util.Set<Integer> ids = new java.util.LinkedHashSet<>();
        if (tok.eosId() >= 0) {
            ids.add(tok.eosId());
        }
        List<String[]> turns = splitTurns(tok, List.of(Message.user("Hi"), Message.assistant("Hello")), null, null);
        int[] target = tok.encode(turns.get(0)[1]);
        for (int i = target.length - 1; i >= 0; i--) {
            if (tok.specialTokenIds().containsValue(target[i])) {
                ids.add(target[i]);
                break;
            }
        }
        return ids;
    }

    @Override
    public boolean efficientEos() {
        return false;
    }

    @Override
    public String fingerprint() {
        return "jinja:" + Integer.toHexString(source.hashCode()) + ":" + source.length() + ":"
                + (toolUseSource == null ? "" : Integer.toHexString(toolUseSource.hashCode())) + ":" + defaultSystem
                + ":" + new java.util.TreeMap<>(kwargs);
    }

    @Override
    public String render(Tokenizer tok, List<Message> messages, String system, String tools) {
        return engine(tools).render(context(tok, jinjaMessages(messages, system), tools, false));
    }

    /** The prompt as the model sees it at generation time: messages then the template's generation prompt. */
    public String renderPrompt(Tokenizer tok, List<Message> messages, String system, String tools) {
        return engine(tools).render(context(tok, jinjaMessages(messages, system), tools, true));
    }

    @Override
    public List<EncodedPair> encodeMultiturn(Tokenizer tok, List<Message> messages, String system, String tools) {
        if (messages.size() % 2 != 0) {
            throw new TemplateException("a conversation must have an even number of messages (prompt, answer"
                    + " pairs); got " + messages.size());
        }
        List<String[]> texts = splitTurns(tok, messages, system, tools);
        List<EncodedPair> pairs = new ArrayList<>(texts.size());
        for (String[] t : texts) {
            pairs.add(new EncodedPair(tok.encode(t[0]), tok.encode(t[1])));
        }
        return pairs;
    }

    /** Per pair, {source text, target text}. */
    List<String[]> splitTurns(Tokenizer tok, List<Message> messages, String system, String tools) {
        List<Map<String, Object>> jm = jinjaMessages(messages, system);
        int offset = jm.size() - messages.size(); // 1 when a system message was put first
        String full = engine(tools).render(context(tok, jm, tools, false));
        List<String> specials = new ArrayList<>(tok.specialTokenIds().keySet());
        specials.sort(Comparator.comparingInt(String::length).reversed());
        List<String[]> out = new ArrayList<>();
        int cursor = 0;
        for (int k = 0; 2 * k + 1 < messages.size(); k++) {
            int ai = offset + 2 * k + 1;
            List<Map<String, Object>> alt = new ArrayList<>(jm);
            Map<String, Object> sentinel = new LinkedHashMap<>();
            sentinel.put("role", "assistant");
            sentinel.put("content", SENTINEL);
            alt.set(ai, sentinel);
            String altText = engine(tools).render(context(tok, alt, tools, false));
            int p = commonPrefix(full, altText);
            int s = commonSuffix(full, altText, Math.min(full.length(), altText.length()) - p);
            int contentStart = p;
            int contentEnd = full.length() - s;
            if (contentStart < cursor || contentEnd < contentStart) {
                throw new TemplateException("cannot locate answer " + (k + 1) + " in the chat_template's output"
                        + " (the template renders it out of order); set template to a named template");
            }
            int targetEnd = endOfTurn(full, contentEnd, specials);
            out.add(new String[] {full.substring(cursor, contentStart), full.substring(contentStart, targetEnd)});
            cursor = targetEnd;
        }
        return out;
    }

    /** After the content: the end-of-turn special token, then whitespace that precedes another special token. */
    private static int endOfTurn(String full, int at, List<String> specials) {
        String token = specialAt(full, at, specials);
        if (token == null) {
            return at;
        }
        int end = at + token.length();
        int ws = end;
        while (ws < full.length() && Character.isWhitespace(full.charAt(ws))) {
            ws++;
        }
        if (ws > end && (ws == full.length() || specialAt(full, ws, specials) != null)) {
            return ws;
        }
        return end;
    }

    private static String specialAt(String s, int at, List<String> specials) {
        for (String t : specials) {
            if (!t.isEmpty() && s.startsWith(t, at)) {
                return t;
            }
        }
        return null;
    }

    private static int commonPrefix(String a, String b) {
        int n = Math.min(a.length(), b.length());
        int i = 0;
        while (i < n && a.charAt(i) == b.charAt(i)) {
            i++;
        }
        return i;
    }

    private static int commonSuffix(String a, String b, int limit) {
        int i = 0;
        while (i < limit && a.charAt(a.length() - 1 - i) == b.charAt(b.length() - 1 - i)) {
            i++;
        }
        return i;
    }

    private List<Map<String, Object>> jinjaMessages(List<Message> messages, String system) {
        List<Map<String, Object>> out = new ArrayList<>(messages.size() + 1);
        String sys = system == null || system.isEmpty() ? defaultSystem : system;
        if (!sys.isEmpty()) {
            out.add(message("system", sys));
        }
        for (Message m : messages) {
            switch (m.role()) {
                case USER -> out.add(message("user", m.content()));
                case ASSISTANT -> out.add(message("assistant", m.content()));
                case OBSERVATION -> out.add(message("tool", m.content()));
                case FUNCTION -> out.add(functionMessage(m.content()));
                case SYSTEM -> throw new TemplateException("a system message may only come first in a conversation");
            }
        }
        return out;
    }

    private static Map<String, Object> message(String role, String content) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }

    /** A function message becomes an assistant message with HF-style tool_calls. */
    private static Map<String, Object> functionMessage(String content) {
        JsonNode calls;
        try {
            calls = JSON.readTree(content);
        } catch (Exception e) {
            throw new TemplateException("invalid JSON in function call: " + e.getMessage());
        }
        List<Object> toolCalls = new ArrayList<>();
        for (JsonNode c : calls.isArray() ? calls : List.of(calls)) {
            Map<String, Object> fn = new LinkedHashMap<>();
            fn.put("name", c.path("name").asText());
            fn.put("arguments", JSON.convertValue(c.path("arguments"), Object.class));
            toolCalls.add(Map.of("type", "function", "function", fn));
        }
        Map<String, Object> m = message("assistant", "");
        m.put("tool_calls", toolCalls);
        return m;
    }

    private Map<String, Object> context(Tokenizer tok, List<Map<String, Object>> messages, String tools,
            boolean addGenerationPrompt) {
        Map<String, Object> ctx = new HashMap<>(kwargs);
        ctx.put("messages", messages);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        if (tools != null && !tools.isBlank()) {
            try {
                List<Object> wrapped = new ArrayList<>();
                for (Object t : JSON.readValue(tools, List.class)) {
                    // HF tool schema: {"type": "function", "function": {...}}; LLaMA-Factory data often has the
                    // bare function, which LLaMA-Factory's qwen tool format wraps the same way
                    boolean isFunction = t instanceof Map<?, ?> m && "function".equals(m.get("type"));
                    Map<String, Object> w = new LinkedHashMap<>();
                    w.put("type", "function");
                    w.put("function", t);
                    wrapped.add(isFunction ? t : w);
                }
                ctx.put("tools", wrapped);
            } catch (Exception e) {
                throw new TemplateException("the tools column must hold a JSON array: " + e.getMessage());
            }
        }
        var st = tok.specialTokens();
        putIfNotNull(ctx, "bos_token", st.bos());
        putIfNotNull(ctx, "eos_token", st.eos());
        putIfNotNull(ctx, "pad_token", st.pad());
        putIfNotNull(ctx, "unk_token", st.unk());
        return ctx;
    }

    private static void putIfNotNull(Map<String, Object> m, String k, Object v) {
        if (v != null) {
            m.put(k, v);
        }
    }
}
