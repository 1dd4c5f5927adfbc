package io.sftnative.tokenizer;

/**
 * What differs between tokenizer kinds: the native library that turns text into ids and back ({@link HfTokenizer}:
 * HF tokenizers for {@code tokenizer.json}; {@link SentencePieceTokenizer}: sentencepiece for
 * {@code tokenizer.model}). Everything else a {@link Tokenizer} answers is in {@link LoadedTokenizer}, which owns the
 * engine and checks that it is open before each call.
 */
interface TokenizerEngine extends AutoCloseable {

    /** Ids of {@code text}, with no implicit special tokens. */
    int[] encode(String text);

    /** Text of {@code ids}; special tokens are kept as their text unless {@code skipSpecialTokens}. */
    String decode(int[] ids, boolean skipSpecialTokens);

    /** Frees the native tokenizer; called once. */
    @Override
    void close();
}
