package io.sftnative.data;

import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;

import io.sftnative.json.PyJson;
import io.sftnative.template.Message;
import io.sftnative.template.Role;

/**
 * {@code "formatting": "openai"}, as LLaMA-Factory's OpenAIDatasetConverter: OpenAI chat messages with the dataset's
 * tags. An assistant (or function) message with {@code tool_calls} becomes a function message whose content is the
 * JSON list of the calls' {@code function} objects; consecutive tool (observation) messages become one observation,
 * joined by {@code \n</tool_response>\n<tool_response>\n}; tool messages after the last answer are dropped, as there.
 * Like LLaMA-Factory at commit ff6d4d1, the system text gets {@code detailed thinking off} (appended on a new line, or
 * as the whole system text) unless the example has tools or already says {@code detailed thinking on/off}; with tools
 * a newline is appended to a non-empty system text.
 */
final class OpenAiConverter {
    private static final String THINKING_OFF = "detailed thinking off";

    private OpenAiConverter() {}

    static Conversation convert(JsonNode r, DatasetSpec.Columns c, DatasetSpec.Tags t) {
        JsonNode messages = Converter.messages(r, c);
        int start = 0;
        String system;
        if (t.systemTag() != null && !messages.isEmpty()
                && t.systemTag().equals(messages.get(0).path(t.roleTag()).asText(null))) {
            system = content(messages.get(0), t, 1);
            start = 1;
        } else {
            system = Converter.optionalString(r, c.system());
        }
        List<Message> aligned = new ArrayList<>();
        List<String> toolResponses = new ArrayList<>();
        for (int i = start; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            if (!m.isObject() || !m.has(t.roleTag())) {
                throw new DroppedException("message " + (i + 1) + " has no '" + t.roleTag() + "'");
            }
            String role = m.get(t.roleTag()).asText();
            String content;
            JsonNode toolCalls = m.get("tool_calls");
            boolean answer = role.equals(t.assistantTag()) || role.equals(t.functionTag());
            if (answer && toolCalls != null && toolCalls.isArray() && !toolCalls.isEmpty()) {
                ArrayNode functions = JsonNodeFactory.instance.arrayNode();
                for (JsonNode call : toolCalls) {
                    if (!call.has("function")) {
                        throw new DroppedException("message " + (i + 1) + ": a tool call without \"function\"");
                    }
                    functions.add(call.get("function"));
                }
                content = PyJson.dumpsNonAscii(functions);
                role = t.functionTag();
            } else {
                content = content(m, t, i + 1);
            }
            if (role.equals(t.observationTag())) {
                toolResponses.add(content);
                continue;
            }
            if (!toolResponses.isEmpty()) {
                aligned.add(new Message(Role.OBSERVATION, String.join("\n</tool_response>\n<tool_response>\n",
                        toolResponses)));
                toolResponses.clear();
            }
            aligned.add(new Message(role(role, t, i + 1), content));
        }
        for (int k = 0; k < aligned.size(); k++) {
            Role role = aligned.get(k).role();
            boolean ok = k % 2 == 0 ? role == Role.USER || role == Role.OBSERVATION
                    : role == Role.ASSISTANT || role == Role.FUNCTION;
            if (!ok) {
                throw new DroppedException("roles do not alternate user/assistant (message " + (k + 1) + " after"
                        + " joining tool messages is " + role.value() + ")");
            }
        }
        if (aligned.isEmpty() || aligned.size() % 2 != 0) {
            throw new DroppedException("conversation does not end with an assistant message (odd message count)");
        }
        String tools = Converter.toolsText(r, c.tools());
        boolean hasTools = tools != null && !tools.isEmpty();
        if (system == null || system.isEmpty()) {
            system = hasTools ? system : THINKING_OFF;
        } else if (!hasTools) {
            if (!system.contains("detailed thinking on") && !system.contains(THINKING_OFF)) {
                system += "\n" + THINKING_OFF;
            }
        } else {
            system += "\n";
        }
        return new Conversation(new ArrayList<>(aligned.subList(0, aligned.size() - 1)), List.of(aligned.getLast()),
                system, tools);
    }

    private static Role role(String role, DatasetSpec.Tags t, int index) {
        if (role.equals(t.userTag())) {
            return Role.USER;
        }
        if (role.equals(t.assistantTag())) {
            return Role.ASSISTANT;
        }
        if (role.equals(t.functionTag())) {
            return Role.FUNCTION;
        }
        throw new DroppedException("message " + index + " has role '" + role + "', which the dataset's tags do not"
                + " name (user_tag '" + t.userTag() + "', assistant_tag '" + t.assistantTag() + "', observation_tag '"
                + t.observationTag() + "', function_tag '" + t.functionTag() + "', system_tag '" + t.systemTag()
                + "' only first)");
    }

    private static String content(JsonNode m, DatasetSpec.Tags t, int index) {
        JsonNode v = m.get(t.contentTag());
        if (v == null || v.isNull()) {
            throw new DroppedException("message " + index + " has no '" + t.contentTag() + "'");
        }
        if (!v.isTextual()) {
            throw new DroppedException("message " + index + " '" + t.contentTag() + "' is not a string");
        }
        return v.asText();
    }
}
