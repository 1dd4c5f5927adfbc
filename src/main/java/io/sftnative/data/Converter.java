package io.sftnative.data;

import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;

import io.sftnative.template.Message;
import io.sftnative.template.Role;

/**
 * Raw records to {@link Conversation}s, as LLaMA-Factory's AlpacaDatasetConverter and SharegptDatasetConverter (and
 * {@link OpenAiConverter}).
 * Records that cannot be converted throw {@link DroppedException} with a reason (never silently lost).
 */
final class Converter {
    private Converter() {}

    static Conversation convert(JsonNode r, DatasetSpec spec) {
        return switch (spec.formatting()) {
            case ALPACA -> alpaca(r, spec.columns());
            case SHAREGPT -> sharegpt(r, spec.columns(), spec.tags());
            case OPENAI -> OpenAiConverter.convert(r, spec.columns(), spec.tags());
        };
    }

    /** The text of a pretraining record: the prompt column (or "text" for plain text files). */
    static String text(JsonNode r, DatasetSpec spec) {
        if (spec.formatting() != DatasetSpec.Formatting.ALPACA) {
            Conversation c = convert(r, spec);
            return c.prompt().isEmpty() ? "" : c.prompt().get(0).content();
        }
        DatasetSpec.Columns c = spec.columns();
        if (!r.has(c.prompt()) && r.has("text")) {
            return string(r, "text");
        }
        return alpaca(r, c).prompt().getLast().content();
    }

    private static Conversation alpaca(JsonNode r, DatasetSpec.Columns c) {
        List<Message> prompt = new ArrayList<>();
        if (c.history() != null && r.path(c.history()).isArray()) {
            for (JsonNode turn : r.get(c.history())) {
                if (!turn.isArray() || turn.size() != 2) {
                    throw new DroppedException("history column '" + c.history() + "' entry is not a"
                            + " [prompt, response] pair");
                }
                prompt.add(Message.user(turn.get(0).asText()));
                prompt.add(Message.assistant(turn.get(1).asText()));
            }
        }
        List<String> query = new ArrayList<>();
        String instruction = optionalString(r, c.prompt());
        if (instruction != null && !instruction.isEmpty()) {
            query.add(instruction);
        }
        String input = optionalString(r, c.query());
        if (input != null && !input.isEmpty()) {
            query.add(input);
        }
        prompt.add(Message.user(String.join("\n", query)));
        List<Message> response = new ArrayList<>();
        if (c.response() != null) {
            JsonNode out = r.get(c.response());
            if (out == null || out.isNull()) {
                throw new DroppedException("missing column '" + c.response() + "'");
            }
            if (!out.isTextual()) {
                throw new DroppedException("column '" + c.response() + "' is not a string");
            }
            response.add(Message.assistant(out.asText()));
        }
        return new Conversation(prompt, response, optionalString(r, c.system()), toolsText(r, c.tools()));
    }

    /** The record's message list (sharegpt and openai); a missing or non-list column drops the record. */
    static JsonNode messages(JsonNode r, DatasetSpec.Columns c) {
        JsonNode messages = r.get(c.messages());
        if (messages == null || messages.isNull()) {
            throw new DroppedException("missing column '" + c.messages() + "'");
        }
        if (!messages.isArray()) {
            throw new DroppedException("column '" + c.messages() + "' is not a list of messages");
        }
        return messages;
    }

    private static Conversation sharegpt(JsonNode r, DatasetSpec.Columns c, DatasetSpec.Tags t) {
        JsonNode messages = messages(r, c);
        int start = 0;
        String system;
        if (t.systemTag() != null && !messages.isEmpty()
                && t.systemTag().equals(messages.get(0).path(t.roleTag()).asText(null))) {
            system = content(messages.get(0), t);
            start = 1;
        } else {
            system = optionalString(r, c.system());
        }
        List<Message> aligned = new ArrayList<>();
        for (int i = start; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            if (!m.isObject() || !m.has(t.roleTag())) {
                throw new DroppedException("message without '" + t.roleTag() + "'");
            }
            String role = m.get(t.roleTag()).asText();
            int turn = i - start;
            Role aligns;
            if (turn % 2 == 0 && role.equals(t.userTag())) {
                aligns = Role.USER;
            } else if (turn % 2 == 0 && role.equals(t.observationTag())) {
                aligns = Role.OBSERVATION;
            } else if (turn % 2 == 1 && role.equals(t.assistantTag())) {
                aligns = Role.ASSISTANT;
            } else if (turn % 2 == 1 && role.equals(t.functionTag())) {
                aligns = Role.FUNCTION;
            } else {
                throw new DroppedException("roles do not alternate user/assistant (message " + (i + 1) + " is '"
                        + role + "', expected " + (turn % 2 == 0 ? t.userTag() + " or " + t.observationTag()
                                : t.assistantTag() + " or " + t.functionTag()) + ")");
            }
            aligned.add(new Message(aligns, content(m, t)));
        }
        if (aligned.isEmpty() || aligned.size() % 2 != 0) {
            throw new DroppedException("conversation does not end with an assistant message (odd message count)");
        }
        List<Message> prompt = new ArrayList<>(aligned.subList(0, aligned.size() - 1));
        List<Message> response = List.of(aligned.getLast());
        return new Conversation(prompt, response, system, toolsText(r, c.tools()));
    }

    private static String content(JsonNode m, DatasetSpec.Tags t) {
        JsonNode v = m.get(t.contentTag());
        if (v == null || v.isNull()) {
            throw new DroppedException("message without '" + t.contentTag() + "'");
        }
        if (!v.isTextual()) {
            throw new DroppedException("message '" + t.contentTag() + "' is not a string");
        }
        return v.asText();
    }

    static String optionalString(JsonNode r, String column) {
        if (column == null) {
            return null;
        }
        JsonNode v = r.get(column);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isTextual()) {
            throw new DroppedException("column '" + column + "' is not a string");
        }
        return v.asText();
    }

    private static String string(JsonNode r, String column) {
        String s = optionalString(r, column);
        return s == null ? "" : s;
    }

    /** Tools are a JSON string in LLaMA-Factory data; a JSON list/object is accepted too. */
    static String toolsText(JsonNode r, String column) {
        if (column == null) {
            return null;
        }
        JsonNode v = r.get(column);
        if (v == null || v.isNull()) {
            return null;
        }
        return v.isTextual() ? v.asText() : io.sftnative.json.PyJson.dumpsNonAscii(v); // as json.dumps writes it
    }
}
