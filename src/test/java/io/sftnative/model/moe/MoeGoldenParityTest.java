package io.sftnative.model.moe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.model.AttentionContext;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Generation;
import io.sftnative.model.GenerationOptions;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.torch.TorchRuntime;
import io.sftnative.testing.GoldenData;

/**
 * Parity of the sparse MoE decoders (qwen3_moe, qwen2_moe, mixtral) with transformers' math: golden files written by
 * tools/golden/gen_moe_golden.py (hf_moe_reference.py, Debian's python3-torch 1.13), read from both checkpoint
 * layouts (one tensor per expert; transformers v5's fused 3-D experts).
 *
 * <p>Tolerances as GoldenParityTest (max |java - ref| / max |ref|): logits 1e-5, losses 1e-6 (the aux loss is a
 * product of two means of fp32 sums: also 1e-6), gradients 1e-4. Experts that got no token must have a defined,
 * exactly zero gradient (transformers leaves it None; the reference records zeros).
 */
class MoeGoldenParityTest {
    static final Path ROOT = Path.of("src/test/resources/golden/moe");
    static final double LOGITS_TOL = 1e-5;
    static final double LOSS_TOL = 1e-6;
    static final double GRAD_TOL = 1e-4;
    static final List<String> REPORT = new ArrayList<>();

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @AfterAll
    static void report() {
        REPORT.forEach(l -> System.out.println("PARITY " + l));
    }

    @ParameterizedTest
    @CsvSource({"qwen3_moe,checkpoint", "qwen3_moe,fused", "qwen2_moe,checkpoint", "qwen2_moe,fused",
            "mixtral,checkpoint", "mixtral,fused"})
    void logitsLossesAuxLossAndGradientsMatchTheReference(String name, String layout) throws IOException {
        JsonNode meta = meta(name);
        try (DecoderModel model = DecoderModel.load(ROOT.resolve(name).resolve(layout), ScalarType.Float);
                SafetensorsFile exp = SafetensorsFile.open(ROOT.resolve(name).resolve("expected.safetensors"))) {
            MoeSpec spec = model.moe();
            assertTrue(spec != null, "MoE spec");
            model.setRequiresGrad(true);
            String tag = name + "/" + layout;
            for (String c : List.of("basic", "padded", "sparse_hit")) {
                try (PointerScope scope = new PointerScope()) {
                    GoldenData.zeroGrads(model);
                    Tensor ids = exp.view(c + ".input_ids"); // (B, T)
                    Tensor labels = exp.view(c + ".labels"); // (B, T)
                    Tensor mask = null; // (B, T) or null
                    AttentionContext ctx;
                    Tensor valid; // (B, T)
                    if (c.equals("padded")) {
                        mask = exp.view(c + ".attention_mask");
                        ctx = model.paddedContext(mask, exp.view(c + ".position_ids"));
                        valid = mask.ne(new Scalar(0L));
                    } else {
                        ctx = model.causalContext(ids.size(0), ids.size(1));
                        valid = ids.ge(new Scalar(0L));
                    }
                    model.routerLog().start();
                    Tensor logits = model.forward(ids, ctx); // (B, T, V)
                    List<Tensor> router = model.routerLog().stop();
                    assertEquals(spec.sparseLayers(), router.size(), "router logits per sparse layer");
                    Tensor masked = logits.mul(valid.unsqueeze(-1).to(ScalarType.Float));
                    check(tag, c + " logits", relErr(masked, exp.view(c + ".logits")), LOGITS_TOL);

                    JsonNode ref = meta.get("cases").get(c);
                    Tensor lm = CausalLmLoss.mean(logits, labels);
                    Tensor aux = LoadBalancingLoss.compute(router, spec.numExperts(), spec.topK(), mask);
                    Tensor total = lm.add(aux.mul(new Scalar(spec.routerAuxLossCoef())));
                    checkScalar(tag, c + " loss (no aux)", lm.item_double(), ref.get("loss").asDouble());
                    checkScalar(tag, c + " aux_loss", aux.item_double(), ref.get("aux_loss").asDouble());
                    checkScalar(tag, c + " loss + coef * aux", total.item_double(),
                            ref.get("loss_with_aux").asDouble());

                    total.backward();
                    int grads = 0;
                    for (String key : exp.names()) {
                        if (key.startsWith(c + ".grad.")) {
                            String param = key.substring((c + ".grad.").length());
                            Tensor g = model.parameter(param).grad();
                            assertTrue(g.defined(), tag + " " + c + ": " + param + " has no gradient");
                            check(tag, c + " grad " + param, relErr(g, exp.view(key)), GRAD_TOL);
                            grads++;
                        }
                    }
                    assertTrue(grads >= 8, "gradients checked for " + c);
                    if (c.equals("sparse_hit")) {
                        checkUnusedExpertsHaveZeroGradients(tag, model, spec, ref.get("unused_experts"));
                    }
                }
            }
        }
    }

