package io.sftnative.api;

/**
 * After every optimizer step (scalars only).
 *
 * @param step            optimizer steps done (1-based)
 * @param epoch           fractional epoch reached
 * @param loss            mean loss per target token of this step's accumulated batch
 * @param learningRate    the learning rate this step used
 * @param gradNorm        total gradient norm before clipping
 * @param targetTokens    target tokens of the accumulated batch (the loss normaliser)
 * @param tokensSeen      input tokens (no padding) consumed since the run started, resumed runs included
 * @param tokensPerSecond input tokens per second in this process
 */
public record StepEvent(long step, long totalSteps, double epoch, double loss, double learningRate, double gradNorm,
        long targetTokens, long tokensSeen, double tokensPerSecond) {}
