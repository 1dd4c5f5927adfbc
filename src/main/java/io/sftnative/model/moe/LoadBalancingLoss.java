package io.sftnative.model.moe;

import java.util.List;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * transformers' {@code load_balancing_loss_func} (Switch Transformer eq. 4-6) over the router logits of all sparse
 * layers of one forward pass:
 * <pre>
 *   p = softmax(logits) per token and layer; chosen = top-k(p)
 *   f[e] = share of (token, layer) pairs whose top-k contains e, summed over the k slots   (no gradient)
 *   P[e] = mean of p[e] over (token, layer) pairs                                           (differentiable)
 *   aux  = E * sum_e f[e] * P[e]
 * </pre>
 * Means run over the tokens whose attention mask is non-zero (all tokens without a mask), each layer's tokens
 * counted once per layer, as transformers' expanded attention mask does. Written per layer as sums (never the
 * (L*N, k, E) one-hot transformers builds), so memory is O(L*N*k), and the softmax runs in fp32.
 */
public final class LoadBalancingLoss {
    private LoadBalancingLoss() {}

    /**
     * @param logits    router logits (N, E) per sparse layer, N = B*T tokens in row-major (batch, time) order
     * @param tokenMask (B, T) 1 = token, 0 = padding (any integer/float type), or null for all tokens
     * @return the scalar aux loss (fp32), with autograd through the logits
     */
    public static Tensor compute(List<Tensor> logits, int numExperts, int topK, Tensor tokenMask) {
        if (logits.isEmpty()) {
            throw new IllegalArgumentException("no router logits: the model has no sparse layer");
        }
        Tensor first = logits.get(0); // (N, E)
        long n = first.size(0);
        Tensor m = tokenMask == null ? torch.ones_like(first.select(1, 0).detach()).to(ScalarType.Float) // (N)
                : Devices.to(tokenMask.reshape(-1).ne(new Scalar(0L)), first.device()).to(ScalarType.Float); // (N)
        if (m.size(0) != n) {
            throw new IllegalArgumentException("token mask has " + m.size(0) + " entries, the router saw " + n
                    + " tokens");
        }
        Tensor counts = null; // (E) masked (token, slot) hits, summed over layers
        Tensor probSums = null; // (E) masked probability mass, summed over layers
        Tensor mk = m.repeat_interleave(topK); // (N*k) the mask of each (token, slot) pair
        for (Tensor l : logits) {
            Tensor p = torch.softmax(l, 1, new ScalarTypeOptional(ScalarType.Float)); // (N, E)
            Tensor chosen = p.topk(topK, -1, true, true).get1().reshape(-1); // (N*k)
            Tensor c = torch.zeros(new long[] {numExperts}, m.options()).index_add(0, chosen, mk); // (E)
            Tensor s = p.mul(m.unsqueeze(1)).sum(new long[] {0}, false, new ScalarTypeOptional()); // (E)
            counts = counts == null ? c : counts.add(c);
            probSums = probSums == null ? s : probSums.add(s);
        }
        double denom = m.sum().item_double() * logits.size(); // masked (token, layer) pairs
        return counts.mul(probSums).sum().mul(new Scalar(numExperts / (denom * denom)));
    }

}
