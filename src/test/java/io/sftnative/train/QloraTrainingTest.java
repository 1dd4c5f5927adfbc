package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;

import io.sftnative.api.SftTrainer;
import io.sftnative.config.ConfigException;
import io.sftnative.config.ModelArgs;
import io.sftnative.config.RawConfig;
import io.sftnative.lora.ModelExport;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;
import io.sftnative.quant.BnbCheckpoint;
import io.sftnative.quant.QuantizationSpec;
import io.sftnative.quant.QuantizedLinear;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.quant.QuantType;
import io.sftnative.testing.TempDatasetCache;
import io.sftnative.torch.TorchRuntime;

/**
 * QLoRA through the whole trainer: training with a 4-bit base, gradient checkpointing and the fused loss gives the
 * losses of plain LoRA on a dense model that holds the dequantized weights; the adapter it saves serves a quantized
 * base at inference; export writes a bitsandbytes checkpoint.
 */
@SuppressWarnings("try")
@ExtendWith(TempDatasetCache.class)
class QloraTrainingTest {
    static final String CASE = "sft_lora";
    static final QuantizationSpec SPEC = new QuantizationSpec(4, QuantType.NF4, true, 32); // hidden size 32

    @TempDir
    Path dir;

    @BeforeEach
    void needsNativeKernels() {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // quantization kernels
    }

    /** The golden model with every linear weight replaced by its NF4 round trip, as a dense checkpoint. */
    private Path dequantizedCopy(Path model) throws Exception {
        TorchRuntime.boot(2);
        Path out = dir.resolve("dequantized");
        try (DecoderModel q = QuantizedModels.load(model, ScalarType.Float, SPEC, w -> { });
                DecoderModel dense = DecoderModel.load(model, ScalarType.Float);
                PointerScope scope = new PointerScope(); NoGradGuard off = new NoGradGuard()) {
            for (String path : q.linearPaths()) {
                if (q.linear(path) instanceof QuantizedLinear ql) {
                    dense.parameter(path + ".weight").copy_(ql.dequantize(ScalarType.Float));
                }
            }
            dense.save(out);
        }
        return out;
    }

    @Test
    void qloraWithCheckpointingAndFusedLossTrainsLikeLoraOnTheDequantizedModel() throws Exception {
        JsonNode exp = GoldenTrainingTest.expected(CASE);
        Path model = GoldenTrainingTest.ROOT.resolve(CASE).resolve("model");
        Path dequantized = dequantizedCopy(model);

        SftTrainer.Builder q = GoldenTrainingTest.builder(CASE, exp, dir.resolve("qlora"))
                .set("quantization_bit", 4).set("quantization_blocksize", 32).set("gradient_checkpointing", true)
                .set("lora_dropout", 0.1);
        List<Double> qlora = GoldenTrainingTest.losses(q);

        SftTrainer.Builder d = GoldenTrainingTest.builder(CASE, exp, dir.resolve("lora"))
                .set("model_name_or_path", dequantized.toString()).set("fused_cross_entropy", false)
                .set("lora_dropout", 0.1);
        List<Double> lora = GoldenTrainingTest.losses(d);

        double worst = 0;
        for (int i = 0; i < lora.size(); i++) {
            worst = Math.max(worst, Math.abs(qlora.get(i) - lora.get(i)) / Math.abs(lora.get(i)));
        }
        System.out.printf("QLoRA (NF4, checkpointing, fused CE, dropout 0.1) vs LoRA on the dequantized weights: %d"
                + " steps, loss %.5f -> %.5f, max relative difference %.2e%n", qlora.size(), qlora.get(0),
                qlora.get(qlora.size() - 1), worst);
        assertEquals(lora.size(), qlora.size());
        assertTrue(worst < 1e-5, "QLoRA losses " + qlora + " vs " + lora);
        assertTrue(Files.exists(dir.resolve("qlora").resolve("adapter_model.safetensors")));

        // the adapter serves a quantized base, attached (a quantized base cannot absorb it)
        RawConfig raw = RawConfig.of(java.util.Map.of("model_name_or_path", model.toString(), "quantization_bit", 4,
                "quantization_blocksize", 32, "adapter_name_or_path", dir.resolve("qlora").toString()));
        try (TrainableModel m = TrainableModel.forInference(ModelArgs.from(raw), false)) {
            assertTrue(m.describe().contains("bits"), m.describe());
            assertEquals("LoraLinear", m.model().linear("model.layers.0.self_attn.q_proj").getClass().getSimpleName());
        }
    }

    @Test
    void quantizationNeedsLoraAndASingleAdapter() throws Exception {
        JsonNode exp = GoldenTrainingTest.expected(CASE);
        SftTrainer.Builder b = GoldenTrainingTest.builder(CASE, exp, dir.resolve("full"))
                .set("quantization_bit", 4).set("finetuning_type", "full");
        Exception e = assertThrows(Exception.class, () -> b.build().run());
        Throwable c = e;
        while (!(c instanceof ConfigException) && c.getCause() != null) {
            c = c.getCause();
        }
        assertInstanceOf(ConfigException.class, c, e.toString());
        assertTrue(c.getMessage().contains("finetuning_type: lora"), c.getMessage());

        RawConfig raw = RawConfig.of(java.util.Map.of("quantization_bit", 4, "adapter_name_or_path", "a,b"));
        ConfigException ce = assertThrows(ConfigException.class,
                () -> QuantizedBase.checkAdapters(ModelArgs.from(raw), false));
        assertTrue(ce.getMessage().contains("single adapter"), ce.getMessage());
    }

    @Test
    void exportQuantizationBitWritesABitsandbytesCheckpoint() throws Exception {
        TorchRuntime.boot(2);
        Path base = GoldenTrainingTest.ROOT.resolve(CASE).resolve("model");
        Path adapter = GoldenTrainingTest.ROOT.resolve(CASE).resolve("adapter_init");
        Path out = dir.resolve("export4");
        List<String> log = new ArrayList<>();
        ModelExport.export(base, List.of(adapter), out, 10_000_000_000L, null, SPEC, log::add);
        assertTrue(BnbCheckpoint.isPreQuantized(out));
        Path merged = dir.resolve("merged");
        ModelExport.export(base, List.of(adapter), merged, 10_000_000_000L, null, log::add);
        try (DecoderModel q = QuantizedModels.load(out, ScalarType.Float, null, w -> { });
                DecoderModel ref = QuantizedModels.load(merged, ScalarType.Float, SPEC, w -> { });
                PointerScope scope = new PointerScope()) {
            Tensor ids = Tensors.longs(new long[] {3, 9, 27, 81, 5, 7}, 1, 6);
            double diff = q.forward(ids).sub(ref.forward(ids)).abs().max().item_double();
            assertEquals(0.0, diff, 0.0, "export differs from quantizing the merged model");
        }
    }
}
