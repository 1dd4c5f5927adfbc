package io.sftnative.model;

import java.util.Arrays;
import java.util.List;

import io.sftnative.config.GenerationArgs;

/**
 * How to decode: HF generate's knobs.
 *
 * @param doSample          false = greedy (argmax); true = sample after the warpers below
 * @param temperature       logits / temperature (sampling only; must be > 0)
 * @param topP              nucleus: keep the smallest set of tokens whose probability reaches top_p (1 = off)
 * @param topK              keep the k most likely tokens (0 = off)
 * @param repetitionPenalty CTRL penalty on every token already in the row (1 = off)
 * @param maxNewTokens      tokens to generate at most per row
 * @param stopTokenIds      a row stops after emitting one of these (e.g. eos_token_id)
 * @param padTokenId        emitted for rows that already stopped and used for left padding
 * @param seed              sampling seed (same seed, same output)
 */
public record GenerationOptions(boolean doSample, double temperature, double topP, int topK, double repetitionPenalty,
        int maxNewTokens, long[] stopTokenIds, long padTokenId, long seed) {

    public GenerationOptions {
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("max_new_tokens must be >= 0, got " + maxNewTokens);
        }
        if (doSample && !(temperature > 0)) {
            throw new IllegalArgumentException("temperature must be > 0 when sampling, got " + temperature
                    + " (use greedy decoding, do_sample: false, for deterministic output)");
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must be >= 0, got " + topK);
        }
        if (!(repetitionPenalty > 0)) {
            throw new IllegalArgumentException("repetition_penalty must be > 0, got " + repetitionPenalty);
        }
        stopTokenIds = stopTokenIds.clone();
    }

    @Override
    public long[] stopTokenIds() {
        return stopTokenIds.clone();
    }

    boolean isStop(long id) {
        for (long s : stopTokenIds) {
            if (s == id) {
                return true;
            }
        }
        return false;
    }

    /** Greedy decoding without stop tokens. */
    public static GenerationOptions greedy(int maxNewTokens) {
        return new GenerationOptions(false, 1.0, 1.0, 0, 1.0, maxNewTokens, new long[0], 0, 0);
    }

    /** From the YAML keys (LLaMA-Factory's generating arguments) plus what the model/tokenizer define. */
    public static GenerationOptions from(GenerationArgs args, List<Integer> stopTokenIds, long padTokenId, long seed) {
        return new GenerationOptions(args.doSample(), args.temperature(), args.topP(), args.topK(),
                args.repetitionPenalty(), args.maxNewTokens(),
                stopTokenIds.stream().mapToLong(Integer::longValue).toArray(), padTokenId, seed);
    }

    public GenerationOptions withStopTokenIds(long... ids) {
        return new GenerationOptions(doSample, temperature, topP, topK, repetitionPenalty, maxNewTokens, ids,
                padTokenId, seed);
    }

    public GenerationOptions withPadTokenId(long pad) {
        return new GenerationOptions(doSample, temperature, topP, topK, repetitionPenalty, maxNewTokens, stopTokenIds,
                pad, seed);
    }

    @Override
    public String toString() {
        return "GenerationOptions[doSample=" + doSample + ", temperature=" + temperature + ", topP=" + topP
                + ", topK=" + topK + ", repetitionPenalty=" + repetitionPenalty + ", maxNewTokens=" + maxNewTokens
                + ", stop=" + Arrays.toString(stopTokenIds) + ", pad=" + padTokenId + ", seed=" + seed + "]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerationOptions g && g.toString().equals(toString());
    }

    @Override
    public int hashCode() {
        return toString().hashCode();
    }
}
