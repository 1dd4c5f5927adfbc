package io.sftnative.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The LLaMA-Factory / HF keys of issue 15: each does what it does there or stops naming the key. */
class LlamaFactoryKeysTest {
    @TempDir
    Path dir;

    private static SftConfig load(String... overrides) {
        return SftConfig.load(null, List.of(overrides), w -> { });
    }

    private static String error(String... overrides) {
        return assertThrows(ConfigException.class, () -> load(overrides)).getMessage();
    }

    @Test
    void gradientCheckpointingIsOnUnlessDisabled() {
        assertTrue(load().training().gradientCheckpointing(), "LLaMA-Factory's default");
        assertFalse(load("disable_gradient_checkpointing=true").training().gradientCheckpointing());
        assertFalse(load("gradient_checkpointing=false").training().gradientCheckpointing());
        assertTrue(load("gradient_checkpointing=true").training().gradientCheckpointing());
        String e = error("gradient_checkpointing=true", "disable_gradient_checkpointing=true");
        assertTrue(e.contains("disable_gradient_checkpointing"), e);
    }

    @Test
    void precisionFlags() {
        assertTrue(load("fp16=true").training().fp16());
        String e = error("fp16=true", "bf16=true");
        assertTrue(e.contains("fp16") && e.contains("bf16"), e);
    }

    @Test
    void schedulerTypesAndKwargsFromYamlOrJson() throws Exception {
        Path yaml = dir.resolve("c.yaml");
        Files.writeString(yaml, """
                lr_scheduler_type: cosine_with_min_lr
                lr_scheduler_kwargs:
                  min_lr_rate: 0.1
                """);
        SftConfig c = SftConfig.load(yaml, List.of(), w -> { });
        assertEquals("cosine_with_min_lr", c.training().lrSchedulerType());
        assertEquals(Map.of("min_lr_rate", 0.1), c.training().lrSchedulerKwargs());
        SftConfig j = load("lr_scheduler_type=warmup_stable_decay", "lr_scheduler_kwargs={\"num_decay_steps\": 5}");
        assertEquals(Map.of("num_decay_steps", 5), j.training().lrSchedulerKwargs());
        String e = error("lr_scheduler_kwargs=min_lr_rate");
        assertTrue(e.contains("lr_scheduler_kwargs"), e);
        for (String t : List.of("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr",
                "cosine_warmup_with_min_lr", "warmup_stable_decay")) {
            assertEquals(t, load("lr_scheduler_type=" + t).training().lrSchedulerType());
        }
    }

    @Test
    void optimizersByHfName() {
        assertEquals("adamw_torch", load().training().optim());
        for (String o : List.of("adamw_torch_fused", "sgd", "adafactor", "adamw_8bit", "adamw_bnb_8bit",
                "paged_adamw_8bit")) {
            assertEquals(o, load("optim=" + o).training().optim());
        }
        String e = error("optim=paged_adamw_32bit");
        assertTrue(e.contains("'optim'") && e.contains("not implemented"), e);
    }

    @Test
    void runControl() {
        RunControlArgs d = load().training().run();
        assertEquals("steps", d.saveStrategy());
        assertEquals("steps", d.loggingStrategy());
        assertEquals("eval_loss", d.bestMetricKey());
        assertFalse(d.greaterIsBetterResolved());
        RunControlArgs r = load("save_strategy=epoch", "logging_strategy=no", "load_best_model_at_end=true",
                "metric_for_best_model=accuracy", "early_stopping_steps=3", "save_only_model=true",
                "disable_shuffling=true").training().run();
        assertEquals("epoch", r.saveStrategy());
        assertEquals("no", r.loggingStrategy());
        assertEquals("eval_accuracy", r.bestMetricKey());
        assertTrue(r.greaterIsBetterResolved(), "HF: metrics not ending in loss are maximised");
        assertEquals(3, r.earlyStoppingSteps());
        assertTrue(r.saveOnlyModel() && r.disableShuffling() && r.loadBestModelAtEnd());
        assertTrue(error("save_strategy=best").contains("save_strategy"));
        assertTrue(error("load_best_model_at_end=true", "save_strategy=no").contains("load_best_model_at_end"));
    }

