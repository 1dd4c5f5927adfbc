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
 * @param bufferSize         examples held in memory when streaming larger-than-memory files
 * @param toolFormat         LLaMA-Factory's tool_format: overrides the template's tool format, or null
 * @param enableThinking     reasoning templates: train the thoughts (true, LLaMA-Factory's default) or put an
 *                           empty thought in the prompt (false); null when the key is absent
 * @param preserveThinking   reasoning templates with mask_history: keep earlier turns' thoughts
 */
public record DataArgs(List<String> dataset, List<String> evalDataset, String datasetDir, String template,
        int cutoffLen, int maxSamples, double valSize, Boolean packing, boolean neatPacking, boolean trainOnPrompt,
        boolean maskHistory, String defaultSystem, int padToMultipleOf, int workers, boolean overwriteCache,
        int bufferSize, String toolFormat, Boolean enableThinking, boolean preserveThinking) {

    public static DataArgs from(RawConfig c) {
        DataArgs d = new DataArgs(
                c.list("dataset"),
                c.list("eval_dataset"),
                c.string("dataset_dir", "data"),
                c.string("template", null),
                c.integer("cutoff_len", 2048),
                c.integer("max_samples", 0),
                c.number("val_size", 0.0),
                c.has("packing") ? c.bool("packing", false) : null,
                c.bool("neat_packing", false),
                c.bool("train_on_prompt", false),
                c.bool("mask_history", false),
                c.string("default_system", null),
                c.integer("pad_to_multiple_of", 8),
                c.integer("preprocessing_num_workers", 0),
                c.bool("overwrite_cache", false),
                c.integer("buffer_size", 16384),
                c.string("tool_format", null),
                c.has("enable_thinking") ? c.bool("enable_thinking", true) : null,
                c.bool("preserve_thinking", false));
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

    /** LLaMA-Factory: packing defaults on for pt, off for sft; neat_packing implies packing. */
    public boolean packingFor(String stage) {
        if (neatPacking) {
            return true;
        }
        return packing != null ? packing : "pt".equals(stage);
    }
}
