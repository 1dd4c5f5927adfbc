package io.sftnative.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.loss.MemoryEfficientLoss;
import io.sftnative.model.AttentionContext;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelFormatException;
import io.sftnative.model.Tensors;
import io.sftnative.model.safetensors.SafetensorsCheckpoint;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.torch.TorchRuntime;

/**
 * Pre-quantized bitsandbytes checkpoints (written by tools/golden/gen_qlora_golden.py from the numpy reference of
 * bitsandbytes, in transformers' layout) load and compute the reference's logits, loss and gradients; our export
 * writes the same tensors; inconsistent checkpoints fail naming the tensor.
 */
@SuppressWarnings("try")
class BnbCheckpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @BeforeAll
    static void boot() {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // quantization / fused loss kernels
        TorchRuntime.boot(2);
    }

    @Test
    void preQuantizedGoldenCheckpointsGiveTheReferenceLogitsLossAndGradients() throws Exception {
        for (Path golden : new Path[] {CheckpointEdits.NF4, CheckpointEdits.INT8}) {
            Path dir = golden.resolve("checkpoint");
            assertTrue(BnbCheckpoint.isPreQuantized(dir));
            List<String> warnings = new ArrayList<>();
            try (DecoderModel model = QuantizedModels.load(dir, ScalarType.Float, QuantizationSpec.nf4(),
                    warnings::add); SafetensorsFile expected = SafetensorsFile.open(golden.resolve("expected.safetensors"));
                    PointerScope scope = new PointerScope()) {
                assertTrue(warnings.size() == 1 && warnings.get(0).contains("already quantized"), warnings.toString());
                QuantizedLinear q = assertInstanceOf(QuantizedLinear.class, model.linear("model.layers.1.mlp.down_proj"));
                assertEquals(golden == CheckpointEdits.NF4 ? 4 : 8, q.bits());
                Tensor ids = expected.load("input_ids");
                Tensor labels = expected.load("labels");
                AttentionContext ctx = model.causalContext(ids.size(0), ids.size(1));
                double logitErr = QuantizedLinearTest.maxAbs(model.forward(ids, ctx), expected.load("logits"))
                        / expected.load("logits").abs().max().item_double();
                for (String name : new String[] {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                        "model.layers.1.post_attention_layernorm.weight", "model.norm.weight"}) {
                    model.parameter(name).requires_grad_(true);
                }
                long count = CausalLmLoss.countTargets(labels);
                double loss = new MemoryEfficientLoss(true, true, 5).forwardBackward(model, ids, labels, ctx, count)
                        / count;
                double refLoss = JSON.readTree(golden.resolve("expected.json").toFile()).get("loss").asDouble();
                double gradErr = 0;
                for (String name : new String[] {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                        "model.layers.1.post_attention_layernorm.weight", "model.norm.weight"}) {
                    Tensor ref = expected.load("grad." + name);
                    gradErr = Math.max(gradErr, QuantizedLinearTest.maxAbs(model.parameter(name).grad(), ref)
                            / ref.abs().max().item_double());
                }
                System.out.printf("%s: logits rel err %.3g, loss %.7f vs %.7f, gradients rel err %.3g%n",
                        golden.getFileName(), logitErr, loss, refLoss, gradErr);
                assertEquals(0, logitErr, 1e-5);
                assertEquals(refLoss, loss, 1e-6 * refLoss);
                assertEquals(0, gradErr, 1e-4);
            }
        }
    }

    /** Export of the dense model quantized per spec = the reference's bitsandbytes tensors, byte for byte. */
    @Test
    void exportWritesWhatTransformersWouldSave() throws Exception {
        Object[][] variants = {{CheckpointEdits.NF4, QuantizationSpec.nf4()},
                {CheckpointEdits.INT8, new QuantizationSpec(8, QuantType.NF4, true, 64)}};
        for (Object[] v : variants) {
            Path golden = ((Path) v[0]).resolve("checkpoint");
            Path out = tmp.resolve(golden.getParent().getFileName().toString());
            try (DecoderModel dense = DecoderModel.load(CheckpointEdits.LLAMA, ScalarType.Float)) {
                BnbCheckpoint.save(dense, out, (QuantizationSpec) v[1], Long.MAX_VALUE);
            }
            try (SafetensorsCheckpoint ours = SafetensorsCheckpoint.open(out);
                    SafetensorsCheckpoint ref = SafetensorsCheckpoint.open(golden);
                    PointerScope scope = new PointerScope()) {
                assertEquals(ref.names(), ours.names());
                for (String n : ref.names()) {
                    assertEquals(ref.entry(n).dtype(), ours.entry(n).dtype(), n);
                    if (n.contains(".quant_state.")) { // JSON: same keys and values (Python puts spaces after , and :)
                        assertEquals(JSON.readTree(TestTensors.toBytes(ref.view(n))),
                                JSON.readTree(TestTensors.toBytes(ours.view(n))), n);
                    } else {
                        assertArrayEquals(ref.entry(n).shape(), ours.entry(n).shape(), n);
                        assertArrayEquals(TestTensors.toBytes(ref.view(n)), TestTensors.toBytes(ours.view(n)), n);
                    }
                }
            }
            JsonNode ourConfig = JSON.readTree(out.resolve("config.json").toFile());
            JsonNode refConfig = JSON.readTree(golden.resolve("config.json").toFile());
            assertEquals(refConfig.get("quantization_config").get("load_in_4bit"),
                    ourConfig.get("quantization_config").get("load_in_4bit"));
            assertEquals("bitsandbytes", ourConfig.get("quantization_config").get("quant_method").asText());
            assertTrue(BnbCheckpoint.isPreQuantized(out));
            // and it loads back into the same layers
            try (DecoderModel a = QuantizedModels.load(out, ScalarType.Float, null, w -> { });
                    DecoderModel b = QuantizedModels.load(golden, ScalarType.Float, null, w -> { });
                    PointerScope scope = new PointerScope()) {
                Tensor ids = Tensors.longs(new long[] {4, 8, 15, 16, 23, 42}, 1, 6);
                assertEquals(0.0, QuantizedLinearTest.maxAbs(a.forward(ids), b.forward(ids)), 0.0);
            }
        }
    }

    @Test
    void exportRefusesAdaptersAndReexportsQuantizedLayersAsTheyAre() throws Exception {
        try (DecoderModel m = BnbCheckpoint.load(CheckpointEdits.NF4.resolve("checkpoint"), ScalarType.Float)) {
            Path out = tmp.resolve("again");
            BnbCheckpoint.save(m, out, null, Long.MAX_VALUE);
            try (SafetensorsCheckpoint a = SafetensorsCheckpoint.open(out);
                    SafetensorsCheckpoint b = SafetensorsCheckpoint.open(CheckpointEdits.NF4.resolve("checkpoint"))) {
                String key = "model.layers.1.self_attn.v_proj.weight";
                assertArrayEquals(TestTensors.toBytes(b.view(key)), TestTensors.toBytes(a.view(key)));
            }
            m.setLinear("model.layers.0.mlp.up_proj", new WrappingSlot(m.linear("model.layers.0.mlp.up_proj")));
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> BnbCheckpoint.save(m, tmp.resolve("x"), null, Long.MAX_VALUE));
            assertTrue(e.getMessage().contains("model.layers.0.mlp.up_proj") && e.getMessage().contains("merge"),
                    e.getMessage());
        }
    }

    /** A wrapping slot standing in for a LoRA layer. */
    record WrappingSlot(io.sftnative.model.LinearLayer base) implements io.sftnative.model.LinearLayer {
        @Override
        public Tensor forward(Tensor x) {
            return base.forward(x);
        }

        @Override
        public long inFeatures() {
            return base.inFeatures();
        }

        @Override
        public long outFeatures() {
            return base.outFeatures();
        }
    }

    private Path edited(String name, Path golden, java.util.function.Consumer<Map<String, Tensor>> edit,
            java.util.function.UnaryOperator<String> json) throws Exception {
        return CheckpointEdits.copy(golden.resolve("checkpoint"), tmp.resolve(name), edit, json);
    }

    private static String loadError(Path dir) {
        RuntimeException e = assertThrows(RuntimeException.class,
                () -> QuantizedModels.load(dir, ScalarType.Float, null, w -> { }).close());
        return e.getMessage();
    }

    @Test
    void inconsistentCheckpointsFailNamingTheTensor() throws Exception {
        String p = "model.layers.0.mlp.down_proj.weight";
        String msg = loadError(edited("absmax", CheckpointEdits.NF4, t -> t.put(p + ".absmax",
                t.get(p + ".absmax").narrow(0, 0, 100).clone()), s -> s));
        assertTrue(msg.contains(p + ".absmax") && msg.contains("160"), msg);

        msg = loadError(edited("nostate", CheckpointEdits.NF4, t -> t.remove(p + ".quant_state.bitsandbytes__nf4"),
                s -> s));
        assertTrue(msg.contains(p + ".quant_state.bitsandbytes__nf4") && msg.contains("missing"), msg);

        msg = loadError(edited("suffix", CheckpointEdits.NF4, t -> t.put(p + ".quant_state.bitsandbytes__int3",
                t.remove(p + ".quant_state.bitsandbytes__nf4")), s -> s));
        assertTrue(msg.contains("unknown quant_state 'bitsandbytes__int3'"), msg);

        msg = loadError(edited("shape", CheckpointEdits.NF4, t -> {
            String blob = new String(TestTensors.toBytes(t.get(p + ".quant_state.bitsandbytes__nf4")));
            byte[] b = blob.replace("[64, 160]", "[160, 64]").getBytes();
            t.put(p + ".quant_state.bitsandbytes__nf4", bytes(b));
        }, s -> s));
        assertTrue(msg.contains(p) && msg.contains("[160, 64]") && msg.contains("[64, 160]"), msg);

        String q = "model.layers.1.self_attn.q_proj";
        msg = loadError(edited("noscb", CheckpointEdits.INT8, t -> t.remove(q + ".SCB"), s -> s));
        assertTrue(msg.contains(q + ".weight") && msg.contains("I8") && msg.contains(q + ".SCB"), msg);

        msg = loadError(edited("extra", CheckpointEdits.NF4, t -> t.put("model.layers.7.mlp.up_proj.weight",
                t.get("model.norm.weight").clone()), s -> s));
        assertTrue(msg.contains("model.layers.7.mlp.up_proj.weight") && msg.contains("does not use"), msg);

        msg = loadError(edited("gptq", CheckpointEdits.NF4, t -> { }, s -> s.replace("\"bitsandbytes\"", "\"gptq\"")));
        assertTrue(msg.contains("quant_method 'gptq'") && msg.contains("not supported"), msg);
    }

    private static Tensor bytes(byte[] b) {
        long[] v = new long[b.length];
        for (int i = 0; i < b.length; i++) {
            v[i] = b[i] & 0xff;
        }
        return Tensors.longs(v, b.length).to(ScalarType.Byte);
    }
}
