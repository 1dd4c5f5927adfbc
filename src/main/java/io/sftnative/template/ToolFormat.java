package io.sftnative.template;

import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.sftnative.json.PyJson;

/**
 * How tool definitions (appended to the system text) and tool calls (function messages) are written: LLaMA-Factory's
 * tool formats ({@code tool_utils}, the {@code tool_format} key), one constant each, same text to the character.
 * JSON is written as Python's {@code json.dumps(..., ensure_ascii=False)} ({@link PyJson}).
 *
 * <p>{@link #UNSUPPORTED} rejects examples with tools or function calls (dropped and reported, never rendered
 * differently); LLaMA-Factory has no such format, every template of theirs has one.
 */
public enum ToolFormat {
    DEFAULT("default"), QWEN("qwen"), LLAMA3("llama3"), MISTRAL("mistral"), GLM4("glm4"), GLM4_MOE("glm4_moe"),
    QWEN3_5("qwen3_5"), MINIMAX1("minimax1"), MINIMAX2("minimax2"), SEED_OSS("seed_oss"), LING("ling"),
    LFM2("lfm2"), GEMMA4("gemma4"), UNSUPPORTED("unsupported");

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String QWEN_TOOLS_HEAD = "\n\n# Tools\n\nYou may call one or more functions to assist with"
            + " the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    private static final String QWEN_TOOLS_TAIL = "\n</tools>\n\nFor each function call, return a json object with"
            + " function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\":"
            + " <function-name>, \"arguments\": <args-json-object>}\n</tool_call>";

    /** Today's date for the llama3 tool text (LLaMA-Factory writes {@code datetime.now()}); tests pin it. */
    static volatile Supplier<LocalDate> today = LocalDate::now;

    private final String key;

    ToolFormat(String key) {
        this.key = key;
    }

    /** The {@code tool_format} value. */
    public String key() {
        return key;
    }

    /** The {@code tool_format} key's value, or an error naming the formats LLaMA-Factory has. */
    public static ToolFormat named(String name) {
        for (ToolFormat f : values()) {
            if (f != UNSUPPORTED && f.key.equals(name)) {
                return f;
            }
        }
        List<String> keys = new ArrayList<>();
        for (ToolFormat f : values()) {
            if (f != UNSUPPORTED) {
                keys.add(f.key);
            }
        }
        throw new TemplateException("unknown tool_format '" + name + "'; LLaMA-Factory's tool formats are "
                + String.join(", ", keys));
    }

    /** One parsed call: the name and the arguments (any JSON value, as LLaMA-Factory keeps them). */
    record Call(String name, JsonNode arguments) {}

    /** The text appended to the system prompt for a JSON array of tools ("" for an empty array). */
    String formatTools(String toolsJson, String template) {
        JsonNode tools = parse(toolsJson, "tool description");
        if (!tools.isArray()) {
            throw new TemplateException("the tools column must hold a JSON array of tool definitions");
        }
        if (tools.isEmpty()) {
            return "";
        }
        List<JsonNode> list = new ArrayList<>();
        tools.forEach(list::add);
        return switch (this) {
            case DEFAULT -> defaultTools(list);
            case QWEN -> QWEN_TOOLS_HEAD + lines(list, true) + QWEN_TOOLS_TAIL;
            case LING -> "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                    + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
                    + lines(list, true) + QWEN_TOOLS_TAIL + "\ndetailed thinking off";
            case LLAMA3 -> llama3Tools(list);
            case MISTRAL -> "[AVAILABLE_TOOLS] " + PyJson.dumpsNonAscii(wrapAll(list)) + "[/AVAILABLE_TOOLS]";
            case GLM4 -> glm4Tools(list);
            case GLM4_MOE -> QWEN_TOOLS_HEAD + lines(list, true) + "\n</tools>\n\nFor each function call, output the"
                    + " function name and arguments within the following XML format:\n<tool_call>{function-name}"
                    + "\n<arg_key>{arg-key-1}</arg_key>\n<arg_value>{arg-value-1}</arg_value>\n<arg_key>{arg-key-2}"
                    + "</arg_key>\n<arg_value>{arg-value-2}</arg_value>\n...\n</tool_call>\n";
            case QWEN3_5 -> qwen35Tools(list);
            case MINIMAX1 -> minimax1Tools(list);
            case MINIMAX2 -> minimax2Tools(list);
            case SEED_OSS -> seedTools(tools);
            case LFM2 -> "List of tools: <|tool_list_start|>" + PyJson.dumpsNonAscii(unwrapAll(list, true))
                    + "<|tool_list_end|>";
            case GEMMA4 -> Gemma4Tools.declarations(list);
            case UNSUPPORTED -> throw unsupported(template);
        };
    }

