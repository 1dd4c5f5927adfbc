package io.sftnative.cli;

import io.sftnative.model.GenerationOptions;
import picocli.CommandLine.Option;

/** The decoding flags of chat and generate (a picocli mixin); defaults as LLaMA-Factory's generating_args. */
final class SamplingArgs {
    @Option(names = "--greedy", description = "greedy decoding (default: sampling, as LLaMA-Factory)")
    boolean greedy;

    @Option(names = "--temperature", defaultValue = "0.95", description = "sampling temperature (default 0.95)")
    double temperature;

    @Option(names = "--top-p", defaultValue = "0.7", description = "nucleus sampling mass (default 0.7)")
    double topP;

    @Option(names = "--top-k", defaultValue = "50", description = "keep the k most likely tokens, 0 = off (default 50)")
    int topK;

    @Option(names = "--repetition-penalty", defaultValue = "1.0", description = "CTRL repetition penalty (default 1)")
    double repetitionPenalty;

    @Option(names = "--seed", defaultValue = "42", description = "sampling seed (default 42)")
    long seed;

    /** Options for one generate call; its sampling seed is {@code --seed + seedOffset} (chat: one per turn). */
    GenerationOptions options(int maxNewTokens, long[] stopIds, long padId, long seedOffset) {
        return new GenerationOptions(!greedy, temperature, topP, topK, repetitionPenalty, maxNewTokens, stopIds, padId,
                seed + seedOffset);
    }
}
