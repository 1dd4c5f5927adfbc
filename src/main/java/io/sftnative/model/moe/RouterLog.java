package io.sftnative.model.moe;

import java.util.ArrayList;
import java.util.List;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * The router logits of one forward pass, per sparse layer in layer order (transformers' {@code router_logits} with
 * {@code output_router_logits}), and the load-balancing loss a training step adds from them.
 *
 * <p>Off unless started, so generation and evaluation record nothing (transformers' eval loss is then the LM loss
 * alone). Recorded tensors belong to the caller's PointerScope: finish inside the scope that ran the forward pass.
 *
 * <p>Training, one micro-batch ({@code io.sftnative.loss} calls this):
 * <pre>
 *   log.startStep(tokenMask, weight)   before the forward pass (weight: the micro-batch's share of the step)
 *   ... forward ...
 *   Tensor aux = log.finishStep()      coef * weight * aux, to add to the loss before backward (null: none)
 * </pre>
 * Gradient checkpointing runs the forward without autograd and recomputes each layer in the backward pass. The aux
 * loss is {@code E / D^2 * sum_e C[e] * S[e]} with C the (constant) expert hit counts and S the sums of router
 * probabilities over all sparse layers, so given C from the forward pass each layer's gradient comes from its own
 * term {@code E / D^2 * sum_e C[e] * S_layer[e]}: {@link #replay} makes each recomputed layer produce that term
 * ({@link #takeReplayTerm}), which the recomputation backpropagates together with the layer output.
 */
public final class RouterLog {
    private final MoeSpec spec;
    private double auxLossCoef;
    private final List<Tensor> logits = new ArrayList<>(); // (N, E) per sparse layer
    private Mode mode = Mode.OFF;
    private Tensor tokenMask; // (B, T) or null (all tokens)
    private double weight = 1;
    private Tensor replayCounts; // (E) fp32, C over all layers, during REPLAY
    private double replayScale; // coef * weight * E / D^2
    private Tensor replayTerm; // () the last recomputed layer's term, or null
    private double stepAux; // sum over micro-batches of weight * aux (the step's aux loss, unweighted by coef)
    private boolean stepHasAux;

    private enum Mode { OFF, RECORD, REPLAY }

    public RouterLog(MoeSpec spec) {
        this.spec = spec;
        this.auxLossCoef = spec.routerAuxLossCoef();
    }

    /** {@code router_aux_loss_coef} (LLaMA-Factory's {@code moe_aux_loss_coef} overrides it); 0 turns it off. */
    public double auxLossCoef() {
        return auxLossCoef;
    }

    public void setAuxLossCoef(double coef) {
        if (!(coef >= 0) || Double.isInfinite(coef)) {
            throw new IllegalArgumentException("moe_aux_loss_coef must be a finite number >= 0, got " + coef);
        }
        this.auxLossCoef = coef;
    }

    // ------------------------------------------------------------------ plain recording (tests, tools)

    /** Starts recording (clears what an earlier pass left). */
    public void start() {
        releaseRecorded();
        replayCounts = null;
        replayTerm = null;
        mode = Mode.RECORD;
    }

    /**
     * Stops recording and hands over the logits (N, E) per sparse layer, in forward order, as new handles owned by
     * the caller's PointerScope (the log held its own references: a checkpointed forward runs each layer in a scope
     * of its own).
     */
    public List<Tensor> stop() {
        mode = Mode.OFF;
        List<Tensor> out = new ArrayList<>();
        for (Tensor t : logits) {
            out.add(new Tensor(t)); // same storage, a handle in the current scope
        }
        releaseRecorded();
        return out;
    }

    private void releaseRecorded() {
        for (Tensor t : logits) {
            t.releaseReference();
        }
        logits.clear();
    }

    // ------------------------------------------------------------------ a training micro-batch

    /**
     * Starts a training micro-batch: records router logits when the aux loss is on ({@code coef > 0}).
     * {@code tokenMask} (B, T): non-zero = token (padding is left out of the means, as transformers' attention_mask
     * does); {@code weight}: the micro-batch's share of the step's target tokens (1 without accumulation).
     */
    public void startStep(Tensor mask, double microWeight) {
        if (auxLossCoef == 0) {
            return;
        }
        start();
        this.tokenMask = mask;
        this.weight = microWeight;
    }

    /**
     * Ends the forward pass of a micro-batch: {@code coef * weight * aux} as a scalar with autograd through the
     * recorded logits (no graph after a no-grad forward: then call {@link #replay} before recomputing), or null
     * when the aux loss is off.
     */
    public Tensor finishStep() {
        if (mode != Mode.RECORD) {
            return null;
        }
        List<Tensor> recorded = stop();
        if (recorded.isEmpty()) {
            return null;
        }
        Tensor aux = LoadBalancingLoss.compute(recorded, spec.numExperts(), spec.topK(), tokenMask); // ()
        stepAux += weight * aux.item_double();
        stepHasAux = true;
        if (!aux.requires_grad()) { // checkpointed forward: keep C for the layer-wise replay
            try (NoGradGuard noGrad = new NoGradGuard()) {
                replayCounts = counts(recorded).retainReference();
            }
            double d = denominator(recorded.get(0)) * recorded.size();
            replayScale = auxLossCoef * weight * spec.numExperts() / (d * d);
        }
        return aux.mul(new Scalar(auxLossCoef * weight));
    }

    /** Recomputations that follow produce their layer's aux term (gradient checkpointing). */
    public void replay() {
        if (replayCounts != null) {
            mode = Mode.REPLAY;
        }
    }

    /** The aux term of the layer just recomputed (a scalar to backpropagate with gradient 1), or null. */
    public Tensor takeReplayTerm() {
        Tensor t = replayTerm;
        replayTerm = null;
        return t;
    }

    /** Ends the micro-batch (after the backward pass, also on failure): frees the counts and anything recorded. */
    public void endReplay() {
        releaseRecorded();
        mode = Mode.OFF;
        replayTerm = null;
        if (replayCounts != null) {
            replayCounts.releaseReference();
            replayCounts = null;
        }
    }

    /** The step's aux loss (sum of weight * aux over its micro-batches) and resets it; NaN when none was added. */
    public double takeStepAux() {
        double v = stepHasAux ? stepAux : Double.NaN;
        stepAux = 0;
        stepHasAux = false;
        return v;
    }

    void record(int layer, Tensor routerLogits) {
        if (mode == Mode.RECORD) {
            logits.add(new Tensor(routerLogits).retainReference()); // outlives the layer's scope until stop()
        } else if (mode == Mode.REPLAY) {
            Tensor p = torch.softmax(routerLogits, 1, new ScalarTypeOptional(ScalarType.Float)); // (N, E)
            Tensor s = p.mul(mask(routerLogits).unsqueeze(1)).sum(new long[] {0}, false,
                    new ScalarTypeOptional()); // (E)
            replayTerm = s.mul(replayCounts).sum().mul(new Scalar(replayScale)); // ()
        }
    }

    /** C (E): masked top-k hits summed over the recorded layers. */
    private Tensor counts(List<Tensor> recorded) {
        Tensor c = null;
        for (Tensor l : recorded) {
            Tensor m = mask(l); // (N)
            Tensor chosen = torch.softmax(l, 1, new ScalarTypeOptional(ScalarType.Float))
                    .topk(spec.topK(), -1, true, true).get1().reshape(-1); // (N*k)
            Tensor hit = torch.zeros(new long[] {spec.numExperts()}, m.options())
                    .index_add(0, chosen, m.repeat_interleave(spec.topK())); // (E)
            c = c == null ? hit : c.add(hit);
        }
        return c;
    }

    /** (N) fp32 token mask on the logits' device. */
    private Tensor mask(Tensor routerLogits) {
        return tokenMask == null ? torch.ones_like(routerLogits.select(1, 0).detach()).to(ScalarType.Float)
                : Devices.to(tokenMask.reshape(-1).ne(new Scalar(0L)), routerLogits.device()).to(ScalarType.Float);
    }

    private double denominator(Tensor routerLogits) {
        return mask(routerLogits).sum().item_double();
    }
}
