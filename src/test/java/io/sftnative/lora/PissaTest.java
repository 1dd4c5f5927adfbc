package io.sftnative.lora;

import static io.sftnative.lora.LoraTesting.relErr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.DenseLinear;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.torch.TorchRuntime;

/**
 * PiSSA against tools/golden/gen_pissa_golden.py (PEFT's pissa_init transcribed, torch 1.13's LAPACK SVD), and its
 * invariants: the initial model is the base model, a saved PiSSA adapter rebuilds the residual when it loads, and
 * pissa_convert's plain LoRA adapter on the original base gives the trained PiSSA model. Singular vectors are only
 * defined up to sign, so each factor pair (row i of A, column i of B) is compared after aligning its sign; the
 * residual and B·A do not depend on it.
 */
class PissaTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/pissa/expected.safetensors");
    static final List<String> ALL = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
            "down_proj");

    @TempDir
    Path dir;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    static LoraSpec pissa(String init) {
        return new LoraSpec(4, 8, 0.0, ALL, false, List.of(), false, init);
    }

    /** max relative error of (a, b) against (ra, rb) after flipping each rank-1 pair to the reference's sign. */
    static double signAlignedErr(Tensor a, Tensor b, Tensor ra, Tensor rb) { // a (r, in), b (out, r)
        try (PointerScope scope = new PointerScope()) {
            Tensor signs = a.mul(ra).sum(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional())
                    .sign(); // (r)
            return Math.max(relErr(a.mul(signs.unsqueeze(1)), ra), relErr(b.mul(signs.unsqueeze(0)), rb));
        }
    }

    static Tensor weight(DecoderModel model, String path) {
        io.sftnative.model.LinearLayer l = model.linear(path);
        return ((DenseLinear) (l instanceof LoraLinear s ? s.base() : l)).weight();
    }

    @Test
    void fullSvdFactorsAndResidualMatchPeftAndTheInitialModelIsTheBase() throws Exception {
        Tensor ids = LoraTesting.sampleIds();
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                SafetensorsFile exp = SafetensorsFile.open(GOLDEN);
                PointerScope scope = new PointerScope()) {
            Tensor base;
            try (NoGradGuard g = new NoGradGuard()) {
                base = model.forward(ids);
            }
            try (LoraAdapters lora = LoraAdapters.attach(model, pissa("pissa"), 1)) {
                double factorErr = 0;
                double residualErr = 0;
                for (String p : lora.modulePaths()) {
                    Map<String, Tensor> t = lora.trainableParameters();
                    factorErr = Math.max(factorErr, signAlignedErr(t.get(p + ".lora_A.weight"),
                            t.get(p + ".lora_B.weight"), exp.view("full." + p + ".lora_A"),
                            exp.view("full." + p + ".lora_B")));
                    residualErr = Math.max(residualErr, relErr(weight(model, p), exp.view("full." + p + ".residual")));
                }
                double outErr;
                try (NoGradGuard g = new NoGradGuard()) {
                    outErr = relErr(model.forward(ids), base);
                }
                System.out.printf("PiSSA full SVD vs PEFT (torch 1.13): A/B %.2e, residual %.2e; initial output vs"
                        + " base %.2e%n", factorErr, residualErr, outErr);
                assertEquals(14, lora.modulePaths().size());
                assertTrue(factorErr < 1e-4, "A/B " + factorErr);
                // W_res = W - s·B·A inherits the singular-vector error of A/B (scaled by s·|B·A| / |W_res|)
                assertTrue(residualErr < 5e-5, "residual " + residualErr);
                assertTrue(outErr < 1e-5, "initial output " + outErr);
            }
        }
    }

    @Test
    void fastSvdIsTheSeededRandomisedSvdAndNearlyOptimal() throws Exception {
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                DecoderModel original = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                SafetensorsFile exp = SafetensorsFile.open(GOLDEN);
                PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            double factorErr = 0;
            double worstRatio = 0;
            try (LoraAdapters lora = LoraAdapters.attach(model, pissa("pissa_niter_16"), 1)) {
                assertEquals(16, lora.spec().pissaNiter());
                for (String p : lora.modulePaths()) {
                    Map<String, Tensor> t = lora.trainableParameters();
                    factorErr = Math.max(factorErr, signAlignedErr(t.get(p + ".lora_A.weight"),
                            t.get(p + ".lora_B.weight"), exp.view("fast16." + p + ".lora_A"),
                            exp.view("fast16." + p + ".lora_B")));
                    // ||W_res||_F of the fast SVD vs the optimal rank-r residual (full SVD)
                    double fast = weight(model, p).norm().item_double();
                    double best = exp.view("full." + p + ".residual").norm().item_double();
                    worstRatio = Math.max(worstRatio, fast / best);
                    Tensor w = weight(original, p);
                    Tensor rebuilt = weight(model, p).add(torch.mm(t.get(p + ".lora_B.weight").mul(new Scalar(2.0)),
                            t.get(p + ".lora_A.weight")));
                    assertTrue(relErr(rebuilt, w) < 1e-6, p + ": W_res + s·B·A = W");
                }
            }
            System.out.printf("PiSSA fast SVD (niter 16) vs the same seeded algorithm in torch 1.13: A/B %.2e;"
                    + " residual norm / optimal residual norm <= %.6f%n", factorErr, worstRatio);
            assertTrue(factorErr < 1e-4, "fast-SVD A/B " + factorErr);
            assertTrue(worstRatio >= 1.0 - 1e-6 && worstRatio < 1.01, "fast SVD residual ratio " + worstRatio);
        }
    }

    /** Moves A and B as training would (so B·A differs from B0·A0). */
    static void train(LoraAdapters lora) {
        try (NoGradGuard g = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            org.bytedeco.pytorch.Generator gen = torch.make_generator_cpu(4);
            for (Tensor p : lora.trainableParameters().values()) {
                p.add_(torch.randn(p.sizes().vec().get(), new org.bytedeco.pytorch.GeneratorOptional(gen))
                        .mul(new Scalar(0.02)));
            }
        }
    }

    @Test
    void savedAdapterRebuildsTheResidualAndConvertGivesTheTrainedModelOnTheOriginalBase() throws Exception {
        Tensor ids = LoraTesting.sampleIds();
        Path out = dir.resolve("run");
        Map<String, Tensor> mergedPissa = new LinkedHashMap<>();
        Tensor trained;
        double restoreErr = 0;
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                DecoderModel original = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                PointerScope scope = new PointerScope()) {
            try (LoraAdapters lora = LoraAdapters.attach(model, pissa("pissa_niter_4"), 1)) {
                lora.savePissaInitial(out.resolve("pissa_init"), "llama_gqa");
                train(lora);
                try (NoGradGuard g = new NoGradGuard()) {
                    trained = model.forward(ids).retainReference();
                }
                lora.save(out, "llama_gqa");
                lora.savePissaBackup(out.resolve("pissa_backup"), "llama_gqa");
                lora.savePissaConverted(out.resolve("pissa_converted"), "llama_gqa");
                for (String p : lora.modulePaths()) { // W_res + s·B·A, the trained PiSSA weight
                    Map<String, Tensor> t = lora.trainableParameters();
                    mergedPissa.put(p, weight(model, p).add(torch.mm(t.get(p + ".lora_B.weight"),
                            t.get(p + ".lora_A.weight")).mul(new Scalar(2.0))).retainReference());
                }
            }
            for (String p : mergedPissa.keySet()) { // close() adds s·B0·A0 back
                restoreErr = Math.max(restoreErr, relErr(weight(model, p), weight(original, p)));
            }
        }
        assertTrue(restoreErr < 1e-6, "close restores the base weights: " + restoreErr);
        ObjectMapper json = new ObjectMapper();
        JsonNode saved = json.readTree(out.resolve("adapter_config.json").toFile());
        assertEquals("pissa_niter_4", saved.get("init_lora_weights").asText());
        JsonNode init = json.readTree(out.resolve("pissa_init/adapter_config.json").toFile());
        assertTrue(init.get("init_lora_weights").isBoolean() && init.get("init_lora_weights").asBoolean());
        JsonNode converted = json.readTree(out.resolve("pissa_converted/adapter_config.json").toFile());
        assertEquals(8, converted.get("r").asInt());
        assertEquals(16, converted.get("lora_alpha").asInt());
        assertTrue(converted.get("init_lora_weights").asBoolean());
        assertTrue(Files.isRegularFile(out.resolve("pissa_backup/adapter_model.safetensors")));
        try (PointerScope scope = new PointerScope()) {
            // 1. the PiSSA adapter on the original base: the residual is rebuilt from the SVD, as PEFT does
            try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                    LoraAdapters lora = LoraAdapters.load(model, out, false); NoGradGuard g = new NoGradGuard()) {
                double err = relErr(model.forward(ids), trained);
                System.out.printf("PiSSA adapter reloaded on the original base: logits differ by %.2e%n", err);
                assertTrue(err < 1e-6, "reloaded PiSSA " + err);
            }
            // 2. the converted plain LoRA adapter merged into the original base = the trained PiSSA weights
            try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float)) {
                AdapterChain.mergeAll(model, List.of(out.resolve("pissa_converted")));
                double weightErr = 0;
                for (Map.Entry<String, Tensor> e : mergedPissa.entrySet()) {
                    weightErr = Math.max(weightErr, relErr(weight(model, e.getKey()), e.getValue()));
                }
                double outErr;
                try (NoGradGuard g = new NoGradGuard()) {
                    outErr = relErr(model.forward(ids), trained);
                }
                System.out.printf("pissa_converted merged into the original base vs trained PiSSA: weights %.2e,"
                        + " logits %.2e%n", weightErr, outErr);
                assertTrue(weightErr < 1e-6, "converted weights " + weightErr);
                assertTrue(outErr < 1e-5, "converted logits " + outErr);
            }
            // 3. pissa_init + pissa_backup are PEFT's inputs of the same conversion: backup - init = the update
            try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float)) {
                AdapterChain.mergeAll(model, List.of(out.resolve("pissa_backup")));
                try (DecoderModel initial = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float)) {
                    AdapterChain.mergeAll(initial, List.of(out.resolve("pissa_init")));
                    double err = 0;
                    try (DecoderModel plain = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                            NoGradGuard g = new NoGradGuard()) {
                        for (Map.Entry<String, Tensor> e : mergedPissa.entrySet()) {
                            String p = e.getKey();
                            // W + s·B·A - (W + s·B0·A0) + W_res + s·B0·A0 ... = W_res + s·B·A when W_res = W - s·B0·A0
                            Tensor viaFiles = weight(model, p).sub(weight(initial, p)).add(weight(plain, p));
                            err = Math.max(err, relErr(viaFiles, e.getValue()));
                        }
                    }
                    assertTrue(err < 1e-5, "pissa_backup - pissa_init " + err);
                }
            }
        } finally {
            trained.releaseReference();
            mergedPissa.values().forEach(Tensor::releaseReference);
        }
    }

    @Test
    void refusedOnAQuantizedBaseAndForBaseRewritingInits() throws Exception {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt();
        try (DecoderModel q = io.sftnative.quant.QuantizedModels.load(LoraTesting.LLAMA, ScalarType.Float,
                io.sftnative.quant.QuantizationSpec.nf4(), w -> { })) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LoraAdapters.attach(q, pissa("pissa"), 1));
            assertTrue(e.getMessage().contains("quantized"), e.getMessage());
        }
        Path adapter = dir.resolve("olora");
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(4, List.of("q_proj")), 3)) {
            lora.save(adapter, "llama_gqa");
        }
        Path cfg = adapter.resolve("adapter_config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"init_lora_weights\": true",
                "\"init_lora_weights\": \"olora\""));
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float)) {
            AdapterFormatException e = assertThrows(AdapterFormatException.class,
                    () -> LoraAdapters.load(model, adapter, false));
            assertTrue(e.getMessage().contains("init_lora_weights 'olora'"), e.getMessage());
        }
    }
}
