package io.sftnative.lora;

import static io.sftnative.lora.LoraTesting.relErr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.DenseLinear;
import io.sftnative.torch.TorchRuntime;

class AdapterChainTest {
    @TempDir
    Path tmp;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void commaSeparatedAdaptersMergeInOrderAndTheLastOneResumes() throws Exception {
        Path first = tmp.resolve("first");
        Path second = tmp.resolve("second");
        Tensor ids = LoraTesting.sampleIds();
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false)) {
            try (LoraAdapters a = LoraAdapters.attach(model, LoraTesting.spec(4, List.of("q_proj", "up_proj")), 1)) {
                LoraTesting.randomize(a, 1);
                a.save(first, "tiny");
            }
            try (LoraAdapters b = LoraAdapters.attach(model, LoraTesting.spec(2, List.of("all")), 2)) {
                LoraTesting.randomize(b, 2);
                b.save(second, "tiny");
            }
        }
        assertEquals(List.of(first, second), AdapterChain.parse(first + " , " + second + ","));
        assertTrue(AdapterChain.parse(null).isEmpty());
        try (DecoderModel stacked = LoraTesting.tiny("llama", 32, 2, false);
                DecoderModel merged = LoraTesting.tiny("llama", 32, 2, false);
                PointerScope scope = new PointerScope()) {
            // reference: first merged, second attached unmerged
            try (LoraAdapters a = LoraAdapters.load(stacked, first, false)) {
                a.merge();
            }
            try (LoraAdapters b = LoraAdapters.load(stacked, second, false)) {
                Tensor expected = stacked.forward(ids);
                assertNull(AdapterChain.forInference(merged, List.of(first, second), true));
                for (String p : merged.linearPaths()) {
                    assertTrue(merged.linear(p) instanceof DenseLinear);
                }
                double err = relErr(merged.forward(ids), expected);
                assertTrue(err < 1e-5, "chain merge differs: " + err);
            }
        }
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false);
                LoraAdapters resumed = AdapterChain.forTraining(model, List.of(first, second),
                        LoraTesting.spec(8, List.of("v_proj")), 3, false)) {
            assertEquals(2, resumed.spec().rank()); // the last adapter's own config, not the new spec
            assertTrue(resumed.trainableParameters().values().stream().allMatch(Tensor::requires_grad));
        }
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false);
                LoraAdapters fresh = AdapterChain.forTraining(model, List.of(first), LoraTesting.spec(8,
                        List.of("v_proj")), 3, true)) {
            assertEquals(List.of("model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.v_proj"),
                    fresh.modulePaths());
        }
    }
}