    @Test
    void reportTo() {
        assertEquals(List.of(), load().training().reportTo());
        assertEquals(List.of(), load("report_to=none").training().reportTo());
        assertEquals(List.of("tensorboard"), load("report_to=all").training().reportTo());
        List<String> both = load("report_to=wandb,tensorboard").training().reportTo();
        assertEquals(List.of("wandb", "tensorboard"), both);
        String w = Tracking.unsupportedWarning(both);
        assertTrue(w.contains("wandb") && w.contains("trainer_log.jsonl"), w);
        assertNull(Tracking.unsupportedWarning(List.of("tensorboard")));
        assertTrue(error("report_to=carrier_pigeon").contains("report_to"));
        assertEquals("/tmp/tb", load("logging_dir=/tmp/tb").training().loggingDir());
    }

    @Test
    void ropeScaling() {
        assertNull(load().model().ropeScaling());
        for (String t : List.of("linear", "dynamic", "yarn", "llama3")) {
            assertEquals(t, load("rope_scaling=" + t).model().ropeScaling());
        }
        String e = error("rope_scaling=ntk");
        assertTrue(e.contains("'rope_scaling'") && e.contains("linear, dynamic, yarn, llama3"), e);
    }

    @Test
    void quantizationMethod() {
        assertEquals(4, load("quantization_bit=4", "quantization_method=bnb").model().quantizationBit());
        for (String m : List.of("hqq", "eetq", "gptq", "awq", "aqlm")) {
            String e = error("quantization_method=" + m);
            assertTrue(e.contains("quantization_method") && e.contains("not supported"), e);
        }
    }

    @Test
    void unimplementedFeaturesStopNamingTheKeyAndDefaultsPass() {
        for (String k : NotImplementedKeys.FEATURES.keySet()) {
            String value = "true";
            String e = error(k + "=" + value);
            assertTrue(e.contains("'" + k + "'") && e.contains("does not implement"), e);
            load(k + "=false"); // a default value is no request
        }
        load("pissa_iter=16", "galore_rank=16"); // companions alone change nothing
    }

    @Test
    void doraAndPissaKeysFollowLlamaFactorysRules() {
        assertTrue(load("use_dora=true").finetuning().useDora());
        assertEquals(16, load("pissa_init=true").finetuning().pissaIter()); // LLaMA-Factory's default
        for (String k : List.of("use_dora", "pissa_init")) {
            String e = error("finetuning_type=freeze", k + "=true");
            assertTrue(e.contains("'" + k + "'") && e.contains("finetuning_type: lora"), e);
        }
        String e = error("pissa_convert=true");
        assertTrue(e.contains("'pissa_convert'") && e.contains("pissa_init"), e);
        e = error("pissa_init=true", "pissa_iter=-2");
        assertTrue(e.contains("pissa_iter"), e);
    }

    @Test
    void freezeExtraModulesAndOftCompanionsAreKnown() {
        assertEquals(List.of("embed_tokens", "norm"), load("finetuning_type=freeze",
                "freeze_extra_modules=embed_tokens,norm").finetuning().freezeExtraModules());
        load("oft_rank=8", "oft_block_size=32", "oft_target=all", "module_dropout=0.1"); // inert without oft
        String e = error("finetuning_type=oft", "oft_rank=8");
        assertTrue(e.contains("finetuning_type"), e);
    }

    @Test
    void shrunkIgnoredList() {
        List<String> warnings = new ArrayList<>();
        SftConfig.load(null, List.of("fp16=false", "save_strategy=steps", "report_to=none", "save_only_model=false",
                "logging_strategy=steps", "logging_dir=runs"), warnings::add);
        assertEquals(List.of(), warnings, "these keys are handled now, not ignored");
        for (String k : List.of("fp16", "report_to", "save_strategy", "logging_strategy", "save_only_model",
                "logging_dir")) {
            assertFalse(SftConfig.IGNORED_KEYS.contains(k), k);
        }
    }

