package io.sftnative.config;

import java.util.List;

/**
 * Which data to read and how to turn it into examples (LLaMA-Factory's DataArguments).
 *
 * @param dataset            dataset names from dataset_info.json, or paths to files; several are concatenated
 * @param evalDataset        datasets for evaluation only (instead of a val_size split)
 * @param datasetDir         the folder holding dataset_info.json and relative data files
 * @param template           chat template name, or "auto" / null for the model's own Jinja chat_template
 * @param cutoffLen          maximum tokens per example (source + target)
 * @param maxSamples         keep at most this many examples per dataset (0 = all)
 * @param valSize            fraction (&lt; 1) or count (&ge; 1) of examples held out for evaluation
 * @param packing            pack several examples into one cutoff_len row (null = on for pt, off for sft)
 * @param neatPacking        packing without cross-attention between packed examples
 * @param trainOnPrompt      compute the loss on prompt tokens too
 * @param maskHistory        train only on the last turn of multi-turn examples
 * @param defaultSystem      overrides the template's default system prompt, or null
 * @param padToMultipleOf    collator pads each batch's length to a multiple of this (1 = no rounding)
 * @param workers            preprocessing threads (0 = all available processors)
 * @param overwriteCache     ignore a tokenized cache and rebuild it
 * @param bufferSize         streaming: the shuffle buffer's size in examples (LLaMA-Factory's buffer_size)
 * @param toolFormat         LLaMA-Factory's tool_format: overrides the template's tool format, or null
 * @param enableThinking     reasoning templates: train the thoughts (true, LLaMA-Factory's default) or put an
 *                           empty thought in the prompt (false); null when the key is absent
 * @param preserveThinking   reasoning templates with mask_history: keep earlier turns' thoughts
 * @param mixStrategy        how several datasets are merged: concat, interleave_under, interleave_over or
 *                           interleave_once (LLaMA-Factory's mix_strategy)
 * @param interleaveProbs    one sampling probability per dataset for interleaving; empty = round-robin
 * @param evalOnEachDataset  evaluate every eval_dataset separately (metrics eval_NAME_loss)
 * @param tokenizedPath      LLaMA-Factory's tokenized_path: a directory the preprocessed rows are saved to (when
 *                           missing or empty) or loaded from (skipping the raw data), or null
 * @param streaming          stream the training data while training runs (LLaMA-Factory's iterable datasets,
 *                           shuffled through a buffer of buffer_size examples; needs max_steps)
 */