    /**
     * The text of a function message (LLaMA-Factory's FunctionFormatter): the calls as JSON ({"name", "arguments"}
     * or a list of them); a thought (between the thought words) or any text around a tool-call block (between the
     * tool-call words) is kept in front of the formatted calls.
     *
     * @param thoughtWords  the template's thought words, or null (llama2-style templates pass none)
     * @param toolCallWords the tool-call words, or null
     */
    String formatFunction(String content, String[] thoughtWords, String[] toolCallWords, String template) {
        if (this == UNSUPPORTED) {
            throw unsupported(template);
        }
        Matcher toolCall = toolCallWords == null ? null : between(toolCallWords).matcher(content);
        if (toolCall != null && toolCall.find()) {
            String outside = content.replace(toolCall.group(0), "");
            return outside + formatCalls(parseCalls(toolCall.group(1), content));
        }
        Matcher thought = thoughtWords == null ? null : between(thoughtWords).matcher(content);
        if (thought != null && thought.find()) {
            String json = content.replace(thought.group(0), "");
            return thought.group(0) + formatCalls(parseCalls(json, content));
        }
        return formatCalls(parseCalls(content, content));
    }

    /** {@code open(.*?)close}, dot matching newlines, as LLaMA-Factory's regexes. */
    static Pattern between(String[] words) {
        return Pattern.compile(Pattern.quote(words[0]) + "(.*?)" + Pattern.quote(words[1]), Pattern.DOTALL);
    }

    private static List<Call> parseCalls(String json, String content) {
        JsonNode calls;
        try {
            calls = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new TemplateException("invalid JSON format in function message: " + content);
        }
        if (calls == null) {
            throw new TemplateException("invalid JSON format in function message: " + content);
        }
        List<Call> out = new ArrayList<>();
        for (JsonNode call : calls.isArray() ? calls : List.of(calls)) {
            if (!call.has("name") || !call.has("arguments")) {
                throw new TemplateException("a function call must have \"name\" and \"arguments\": " + call);
            }
            JsonNode name = call.get("name");
            out.add(new Call(name.isTextual() ? name.asText() : name.toString(), call.get("arguments")));
        }
        return out;
    }

