package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.TorchRuntime;

class CausalChunksTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void chunkedCausalAttentionEqualsOneCallInValueAndGradient() {
        for (boolean gqa : new boolean[] {false, true}) {
            try (PointerScope s = new PointerScope()) {
                torch.manual_seed(9);
                long t = 2 * CausalChunks.CHUNK + 37; // a ragged last chunk
                Tensor q = torch.randn(2, t, 4, 16).set_requires_grad(true); // (B, T, nH, D)
                Tensor k = torch.randn(2, t, gqa ? 2 : 4, 16).set_requires_grad(true);
                Tensor v = torch.randn(2, t, gqa ? 2 : 4, 16).set_requires_grad(true);
                Tensor w = torch.randn(2, 4, t, 16); // weights of a scalar objective
                Tensor ref = torch.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                        v.transpose(1, 2), new TensorOptional(), 0.0, true, new DoubleOptional(0.25), gqa);
                ref.mul(w).sum().backward();
                Tensor gq = q.grad().clone();
                Tensor gk = k.grad().clone();
                Tensor gv = v.grad().clone();
                q.grad().zero_();
                k.grad().zero_();
                v.grad().zero_();
                Tensor out = CausalChunks.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), 0.25,
                        gqa);
                assertTrue(out.transpose(1, 2).is_contiguous(), "laid out like SDPA's output");
                out.mul(w).sum().backward();
                assertTrue(GoldenParityTest.relErr(out, ref) < 1e-6, "values");
                assertTrue(GoldenParityTest.relErr(q.grad(), gq) < 1e-5, "grad q");
                assertTrue(GoldenParityTest.relErr(k.grad(), gk) < 1e-5, "grad k");
                assertTrue(GoldenParityTest.relErr(v.grad(), gv) < 1e-5, "grad v");
            }
        }
    }
}
