package io.sftnative.config;

/** Decoding settings (LLaMA-Factory's GeneratingArguments). {@code do_sample: false} means greedy. */
public record GenerationArgs(boolean doSample, double temperature, double topP, int topK, double repetitionPenalty,
        int maxNewTokens) {

    public static GenerationArgs from(RawConfig c) {
        return new GenerationArgs(
                c.bool("do_sample", true),
                c.number("temperature", 0.95),
                c.number("top_p", 0.7),
                c.integer("top_k", 50, 0, Integer.MAX_VALUE),
                c.number("repetition_penalty", 1.0),
                c.integer("max_new_tokens", 1024, 1, Integer.MAX_VALUE));
    }

    public static GenerationArgs greedy(int maxNewTokens) {
        return new GenerationArgs(false, 1.0, 1.0, 0, 1.0, maxNewTokens);
    }
}