    private String formatCalls(List<Call> calls) {
        List<String> parts = new ArrayList<>();
        switch (this) {
            case DEFAULT -> calls.forEach(c -> parts.add("Action: " + c.name() + "\nAction Input: "
                    + PyJson.dumpsNonAscii(c.arguments())));
            case QWEN, LING -> calls.forEach(c -> parts.add("<tool_call>\n" + PyJson.dumpsNonAscii(
                    call("name", c.name(), "arguments", c.arguments())) + "\n</tool_call>"));
            case LLAMA3 -> {
                List<Object> objects = new ArrayList<>();
                calls.forEach(c -> objects.add(call("name", c.name(), "parameters", c.arguments())));
                return PyJson.dumpsNonAscii(objects.size() == 1 ? objects.get(0) : objects);
            }
            case MISTRAL -> {
                List<Object> objects = new ArrayList<>();
                calls.forEach(c -> objects.add(call("name", c.name(), "arguments", c.arguments())));
                return PyJson.dumpsNonAscii(objects);
            }
            case GLM4 -> {
                if (calls.size() > 1) {
                    throw new TemplateException("tool format glm4 does not support parallel function calls"
                            + " (LLaMA-Factory: GLM-4 does not support parallel functions)");
                }
                return calls.get(0).name() + "\n" + PyJson.dumpsNonAscii(calls.get(0).arguments());
            }
            case GLM4_MOE -> calls.forEach(c -> {
                StringBuilder sb = new StringBuilder("\n<tool_call>" + c.name());
                fields(c).forEach((k, v) -> sb.append("\n<arg_key>").append(k).append("</arg_key>\n<arg_value>")
                        .append(plain(v)).append("</arg_value>"));
                parts.add(sb.toString());
            });
            case QWEN3_5 -> calls.forEach(c -> {
                StringBuilder sb = new StringBuilder("<tool_call>\n<function=" + c.name() + ">");
                fields(c).forEach((k, v) -> sb.append("\n<parameter=").append(k).append(">\n").append(plain(v))
                        .append("\n</parameter>"));
                parts.add(sb.append("\n</function>\n</tool_call>").toString());
            });
            case MINIMAX1 -> {
                calls.forEach(c -> parts.add(PyJson.dumpsNonAscii(call("name", c.name(), "arguments",
                        c.arguments()))));
                return "<tool_calls>\n" + String.join("\n", parts) + "\n</tool_calls>";
            }
            case MINIMAX2 -> calls.forEach(c -> {
                StringBuilder sb = new StringBuilder("<invoke name=\"" + c.name() + "\">");
                fields(c).forEach((k, v) -> sb.append("\n<parameter name=\"").append(k).append("\">")
                        .append(plain(v)).append("</parameter>"));
                parts.add(sb.append("\n</invoke>").toString());
            });
            case SEED_OSS -> calls.forEach(c -> {
                StringBuilder sb = new StringBuilder("\n<seed:tool_call>\n<function=" + c.name());
                fields(c).forEach((k, v) -> sb.append("\n<parameter=").append(k).append(">").append(plain(v))
                        .append("</parameter>"));
                parts.add(sb.append("\n</function>\n</seed:tool_call>").toString());
            });
            case LFM2 -> {
                calls.forEach(c -> {
                    List<String> kwargs = new ArrayList<>();
                    fields(c).forEach((k, v) -> kwargs.add(v.isTextual() ? k + "=\"" + v.asText() + "\""
                            : k + "=" + PyJson.dumpsNonAscii(v)));
                    parts.add(c.name() + "(" + String.join(", ", kwargs) + ")");
                });
                return "<|tool_call_start|>[" + String.join(", ", parts) + "]<|tool_call_end|>";
            }
            case GEMMA4 -> {
                return Gemma4Tools.calls(calls);
            }
            case UNSUPPORTED -> throw new IllegalStateException();
        }
        return String.join("\n", parts);
    }

