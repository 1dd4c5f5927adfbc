package io.sftnative.template;

/**
 * The keys that choose and adjust the chat template (LLaMA-Factory's DataArguments).
 *
 * @param template         {@code template}: a name, {@code auto}, or null/blank for the model's own chat_template
 * @param defaultSystem    {@code default_system}, or null to keep the template's
 * @param toolFormat       {@code tool_format}, or null to keep the template's
 * @param enableThinking   {@code enable_thinking}, or null when absent (true for named reasoning templates, not passed
 *                         to a Jinja chat_template)
 * @param preserveThinking {@code preserve_thinking}
 * @param maskHistory      {@code mask_history} (reasoning templates then drop earlier turns' thoughts)
 */
public record TemplateOptions(String template, String defaultSystem, String toolFormat, Boolean enableThinking,
        boolean preserveThinking, boolean maskHistory) {

    /** Only a template name (or auto / null), everything else as LLaMA-Factory's defaults. */
    public static TemplateOptions named(String template) {
        return new TemplateOptions(template, null, null, null, false, false);
    }
}
