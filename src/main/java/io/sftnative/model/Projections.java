package io.sftnative.model;

import java.util.Map;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.model.safetensors.DType;

/** Projections that share an input (q/k/v, gate/up), fused into one GEMM when the slots allow it. */
final class Projections {
    /** A/B switch for benchmarks ({@code SFT_FUSE_PROJECTIONS=0} turns fusion off). */
    static final boolean ENABLED = !"0".equals(System.getenv("SFT_FUSE_PROJECTIONS"));
    /** A/B switch for benchmarks ({@code SFT_LORA_SHARED_DOWN=0}: each LoRA slot adds its own branch). */
    static final boolean SHARED_DOWN = !"0".equals(System.getenv("SFT_LORA_SHARED_DOWN"));

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
        LinearLayer.LowRank[] lowRanks = lowRanks(layers, x, y);
        if (lowRanks != null) {
            return withSharedDown(x, parts, lowRanks);
        }
        for (int i = 0; i < names.length; i++) {
            out[i] = layers[i].completeFrom(x, parts.get(i)); // (..., out_i)
        }
        return out;
    }

    /** Every slot's plain low-rank branch in y's dtype, or null when one of them has none (or fusion is off). */
    private static LinearLayer.LowRank[] lowRanks(LinearLayer[] layers, Tensor x, Tensor y) {
        if (!SHARED_DOWN) {
            return null;
        }
        LinearLayer.LowRank[] r = new LinearLayer.LowRank[layers.length];
        for (int i = 0; i < layers.length; i++) {
            r[i] = layers[i].lowRank(x);
            if (r[i] == null || !DType.same(r[i].a().scalar_type(), y.scalar_type())) {
                return null;
            }
        }
        return r;
    }

    /**
     * The LoRA branches of slots sharing x: one GEMM for every down-projection {@code x [A_1; A_2; ...]ᵀ} (..., Σr)
     * (one input gradient in the backward instead of one per slot), then per slot one {@code addmm} that adds
     * {@code scaling · (x A_iᵀ) B_iᵀ} to the slot's base output: no separate delta tensor and add pass.
     */
    private static Tensor[] withSharedDown(Tensor x, TensorVector parts, LinearLayer.LowRank[] lr) {
        TensorVector as = new TensorVector();
        long[] ranks = new long[lr.length];
        for (int i = 0; i < lr.length; i++) {
            as.push_back(lr[i].a());
            ranks[i] = lr[i].a().size(0);
        }
        Tensor down = torch.linear(x, lr.length == 1 ? lr[0].a() : torch.cat(as, 0)); // (..., Σr)
        TensorVector downs = down.split_with_sizes(ranks, -1); // views (..., r_i)
        long rows = x.numel() / Math.max(1, x.size(-1));
        Tensor[] out = new Tensor[lr.length];
        for (int i = 0; i < lr.length; i++) {
            Tensor base = parts.get(i); // (..., out_i)
            long[] shape = base.sizes().vec().get();
            Tensor sum = torch.addmm(base.reshape(rows, shape[shape.length - 1]), downs.get(i).reshape(rows,
                    ranks[i]), lr[i].b().t(), new Scalar(1.0), new Scalar(lr[i].scaling())); // (N, out_i)
            out[i] = sum.view(shape); // (..., out_i)
        }
        return out;
    }
}