    /** Every weight of an expert that got no token has a defined, all-zero gradient. */
    private static void checkUnusedExpertsHaveZeroGradients(String tag, DecoderModel model, MoeSpec spec,
            JsonNode unusedPerLayer) {
        List<Integer> sparseLayers = new ArrayList<>();
        for (int i = 0; i < model.config().numHiddenLayers(); i++) {
            if (spec.isSparse(i)) {
                sparseLayers.add(i);
            }
        }
        int checked = 0;
        for (int s = 0; s < sparseLayers.size(); s++) {
            for (JsonNode e : unusedPerLayer.get(s)) {
                for (String p : spec.projections()) {
                    String param = spec.expert(sparseLayers.get(s), e.asInt()) + p + ".weight";
                    Tensor g = model.parameter(param).grad();
                    assertTrue(g.defined(), param + " (no token routed) has no gradient");
                    assertEquals(0.0, g.abs().max().item_double(), param + " gradient");
                    checked++;
                }
            }
        }
        REPORT.add(String.format("%-22s sparse_hit: %d weights of experts without tokens have zero gradients", tag,
                checked));
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen3_moe", "qwen2_moe", "mixtral"})
    void greedyGenerationWithKvCacheMatchesTokenForToken(String name) throws IOException {
        JsonNode gen = meta(name).get("generate");
        long[][] prompts = GoldenData.ids(gen.get("prompts"));
        try (DecoderModel model = DecoderModel.load(ROOT.resolve(name).resolve("checkpoint"), ScalarType.Float)) {
            GenerationOptions greedy = GenerationOptions.greedy(gen.get("max_new_tokens").asInt())
                    .withPadTokenId(gen.get("pad_token_id").asLong());
            long[][] out = Generation.generate(model, prompts, greedy);
            long[][] expected = GoldenData.ids(gen.get("greedy"));
            for (int r = 0; r < prompts.length; r++) {
                assertArrayEquals(expected[r], out[r], name + " greedy row " + r);
            }
            REPORT.add(String.format("%-22s greedy generation (KV cache): %d rows identical (min top-2 margin %.4f)",
                    name, prompts.length, gen.get("min_top2_margin").asDouble()));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen3_moe", "qwen2_moe", "mixtral"})
    void fusedLayoutLoadsTheSameWeights(String name) throws IOException {
        try (DecoderModel a = DecoderModel.load(ROOT.resolve(name).resolve("checkpoint"), ScalarType.Float);
                DecoderModel b = DecoderModel.load(ROOT.resolve(name).resolve("fused"), ScalarType.Float);
                PointerScope scope = new PointerScope()) {
            assertEquals(a.parameters().keySet(), b.parameters().keySet());
            for (Map.Entry<String, Tensor> e : a.parameters().entrySet()) {
                assertTrue(e.getValue().equal(b.parameter(e.getKey())), e.getKey() + " differs between layouts");
            }
        }
    }

    static void checkScalar(String model, String what, double got, double ref) {
        check(model, what, Math.abs(got - ref) / Math.abs(ref), LOSS_TOL);
    }

    static void check(String model, String what, double err, double tol) {
        REPORT.add(String.format("%-22s %-60s %.2e (tol %.1e)", model, what, err, tol));
        assertTrue(err <= tol, model + " " + what + ": relative error " + err + " > " + tol);
    }

    /** max |a - b| / max |b| (0 when both are all zero). */
    static double relErr(Tensor a, Tensor b) {
        Tensor a32 = a.to(ScalarType.Float);
        Tensor b32 = b.to(ScalarType.Float);
        assertArrayEquals(b32.sizes().vec().get(), a32.sizes().vec().get(), "shape");
        double den = b32.abs().max().item_double();
        double num = a32.sub(b32).abs().max().item_double();
        return den == 0 ? num : num / den;
    }

    static JsonNode meta(String name) throws IOException {
        return new ObjectMapper().readTree(ROOT.resolve(name).resolve("expected.json").toFile());
    }
}
