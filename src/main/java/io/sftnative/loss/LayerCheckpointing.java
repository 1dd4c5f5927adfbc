package io.sftnative.loss;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.checkpoint.TorchRng;
import io.sftnative.model.AttentionContext;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.moe.RouterLog;
import io.sftnative.torch.Autocast;

/**
 * Gradient checkpointing at decoder-layer granularity (HF's {@code gradient_checkpointing}): the forward pass runs
 * every layer without autograd and keeps only each layer's input (B, T, H); the backward pass recomputes one layer at
 * a time, last to first, with autograd on, backpropagates the upstream gradient through it and hands the gradient of
 * its input to the layer below. Activation memory drops from all layers' saved tensors to L inputs plus one layer's
 * graph, for one extra forward pass of the layers.
 *
 * <p>Randomness (LoRA dropout) replays exactly: the libtorch CPU (and CUDA) generator state is saved before each
 * layer's forward and restored before its recomputation; after the backward pass the generators continue from where
 * the forward pass left them, so the run draws the same numbers as one without checkpointing.
 *
 * <pre>{@code
 * Tensor h0 = model.embed(ids);                                        // (B, T, H), with a graph if embeddings train
 * try (LayerCheckpointing ck = LayerCheckpointing.forward(model, h0, ctx, Autocast.OFF)) {
 *     Tensor top = ck.output().detach().requires_grad_(true);           // (B, T, H) leaf
 *     ... loss from model.finalNorm(top), backward ...
 *     ck.backward(top.grad());                                          // recompute + backprop every layer, then h0
 * }
 * }</pre>
 *
 * <p>Owns the saved layer inputs until {@link #close()} (or the end of {@link #backward}).
 */
// PointerScope blocks and guards are held for their side effect
@SuppressWarnings("try")
public final class LayerCheckpointing implements AutoCloseable {
    private final DecoderModel model;
    private final AttentionContext ctx;
    private final Autocast autocast; // the forward's mixed precision, replayed in the recomputation
    private final LayerHooks hooks; // ZeRO-2/3: gather / release / reduce each layer's parameters
    private final Tensor embedded; // (B, T, H) layer 0's input with its graph (borrowed from the caller)
    private final Tensor[] inputs; // (B, T, H) per layer, no graph, owned (inputs[0] aliases embedded's values)
    private final byte[][] cpuRng; // generator state before each layer
    private final byte[][] cudaRng; // per layer, null entries unless the model is on a GPU
    private final byte[] cpuRngAfter;
    private final byte[] cudaRngAfter;
    private Tensor output; // (B, T, H) last layer's output, owned
    private boolean done;

    private LayerCheckpointing(DecoderModel model, AttentionContext ctx, Autocast autocast, Tensor embedded,
            int layers, LayerHooks hooks) {
        this.model = model;
        this.hooks = hooks;
        this.ctx = ctx;
        this.autocast = autocast;
        this.embedded = embedded;
        this.inputs = new Tensor[layers];
        this.cpuRng = new byte[layers][];
        this.cudaRng = new byte[layers][];
        forwardAll();
        this.cpuRngAfter = TorchRng.cpuState();
        this.cudaRngAfter = cudaState();
    }

    /**
     * Runs every layer of {@code model} on {@code embedded} (B, T, H) without autograd, saving their inputs.
     * {@code autocast}: the mixed-precision policy of the forward pass (entered here and in each recomputation).
     */
    public static LayerCheckpointing forward(DecoderModel model, Tensor embedded, AttentionContext ctx,
            Autocast autocast) {
        return forward(model, embedded, ctx, autocast, LayerHooks.NONE);
    }

    /**
     * As {@link #forward(DecoderModel, Tensor, AttentionContext, Autocast)}, calling {@code hooks} around every
     * layer's forward and (in {@link #backward}) its recomputation, backward and the embedding's backward.
     */
    public static LayerCheckpointing forward(DecoderModel model, Tensor embedded, AttentionContext ctx,
            Autocast autocast, LayerHooks hooks) {
        return new LayerCheckpointing(model, ctx, autocast, embedded, model.config().numHiddenLayers(), hooks);
    }

