package io.sftnative.loss;

import org.bytedeco.pytorch.Tensor;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.moe.RouterLog;

/**
 * The mixture-of-experts load-balancing term of a training micro-batch ({@link RouterLog}), as the loss computations
 * add it: transformers' {@code loss + router_aux_loss_coef * aux_loss} (LLaMA-Factory turns
 * {@code output_router_logits} on for training). With gradient accumulation each micro-batch's aux loss weighs its
 * share of the step's target tokens, so one micro-batch gives exactly transformers' loss. Dense models: no-ops.
 */
final class RouterAuxLoss {
    private RouterAuxLoss() {}

    /** Before the forward pass of {@code batch}. */
    static void begin(DecoderModel model, MicroBatch batch, double normaliser) {
        RouterLog log = model.routerLog();
        if (log != null && log.auxLossCoef() > 0) {
            log.startStep(batch.attentionMask(model), batch.targetTokens() / normaliser);
        }
    }

    /** After the forward pass: {@code coef * share * aux} (a scalar with autograd), or null when there is none. */
    static Tensor finish(DecoderModel model) {
        RouterLog log = model.routerLog();
        return log == null ? null : log.finishStep();
    }
}
