package io.sftnative.tokenizer;

import java.nio.file.Path;
import java.util.Map;

/**
 * A tokenizer directory as loaded: vocabulary, special tokens, tokenizer_config.json and fingerprint, plus the
 * {@link TokenizerEngine} that encodes and decodes. It owns the engine: {@link #close()} frees it once, and every
 * use after that throws {@link IllegalStateException}.
 */
final class LoadedTokenizer implements Tokenizer {
    private final Path dir;
    private final TokenizerEngine engine;
    private final Map<String, Integer> vocab; // every token text (model vocab + added tokens) to id
    private final int vocabSize;
    private final SpecialTokens special;
    private final TokenizerConfig config;
    private final String fingerprint;
    private volatile boolean closed;

    /** {@code file}: the tokenizer.json or tokenizer.model in {@code dir}, fingerprinted with tokenizer_config.json. */
    LoadedTokenizer(Path dir, Path file, TokenizerEngine engine, Map<String, Integer> vocab, int vocabSize,
            SpecialTokens special, TokenizerConfig config) {
        this.dir = dir;
        this.engine = engine;
        this.vocab = vocab;
        this.vocabSize = vocabSize;
        this.special = special;
        this.config = config;
        this.fingerprint = Fingerprint.of(file, dir.resolve(TokenizerConfig.FILE));
    }

    @Override
    public int[] encode(String text) {
        checkOpen();
        return engine.encode(text);
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        checkOpen();
        return engine.decode(ids, skipSpecialTokens);
    }

    @Override
    public int tokenId(String token) {
        checkOpen();
        return vocab.getOrDefault(token, -1);
    }

    @Override
    public SpecialTokens specialTokens() {
        return special;
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public int length() {
        return vocab.size();
    }

    @Override
    public TokenizerConfig config() {
        return config;
    }

    @Override
    public String fingerprint() {
        return fingerprint;
    }

    @Override
    public Path directory() {
        return dir;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("tokenizer " + dir + " is closed");
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            engine.close();
        }
    }
}
