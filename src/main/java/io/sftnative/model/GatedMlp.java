package io.sftnative.model;

import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * transformers' gated MLP, {@code down(act(gate(x)) * up(x))}, over the model's linear slots under {@code prefix}
 * ({@code model.layers.N.mlp.}): separate {@code gate_proj}/{@code up_proj} (fused into one GEMM by
 * {@link Projections} when the slots allow), or one {@code gate_up_proj} whose first half is the gate (phi3, glm4).
 * Slots are looked up on every call, so LoRA/QLoRA replacements take effect.
 */
final class GatedMlp implements FeedForward {
    private final Map<String, LinearLayer> linears; // the model's slots, by HF module path
    private final String prefix;
    private final Architecture arch;
    private final long inter; // I, intermediate_size

    GatedMlp(Map<String, LinearLayer> linears, String prefix, Architecture arch, long intermediateSize) {
        this.linears = linears;
        this.prefix = prefix;
        this.arch = arch;
        this.inter = intermediateSize;
    }

    @Override
    public Tensor forward(Tensor x) {
        Tensor gate; // (B, T, I)
        Tensor up; // (B, T, I)
        if (arch.gateUpFused() != null) {
            Tensor y = linears.get(prefix + arch.gateUpFused()).forward(x); // (B, T, 2I)
            gate = y.narrow(-1, 0, inter);
            up = y.narrow(-1, inter, inter);
        } else {
            Tensor[] gu = Projections.apply(linears, x, prefix, "gate_proj", "up_proj");
            gate = gu[0];
            up = gu[1];
        }
        Tensor h; // (B, T, I)
        if (arch.activation() == Architecture.Activation.SILU && FusedElementwise.swigluSupported(gate, up)) {
            h = FusedElementwise.swiglu(gate, up); // one pass each way (fp32 CPU)
        } else {
            Tensor act = switch (arch.activation()) {
                case SILU -> torch.silu(gate);
                case GELU_TANH -> torch.gelu(gate, "tanh");
            };
            h = act.mul(up);
        }
        return linears.get(prefix + "down_proj").forward(h); // (B, T, H)
    }
}
