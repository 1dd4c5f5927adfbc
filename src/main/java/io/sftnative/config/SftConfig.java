package io.sftnative.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/** The whole configuration of a run: one immutable record per concern. Components get only what they need. */
public record SftConfig(ModelArgs model, DataArgs data, FinetuningArgs finetuning, TrainingArgs training,
        GenerationArgs generation, ExportArgs export, DistributedArgs distributed) {

    /** Without distributed settings (a single process ignores them anyway). */
    public SftConfig(ModelArgs model, DataArgs data, FinetuningArgs finetuning, TrainingArgs training,
            GenerationArgs generation, ExportArgs export) {
        this(model, data, finetuning, training, generation, export, DistributedArgs.DEFAULTS);
    }

    /** Without export settings (defaults: no export_dir, 5 GB shards). */
    public SftConfig(ModelArgs model, DataArgs data, FinetuningArgs finetuning, TrainingArgs training,
            GenerationArgs generation) {
        this(model, data, finetuning, training, generation, new ExportArgs(null, 5, "cpu", false, 0));
    }

    /**
     * Keys LLaMA-Factory configs commonly carry that have no effect here (logging integrations, multi-GPU
     * plumbing, attention back-ends). They are accepted with a warning so users' files load unchanged.
     */
    public static final Set<String> IGNORED_KEYS = Set.of(
            "trust_remote_code", "dataloader_num_workers",
            "run_name", "tf32",
            "use_fast_tokenizer", "disable_tqdm", "include_num_input_tokens_seen",
            "infer_backend", "enable_liger_kernel", "use_unsloth",
            // GPTQ calibration for LLaMA-Factory's export_quantization_bit; bitsandbytes export needs no data
            "export_quantization_dataset", "export_quantization_nsamples", "export_quantization_maxlen");

    public static SftConfig load(Path yaml, List<String> overrides, Consumer<String> warn) {
        return from(ConfigLoader.load(yaml, overrides), warn);
    }

    public static SftConfig from(RawConfig c, Consumer<String> warn) {
        TrainingArgs training = TrainingArgs.from(c);
        SftConfig cfg = new SftConfig(ModelArgs.from(c), DataArgs.from(c), FinetuningArgs.from(c), training,
                GenerationArgs.from(c), ExportArgs.from(c), DistributedArgs.from(c, training));
        if (cfg.data().streaming() && training.doTrain() && training.maxSteps() <= 0) {
            throw new ConfigException("key 'streaming' (" + c.origin("streaming") + "): streaming needs max_steps,"
                    + " as in LLaMA-Factory (\"Please specify `max_steps` in streaming mode.\"): a stream has no"
                    + " length to count epochs in. Set max_steps");
        }
        NotImplementedKeys.check(c);
        c.checkAllKnown(IGNORED_KEYS, warn);
        return cfg;
    }
}
