package io.sftnative.model.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.lora.LoraAdapters;
import io.sftnative.lora.LoraSpec;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.ModelFormatException;
import io.sftnative.model.Tensors;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.quant.QuantizationSpec;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.torch.TorchRuntime;

/**
 * LoRA and QLoRA over expert projections (PEFT module paths), and the errors for bad MoE configs and checkpoints.
 */
class MoeAdaptersAndInputsTest {
    static final Path ROOT = MoeGoldenParityTest.ROOT;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void loraAllAdaptsEveryExpertProjectionButNotTheRouter(@TempDir Path out) throws IOException {
        try (DecoderModel model = DecoderModel.load(ROOT.resolve("qwen3_moe/checkpoint"), ScalarType.Float);
                PointerScope scope = new PointerScope()) {
            LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(4, 8, 0.0, List.of("all"), false,
                    List.of()), 1);
            List<String> paths = lora.modulePaths();
            MoeSpec spec = model.moe();
            for (int layer : new int[] {0, 2}) {
                for (int e = 0; e < spec.numExperts(); e++) {
                    for (String p : spec.projections()) {
                        assertTrue(paths.contains(spec.expert(layer, e) + p), spec.expert(layer, e) + p);
                    }
                }
                assertFalse(paths.contains(spec.router(layer)), "the router is not adapted by 'all'");
            }
            assertTrue(paths.contains("model.layers.1.mlp.down_proj"), "the dense layer's MLP");
            assertEquals(2 * 8 * 3 + 3 * 4 + 3, paths.size(), "experts + attention + the dense MLP");

            // B = 0: the adapted model computes the base model; a backward reaches every expert's adapter
            Tensor ids = Tensors.longs(new long[] {5, 17, 99}, 1, 3); // few tokens: some experts get none
            lora.setTraining(true);
            model.routerLog().start();
            Tensor logits = model.forward(ids); // (1, 3, V)
            Tensor aux = LoadBalancingLoss.compute(model.routerLog().stop(), spec.numExperts(), spec.topK(), null);
            CausalLmLoss.mean(logits, ids).add(aux.mul(new Scalar(0.05))).backward();
            for (String p : paths) {
                Tensor gb = lora.trainableParameters().get(p + ".lora_B.weight").grad();
                assertTrue(gb.defined(), p + ".lora_B has a gradient (zero when the expert got no token)");
            }

            lora.save(out, "tiny-qwen3-moe");
            JsonNode cfg = new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile());
            List<String> targets = new ArrayList<>();
            cfg.get("target_modules").forEach(t -> targets.add(t.asText()));
            assertEquals(List.of("down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"),
                    targets.stream().sorted().toList());
            try (SafetensorsFile f = SafetensorsFile.open(out.resolve("adapter_model.safetensors"))) {
                assertTrue(f.names().contains("base_model.model.model.layers.2.mlp.experts.7.down_proj.lora_A.weight"),
                        "PEFT key of an expert adapter");
                assertEquals(paths.size() * 2, f.names().size());
            }
        }
    }

    /**
     * A target naming the router ({@code gate}: qwen3_moe {@code mlp.gate}, mixtral {@code block_sparse_moe.gate})
     * adapts the routers only ({@code gate_proj} / {@code w1} are the experts'), with PEFT's module paths; the routers
     * stay dense under QLoRA.
     */
    @Test
    void loraOnTheRouterWhenTargetNamesGate(@TempDir Path out) throws IOException {
        for (String name : List.of("qwen3_moe", "mixtral")) {
            try (DecoderModel model = DecoderModel.load(ROOT.resolve(name + "/checkpoint"), ScalarType.Float);
                    PointerScope scope = new PointerScope()) {
                MoeSpec spec = model.moe();
                List<String> routers = new ArrayList<>();
                for (int i = 0; i < model.config().numHiddenLayers(); i++) {
                    if (spec.isSparse(i)) {
                        routers.add(spec.router(i));
                    }
                }
                Tensor ids = Tensors.longs(new long[] {5, 17, 99, 3, 44, 8}, 2, 3); // (B, T)
                Tensor base = model.forward(ids).clone(); // (B, T, V)
                LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(4, 8, 0.0, List.of("gate"), false,
                        List.of()), 1);
                assertEquals(routers, lora.modulePaths(), name + ": 'gate' names the routers only");
                lora.setTraining(true);
                Tensor logits = model.forward(ids);
                assertEquals(0.0, logits.sub(base).abs().max().item_double(), name + ": B = 0 computes the base");
                CausalLmLoss.mean(logits, ids).backward();
                for (String p : routers) {
                    Tensor gb = lora.trainableParameters().get(p + ".lora_B.weight").grad();
                    assertTrue(gb.defined() && gb.abs().max().item_double() > 0, p + " router adapter learns");
                }
                lora.save(out.resolve(name), "tiny-" + name);
                try (SafetensorsFile f = SafetensorsFile.open(out.resolve(name).resolve("adapter_model.safetensors"))) {
                    assertTrue(f.names().contains("base_model.model." + routers.get(0) + ".lora_A.weight"),
                            f.names().toString());
                }
                lora.close();
            }
        }
        try (DecoderModel q = QuantizedModels.load(ROOT.resolve("mixtral/checkpoint"), ScalarType.Float,
                QuantizationSpec.nf4(), w -> { })) {
            String router = q.moe().router(0);
            assertEquals("io.sftnative.model.DenseLinear", q.linear(router).getClass().getName(),
                    "QLoRA keeps the router dense");
            LoraAdapters lora = LoraAdapters.attach(q, new LoraSpec(4, 8, 0.0, List.of("w1"), false, List.of()), 1);
            assertFalse(lora.modulePaths().contains(router), "w1 is the experts' gate projection, not the router");
            lora.close();
        }
    }

    @Test
    void qloraQuantizesExpertsAndTrainsAdaptersOnThem() throws IOException {
        try (DecoderModel dense = DecoderModel.load(ROOT.resolve("mixtral/checkpoint"), ScalarType.Float);
                DecoderModel q = QuantizedModels.load(ROOT.resolve("mixtral/checkpoint"), ScalarType.Float,
                        QuantizationSpec.nf4(), w -> { });
                PointerScope scope = new PointerScope()) {
            QuantizedModels.Summary s = QuantizedModels.summary(q);
            assertTrue(s.quantizedParams() >= 2L * 4 * 3 * 48 * 64, "every expert weight is quantized: " + s);
            Tensor ids = Tensors.longs(new long[] {5, 17, 99, 3, 44, 8}, 2, 3);
            Tensor ref = dense.forward(ids);
            Tensor got = q.forward(ids);
            double err = got.sub(ref).abs().max().item_double() / ref.abs().max().item_double();
            // NF4 keeps ~3 significant bits per weight: the logits move, but stay close (no routing disaster)
            assertTrue(err < 0.25, "nf4 logits vs dense: " + err);
            LoraAdapters lora = LoraAdapters.attach(q, new LoraSpec(4, 8, 0.0, List.of("w1", "w2", "w3"), false,
                    List.of()), 2);
            assertEquals(2 * 4 * 3, lora.modulePaths().size());
            lora.setTraining(true);
            CausalLmLoss.mean(q.forward(ids), ids).backward();
            for (String p : lora.modulePaths()) {
                assertTrue(lora.trainableParameters().get(p + ".lora_B.weight").grad().defined(), p);
            }
        }
    }

    @Test
    void qloraExpertsThatGetNoTokenStillGetZeroAdapterGradients() throws IOException {
        // qwen3_moe: 8 experts top-2 over 3 tokens: at least 2 experts per sparse layer run on zero rows, through
        // the quantized weight's forward and backward
        try (DecoderModel q = QuantizedModels.load(ROOT.resolve("qwen3_moe/checkpoint"), ScalarType.Float,
                QuantizationSpec.nf4(), w -> { });
                PointerScope scope = new PointerScope()) {
            LoraAdapters lora = LoraAdapters.attach(q, new LoraSpec(4, 8, 0.0, List.of("all"), false, List.of()), 3);
            lora.setTraining(true);
            Tensor ids = Tensors.longs(new long[] {5, 17, 99}, 1, 3);
            CausalLmLoss.mean(q.forward(ids), ids).backward();
            int zero = 0;
            for (String p : lora.modulePaths()) {
                Tensor ga = lora.trainableParameters().get(p + ".lora_A.weight").grad();
                Tensor gb = lora.trainableParameters().get(p + ".lora_B.weight").grad();
                assertTrue(ga.defined() && gb.defined(), p + " adapter has gradients");
                if (p.contains(".experts.") && gb.abs().max().item_double() == 0) {
                    zero++;
                }
            }
            assertTrue(zero >= 2 * 2 * 3, "experts without tokens: zero adapter gradients (" + zero + " modules)");
        }
    }

    @Test
    void topKAboveTheExpertCountIsRejectedNamingTheKey() {
        Map<String, Object> cfg = tinyConfig();
        cfg.put("num_experts_per_tok", 9);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(cfg));
        assertTrue(e.getMessage().contains("num_experts_per_tok") && e.getMessage().contains("num_experts"),
                e.getMessage());
    }

    @Test
    void missingExpertTensorIsNamed(@TempDir Path dir) throws IOException {
        Path ck = copyWithout(ROOT.resolve("qwen3_moe/checkpoint"), dir, "model.layers.2.mlp.experts.5.up_proj.weight",
                null);
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> DecoderModel.load(ck, ScalarType.Float).close());
        assertTrue(e.getMessage().contains("missing tensors model.layers.2.mlp.experts.5.up_proj.weight"),
                e.getMessage());
    }

    @Test
    void mismatchedExpertShapeIsNamed(@TempDir Path dir) throws IOException {
        Path ck = copyWithout(ROOT.resolve("mixtral/checkpoint"), dir, "model.layers.1.block_sparse_moe.experts.2.w2.weight",
                new long[] {64, 40});
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> DecoderModel.load(ck, ScalarType.Float).close());
        assertTrue(e.getMessage().contains("'model.layers.1.block_sparse_moe.experts.2.w2.weight'")
                && e.getMessage().contains("[64, 40]"), e.getMessage());
    }

    @Test
    void mismatchedFusedExpertShapeIsNamed(@TempDir Path dir) throws IOException {
        Path ck = copyWithout(ROOT.resolve("qwen3_moe/fused"), dir, "model.layers.0.mlp.experts.down_proj",
                new long[] {8, 64, 30});
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> DecoderModel.load(ck, ScalarType.Float).close());
        assertTrue(e.getMessage().contains("'model.layers.0.mlp.experts.down_proj'"), e.getMessage());
    }

    /** A copy of checkpoint {@code src} where {@code name} is dropped, or replaced by zeros of {@code shape}. */
    static Path copyWithout(Path src, Path dir, String name, long[] shape) throws IOException {
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        Map<String, Tensor> kept = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(src.resolve("model.safetensors"));
                PointerScope scope = new PointerScope()) {
            for (String n : f.names()) {
                if (!n.equals(name)) {
                    kept.put(n, f.view(n).clone());
                } else if (shape != null) {
                    kept.put(n, org.bytedeco.pytorch.global.torch.zeros(shape));
                }
            }
            io.sftnative.model.safetensors.SafetensorsWriter.write(dir.resolve("model.safetensors"), kept, Map.of());
        }
        return dir;
    }

    static Map<String, Object> tinyConfig() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model_type", "qwen3_moe");
        m.put("vocab_size", 32);
        m.put("hidden_size", 16);
        m.put("intermediate_size", 32);
        m.put("moe_intermediate_size", 8);
        m.put("num_hidden_layers", 1);
        m.put("num_attention_heads", 2);
        m.put("num_experts", 4);
        m.put("num_experts_per_tok", 2);
        return m;
    }
}
