package io.sftnative.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/** {@code y = x W^T + b}, HF's {@code nn.Linear}. Borrows its tensors (the model owns them). */
public final class DenseLinear implements LinearLayer {
    private final Tensor weight; // (out, in)
    private final Tensor bias; // (out) or null

    public DenseLinear(Tensor weight, Tensor bias) {
        if (weight.dim() != 2) {
            throw new IllegalArgumentException("linear weight must be (out, in), got " + weight.dim() + " dims");
        }
        this.weight = weight;
        this.bias = bias;
    }

    @Override
    public Tensor forward(Tensor x) {
        return bias == null ? torch.linear(x, weight) : torch.linear(x, weight, new TensorOptional(bias));
    }

    /** (out, in) */
    public Tensor weight() {
        return weight;
    }

    /** (out), or null */
    public Tensor bias() {
        return bias;
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
