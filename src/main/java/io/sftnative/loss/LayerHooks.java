package io.sftnative.loss;

/**
 * Where a training step may act on the model's parameters unit by unit (FSDP's unit: one decoder layer; the
 * embedding; the head = final norm and lm_head). {@link LayerCheckpointing} and {@link MemoryEfficientLoss} call
 * these around each unit's forward, recomputation and backward; {@link #NONE} does nothing. ZeRO stage 3 gathers a
 * unit's sharded weights in {@link #gather} and frees them in {@link #release}; stages 2 and 3 sum a unit's
 * gradients over the ranks into this rank's slice in {@link #gradientsReady} and free the full-size ones.
 *
 * <p>One micro-batch calls, in this order (L layers):
 * <pre>
 *   gather(EMBEDDING)  embed  release(EMBEDDING)
 *   for i in 0..L-1:   gather(i)  layer i without autograd  release(i)
 *   gather(HEAD)       final norm, loss and its backward     gradientsReady(HEAD)  release(HEAD)
 *   for i in L-1..0:   gather(i)  recompute + backward        gradientsReady(i)     release(i)
 *   gather(EMBEDDING)  embedding backward                    gradientsReady(EMBEDDING)  release(EMBEDDING)
 * </pre>
 * Every rank of a job makes the same calls in the same order (they may be collectives).
 */
public interface LayerHooks {
    /** The unit of the token embedding (and any parameter the embedding step reads). */
    int EMBEDDING = -1;
    /** The unit of the final norm and the LM head (and every trainable parameter outside the decoder layers). */
    int HEAD = -2;

    /** Before the forward or recomputation of {@code unit} (a layer index, {@link #EMBEDDING} or {@link #HEAD}). */
    default void gather(int unit) {}

    /** After {@code unit}'s forward (or backward): its gathered weights are no longer needed. */
    default void release(int unit) {}

    /** After {@code unit}'s backward of this micro-batch: its parameters' gradients are complete. */
    default void gradientsReady(int unit) {}

    /** Nothing happens: one process, or data parallelism without layer-wise sharding. */
    LayerHooks NONE = new LayerHooks() {};
}
