package io.sftnative.template;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.tokenizer.Tokenizer;

/**
 * The model's own Jinja chat templates, found as transformers finds them: {@code chat_template.jinja} and
 * {@code additional_chat_templates/NAME.jinja} in the model directory take priority over the {@code chat_template}
 * entry of {@code tokenizer_config.json} (a string, or a list of {name, template}).
 *
 * @param templates by name; "default" is the chat template, "tool_use" the one transformers picks when tools are given
 * @param source    where they were read (for messages)
 */
public record ModelChatTemplate(Map<String, String> templates, Path source) {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The chat templates of the tokenizer's directory, or empty when it has none. */
    public static Optional<ModelChatTemplate> of(Tokenizer tokenizer) {
        Path dir = tokenizer.directory();
        Map<String, String> named = new LinkedHashMap<>();
        Path file = dir == null ? null : dir.resolve("chat_template.jinja");
        try {
            if (file != null && Files.isRegularFile(file)) {
                named.put("default", Files.readString(file, StandardCharsets.UTF_8));
            }
            Path extra = dir == null ? null : dir.resolve("additional_chat_templates");
            if (extra != null && Files.isDirectory(extra)) {
                try (DirectoryStream<Path> ds = Files.newDirectoryStream(extra, "*.jinja")) {
                    for (Path p : ds) {
                        String n = p.getFileName().toString();
                        named.put(n.substring(0, n.length() - ".jinja".length()),
                                Files.readString(p, StandardCharsets.UTF_8));
                    }
                }
            }
        } catch (IOException e) {
            throw new TemplateException("cannot read the chat template in " + dir + ": " + e.getMessage());
        }
        if (!named.isEmpty()) {
            return Optional.of(new ModelChatTemplate(Map.copyOf(named), file));
        }
        Path config = dir == null ? null : dir.resolve("tokenizer_config.json");
        if (config != null && Files.isRegularFile(config)) {
            JsonNode ct;
            try {
                ct = JSON.readTree(config.toFile()).path("chat_template");
            } catch (IOException e) {
                throw new TemplateException("cannot read " + config + ": " + e.getMessage());
            }
            if (ct.isArray()) {
                ct.forEach(t -> named.put(t.path("name").asText(), t.path("template").asText()));
            }
        }
        if (named.isEmpty() && tokenizer.config().chatTemplate() != null) {
            named.put("default", tokenizer.config().chatTemplate());
        }
        return named.isEmpty() ? Optional.empty() : Optional.of(new ModelChatTemplate(Map.copyOf(named), config));
    }

    /** The template transformers' apply_chat_template uses: "tool_use" when tools are given and it exists. */
    public String select(boolean hasTools) {
        if (hasTools && templates.containsKey("tool_use")) {
            return templates.get("tool_use");
        }
        String d = templates.get("default");
        if (d == null) {
            throw new TemplateException(source + " has chat templates " + templates.keySet()
                    + " but no \"default\" one; set template to a named template");
        }
        return d;
    }
}
