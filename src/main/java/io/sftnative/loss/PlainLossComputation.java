package io.sftnative.loss;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import io.sftnative.batch.Batch;
import io.sftnative.model.DecoderModel;
import io.sftnative.torch.Autocast;

/**
 * The straightforward micro-batch: the whole forward pass keeps its activations for autograd, full logits
 * (B, T, V) are materialised, the loss is {@link CausalLmLoss#sum} (fp32 log-softmax) and one {@code backward()}
 * follows. Autocast (bf16) covers the forward only, as {@code torch.autocast} is meant to be used.
 */
@SuppressWarnings("try") // guards are held for their side effect
public final class PlainLossComputation implements LossComputation {
    private final Autocast autocast;

    public PlainLossComputation(Autocast autocast) {
        this.autocast = autocast;
    }

    @Override
    public double forwardBackward(DecoderModel model, MicroBatch batch, double normaliser) {
        Tensor sum; // () fp32
        RouterAuxLoss.begin(model, batch, normaliser); // MoE models: record router logits
        try (Autocast.Scope cast = autocast.enter()) {
            Tensor logits = model.forward(batch.inputIds(), batch.context()); // (B, T, V)
            sum = CausalLmLoss.sum(logits, batch.labels()).sum(); // ()
        }
        Tensor aux = RouterAuxLoss.finish(model); // () coef * share * load-balancing loss, or null
        Tensor total = sum.div(new Scalar(normaliser)); // ()
        (aux == null ? total : total.add(aux)).backward();
        return sum.item_double();
    }

    @Override
    public MicroBatch upload(Batch b, DecoderModel model) {
        return MicroBatch.uploadForTraining(b, model, autocast);
    }

    @Override
    public double lossSum(DecoderModel model, MicroBatch batch) {
        try (NoGradGuard noGrad = new NoGradGuard(); Autocast.Scope cast = autocast.enter()) {
            Tensor logits = model.forward(batch.inputIds(), batch.context()); // (B, T, V)
            return CausalLmLoss.sum(logits, batch.labels()).sum().item_double();
        }
    }

    @Override
    public String name() {
        return "plain";
    }
}
