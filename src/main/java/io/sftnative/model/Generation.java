package io.sftnative.model;

import java.util.Arrays;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import io.sftnative.torch.Devices;

/**
 * Batched decoding with a KV cache, as transformers' {@code generate}: prompts are left-padded, position ids are
 * {@code cumsum(attention_mask) - 1}, every step appends one token per row, rows that emitted a stop token emit
 * padding from then on, and decoding ends when all rows stopped or {@code max_new_tokens} is reached.
 * Needs no tokenizer: ids in, ids out.
 */
public final class Generation {
    private Generation() {}

    /**
     * Continues each prompt (token ids; rows may differ in length, none empty) and returns the new ids per row,
     * up to and including the stop token when one was emitted.
     */
    public static long[][] generate(DecoderModel model, long[][] prompts, GenerationOptions opts) {
        int b = prompts.length;
        int t = 0;
        for (long[] p : prompts) {
            if (p.length == 0) {
                throw new IllegalArgumentException("cannot continue an empty prompt");
            }
            t = Math.max(t, p.length);
        }
        long[] ids = new long[b * t];
        long[] mask = new long[b * t];
        for (int r = 0; r < b; r++) {
            int pad = t - prompts[r].length;
            Arrays.fill(ids, r * t, r * t + pad, opts.padTokenId());
            System.arraycopy(prompts[r], 0, ids, r * t + pad, prompts[r].length);
            Arrays.fill(mask, r * t + pad, (r + 1) * t, 1);
        }
        try (PointerScope scope = new PointerScope()) {
            Device device = model.device();
            return generate(model, Tensors.longs(ids, device, b, t), Tensors.longs(mask, device, b, t), opts);
        }
    }

    /** The longest sequence the model is made for: max_position_embeddings, times the RoPE scaling factor. */
    public static long contextLength(ModelConfig config) {
        double f = config.ropeScaling() == null ? 1 : Math.max(1, config.ropeScaling().factor());
        return (long) (config.maxPositionEmbeddings() * f);
    }

    /**
     * Continues left-padded {@code inputIds} (B, T) with {@code attentionMask} (B, T) (1 = token, 0 = padding), on
     * any device (read once on the host; the model runs on its own device). Returns the new ids per row.
     */
    public static long[][] generate(DecoderModel model, Tensor inputIds, Tensor attentionMask,
            GenerationOptions opts) {
        int b = (int) inputIds.size(0);
        int t = (int) inputIds.size(1);
        int maxNew = opts.maxNewTokens();
        long context = contextLength(model.config());
        if (t > context) { // the prefill's (T, T) attention would grow without bound (a 100 KB chat line: 17 GB)
            throw new IllegalArgumentException("the prompt is " + t + " tokens but the model's context is " + context
                    + " (max_position_embeddings in config.json): shorten the prompt, or lower cutoff_len so that"
                    + " prompts are cut to it");
        }
        long[][] out = new long[b][];
        if (maxNew == 0) {
            for (int r = 0; r < b; r++) {
                out[r] = new long[0];
            }
            return out;
        }
        int total = t + maxNew;
        long[] hostMask = new long[b * total]; // row-major (B, total); columns [0, len) in use
        long[] prompt = Tensors.toLongs(inputIds);
        long[] promptMask = Tensors.toLongs(attentionMask);
        long[][] history = new long[b][total]; // every row's ids so far (for the repetition penalty)
        long[] count = new long[b]; // real tokens per row so far (position of the next = count)
        for (int r = 0; r < b; r++) {
            for (int c = 0; c < t; c++) {
                hostMask[r * total + c] = promptMask[r * t + c];
                history[r][c] = prompt[r * t + c];
                count[r] += promptMask[r * t + c];
            }
            if (count[r] == 0) {
                throw new IllegalArgumentException("prompt row " + r + " has no token (attention mask all 0)");
            }
        }
        long[][] generated = new long[b][maxNew];
        int[] produced = new int[b];
        boolean[] finished = new boolean[b];
        LogitsProcessor[] processors = new LogitsProcessor[b];
        for (int r = 0; r < b; r++) {
            processors[r] = new LogitsProcessor(opts);
        }

        try (NoGradGuard noGrad = new NoGradGuard(); KvCache cache = KvCache.of(model, b, total)) {
            int len = t;
            long[] stepTokens = null; // null: the prefill step feeds inputIds
            long[] positions = prefillPositions(promptMask, b, t);
            for (int step = 0; step < maxNew; step++) {
                float[][] last;
                try (PointerScope scope = new PointerScope()) {
                    // the step's ids, positions and mask are built on the host and uploaded once each
                    Device device = model.device();
                    Tensor ids = stepTokens == null ? Devices.to(inputIds, device)
                            : Tensors.longs(stepTokens, device, b, 1); // (B, q)
                    int q = (int) ids.size(1);
                    Tensor pos = Tensors.longs(positions, device, b, q); // (B, q)
                    Tensor keyMask = Tensors.longs(columns(hostMask, b, total, len), device, b, len); // (B, S)
                    AttentionContext ctx = model.decodeContext(pos, keyMask, cache);
                    Tensor logits = model.forward(ids, ctx); // (B, q, V)
                    last = rows(Tensors.toFloats(logits.select(1, q - 1)), b); // (B, V) on the host
                }
                long[] next = new long[b];
                boolean allDone = true;
                for (int r = 0; r < b; r++) {
                    if (finished[r]) {
                        next[r] = opts.padTokenId();
                        continue;
                    }
                    next[r] = processors[r].next(last[r], history[r], len);
                    generated[r][produced[r]++] = next[r];
                    finished[r] = opts.isStop(next[r]);
                    allDone &= finished[r];
                }
                if (allDone || step == maxNew - 1) {
                    break;
                }
                // append the new tokens; HF extends the attention mask with 1 for every row
                positions = new long[b];
                for (int r = 0; r < b; r++) {
                    hostMask[r * total + len] = 1;
                    history[r][len] = next[r];
                    positions[r] = count[r]; // cumsum(mask) - 1 at the new column
                    count[r]++;
                }
                len++;
                stepTokens = next;
            }
        }
        for (int r = 0; r < b; r++) {
            out[r] = Arrays.copyOf(generated[r], produced[r]);
        }
        return out;
    }

    /** HF's first-step positions: cumsum(mask) - 1, and 1 on padding. */
    private static long[] prefillPositions(long[] mask, int b, int t) {
        long[] pos = new long[b * t];
        for (int r = 0; r < b; r++) {
            long c = 0;
            for (int i = 0; i < t; i++) {
                c += mask[r * t + i];
                pos[r * t + i] = mask[r * t + i] == 0 ? 1 : c - 1;
            }
        }
        return pos;
    }

    private static long[] columns(long[] m, int b, int stride, int len) {
        long[] out = new long[b * len];
        for (int r = 0; r < b; r++) {
            System.arraycopy(m, r * stride, out, r * len, len);
        }
        return out;
    }

    private static float[][] rows(float[] flat, int b) {
        int v = flat.length / b;
        float[][] out = new float[b][];
        for (int r = 0; r < b; r++) {
            out[r] = Arrays.copyOfRange(flat, r * v, (r + 1) * v);
        }
        return out;
    }
}
