package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import io.sftnative.config.ConfigException;
import io.sftnative.config.NewTokensArgs;
import io.sftnative.model.VocabResize;
import io.sftnative.tokenizer.AddedTokens;
import io.sftnative.tokenizer.Tokenizer;
import io.sftnative.tokenizer.TokenizerException;

/**
 * LLaMA-Factory's new-token flow for a run: {@code patch_tokenizer} (add the tokens: {@link AddedTokens}) and the
 * inputs of {@code patch_model}'s resize ({@link VocabResize.Plan}): len(tokenizer), the ids of the new tokens and,
 * for desc_init, each description tokenized without special tokens.
 */
public final class NewTokens {
    private NewTokens() {}

    /**
     * The tokenizer with the configured tokens added, or null when no tokens are added.
     *
     * @param tokenizerDir the model's tokenizer directory, or null when it has none
     */
    public static AddedTokens stage(NewTokensArgs args, Path tokenizerDir, Consumer<String> log) throws IOException {
        if (!args.addsTokens()) {
            return null;
        }
        if (tokenizerDir == null) {
            throw new ConfigException("add_tokens / add_special_tokens (" + args.origin() + ") need the model's"
                    + " tokenizer (tokenizer.json next to the weights in model_name_or_path)");
        }
        try {
            AddedTokens added = AddedTokens.stage(tokenizerDir, args.addTokens(), args.addSpecialTokens(),
                    args.origin());
            if (!args.addTokens().isEmpty()) {
                log.accept("Add tokens " + String.join(",", args.addTokens()) + " to tokenizer's vocabulary.");
            }
            if (!args.addSpecialTokens().isEmpty()) {
                log.accept("Add special tokens " + String.join(",", args.addSpecialTokens())
                        + " to tokenizer's vocabulary.");
            }
            if (!args.resizeVocab()) {
                log.accept("New tokens have been added, changed `resize_vocab` to True.");
            }
            return added;
        } catch (TokenizerException e) {
            throw new ConfigException(e.getMessage(), e);
        }
    }

    /** The resize plan when LLaMA-Factory's resize_vocab is in effect, else null. */
    public static VocabResize.Plan plan(NewTokensArgs args, Tokenizer tok, AddedTokens added) {
        if (!args.resizes()) {
            return null;
        }
        if (tok == null) {
            throw new ConfigException("resize_vocab (" + args.origin() + ") needs the model's tokenizer: it resizes"
                    + " the embedding to len(tokenizer)");
        }
        if (added != null) {
            try {
                added.verify(tok);
            } catch (TokenizerException e) {
                throw new ConfigException(e.getMessage(), e);
            }
        }
        int[] ids = added == null ? new int[0]
                : added.ids().values().stream().mapToInt(Integer::intValue).toArray();
        List<VocabResize.Description> descriptions = new ArrayList<>();
        for (Map.Entry<String, String> e : args.descriptions().entrySet()) {
            int id = tok.tokenId(e.getKey());
            descriptions.add(new VocabResize.Description(id, tok.encode(e.getValue())));
        }
        return new VocabResize.Plan(tok.length(), ids, descriptions, args.initSpecialTokens());
    }

    /**
     * chat and export take the tokens from the tokenizer saved with the adapter (or the model): configured tokens it
     * lacks would be silently missing, so they stop the command naming them.
     */
    public static void requirePresent(NewTokensArgs args, Path tokenizerDir, String command) {
        if (!args.addsTokens()) {
            return;
        }
        List<String> all = new ArrayList<>(args.addTokens());
        all.addAll(args.addSpecialTokens());
        List<String> missing = new ArrayList<>();
        try (Tokenizer tok = Tokenizer.load(tokenizerDir)) {
            for (String t : all) {
                if (tok.tokenId(t) < 0) {
                    missing.add(t);
                }
            }
        }
        if (!missing.isEmpty()) {
            throw new ConfigException(command + ": add_tokens / add_special_tokens (" + args.origin() + ") name "
                    + missing + ", which the tokenizer in " + tokenizerDir + " does not have. " + command
                    + " uses the tokenizer saved with the adapter (or the model): point adapter_name_or_path to the"
                    + " output of a run trained with these tokens, or remove the keys");
        }
    }
}