    /** Keys as LLaMA-Factory's example configs write them (examples/extras/*, examples/train_qlora/*_otfq.yaml). */
    @Test
    void llamaFactoryExampleStyleConfigs() throws Exception {
        String common = """
                model_name_or_path: /models/any
                stage: sft
                do_train: true
                dataset: identity,alpaca_en_demo
                template: llama3
                cutoff_len: 2048
                max_samples: 1000
                overwrite_cache: true
                preprocessing_num_workers: 16
                output_dir: saves/x
                logging_steps: 10
                save_steps: 500
                plot_loss: true
                overwrite_output_dir: true
                per_device_train_batch_size: 1
                gradient_accumulation_steps: 8
                learning_rate: 1.0e-4
                num_train_epochs: 3.0
                lr_scheduler_type: cosine
                bf16: true
                val_size: 0.1
                per_device_eval_batch_size: 1
                eval_strategy: steps
                eval_steps: 500
                """;
        Path loraplus = dir.resolve("loraplus.yaml");
        Files.writeString(loraplus, common + "finetuning_type: lora\nlora_target: all\nloraplus_lr_ratio: 16.0\n"
                + "warmup_ratio: 0.1\n");
        SftConfig c = SftConfig.load(loraplus, List.of(), w -> { });
        assertEquals(16.0, c.finetuning().loraplusLrRatio());
        Path otfq = dir.resolve("otfq.yaml");
        Files.writeString(otfq, common + "finetuning_type: lora\nlora_target: all\nquantization_bit: 4\n"
                + "quantization_method: bnb\ndouble_quantization: false\n");
        assertEquals(4, SftConfig.load(otfq, List.of(), w -> { }).model().quantizationBit());
        // GaLore: refused by name; its fractional warmup_steps is a ratio in current transformers
        Path galore = dir.resolve("galore.yaml");
        Files.writeString(galore, common + "finetuning_type: full\nuse_galore: true\ngalore_layerwise: true\n"
                + "galore_target: mlp,self_attn\ngalore_rank: 128\ngalore_scale: 2.0\nwarmup_steps: 0.1\n"
                + "pure_bf16: true\n");
        String e = assertThrows(ConfigException.class, () -> SftConfig.load(galore, List.of(), w -> { }))
                .getMessage();
        assertTrue(e.contains("'use_galore'"), e);
        SftConfig noGalore = SftConfig.load(galore, List.of("use_galore=false"), w -> { });
        assertEquals(0.1, noGalore.training().warmupRatio());
        assertEquals(0, noGalore.training().warmupSteps());
        assertTrue(noGalore.finetuning().pureBf16());
        Path pissa = dir.resolve("pissa.yaml");
        Files.writeString(pissa, common + "finetuning_type: lora\nlora_target: all\npissa_init: true\n"
                + "pissa_iter: 16\npissa_convert: true\n");
        SftConfig p = SftConfig.load(pissa, List.of(), w -> { }); // LLaMA-Factory's examples/extras/pissa
        assertTrue(p.finetuning().pissaInit() && p.finetuning().pissaConvert());
        assertEquals("pissa_niter_16", io.sftnative.lora.LoraSpec.from(p.finetuning()).init());
        assertEquals("pissa", io.sftnative.lora.LoraSpec.from(SftConfig.load(pissa, List.of("pissa_iter=-1"),
                w -> { }).finetuning()).init());
        Path dora = dir.resolve("dora.yaml");
        Files.writeString(dora, common + "finetuning_type: lora\nlora_target: all\nuse_dora: true\n");
        assertTrue(io.sftnative.lora.LoraSpec.from(SftConfig.load(dora, List.of(), w -> { }).finetuning()).useDora());
    }
}
