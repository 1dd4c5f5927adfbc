package io.sftnative.template;

import static io.sftnative.template.Slot.BOS;
import static io.sftnative.template.Slot.EOS;
import static io.sftnative.template.Slot.text;
import static io.sftnative.template.Slot.token;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import io.sftnative.tokenizer.Tokenizer;

/**
 * The named templates, as LLaMA-Factory registers them ({@link TemplateCatalog}; ../shared/specs/llamafactory-sft.md
 * section 6), and the resolution of the template keys ({@code template}, {@code tool_format}, {@code enable_thinking},
 * {@code preserve_thinking}, {@code default_system}).
 */
public final class Templates {
    private static final Map<String, SlotTemplate> NAMED = new LinkedHashMap<>();

    /** The name that selects the model's own Jinja chat_template. */
    public static final String AUTO = "auto";

    static {
        TemplateCatalog.all().forEach(Templates::register);
        List<Slot> content = slots(text("{{content}}"));

        List<Slot> baichuanUser = slots(token("<reserved_102>"), text("{{content}}"), token("<reserved_103>"));
        register(new SlotTemplate("baichuan", List.of(), baichuanUser, content, content, content, baichuanUser, "",
                List.of(), false, true, false, ToolFormat.DEFAULT));
        List<Slot> baichuan2User = slots(text("<reserved_106>{{content}}<reserved_107>"));
        register(new SlotTemplate("baichuan2", List.of(), baichuan2User, content, content, content, baichuan2User,
                "", List.of(), false, true, false, ToolFormat.DEFAULT));

        List<Slot> glmPrefix = slots(token("[gMASK]"), token("sop"));
        List<Slot> glm2User = slots(text("[Round {{idx}}]\n\n问：{{content}}\n\n答："));
        register(new SlotTemplate("chatglm2", glmPrefix, glm2User, content, content, content, glm2User, "",
                List.of(), false, true, false, ToolFormat.DEFAULT));
        register(new SlotTemplate("chatglm3", glmPrefix,
                slots(token("<|user|>"), text("\n"), text("{{content}}"), token("<|assistant|>")),
                slots(text("\n"), text("{{content}}")),
                slots(token("<|system|>"), text("\n"), text("{{content}}")),
                content,
                slots(token("<|observation|>"), text("\n"), text("{{content}}"), token("<|assistant|>")),
                "", List.of("<|user|>", "<|observation|>"), false, true, false, ToolFormat.GLM4));
    }

    private Templates() {}

    private static List<Slot> slots(Slot... s) {
        return List.of(s);
    }

    private static void register(SlotTemplate t) {
        NAMED.put(t.name(), t);
    }

    public static Set<String> names() {
        return NAMED.keySet();
    }

    /** A named template, or a clear error listing the known names. */
    public static SlotTemplate named(String name) {
        SlotTemplate t = NAMED.get(name);
        if (t == null) {
            throw new TemplateException("unknown template '" + name + "'; known templates: "
                    + String.join(", ", NAMED.keySet()) + ", or 'auto' for the model's own chat_template");
        }
        return t;
    }

    /** The model's own Jinja chat_template (chat_template.jinja, else tokenizer_config.json). */
    public static Template auto(Tokenizer tokenizer) {
        return auto(tokenizer, Map.of());
    }

    private static Template auto(Tokenizer tokenizer, Map<String, Object> kwargs) {
        ModelChatTemplate model = ModelChatTemplate.of(tokenizer).orElseThrow(() -> new TemplateException(
                "template 'auto' needs the model's chat template: " + tokenizer.directory() + " has neither"
                        + " chat_template.jinja nor a chat_template in tokenizer_config.json; set template to one of "
                        + String.join(", ", NAMED.keySet())));
        return new JinjaTemplate(model.select(false), model.templates().get("tool_use"), "", kwargs);
    }

    /**
     * The {@code template} key: a name, {@code auto}, or absent (the model's chat_template when it has one).
     *
     * @param defaultSystem the {@code default_system} key, or null to keep the template's
     */
    public static Template resolve(String name, Tokenizer tokenizer, String defaultSystem) {
        return resolve(new TemplateOptions(name, defaultSystem, null, null, false, false), tokenizer);
    }

    /**
     * The template keys together: the template, with {@code tool_format}, {@code default_system} and, for reasoning
     * templates, {@code enable_thinking} / {@code preserve_thinking} / {@code mask_history} applied as LLaMA-Factory's
     * get_template_and_fix_tokenizer does. With the model's own Jinja template, {@code enable_thinking} is passed to
     * it as apply_chat_template's keyword argument; keys a Jinja template cannot honour stop the run.
     */
    public static Template resolve(TemplateOptions o, Tokenizer tokenizer) {
        String name = o.template() == null ? "" : o.template().trim();
        Template t;
        if (name.isEmpty() || AUTO.equalsIgnoreCase(name)) {
            if (o.toolFormat() != null) {
                throw new TemplateException("tool_format '" + o.toolFormat() + "' applies to named templates; with"
                        + " template " + (name.isEmpty() ? "unset" : "auto") + " the model's own chat_template writes"
                        + " tools. Remove tool_format or set template to a named template");
            }
            if (o.preserveThinking()) {
                throw new TemplateException("preserve_thinking applies to named reasoning templates (qwen3,"
                        + " deepseekr1, ...); with the model's own chat_template its Jinja decides which thoughts are"
                        + " kept. Remove preserve_thinking or set template to a named template");
            }
            Map<String, Object> kwargs = new HashMap<>();
            if (o.enableThinking() != null) {
                kwargs.put("enable_thinking", o.enableThinking());
            }
            t = auto(tokenizer, kwargs);
        } else {
            SlotTemplate s = named(name);
            if (o.toolFormat() != null) {
                s = s.withToolFormat(ToolFormat.named(o.toolFormat()));
            }
            if (s.reasoning().enabled()) {
                s = s.withReasoning(o.enableThinking() == null ? Boolean.TRUE : o.enableThinking(),
                        o.preserveThinking(), o.maskHistory());
            }
            t = s;
        }
        return o.defaultSystem() == null ? t : t.withDefaultSystem(o.defaultSystem());
    }

    /** A note when a reasoning key has no effect on the chosen template (as in LLaMA-Factory), else empty. */
    public static Optional<String> note(TemplateOptions o, Template t) {
        if (t instanceof SlotTemplate s && !s.reasoning().enabled()
                && (o.enableThinking() != null || o.preserveThinking())) {
            return Optional.of("note: enable_thinking / preserve_thinking only change reasoning templates"
                    + " (qwen3, deepseekr1, ...); template '" + s.name() + "' is not one, so they have no effect"
                    + " (as in LLaMA-Factory)");
        }
        return Optional.empty();
    }
}