    private static Map<String, Object> call(String k1, String name, String k2, JsonNode args) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(k1, name);
        m.put(k2, args);
        return m;
    }

    /** The arguments of a call as an ordered map; formats that walk them need a JSON object. */
    private Map<String, JsonNode> fields(Call c) {
        if (!c.arguments().isObject()) {
            throw new TemplateException("tool format " + key + " needs the arguments of function '" + c.name()
                    + "' to be a JSON object, got " + c.arguments());
        }
        Map<String, JsonNode> m = new LinkedHashMap<>();
        c.arguments().properties().forEach(e -> m.put(e.getKey(), e.getValue()));
        return m;
    }

    /** A string value as is, anything else as JSON. */
    private static String plain(JsonNode v) {
        return v.isTextual() ? v.asText() : PyJson.dumpsNonAscii(v);
    }

    private static JsonNode wrap(JsonNode tool) {
        if ("function".equals(tool.path("type").asText(null))) {
            return tool;
        }
        ObjectNode w = JsonNodeFactory.instance.objectNode();
        w.put("type", "function");
        w.set("function", tool);
        return w;
    }

    private static List<JsonNode> wrapAll(List<JsonNode> tools) {
        return tools.stream().map(ToolFormat::wrap).toList();
    }

    /**
     * The bare function of each tool; {@code keepWhenMissing}: a "type": "function" tool without "function" stays
     * whole (LLaMA-Factory's {@code tool.get("function", tool)}) instead of becoming "" ({@code get("function", "")}).
     */
    static List<JsonNode> unwrapAll(List<JsonNode> tools, boolean keepWhenMissing) {
        List<JsonNode> out = new ArrayList<>();
        for (JsonNode t : tools) {
            if ("function".equals(t.path("type").asText(null))) {
                JsonNode f = t.get("function");
                out.add(f != null ? f : keepWhenMissing ? t : JsonNodeFactory.instance.textNode(""));
            } else {
                out.add(t);
            }
        }
        return out;
    }

    private static String lines(List<JsonNode> tools, boolean wrap) {
        StringBuilder sb = new StringBuilder();
        for (JsonNode t : tools) {
            sb.append('\n').append(PyJson.dumpsNonAscii(wrap ? wrap(t) : t));
        }
        return sb.toString();
    }

    private static String defaultTools(List<JsonNode> tools) {
        StringBuilder toolText = new StringBuilder();
        List<String> names = new ArrayList<>();
        for (JsonNode tool : unwrapAll(tools, false)) {
            JsonNode parameters = tool.path("parameters");
            if (!tool.has("name") || !parameters.path("properties").isObject()) {
                throw new TemplateException("tool format default needs \"name\" and \"parameters\": {\"properties\":"
                        + " {...}} in every tool definition, got " + tool);
            }
            List<String> required = new ArrayList<>();
            parameters.path("required").forEach(r -> required.add(r.asText()));
            StringBuilder params = new StringBuilder();
            parameters.path("properties").properties().forEach(e -> {
                JsonNode p = e.getValue();
                String en = "";
                if (p.path("enum").isArray() && !p.path("enum").isEmpty()) {
                    List<String> vals = new ArrayList<>();
                    p.path("enum").forEach(v -> vals.add(v.asText()));
                    en = ", should be one of [" + String.join(", ", vals) + "]";
                }
                String items = p.path("items").isObject() && !p.path("items").isEmpty()
                        ? ", where each item should be " + p.path("items").path("type").asText("") : "";
                params.append("  - ").append(e.getKey()).append(" (").append(p.path("type").asText(""))
                        .append(required.contains(e.getKey()) ? ", required" : "").append("): ")
                        .append(p.path("description").asText("")).append(en).append(items).append('\n');
            });
            toolText.append("> Tool Name: ").append(tool.get("name").asText()).append("\nTool Description: ")
                    .append(tool.path("description").asText("")).append("\nTool Args:\n").append(params)
                    .append('\n');
            names.add(tool.get("name").asText());
        }
        return "You have access to the following tools:\n" + toolText
                + "Use the following format if using a tool:\n```\nAction: tool name (one of ["
                + String.join(", ", names) + "])\nAction Input: the input to the tool, in a JSON format representing"
                + " the kwargs (e.g. ```{\"input\": \"hello world\", \"num_beams\": 5}```)\n```\n";
    }

    private static String llama3Tools(List<JsonNode> tools) {
        StringBuilder toolText = new StringBuilder();
        for (JsonNode t : wrapAll(tools)) {
            toolText.append(PyJson.dumpsNonAscii(t, 4)).append("\n\n");
        }
        String date = today.get().format(DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ROOT));
        return "Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\nYou have access to the following"
                + " functions. To call a function, please respond with JSON for a function call. Respond in the format"
                + " {\"name\": function name, \"parameters\": dictionary of argument name and its value}. Do not use"
                + " variables.\n\n" + toolText;
    }

    private static String glm4Tools(List<JsonNode> tools) {
        StringBuilder toolText = new StringBuilder();
        for (JsonNode t : unwrapAll(tools, false)) {
            toolText.append("\n\n## ").append(t.path("name").asText()).append("\n\n")
                    .append(PyJson.dumpsNonAscii(t, 4)).append("\n在调用上述函数时，请使用 Json 格式表示调用的参数。");
        }
        return "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，"
                + "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具" + toolText;
    }

    private static String qwen35Tools(List<JsonNode> tools) {
        StringBuilder toolText = new StringBuilder();
        for (JsonNode t : unwrapAll(tools, true)) {
            toolText.append('\n').append(PyJson.dumpsNonAscii(t));
        }
        return "\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>" + toolText
                + "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:"
                + "\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n"
                + "</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can"
                + " span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
                + "- Function calls MUST follow the specified format: an inner <function=...></function> block must"
                + " be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n"
                + "- You may provide optional reasoning for your function call in natural language BEFORE the"
                + " function call, but NOT after\n- If there is no function call available, answer the question like"
                + " normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>";
    }

    private static String minimax1Tools(List<JsonNode> tools) {
        StringBuilder toolText = new StringBuilder();
        for (JsonNode t : unwrapAll(tools, false)) {
            toolText.append(PyJson.dumpsNonAscii(t)).append('\n');
        }
        return "You are provided with these tools:\n<tools>\n" + toolText + "</tools>\n\nIf you need to call tools,"
                + " please respond with <tool_calls></tool_calls> XML tags, and provide tool-name and json-object of"
                + " arguments, following the format below:\n<tool_calls>\n{\"name\": <tool-name-1>, \"arguments\":"
                + " <args-json-object-1>}\n...\n</tool_calls>";
    }

    private static String minimax2Tools(List<JsonNode> tools) {
        StringBuilder toolText = new StringBuilder();
        for (JsonNode t : unwrapAll(tools, false)) {
            toolText.append("<tool>").append(PyJson.dumpsNonAscii(t)).append("</tool>\n");
        }
        return "\n\n# Tools\n\nYou may call one or more tools to assist with the user query.\nHere are the tools"
                + " available in JSONSchema format:\n\n<tools>\n" + toolText + "</tools>\n\nWhen making tool calls,"
                + " use XML format to invoke tools and pass parameters:\n\n<minimax:tool_call>\n<invoke"
                + " name=\"tool-name-1\">\n<parameter name=\"param-key-1\">param-value-1</parameter>\n<parameter"
                + " name=\"param-key-2\">param-value-2</parameter>\n...\n</invoke>\n</minimax:tool_call>";
    }

    private static String seedTools(JsonNode tools) {
        return "system\nYou are Doubao, a helpful AI assistant. You may call one or more functions to assist with the"
                + " user query.Tool List:\nYou are authorized to use the following tools (described in JSON Schema"
                + " format). Before performing any task, you must decide how to call them based on the descriptions"
                + " and parameters of these tools.\n" + PyJson.dumpsNonAscii(tools) + "\n工具调用请遵循如下格式:\n"
                + "<seed:tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>value_1"
                + "</parameter>\n<parameter=example_parameter_2>This is the value for the second parameter\nthat can"
                + " span\nmultiple lines</parameter>\n</function>\n</seed:tool_call>\n";
    }

    private static TemplateException unsupported(String template) {
        return new TemplateException("template '" + template + "' has no tool format (tools / function_call"
                + " messages); set tool_format to one of " + Arrays.stream(values()).filter(f -> f != UNSUPPORTED)
                        .map(ToolFormat::key).toList());
    }

    private static JsonNode parse(String json, String what) {
        try {
            JsonNode n = JSON.readTree(json);
            if (n == null) {
                throw new TemplateException("invalid JSON format in " + what + ": empty");
            }
            return n;
        } catch (JsonProcessingException e) {
            throw new TemplateException("invalid JSON format in " + what + ": " + e.getOriginalMessage());
        }
    }
}