public record DataArgs(List<String> dataset, List<String> evalDataset, String datasetDir, String template,
        int cutoffLen, int maxSamples, double valSize, Boolean packing, boolean neatPacking, boolean trainOnPrompt,
        boolean maskHistory, String defaultSystem, int padToMultipleOf, int workers, boolean overwriteCache,
        int bufferSize, String toolFormat, Boolean enableThinking, boolean preserveThinking, String mixStrategy,
        List<Double> interleaveProbs, boolean evalOnEachDataset, String tokenizedPath, boolean streaming) {

    /** Without the template and mixing keys (concat, no probabilities, one merged eval set). */
    public DataArgs(List<String> dataset, List<String> evalDataset, String datasetDir, String template,
            int cutoffLen, int maxSamples, double valSize, Boolean packing, boolean neatPacking,
            boolean trainOnPrompt, boolean maskHistory, String defaultSystem, int padToMultipleOf, int workers,
            boolean overwriteCache, int bufferSize) {
        this(dataset, evalDataset, datasetDir, template, cutoffLen, maxSamples, valSize, packing, neatPacking,
                trainOnPrompt, maskHistory, defaultSystem, padToMultipleOf, workers, overwriteCache, bufferSize,
                null, null, false, "concat", List.of(), false, null, false);
    }

    public static DataArgs from(RawConfig c) {
        DataArgs d = new DataArgs(
                c.list("dataset"),
                c.list("eval_dataset"),
                c.string("dataset_dir", "data"),
                c.string("template", null),
                c.integer("cutoff_len", 2048, 1, Integer.MAX_VALUE),
                c.integer("max_samples", 0, 0, Integer.MAX_VALUE),
                c.number("val_size", 0.0),
                c.has("packing") ? c.bool("packing", false) : null,
                c.bool("neat_packing", false),
                c.bool("train_on_prompt", false),
                c.bool("mask_history", false),
                c.string("default_system", null),
                c.integer("pad_to_multiple_of", 8, 0, 1 << 16),
                c.integer("preprocessing_num_workers", 0, 0, 4096),
                c.bool("overwrite_cache", false),
                c.integer("buffer_size", 16384, 1, Integer.MAX_VALUE),
                c.string("tool_format", null),
                c.has("enable_thinking") ? c.bool("enable_thinking", true) : null,
                c.bool("preserve_thinking", false),
                c.choice("mix_strategy", "concat", "concat", "interleave_under", "interleave_over",
                        "interleave_once"),
                probs(c),
                c.bool("eval_on_each_dataset", false),
                c.string("tokenized_path", null),
                c.bool("streaming", false));
        refuseUnsupported(c);
        int batch = c.integer("preprocessing_batch_size", 1000);
        if (batch != 1000) {
            throw new ConfigException("key 'preprocessing_batch_size' (" + c.origin("preprocessing_batch_size")
                    + ") is " + batch + ": not implemented in sft-native: preprocessing_batch_size other than 1000"
                    + " (LLaMA-Factory's default; packing groups examples in batches of 1000 here)");
        }
        if (!d.interleaveProbs.isEmpty()) {
            if (d.mixStrategy.equals("concat")) {
                throw new ConfigException("key 'interleave_probs' (" + c.origin("interleave_probs") + ") is only"
                        + " valid with mix_strategy interleave_under, interleave_over or interleave_once");
            }
            for (var list : List.of(d.dataset, d.evalDataset)) {
                if (!list.isEmpty() && list.size() != d.interleaveProbs.size()) {
                    throw new ConfigException("key 'interleave_probs' (" + c.origin("interleave_probs") + ") has "
                            + d.interleaveProbs.size() + " values but " + (list == d.dataset ? "dataset" : "eval_dataset")
                            + " names " + list.size() + " datasets (LLaMA-Factory requires one per dataset)");
                }
            }
        }
        if (d.cutoffLen < 2) {
            throw new ConfigException("key 'cutoff_len' (" + c.origin("cutoff_len") + ") must be at least 2");
        }
        if (d.valSize < 0) {
            throw new ConfigException("key 'val_size' (" + c.origin("val_size") + ") must be >= 0");
        }
        if (d.trainOnPrompt && d.maskHistory) {
            throw new ConfigException("train_on_prompt and mask_history cannot both be true (LLaMA-Factory rejects"
                    + " the combination): mask_history drops the loss on earlier turns, train_on_prompt adds it back");
        }
        return d;
    }

    /** LLaMA-Factory data keys whose non-default values sft-native does not implement: refused by name. */
    private static void refuseUnsupported(RawConfig c) {
        if (c.has("media_dir")) {
            throw new ConfigException("key 'media_dir' (" + c.origin("media_dir") + "): not implemented in sft-native:"
                    + " images, videos and audios (multimodal data)");
        }
        if (c.bool("data_shared_file_system", false)) {
            throw new ConfigException("key 'data_shared_file_system' (" + c.origin("data_shared_file_system")
                    + "): not implemented in sft-native: multi-node preprocessing on a shared file system");
        }
        if (!c.bool("ignore_pad_token_for_loss", true)) {
            throw new ConfigException("key 'ignore_pad_token_for_loss' (" + c.origin("ignore_pad_token_for_loss")
                    + ") is false: not implemented in sft-native: padding always carries label -100");
        }
        if (c.integer("eval_num_beams", 1) != 1) {
            throw new ConfigException("key 'eval_num_beams' (" + c.origin("eval_num_beams") + "): not implemented in"
                    + " sft-native: beam search (generation is greedy or sampled)");
        }
    }

    private static List<Double> probs(RawConfig c) {
        List<Double> out = new java.util.ArrayList<>();
        for (String p : c.list("interleave_probs")) {
            try {
                out.add(Double.parseDouble(p));
            } catch (NumberFormatException e) {
                throw new ConfigException("key 'interleave_probs' (" + c.origin("interleave_probs") + ") must be"
                        + " comma-separated numbers, got '" + p + "'");
            }
        }
        return List.copyOf(out);
    }

    /** LLaMA-Factory: packing defaults on for pt, off for sft; neat_packing implies packing. */
    public boolean packingFor(String stage) {
        if (neatPacking) {
            return true;
        }
        return packing != null ? packing : "pt".equals(stage);
    }
}
