package io.sftnative.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * Baichuan2's NormHead: {@code logits = x normalize(W)^T} with every row of the head weight divided by its L2 norm
 * ({@code F.normalize(W, dim=1, eps=1e-12)}), recomputed on every call so the gradient flows through the
 * normalisation into W (what the remote code does in training). The stored weight stays unnormalised (as HF saves
 * it). Not a {@link DenseLinear}, so the fused LM-head loss kernel, which multiplies by W itself, is not used for it:
 * the loss goes the chunked autograd way through this layer.
 */
final class NormHeadLinear implements LinearLayer {
    private final Tensor weight; // (V, H), the model's parameter (borrowed)

    NormHeadLinear(Tensor weight) {
        this.weight = weight;
    }

    @Override
    public Tensor forward(Tensor x) {
        Tensor norms = weight.norm(new org.bytedeco.pytorch.ScalarOptional(new org.bytedeco.pytorch.Scalar(2.0)),
                new long[] {1}, true).clamp_min(new org.bytedeco.pytorch.Scalar(1e-12)); // (V, 1)
        return torch.linear(x, weight.div(norms), new TensorOptional()); // (..., V)
    }

    @Override
    public long inFeatures() {
        return weight.size(1);
    }

    @Override
    public long outFeatures() {
        return weight.size(0);
    }
}
