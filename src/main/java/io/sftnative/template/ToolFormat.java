package io.sftnative.template;

import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sftnative.json.PyJson;

/**
 * How tool definitions (in the system slot) and tool calls (function messages) are written, as LLaMA-Factory's
 * ToolUtils "default" and "qwen". Templates whose LLaMA-Factory tool format is not implemented here reject examples
 * with tools or function calls (they are dropped and reported, never rendered differently).
 */
public enum ToolFormat {
    DEFAULT, QWEN, UNSUPPORTED;

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The text appended to the system prompt for a JSON array of tools ("" for an empty array). */
    String formatTools(String toolsJson, String template) {
        JsonNode tools = parse(toolsJson, "tools");
        if (!tools.isArray()) {
            throw new TemplateException("the tools column must hold a JSON array of tool definitions");
        }
        if (tools.isEmpty()) {
            return "";
        }
        return switch (this) {
            case QWEN -> qwenTools(tools);
            case DEFAULT -> defaultTools(tools);
            case UNSUPPORTED -> throw unsupported(template);
        };
    }

    /** The text of a function message: one or several {"name", "arguments"} calls. */
    String formatFunction(String content, String template) {
        if (this == UNSUPPORTED) {
            throw unsupported(template);
        }
        String thought = null;
        int ts = content.indexOf("<think>");
        int te = content.lastIndexOf("</think>");
        if (ts >= 0 && te > ts) {
            thought = content.substring(ts, te + "</think>".length());
            content = content.replace(thought, "");
        }
        JsonNode calls = parse(content, "function call");
        List<String[]> functions = new ArrayList<>();
        for (JsonNode call : calls.isArray() ? calls : List.of(calls)) {
            if (!call.has("name") || !call.has("arguments")) {
                throw new TemplateException("a function call must have \"name\" and \"arguments\": " + call);
            }
            functions.add(new String[] {call.get("name").asText(), PyJson.dumpsNonAscii(call.get("arguments"))});
        }
        List<String> parts = new ArrayList<>();
        for (String[] f : functions) {
            if (this == QWEN) {
                parts.add("<tool_call>\n" + "{\"name\": " + PyJson.dumpsNonAscii(f[0]) + ", \"arguments\": " + f[1]
                        + "}" + "\n</tool_call>");
            } else {
                parts.add("Action: " + f[0] + "\nAction Input: " + f[1]);
            }
        }
        String text = String.join("\n", parts);
        return thought == null ? text : thought + text;
    }

    private static TemplateException unsupported(String template) {
        return new TemplateException("template '" + template + "' has no tool-call format in sft-native yet"
                + " (tools / function_call messages); use template qwen, chatml, default or alpaca for tool data");
    }

    private static JsonNode parse(String json, String what) {
        try {
            return JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new TemplateException("invalid JSON in " + what + ": " + e.getOriginalMessage());
        }
    }

    private static String qwenTools(JsonNode tools) {
        StringBuilder text = new StringBuilder();
        for (JsonNode tool : tools) {
            text.append('\n').append("function".equals(tool.path("type").asText()) ? PyJson.dumpsNonAscii(tool)
                    : "{\"type\": \"function\", \"function\": " + PyJson.dumpsNonAscii(tool) + "}");
        }
        return "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>" + text
                + "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
                + "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
                + "\"arguments\": <args-json-object>}\n</tool_call>";
    }

    private static String defaultTools(JsonNode tools) {
        StringBuilder toolText = new StringBuilder();
        List<String> names = new ArrayList<>();
        for (JsonNode tool : tools) {
            if ("function".equals(tool.path("type").asText())) {
                tool = tool.path("function");
            }
            StringBuilder params = new StringBuilder();
            JsonNode parameters = tool.path("parameters");
            List<String> required = new ArrayList<>();
            parameters.path("required").forEach(r -> required.add(r.asText()));
            parameters.path("properties").properties().forEach(e -> {
                JsonNode p = e.getValue();
                String req = required.contains(e.getKey()) ? ", required" : "";
                String en = "";
                if (p.path("enum").isArray() && !p.path("enum").isEmpty()) {
                    List<String> vals = new ArrayList<>();
                    p.path("enum").forEach(v -> vals.add(v.asText()));
                    en = ", should be one of [" + String.join(", ", vals) + "]";
                }
                String items = p.has("items") && !p.path("items").isEmpty()
                        ? ", where each item should be " + p.path("items").path("type").asText("") : "";
                params.append("  - ").append(e.getKey()).append(" (").append(p.path("type").asText(""))
                        .append(req).append("): ").append(p.path("description").asText("")).append(en)
                        .append(items).append('\n');
            });
            toolText.append("> Tool Name: ").append(tool.path("name").asText()).append("\nTool Description: ")
                    .append(tool.path("description").asText("")).append("\nTool Args:\n").append(params)
                    .append('\n');
            names.add(tool.path("name").asText());
        }
        return "You have access to the following tools:\n" + toolText
                + "Use the following format if using a tool:\n```\nAction: tool name (one of ["
                + String.join(", ", names) + "])\nAction Input: the input to the tool, in a JSON format representing"
                + " the kwargs (e.g. ```{\"input\": \"hello world\", \"num_beams\": 5}```)\n```\n";
    }
}
