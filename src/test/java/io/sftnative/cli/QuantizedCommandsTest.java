package io.sftnative.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.Generation;
import io.sftnative.model.GenerationOptions;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.testing.Cli;
import io.sftnative.testing.Cli.Run;

/** `generate` reads a bitsandbytes pre-quantized model directory and decodes what the library decodes from it. */
@SuppressWarnings("try")
class QuantizedCommandsTest {
    static final Path NF4 = Path.of("src/test/resources/golden/qlora/llama_nf4_dq/checkpoint");

    @Test
    void generateRunsOnAPreQuantizedCheckpoint() throws Exception {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // 4-bit dequantization kernels
        Run r = Cli.run("generate", NF4.toString(), "--ids", "5,9,13", "--greedy",
                "--max-new-tokens", "6", "--stop-ids", "-1", "--threads", "2");
        assertEquals(0, r.code(), r.err());
        long[] expected;
        try (DecoderModel m = QuantizedModels.load(NF4, ScalarType.Float, null, w -> { });
                PointerScope scope = new PointerScope()) {
            expected = Generation.generate(m, new long[][] {{5, 9, 13}}, GenerationOptions.greedy(6)
                    .withStopTokenIds(-1))[0];
        }
        StringBuilder sb = new StringBuilder();
        for (long id : expected) {
            sb.append(sb.length() == 0 ? "" : " ").append(id);
        }
        assertTrue(r.out().contains(sb.toString()), r.out() + " vs " + sb);
    }
}
