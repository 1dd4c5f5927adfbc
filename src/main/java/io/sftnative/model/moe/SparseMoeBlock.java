package io.sftnative.model.moe;

import java.util.function.Function;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.LinearLayer;
import io.sftnative.model.Tensors;

/**
 * One sparse MoE block (transformers' Qwen3MoeSparseMoeBlock, Qwen2MoeSparseMoeBlock, MixtralSparseMoeBlock):
 * <pre>
 *   router logits = x Wr^T                       (N, E) in the model dtype, as transformers' nn.Linear gate
 *   p = softmax(logits) in fp32; top-k (values, experts); renormalise if norm_topk_prob (mixtral: always); cast
 *   y = sum over the k chosen experts of p_k * down(silu(gate(x)) * up(x))
 *   qwen2_moe: y += sigmoid(x Wsg^T) * shared_expert(x)
 * </pre>
 * Grouped compute: the N*k (token, expert) pairs are sorted by expert once (stable, so tokens keep their order within
 * an expert), the tokens are gathered once into expert-contiguous rows, each expert runs its three projections as one
 * GEMM each over exactly its rows, and one {@code index_add} scatters the weighted rows back. Work and memory grow
 * with N*k, never N*E. Every expert runs, also on zero rows, so that each expert weight (or adapter) always receives
 * a gradient (zeros when it got no token): data-parallel gradient sync never waits on a missing one.
 *
 * <p>The projections are the decoder's linear slots ({@link LinearLayer}: dense, LoRA or quantized), looked up by HF
 * module path on each call, so LoRA and QLoRA apply to experts like to any projection. The router is a slot too (LoRA
 * when a target names it; never quantized); the shared expert gate is a plain parameter. Borrows everything it uses.
 */
public final class SparseMoeBlock {
    private final MoeSpec spec;
    private final int layer;
    private final Tensor sharedGate; // (1, H) borrowed, or null
    private final String[][] experts; // [e] -> gate, up, down module paths
    private final String[] shared; // gate, up, down module paths of the shared expert, or null

    /** {@code param}: HF parameter name -> the model's tensor (borrowed). */
    public SparseMoeBlock(MoeSpec spec, int layer, Function<String, Tensor> param) {
        this.spec = spec;
        this.layer = layer;
        this.sharedGate = spec.sharedIntermediate() > 0 ? param.apply(spec.sharedExpertGate(layer)) : null;
        String[] names = spec.projections();
        this.experts = new String[spec.numExperts()][];
        for (int e = 0; e < experts.length; e++) {
            String p = spec.expert(layer, e);
            experts[e] = new String[] {p + names[0], p + names[1], p + names[2]};
        }
        String s = spec.sharedExpert(layer);
        this.shared = sharedGate == null ? null
                : new String[] {s + "gate_proj", s + "up_proj", s + "down_proj"};
    }

    /**
     * (B, T, H) -> (B, T, H). {@code slots}: module path -> linear layer; {@code log}: where router logits are recorded
     * for the load-balancing loss (null: not recorded).
     */
    public Tensor forward(Tensor x, Function<String, LinearLayer> slots, RouterLog log) {
        long h = x.size(-1);
        int k = spec.topK();
        Tensor flat = x.reshape(-1, h); // (N, H)
        Tensor logits = slots.apply(spec.router(layer)).forward(flat); // (N, E) model dtype (a LoRA slot if targeted)
        if (log != null) {
            log.record(layer, logits);
        }
        Tensor probs = torch.softmax(logits, 1, new ScalarTypeOptional(ScalarType.Float)); // (N, E) fp32
        T_TensorTensor_T top = probs.topk(k, -1, true, true);
        Tensor weights = top.get0(); // (N, k) fp32
        Tensor chosen = top.get1(); // (N, k) int64 expert ids
        if (spec.normTopK()) {
            weights = weights.div(weights.sum(new long[] {-1}, true, new ScalarTypeOptional()));
        }
        weights = weights.to(x.scalar_type()); // (N, k) model dtype, as transformers casts before mixing

        Tensor flatChosen = chosen.reshape(-1); // (N*k) expert of each (token, slot) pair
        Tensor order = flatChosen.argsort(true, 0, false); // (N*k) pairs grouped by expert, stable
        Tensor tokens = order.floor_divide(new Scalar((long) k)); // (N*k) token row of each grouped pair
        Tensor pairWeights = weights.reshape(-1).index_select(0, order); // (N*k)
        long[] counts = Tensors.toLongs(torch.bincount(flatChosen, new TensorOptional(), spec.numExperts())); // (E)
        Tensor grouped = flat.index_select(0, tokens); // (N*k, H) expert-contiguous rows

        TensorVector outs = new TensorVector();
        long start = 0;
        for (int e = 0; e < experts.length; e++) {
            Tensor rows = grouped.narrow(0, start, counts[e]); // (n_e, H), n_e may be 0
            outs.push_back(mlp(rows, slots, experts[e])); // (n_e, H)
            start += counts[e];
        }
        Tensor mixed = torch.cat(outs, 0).mul(pairWeights.unsqueeze(1)); // (N*k, H)
        Tensor y = torch.zeros_like(flat).index_add(0, tokens, mixed); // (N, H)
        if (shared != null) {
            Tensor gate = torch.sigmoid(torch.linear(flat, sharedGate)); // (N, 1)
            y = y.add(gate.mul(mlp(flat, slots, shared))); // (N, H)
        }
        return y.reshape(x.sizes()); // (B, T, H)
    }

    /** SwiGLU expert: down(silu(gate(x)) * up(x)); (n, H) -> (n, H). */
    private static Tensor mlp(Tensor x, Function<String, LinearLayer> slots, String[] paths) {
        Tensor g = slots.apply(paths[0]).forward(x); // (n, I)
        Tensor u = slots.apply(paths[1]).forward(x); // (n, I)
        return slots.apply(paths[2]).forward(torch.silu(g).mul(u)); // (n, H)
    }
}
