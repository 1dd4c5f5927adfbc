package io.sftnative.tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Text to token ids and back, for one model's vocabulary.
 *
 * <p>{@link #encode} never adds special tokens on its own (no BOS/EOS, no truncation, no padding): callers put
 * BOS/EOS in as ids where the chat template says so. Special-token text inside the input (for example
 * {@code <|im_start|>} in a template slot) becomes that token's id, never a re-tokenised string, as HF tokenizers do.
 *
 * <p>Implementations hold native memory: close them (try-with-resources). Using a closed tokenizer throws
 * {@link IllegalStateException}. Encoding and decoding are thread-safe.
 */
public interface Tokenizer extends AutoCloseable {

    /** Ids of {@code text}, with no implicit special tokens. */
    int[] encode(String text);

    /** Text of {@code ids}; special tokens are kept as their text unless {@code skipSpecialTokens}. */
    String decode(int[] ids, boolean skipSpecialTokens);

    /** Id of a token string as the vocabulary spells it (e.g. {@code <|im_end|>}, {@code Ġthe}), or -1. */
    int tokenId(String token);

    /** Special tokens (text and id) after tokenizer_config.json. */
    SpecialTokens specialTokens();

    /** The number of ids this tokenizer can produce (largest id + 1). */
    int vocabSize();

    /**
     * HF's {@code len(tokenizer)}: the number of distinct token texts (model vocabulary plus added tokens), what
     * LLaMA-Factory compares with the embedding rows to decide whether to resize them.
     */
    default int length() {
        return vocabSize();
    }

    /** tokenizer_config.json as read (chat_template, add_bos_token, ...). */
    TokenizerConfig config();

    /** A content hash of the tokenizer files: equal fingerprints tokenize identically (used as a cache key). */
    String fingerprint();

    /** The directory the tokenizer was loaded from. */
    Path directory();

    /** Id of a token, or a clear error naming the tokenizer when the vocabulary lacks it. */
    default int requireTokenId(String token) {
        int id = tokenId(token);
        if (id < 0) {
            throw new TokenizerException("token '" + token + "' is not in the vocabulary of the tokenizer in "
                    + directory() + "; the template needs it: choose a template that matches this model");
        }
        return id;
    }

    default int bosId() {
        return specialTokens().bosId();
    }

    default int eosId() {
        return specialTokens().eosId();
    }

    /** The padding id: pad_token, else EOS (as LLaMA-Factory does when a model has no pad token). */
    default int padId() {
        return specialTokens().padId() >= 0 ? specialTokens().padId() : specialTokens().eosId();
    }

    /** Special token text to id (BOS/EOS/PAD/UNK and every added token marked special). */
    default Map<String, Integer> specialTokenIds() {
        return specialTokens().all();
    }

    @Override
    void close();

    /**
     * Loads the tokenizer in {@code dir}: {@code tokenizer.json} (HF tokenizers: byte-level BPE, Metaspace, ...)
     * when present, else a sentencepiece {@code tokenizer.model}; {@code tokenizer_config.json} beside it supplies
     * BOS/EOS/PAD, added tokens and the chat template. Model weights are not needed.
     */
    static Tokenizer load(Path dir) {
        if (dir == null) {
            throw new TokenizerException("no tokenizer: set model_name_or_path to a directory holding tokenizer.json"
                    + " or tokenizer.model (and tokenizer_config.json)");
        }
        if (Files.isRegularFile(dir)) {
            dir = dir.toAbsolutePath().getParent();
        }
        if (!Files.isDirectory(dir)) {
            throw new TokenizerException("tokenizer directory " + dir + " does not exist (model_name_or_path must be"
                    + " a local directory with tokenizer.json or tokenizer.model)");
        }
        DjlLogging.quiet();
        if (Files.exists(dir.resolve(HfTokenizer.FILE))) {
            return HfTokenizer.load(dir);
        }
        if (Files.exists(dir.resolve(SentencePieceTokenizer.FILE))) {
            return SentencePieceTokenizer.load(dir);
        }
        throw new TokenizerException(dir + " holds neither tokenizer.json nor tokenizer.model: copy the tokenizer"
                + " files of the model there (tokenizer.json or tokenizer.model, and tokenizer_config.json)");
    }
}
