package io.sftnative.template;

import static io.sftnative.template.Slot.BOS;
import static io.sftnative.template.Slot.EOS;
import static io.sftnative.template.Slot.text;
import static io.sftnative.template.Slot.token;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import io.sftnative.tokenizer.Tokenizer;

/**
 * The named templates, as LLaMA-Factory registers them (../shared/specs/llamafactory-sft.md section 6), and the
 * resolution of the {@code template} key.
 */
public final class Templates {
    private static final Map<String, SlotTemplate> NAMED = new LinkedHashMap<>();

    /** The name that selects the model's own Jinja chat_template. */
    public static final String AUTO = "auto";

    static {
        List<Slot> content = slots(text("{{content}}"));
        List<Slot> contentEos = slots(text("{{content}}"), EOS);

        List<Slot> defaultAssistant = slots(text("{{content}}"), EOS, text("\n"));
        register(new SlotTemplate("default", List.of(),
                slots(text("Human: {{content}}"), EOS, text("\nAssistant:")), defaultAssistant,
                slots(text("System: {{content}}"), EOS, text("\n")), defaultAssistant,
                slots(text("Human: {{content}}"), EOS, text("\nAssistant:")), "", List.of(), false, false, false,
                ToolFormat.DEFAULT));

        register(new SlotTemplate("empty", List.of(), content, content, content, content, content, "", List.of(),
                false, false, false, ToolFormat.DEFAULT));

        List<Slot> alpacaUser = slots(text("### Instruction:\n{{content}}\n\n### Response:\n"));
        List<Slot> alpacaAssistant = slots(text("{{content}}"), EOS, text("\n\n"));
        register(new SlotTemplate("alpaca", List.of(), alpacaUser, alpacaAssistant, content, alpacaAssistant,
                alpacaUser, "Below is an instruction that describes a task. Write a response that appropriately"
                        + " completes the request.\n\n", List.of(), false, false, false, ToolFormat.DEFAULT));

        List<Slot> chatmlUser = slots(text("<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"));
        List<Slot> chatmlAssistant = slots(text("{{content}}<|im_end|>\n"));
        List<Slot> chatmlSystem = slots(text("<|im_start|>system\n{{content}}<|im_end|>\n"));
        register(new SlotTemplate("qwen", List.of(), chatmlUser, chatmlAssistant, chatmlSystem, chatmlAssistant,
                slots(text("<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n"
                        + "<|im_start|>assistant\n")),
                "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", List.of("<|im_end|>"),
                true, false, false, ToolFormat.QWEN));
        register(new SlotTemplate("chatml", List.of(), chatmlUser, chatmlAssistant, chatmlSystem, chatmlAssistant,
                slots(text("<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n")), "",
                List.of("<|im_end|>", "<|im_start|>"), true, false, false, ToolFormat.DEFAULT));

        List<Slot> llama3Assistant = slots(text("{{content}}<|eot_id|>"));
        register(new SlotTemplate("llama3", slots(BOS),
                slots(text("<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n")),
                llama3Assistant,
                slots(text("<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>")),
                llama3Assistant,
                slots(text("<|start_header_id|>ipython<|end_header_id|>\n\n{{content}}<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n")),
                "", List.of("<|eot_id|>", "<|eom_id|>"), true, false, false, ToolFormat.UNSUPPORTED));

        List<Slot> llama2User = slots(BOS, text("[INST] {{content}} [/INST]"));
        register(new SlotTemplate("llama2", List.of(), llama2User, contentEos,
                slots(text("<<SYS>>\n{{content}}\n<</SYS>>\n\n")), contentEos, llama2User, "", List.of(),
                false, false, true, ToolFormat.DEFAULT));

        List<Slot> mistralAssistant = slots(text(" {{content}}"), EOS);
        register(new SlotTemplate("mistral", slots(BOS), slots(text("[INST] {{content}}[/INST]")),
                mistralAssistant, slots(text("{{content}}\n\n")), mistralAssistant,
                slots(text("[TOOL_RESULTS] {\"content\": {{content}}}[/TOOL_RESULTS]")), "", List.of(),
                false, false, true, ToolFormat.UNSUPPORTED));

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
                "", List.of("<|user|>", "<|observation|>"), false, true, false, ToolFormat.UNSUPPORTED));

        FamilyTemplates.registerAll(Templates::register); // gemma, phi, glm4, olmo, granite3
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

    /** The model's own Jinja chat_template from tokenizer_config.json. */
    public static Template auto(Tokenizer tokenizer) {
        String jinja = tokenizer.config().chatTemplate();
        if (jinja == null) {
            throw new TemplateException("template 'auto' needs a chat_template in " + tokenizer.directory()
                    .resolve("tokenizer_config.json") + ", which has none; set template to one of "
                    + String.join(", ", NAMED.keySet()));
        }
        return new JinjaTemplate(jinja, "");
    }

    /**
     * The {@code template} key: a name, {@code auto}, or absent (the model's chat_template when it has one).
     *
     * @param defaultSystem the {@code default_system} key, or null to keep the template's
     */
    public static Template resolve(String name, Tokenizer tokenizer, String defaultSystem) {
        Template t;
        if (name == null || name.isBlank()) {
            if (tokenizer.config().chatTemplate() == null) {
                throw new TemplateException("no template is set and " + tokenizer.directory()
                        .resolve("tokenizer_config.json") + " has no chat_template; set template to one of "
                        + String.join(", ", NAMED.keySet()));
            }
            t = auto(tokenizer);
        } else if (AUTO.equalsIgnoreCase(name.trim())) {
            t = auto(tokenizer);
        } else {
            t = named(name.trim());
        }
        return defaultSystem == null ? t : t.withDefaultSystem(defaultSystem);
    }
}
