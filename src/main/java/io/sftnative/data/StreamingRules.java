package io.sftnative.data;

import java.util.List;

/**
 * What {@code streaming: true} can be combined with. LLaMA-Factory's own rules ({@code max_samples} and a fractional
 * {@code val_size} are rejected; {@code max_steps} is required, checked with the training keys), plus the
 * combinations sft-native does not implement for streamed data, each refused by the key's name.
 */
final class StreamingRules {
    private StreamingRules() {}

    static void check(DatasetLoader.Options o) {
        if (o.maxSamples() > 0) {
            throw refused("max_samples", "`max_samples` is incompatible with `streaming` (LLaMA-Factory's rule)");
        }
        if (o.valSize() > 1e-6 && o.valSize() < 1) {
            throw refused("val_size", "streaming mode needs an integer val_size (LLaMA-Factory's rule); here a"
                    + " val_size split is not implemented with streaming at all: use eval_dataset");
        }
        if (o.valSize() >= 1) {
            throw refused("val_size", "not implemented in sft-native: a val_size split of streamed data"
                    + " (LLaMA-Factory takes the first val_size streamed examples); use eval_dataset");
        }
        if (o.tokenizedPath() != null) {
            throw refused("tokenized_path", "not implemented in sft-native: tokenized_path with streaming"
                    + " (LLaMA-Factory refuses to save streamed data there too: \"Turn off `streaming` when saving"
                    + " dataset to disk\")");
        }
        if (o.datasets().size() > 1 && !"concat".equals(o.mix().strategy())) {
            throw refused("mix_strategy", "not implemented in sft-native: mix_strategy " + o.mix().strategy()
                    + " with streaming (streamed datasets are concatenated); use mix_strategy: concat or turn"
                    + " streaming off");
        }
    }

    /** num_samples: LLaMA-Factory silently skips it when streaming; refused here rather than ignored. */
    static void checkSpecs(List<DatasetSpec> specs) {
        for (DatasetSpec s : specs) {
            if (s.numSamples() != null) {
                throw new DataException("dataset '" + s.name() + "' sets num_samples, which LLaMA-Factory ignores"
                        + " with streaming: true; sft-native refuses it instead of ignoring it: remove num_samples or"
                        + " turn streaming off", null, -1, s.name() + ".num_samples");
            }
        }
    }

    private static DataException refused(String key, String why) {
        return new DataException("streaming: true with " + key + ": " + why, null, -1, key);
    }
}
