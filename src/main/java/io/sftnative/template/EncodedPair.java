package io.sftnative.template;

/** One turn rendered and tokenized: the prompt side (never trained unless train_on_prompt) and the answer side. */
public record EncodedPair(int[] source, int[] target) {}