    private void forwardAll() {
        try (PointerScope scope = new PointerScope()) {
            inputs[0] = embedded.detach().retainReference(); // same values, no graph
        }
        try {
            for (int i = 0; i < inputs.length; i++) {
                cpuRng[i] = TorchRng.cpuState();
                cudaRng[i] = cudaState();
                hooks.gather(i);
                try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard();
                        Autocast.Scope cast = autocast.enter()) {
                    Tensor out = model.layer(i, inputs[i], ctx).retainReference(); // (B, T, H), owned
                    if (i + 1 < inputs.length) {
                        inputs[i + 1] = out;
                    } else {
                        output = out;
                    }
                }
                hooks.release(i);
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** (B, T, H) the last layer's output, without a graph; valid until close. */
    public Tensor output() {
        if (output == null) {
            throw new IllegalStateException("layer outputs were released");
        }
        return output;
    }

    /**
     * Backpropagates {@code gradOutput} (B, T, H) = d(loss)/d(output) through every layer, recomputing each from its
     * saved input, then into the embedding's graph when it has one. Gradients accumulate into the parameters'
     * {@code .grad} exactly as one backward pass over the whole model would.
     */
    public void backward(Tensor gradOutput) {
        if (done) {
            throw new IllegalStateException("backward already ran");
        }
        done = true;
        Tensor g = gradOutput; // (B, T, H)
        boolean ownsG = false;
        RouterLog routers = model.routerLog(); // MoE: each recomputed sparse layer yields its aux-loss term
        if (routers != null) {
            routers.replay();
        }
        try {
            for (int i = inputs.length - 1; i >= 0; i--) {
                boolean needInputGrad = i > 0 || embedded.requires_grad();
                Tensor next = null;
                hooks.gather(i);
                try (PointerScope scope = new PointerScope()) {
                    Tensor x = inputs[i].detach().requires_grad_(needInputGrad); // (B, T, H) leaf
                    TorchRng.setCpuState(cpuRng[i]);
                    if (cudaRng[i] != null) {
                        setCudaState(cudaRng[i]);
                    }
                    Tensor out; // (B, T, H) with this layer's graph
                    try (Autocast.Scope cast = autocast.enter()) {
                        out = model.layer(i, x, ctx);
                    }
                    Tensor side = routers != null ? routers.takeReplayTerm() : null; // () or null
                    if (out.requires_grad()) {
                        TensorVector roots = new TensorVector(out);
                        TensorVector grads = new TensorVector(g);
                        if (side != null && side.requires_grad()) {
                            roots.push_back(side);
                            grads.push_back(torch.ones_like(side));
                        }
                        torch.backward(roots, grads, new BoolOptional(), false, new TensorVector());
                    }
                    if (needInputGrad) {
                        Tensor gx = x.grad(); // a reference into x's autograd metadata: copy the handle before x dies
                        next = (gx.defined() ? new Tensor(gx) : torch.zeros_like(x)).retainReference();
                    }
                }
                hooks.gradientsReady(i);
                hooks.release(i);
                if (ownsG) {
                    g.releaseReference();
                }
                g = next;
                ownsG = next != null;
                release(i);
            }
            restoreRng();
            hooks.gather(LayerHooks.EMBEDDING);
            if (embedded.requires_grad() && g != null) {
                try (PointerScope scope = new PointerScope()) {
                    torch.backward(new TensorVector(embedded), new TensorVector(g), new BoolOptional(), false,
                            new TensorVector());
                }
            }
            hooks.gradientsReady(LayerHooks.EMBEDDING);
            hooks.release(LayerHooks.EMBEDDING);
        } finally {
            if (ownsG) {
                g.releaseReference();
            }
            restoreRng();
            close();
        }
    }

    private void restoreRng() {
        TorchRng.setCpuState(cpuRngAfter);
        if (cudaRngAfter != null) {
            setCudaState(cudaRngAfter);
        }
    }

    /** The generator state of the model's GPU (dropout on it draws from there), or null on the CPU. */
    private byte[] cudaState() {
        try (PointerScope scope = new PointerScope()) {
            return TorchRng.cudaState(model.device());
        }
    }

    private void setCudaState(byte[] state) {
        try (PointerScope scope = new PointerScope()) {
            TorchRng.setCudaState(model.device(), state);
        }
    }

    private void release(int i) {
        if (inputs[i] != null) {
            inputs[i].releaseReference();
            inputs[i] = null;
        }
    }

    /** Frees the saved inputs and the output. */
    @Override
    public void close() {
        for (int i = 0; i < inputs.length; i++) {
            release(i);
        }
        if (output != null) {
            output.releaseReference();
            output = null;
        }
    }
}
