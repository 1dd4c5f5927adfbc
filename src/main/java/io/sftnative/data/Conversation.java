package io.sftnative.data;

import java.util.ArrayList;
import java.util.List;

import io.sftnative.template.Message;

/**
 * A record normalised as LLaMA-Factory's converters do: prompt messages (history then the query), the response
 * messages, the system text and the tools JSON.
 */
record Conversation(List<Message> prompt, List<Message> response, String system, String tools) {
    List<Message> messages() {
        List<Message> all = new ArrayList<>(prompt);
        all.addAll(response);
        return all;
    }
}
