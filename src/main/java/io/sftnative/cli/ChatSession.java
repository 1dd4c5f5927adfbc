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

        /** As {@link #respond(long[])}, generating at most {@code maxNewTokens}. */
        default long[] respond(long[] promptIds, int maxNewTokens) {
            return respond(promptIds);
        }
    }

    private final Tokenizer tokenizer;
    private final Template template;
    private final String system;
    private final Responder responder;
    private final Set<Integer> stops;
    private final List<Message> history = new ArrayList<>();
    private final int context; // the model's max_position_embeddings: prompt + answer must fit
    private final int maxNewTokens;
    private String notice; // said before the next answer (history forgotten to fit the context)

    /** @param system the system text, or null for the template's default */
    ChatSession(Tokenizer tokenizer, Template template, String system, Responder responder) {
        this(tokenizer, template, system, Integer.MAX_VALUE, Integer.MAX_VALUE, responder);
    }

    /**
     * @param context      the model's context (max_position_embeddings); the prompt and the answer together stay
     *                     within it, so memory stays bounded whatever the user types
     * @param maxNewTokens the answer length limit; a prompt keeps room for at least half the context of answer
     */
    ChatSession(Tokenizer tokenizer, Template template, String system, int context, int maxNewTokens,
            Responder responder) {
        this.tokenizer = tokenizer;
        this.template = template;
        this.system = system;
        this.responder = responder;
        this.stops = template.stopTokenIds(tokenizer);
        this.context = context;
        this.maxNewTokens = maxNewTokens;
    }

    /** A user turn that cannot fit the model's context even without any history. */
    static final class TooLongException extends IllegalArgumentException {
        TooLongException(String message) {
            super(message);
        }
    }

    /** The ids the model continues for {@code user} after the current history. */
    long[] promptIds(String user) {
        return promptIds(user, history);
    }

    private long[] promptIds(String user, List<Message> history) {
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
        // the prompt leaves room for the answer: max_new_tokens, but never more than half the context
        long budget = (long) context - Math.min(maxNewTokens, context / 2);
        long[] prompt = promptIds(user);
        int forgotten = 0;
        while (prompt.length > budget && forgotten < history.size() / 2) {
            forgotten++; // oldest exchanges first, as LLaMA-Factory's history is cut from the front
            prompt = promptIds(user, history.subList(2 * forgotten, history.size()));
        }
        if (prompt.length > budget) {
            throw new TooLongException("this message is " + prompt.length + " tokens with the template; the model's"
                    + " context is " + context + " tokens and keeps " + (context - budget) + " for the answer: send"
                    + " a shorter message (nothing was generated)");
        }
        if (forgotten > 0) {
            history.subList(0, 2 * forgotten).clear();
            notice = "(the conversation outgrew the model's context of " + context + " tokens: the " + forgotten
                    + " oldest exchange" + (forgotten == 1 ? " is" : "s are") + " forgotten)";
        }
        int room = (int) Math.min(maxNewTokens, (long) context - prompt.length);
        long[] generated = responder.respond(prompt, room);
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
            String answer;
            try {
                answer = reply(q);
            } catch (TooLongException e) {
                out.println("error: " + e.getMessage());
                continue;
            }
            if (notice != null) {
                out.println(notice);
                notice = null;
            }
            out.print("Assistant: ");
            out.flush();
            out.println(answer);
            turns++;
        }
    }
}
