package io.sftnative.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import io.sftnative.template.Message;
import io.sftnative.template.Template;
import io.sftnative.tokenizer.Tokenizer;

/**
 * A multi-turn conversation rendered with a chat template, as LLaMA-Factory's ChatModel does: the prompt is every
 * earlier (user, assistant) pair plus the new user turn, encoded with {@link Template#encodeOneturn} on the history
 * followed by an empty assistant answer, and cut where that answer would start (reasoning templates drop earlier
 * thoughts there, as LLaMA-Factory's encode_oneturn). The reply is decoded up to the first
 * of the template's stop tokens, without special tokens, and joins the history.
 */
final class ChatSession {
    /** Continues a prompt: the new ids (they may end with a stop token). */
    interface Responder {
        long[] respond(long[] promptIds);
    }

    private final Tokenizer tokenizer;
    private final Template template;
    private final String system;
    private final Responder responder;
    private final Set<Integer> stops;
    private final List<Message> history = new ArrayList<>();

    /** @param system the system text, or null for the template's default */
    ChatSession(Tokenizer tokenizer, Template template, String system, Responder responder) {
        this.tokenizer = tokenizer;
        this.template = template;
        this.system = system;
        this.responder = responder;
        this.stops = template.stopTokenIds(tokenizer);
    }

    /** The ids the model continues for {@code user} after the current history. */
    long[] promptIds(String user) {
        List<Message> messages = new ArrayList<>(history);
        messages.add(Message.user(user));
        messages.add(Message.assistant(""));
        int[] prompt = template.encodeOneturn(tokenizer, messages, system, null).source();
        long[] ids = new long[prompt.length];
        for (int i = 0; i < prompt.length; i++) {
            ids[i] = prompt[i];
        }
        return ids;
    }

    /** One turn: generates, decodes up to the stop token, and records the exchange. */
    String reply(String user) {
        long[] generated = responder.respond(promptIds(user));
        int end = 0;
        while (end < generated.length && !stops.contains((int) generated[end])) {
            end++;
        }
        int[] ids = Arrays.stream(Arrays.copyOf(generated, end)).mapToInt(x -> (int) x).toArray();
        String text = tokenizer.decode(ids, true).strip();
        history.add(Message.user(user));
        history.add(Message.assistant(text));
        return text;
    }

    void clear() {
        history.clear();
    }

    List<Message> history() {
        return List.copyOf(history);
    }

    /**
     * The read-eval-print loop: each line is a user turn; {@code /clear} (or {@code clear}) forgets the history,
     * {@code /exit} (or {@code exit}) or end of input quits. Returns the number of turns answered.
     */
    int run(BufferedReader in, PrintStream out) throws IOException {
        out.println("Chat with the model: /clear forgets the conversation, /exit quits.");
        int turns = 0;
        while (true) {
            out.print("\nUser: ");
            out.flush();
            String line = in.readLine();
            if (line == null) {
                out.println();
                return turns;
            }
            String q = line.strip();
            if (q.equals("/exit") || q.equals("exit")) {
                return turns;
            }
            if (q.equals("/clear") || q.equals("clear")) {
                clear();
                out.println("History has been removed.");
                continue;
            }
            if (q.isEmpty()) {
                continue;
            }
            out.print("Assistant: ");
            out.flush();
            out.println(reply(q));
            turns++;
        }
    }
}
