package io.sftnative.template;

/**
 * One element of a template slot (LLaMA-Factory's formatter slots): text with {@code {{content}}} / {@code {{idx}}}
 * placeholders, tokenized on its own; or a token emitted as an id, never as text.
 */
public sealed interface Slot {
    /** Text, tokenized separately from its neighbours (so ids can differ from tokenizing the whole string). */
    record Text(String text) implements Slot {}

    /** The tokenizer's BOS id; nothing when the tokenizer has no BOS. */
    record Bos() implements Slot {}

    /** The template's EOS id (the first stop word for replace_eos templates). */
    record Eos() implements Slot {}

    /** The id of one named special token. */
    record Token(String token) implements Slot {}

    static Text text(String s) {
        return new Text(s);
    }

    Bos BOS = new Bos();
    Eos EOS = new Eos();

    static Token token(String t) {
        return new Token(t);
    }
}
