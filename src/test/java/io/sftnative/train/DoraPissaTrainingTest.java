package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.api.SftTrainer;
import io.sftnative.config.ModelArgs;
import io.sftnative.config.RawConfig;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.quant.QuantizationSpec;
import io.sftnative.quant.QuantizedLinear;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.quant.QuantType;
import io.sftnative.testing.TempDatasetCache;
import io.sftnative.torch.TorchRuntime;

/**
 * DoRA and PiSSA through the whole trainer with LLaMA-Factory's keys: QLoRA + DoRA (4-bit base, gradient
 * checkpointing, dropout) trains like DoRA on a dense model holding the dequantized weights; PiSSA starts from the
 * base model's loss and pissa_convert leaves LLaMA-Factory's directories, whose converted adapter gives the trained
 * model on the original base.
 */
@SuppressWarnings("try")
@ExtendWith(TempDatasetCache.class)
class DoraPissaTrainingTest {
    static final String CASE = "sft_lora";
    static final QuantizationSpec SPEC = new QuantizationSpec(4, QuantType.NF4, true, 32);

    @TempDir
    Path dir;

    @Test
    void qloraDoraTrainsLikeDoraOnTheDequantizedModel() throws Exception {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // quantization kernels
        JsonNode exp = GoldenTrainingTest.expected(CASE);
        Path model = GoldenTrainingTest.ROOT.resolve(CASE).resolve("model");
        TorchRuntime.boot(2);
        Path dequantized = dir.resolve("dequantized");
        try (DecoderModel q = QuantizedModels.load(model, ScalarType.Float, SPEC, w -> { });
                DecoderModel dense = DecoderModel.load(model, ScalarType.Float);
                PointerScope scope = new PointerScope(); NoGradGuard off = new NoGradGuard()) {
            for (String path : q.linearPaths()) {
                if (q.linear(path) instanceof QuantizedLinear ql) {
                    dense.parameter(path + ".weight").copy_(ql.dequantize(ScalarType.Float));
                }
            }
            dense.save(dequantized);
        }
        List<Double> qdora = GoldenTrainingTest.losses(GoldenTrainingTest.builder(CASE, exp, dir.resolve("qdora"))
                .set("use_dora", true).set("quantization_bit", 4).set("quantization_blocksize", 32)
                .set("gradient_checkpointing", true).set("lora_dropout", 0.1));
        List<Double> dora = GoldenTrainingTest.losses(GoldenTrainingTest.builder(CASE, exp, dir.resolve("dora"))
                .set("use_dora", true).set("model_name_or_path", dequantized.toString())
                .set("fused_cross_entropy", false).set("lora_dropout", 0.1));
        List<Double> lora = GoldenTrainingTest.losses(GoldenTrainingTest.builder(CASE, exp, dir.resolve("lora"))
                .set("model_name_or_path", dequantized.toString()).set("lora_dropout", 0.1));
        double worst = 0;
        for (int i = 0; i < dora.size(); i++) {
            worst = Math.max(worst, Math.abs(qdora.get(i) - dora.get(i)) / Math.abs(dora.get(i)));
        }
        System.out.printf("QLoRA+DoRA (NF4, checkpointing, dropout 0.1) vs DoRA on the dequantized weights: %d steps,"
                + " loss %.5f -> %.5f (plain LoRA: -> %.5f), max relative difference %.2e%n", qdora.size(),
                qdora.get(0), qdora.get(qdora.size() - 1), lora.get(lora.size() - 1), worst);
        assertEquals(dora.size(), qdora.size());
        assertTrue(worst < 1e-5, "QLoRA+DoRA losses " + qdora + " vs " + dora);
        assertTrue(Math.abs(dora.get(0) - lora.get(0)) / lora.get(0) < 1e-5, "DoRA starts at the base loss");
        assertTrue(!dora.equals(lora), "DoRA trains differently from LoRA");
        JsonNode cfg = new ObjectMapper().readTree(dir.resolve("qdora/adapter_config.json").toFile());
        assertTrue(cfg.get("use_dora").asBoolean());
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("qdora/adapter_model.safetensors"))) {
            assertEquals(14, f.names().stream().filter(n -> n.endsWith(".lora_magnitude_vector")).count());
        }
    }

    @Test
    void pissaStartsAtTheBaseLossAndConvertWritesLlamaFactorysDirectories() throws Exception {
        JsonNode exp = GoldenTrainingTest.expected(CASE);
        Path out = dir.resolve("pissa");
        List<Double> pissa = GoldenTrainingTest.losses(GoldenTrainingTest.builder(CASE, exp, out)
                .set("pissa_init", true).set("pissa_convert", true));
        List<Double> lora = GoldenTrainingTest.losses(GoldenTrainingTest.builder(CASE, exp, dir.resolve("lora")));
        double first = Math.abs(pissa.get(0) - lora.get(0)) / lora.get(0);
        System.out.printf("PiSSA (pissa_iter 16) %d steps: loss %.5f -> %.5f; plain LoRA %.5f -> %.5f; first-step"
                + " loss vs the base model's %.2e%n", pissa.size(), pissa.get(0), pissa.get(pissa.size() - 1),
                lora.get(0), lora.get(lora.size() - 1), first);
        assertTrue(first < 1e-5, "PiSSA's initial model is the base model: " + first);
        ObjectMapper json = new ObjectMapper();
        assertEquals("pissa_niter_16", json.readTree(out.resolve("adapter_config.json").toFile())
                .get("init_lora_weights").asText());
        for (String d : List.of("pissa_init", "pissa_backup", "pissa_converted")) {
            assertTrue(Files.isRegularFile(out.resolve(d).resolve("adapter_model.safetensors")), d);
            assertTrue(json.readTree(out.resolve(d).resolve("adapter_config.json").toFile())
                    .get("init_lora_weights").asBoolean(), d);
        }
        assertEquals(8, json.readTree(out.resolve("pissa_converted/adapter_config.json").toFile()).get("r").asInt());
        // the PiSSA adapter (residual rebuilt) and the converted one (on the original base) give the same model
        Tensor ids = Tensors.longs(new long[] {5, 9, 13, 17, 21, 25, 29, 33}, 1, 8);
        Path model = GoldenTrainingTest.ROOT.resolve(CASE).resolve("model");
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard();
                TrainableModel a = TrainableModel.forInference(args(model, out), false);
                TrainableModel b = TrainableModel.forInference(args(model, out.resolve("pissa_converted")), false)) {
            double err = io.sftnative.lora.LoraTestingAccess.relErr(a.model().forward(ids), b.model().forward(ids));
            System.out.printf("trained PiSSA adapter vs pissa_converted, both merged: logits differ by %.2e%n", err);
            assertTrue(err < 1e-5, "pissa_converted " + err);
        }
    }

    private static ModelArgs args(Path model, Path adapter) {
        return ModelArgs.from(RawConfig.of(Map.of("model_name_or_path", model.toString(), "adapter_name_or_path",
                adapter.toString())));
    }
}
