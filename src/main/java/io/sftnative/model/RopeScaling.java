package io.sftnative.model;

/**
 * {@code rope_scaling} of config.json (or {@code rope_parameters} of newer transformers).
 *
 * @param type                          {@code default}, {@code linear} or {@code llama3}
 * @param factor                        divides the frequencies (linear) / the low frequencies (llama3)
 * @param lowFreqFactor                 llama3 only
 * @param highFreqFactor                llama3 only
 * @param originalMaxPositionEmbeddings llama3 only: context length the model was pre-trained with
 */
public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
        int originalMaxPositionEmbeddings) {
    public static final String SUPPORTED = "default, linear, llama3";

    public static RopeScaling linear(double factor) {
        return new RopeScaling("linear", factor, 0, 0, 0);
    }

    public static RopeScaling llama3(double factor, double lowFreqFactor, double highFreqFactor,
            int originalMaxPositionEmbeddings) {
        return new RopeScaling("llama3", factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings);
    }
}
