package io.sftnative.model;

import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/** Projections that share an input (q/k/v, gate/up), fused into one GEMM when the slots allow it. */
final class Projections {
    /** A/B switch for benchmarks ({@code SFT_FUSE_PROJECTIONS=0} turns fusion off). */
    static final boolean ENABLED = !"0".equals(System.getenv("SFT_FUSE_PROJECTIONS"));

    private Projections() {}

    /**
     * Applies the projections {@code prefix + names[i]} to the same input. When all of them start from a dense
     * weight ({@link LinearLayer#fusableBase}: plain layers, and LoRA over plain layers) the base GEMMs are one GEMM
     * over the concatenated weights, split afterwards ({@code split_with_sizes}, whose backward is a single
     * concatenation), and each slot then adds its own part (the LoRA branch): fewer, larger GEMMs and one gradient
     * for x instead of a sum of several. The HF parameters stay separate tensors; only this step's weight copy is
     * concatenated. Otherwise (quantized weights) each slot's own forward runs.
     */
    static Tensor[] apply(Map<String, LinearLayer> linears, Tensor x, String prefix, String... names) {
        LinearLayer[] layers = new LinearLayer[names.length];
        DenseLinear[] bases = new DenseLinear[names.length];
        boolean fusable = ENABLED;
        int withBias = 0;
        for (int i = 0; i < names.length; i++) {
            layers[i] = linears.get(prefix + names[i]);
            bases[i] = layers[i].fusableBase();
            fusable &= bases[i] != null;
            if (bases[i] != null && bases[i].bias() != null) {
                withBias++;
            }
        }
        Tensor[] out = new Tensor[names.length];
        if (!fusable || (withBias != 0 && withBias != names.length)) {
            for (int i = 0; i < names.length; i++) {
                out[i] = layers[i].forward(x);
            }
            return out;
        }
        TensorVector ws = new TensorVector();
        TensorVector bs = new TensorVector();
        long[] sizes = new long[names.length];
        for (int i = 0; i < names.length; i++) {
            DenseLinear dl = bases[i];
            ws.push_back(dl.weight());
            if (withBias > 0) {
                bs.push_back(dl.bias());
            }
            sizes[i] = dl.outFeatures();
        }
        Tensor w = torch.cat(ws, 0); // (sum out, in)
        Tensor y = withBias > 0 ? torch.linear(x, w, new TensorOptional(torch.cat(bs, 0))) : torch.linear(x, w);
        TensorVector parts = y.split_with_sizes(sizes, -1); // views (..., out_i)
        for (int i = 0; i < names.length; i++) {
            out[i] = layers[i].completeFrom(x, parts.get(i)); // (..., out_i)
        }
        return out;
    }
}
