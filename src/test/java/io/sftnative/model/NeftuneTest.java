package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.TorchRuntime;

/** NEFTune: uniform noise of magnitude alpha / sqrt(T * H) on the embeddings, only while turned on. */
class NeftuneTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(1);
    }

    @Test
    void noiseIsUniformWithHfsMagnitudeAndOffByDefault() throws Exception {
        try (DecoderModel m = DecoderModel.load(Path.of("src/test/resources/golden/train/sft_lora/model"),
                ScalarType.Float); PointerScope scope = new PointerScope()) {
            long[] ids = new long[2 * 40];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = i % 50;
            }
            Tensor input = Tensors.longs(ids, 2, 40); // (B, T)
            Tensor clean = m.embed(input); // (B, T, H)
            assertEquals(0.0, m.embed(input).sub(clean).abs().max().item_double(), "off by default");
            double alpha = 5;
            m.neftune(alpha);
            Tensor noise = m.embed(input).sub(clean); // (B, T, H)
            double mag = alpha / Math.sqrt(40.0 * clean.size(2));
            double max = noise.abs().max().item_double();
            assertTrue(max <= mag * (1 + 1e-6) && max > 0.9 * mag, "max |noise| " + max + " vs " + mag);
            double meanAbs = noise.abs().mean().item_double(); // uniform on [-mag, mag]: E|x| = mag / 2
            assertEquals(mag / 2, meanAbs, 0.05 * mag);
            m.neftune(0);
            assertEquals(0.0, m.embed(input).sub(clean).abs().max().item_double(), "off again");
        }
    }
}
