package io.sftnative.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.lora.LoraAdapters;
import io.sftnative.lora.ModelExport;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.testing.TempDatasetCache;
import io.sftnative.torch.TorchRuntime;

/**
 * Every family beyond Llama/Qwen trains end to end through the public trainer: LoRA on all linear layers (PEFT names
 * of the fused {@code qkv_proj}/{@code gate_up_proj} included) with gradient checkpointing and the chunked LM-head
 * loss (soft-capped/scaled logits go through it), then the adapter is merged and exported, and the export computes
 * what base + adapter compute. QLoRA (4-bit base) trains on the same families. The numerics of each family are
 * GoldenParityTest's; this checks the plumbing around them.
 */
@ExtendWith(TempDatasetCache.class)
class FamilyTrainingSmokeTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/model");
    static final Path DATA = Path.of("src/test/resources/golden/train/pt_full/train.jsonl"); // ids < 96 < vocab 256

    @TempDir
    Path dir;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    SftTrainer.Builder lora(String family, Path out, long steps) {
        return SftTrainer.builder().set("model_name_or_path", GOLDEN.resolve(family).resolve("checkpoint").toString())
                .set("dataset", DATA.toString()).set("stage", "pt").set("finetuning_type", "lora")
                .set("lora_target", "all").set("lora_rank", 4).set("learning_rate", 5e-3).set("cutoff_len", 32)
                .set("per_device_train_batch_size", 2).set("max_steps", steps).set("save_steps", 1000)
                .set("logging_steps", 1).set("gradient_checkpointing", true).set("preprocessing_num_workers", 1)
                .set("output_dir", out.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma2_softcap", "gemma3_text_local", "phi3_longrope", "glm4_partial", "olmo2_postnorm",
            "granite_mult", "baichuan_wpack", "baichuan2_13b_alibi", "gemma3_mm_nested"})
    void loraTrainsAndTheExportComputesBasePlusAdapter(String family) throws Exception {
        Path out = dir.resolve("run");
        List<Double> losses = new CopyOnWriteArrayList<>();
        try (TrainingRun run = lora(family, out, 8).listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                losses.add(e.loss());
            }
        }).build().start()) {
            TrainResult r = run.await();
            assertEquals(TrainResult.Status.COMPLETED, r.status(), family);
        }
        assertEquals(8, losses.size());
        losses.forEach(l -> assertTrue(Double.isFinite(l), family + " loss " + losses));

        Path base = GOLDEN.resolve(family).resolve("checkpoint");
        try (SafetensorsFile adapter = SafetensorsFile.open(out.resolve("adapter_model.safetensors"))) {
            String fusedOrQ = "self_attn." + (family.startsWith("phi3") ? "qkv_proj"
                    : family.startsWith("baichuan") ? "W_pack" : "q_proj") + ".lora_A.weight";
            // PEFT's module paths; a multimodal Gemma 3 base's own (transformers 5 layout: model.language_model.*)
            String layer0 = family.equals("gemma3_mm_nested") ? "base_model.model.model.language_model.layers.0."
                    : "base_model.model.model.layers.0.";
            assertTrue(adapter.names().contains(layer0 + fusedOrQ), adapter.names().toString());
        }
        Path export = dir.resolve("export");
        ModelExport.export(base, List.of(out), export, Long.MAX_VALUE, ScalarType.Float, s -> { });
        long[] ids = trainingRows(); // (4, 16): rows the adapter was trained on
        try (DecoderModel merged = DecoderModel.load(export, ScalarType.Float);
                DecoderModel plain = DecoderModel.load(base, ScalarType.Float);
                DecoderModel adapted = DecoderModel.load(base, ScalarType.Float);
                LoraAdapters adapters = LoraAdapters.load(adapted, out, false);
                PointerScope scope = new PointerScope()) {
            Tensor x = Tensors.longs(ids, 4, 16);
            Tensor want = adapted.forward(x); // (4, 16, V)
            Tensor got = merged.forward(x);
            double err = got.sub(want).abs().max().item_double() / want.abs().max().item_double();
            assertTrue(err < 1e-5, family + " export vs base + adapter: relative error " + err);
            double before = CausalLmLoss.mean(plain.forward(x), x).item_double();
            double after = CausalLmLoss.mean(want, x).item_double();
            assertTrue(after < before, family + ": 8 LoRA steps should lower the loss on training rows, " + before
                    + " -> " + after + " (step losses " + losses + ")");
        }
    }

    /**
     * LLaMA-Factory's rope_scaling key through the trainer: llama_dynamic has max_position_embeddings 12, cutoff_len
     * 32 gives factor ceil(32 / 12) = 3, and the fully trained model is saved with the scaled config.
     */
    @org.junit.jupiter.api.Test
    void ropeScalingKeyScalesForCutoffLenAndIsSaved() throws Exception {
        Path out = dir.resolve("full");
        try (TrainingRun run = lora("llama_dynamic", out, 2).set("finetuning_type", "full").set("rope_scaling", "linear")
                .build().start()) {
            assertEquals(TrainResult.Status.COMPLETED, run.await().status());
        }
        io.sftnative.model.ModelConfig saved = io.sftnative.model.ModelConfig.read(out);
        assertEquals("linear", saved.ropeScaling().type());
        assertEquals(3.0, saved.ropeScaling().factor());
        assertEquals(36, saved.maxPositionEmbeddings());
    }

    /** The first 16 ids of the first 4 rows of the training file. */
    static long[] trainingRows() throws java.io.IOException {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<String> lines = Files.readAllLines(DATA);
        long[] ids = new long[4 * 16];
        for (int r = 0; r < 4; r++) {
            com.fasterxml.jackson.databind.JsonNode row = json.readTree(lines.get(r)).get("input_ids");
            for (int c = 0; c < 16; c++) {
                ids[r * 16 + c] = row.get(c).asLong();
            }
        }
        return ids;
    }

    /**
     * Freeze (LLaMA-Factory's freeze_trainable_layers: the last layer) trains every family: the saved full model
     * keeps the frozen layer 0 and the embedding bit for bit and changed the last layer; a multimodal base is saved
     * in its own layout with its vision tower.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gemma2_softcap", "gemma3_text_local", "phi3_longrope", "glm4_partial", "olmo2_postnorm",
            "granite_mult", "baichuan_wpack", "baichuan2_13b_alibi", "gemma3_mm_nested"})
    void freezeTrainsTheLastLayerOnly(String family) throws Exception {
        Path out = dir.resolve("freeze");
        try (TrainingRun run = lora(family, out, 3).set("finetuning_type", "freeze")
                .set("freeze_trainable_layers", 1).set("learning_rate", 1e-2).build().start()) {
            TrainResult r = run.await();
            assertEquals(TrainResult.Status.COMPLETED, r.status(), family);
            assertTrue(Double.isFinite(r.trainLoss()), family);
        }
        Path base = GOLDEN.resolve(family).resolve("checkpoint");
        try (io.sftnative.model.safetensors.SafetensorsCheckpoint a =
                        io.sftnative.model.safetensors.SafetensorsCheckpoint.open(base);
                io.sftnative.model.safetensors.SafetensorsCheckpoint b =
                        io.sftnative.model.safetensors.SafetensorsCheckpoint.open(out)) {
            assertEquals(a.names(), b.names(), family + ": the base's tensor names");
            int last = io.sftnative.model.ModelConfig.read(base).numHiddenLayers() - 1;
            boolean lastChanged = false;
            for (String n : a.names()) {
                boolean equal = a.view(n).equal(b.view(n));
                if (n.contains("layers." + last + ".")) {
                    lastChanged |= !equal;
                } else {
                    assertTrue(equal, family + ": frozen " + n + " changed");
                }
            }
            assertTrue(lastChanged, family + ": the trainable last layer did not change");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma2_softcap", "gemma3_text_local", "phi3_longrope", "glm4_partial", "olmo2_postnorm",
            "granite_mult", "baichuan_wpack", "baichuan2_13b_alibi", "gemma3_mm_nested"})
    void qloraTrains(String family) throws Exception {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // 4-bit kernels
        Path out = dir.resolve("qlora");
        try (TrainingRun run = lora(family, out, 3).set("quantization_bit", 4).build().start()) {
            TrainResult r = run.await();
            assertEquals(TrainResult.Status.COMPLETED, r.status(), family);
            assertTrue(Double.isFinite(r.trainLoss()), family);
        }
        assertTrue(Files.exists(out.resolve("adapter_model.safetensors")));
    }
}
