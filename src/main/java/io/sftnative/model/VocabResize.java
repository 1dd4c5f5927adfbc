package io.sftnative.model;

import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * LLaMA-Factory's {@code resize_embedding_layer} (model/model_utils/embedding.py) transcribed: when the tokenizer
 * has more tokens than the embedding has rows, the embedding (and an untied LM head) grows to
 * {@code len(tokenizer)} rounded up to a multiple of 64, the rows transformers' {@code resize_token_embeddings(...,
 * mean_resizing=False)} adds drawn from N(0, initializer_range); then the rows of the new tokens are initialised,
 * whether or not the matrix grew (they may land in a checkpoint's padding rows):
 * <ul>
 * <li>{@code noise_init}: the mean of every other row plus N(0, 1/sqrt(H)) noise; with no new-token ids known
 *     ({@code resize_vocab} alone) the last {@code added rows} rows, against the mean of the rows before them;</li>
 * <li>{@code desc_init} / {@code desc_init_w_noise}: each described token's row is the mean of the <em>input</em>
 *     embeddings of its description's tokens (new tokens left out; none left: the mean of the other rows), plus
 *     randn/sqrt(H) for the _w_noise variant. Tokens without a description are not initialised (as in LF).</li>
 * </ul>
 * The input embedding is initialised first, then the untied head with the same rule and fresh draws. Random values
 * come from one CPU generator seeded with the run's seed, drawn in fp32, in LF's order (new embedding rows, new head
 * rows, embedding noise, head noise); LF draws from torch's global generator after model loading, so the noise
 * values differ from an LF run while the rule and the distribution are the same.
 */
public final class VocabResize {
    /** LLaMA-Factory passes {@code pad_to_multiple_of=64} to resize_token_embeddings. */
    public static final int PAD_TO_MULTIPLE_OF = 64;

    /** One new token's description as token ids ({@code tokenizer(desc, add_special_tokens=False)}). */
    public record Description(int tokenId, int[] textIds) {}

    /**
     * @param tokenizerLength HF's len(tokenizer)
     * @param newTokenIds     the ids of the added tokens (LF's new_tokens resolved; may be empty)
     * @param descriptions    desc_init only: in new_special_tokens_config order
     * @param init            noise_init, desc_init or desc_init_w_noise
     */
    public record Plan(int tokenizerLength, int[] newTokenIds, List<Description> descriptions, String init) {}

    /** What happened: rows before and after, and how many rows were initialised in each matrix. */
    public record Result(long oldRows, long newRows, int initializedRows) {
        public boolean resized() {
            return newRows != oldRows;
        }
    }

    private VocabResize() {}

    /** Rows for {@code tokens}: rounded up to a multiple of 64 (HF's pad_to_multiple_of). */
    public static long paddedRows(long tokens) {
        return (tokens + PAD_TO_MULTIPLE_OF - 1) / PAD_TO_MULTIPLE_OF * PAD_TO_MULTIPLE_OF;
    }

    /** Resizes (when needed) and initialises the new rows of {@code model} per {@code plan}. */
    public static Result apply(DecoderModel model, Plan plan, long seed) {
        long current = model.embedWeight().size(0);
        boolean tied = model.config().tieWordEmbeddings();
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            Generator gen = torch.make_generator_cpu(seed); // host: the same values for a seed on every device
            if (plan.tokenizerLength() > current) {
                long rows = paddedRows(plan.tokenizerLength());
                double std = model.config().initializerRange();
                Tensor embed = grown(model.embedWeight(), rows, std, gen); // (V', H)
                Tensor head = tied ? null : grown(model.lmHeadWeight(), rows, std, gen); // (V', H)
                embed.retainReference(); // owned by the model from here
                if (head != null) {
                    head.retainReference();
                }
                model.resizeVocabulary(embed, head);
            }
            long rows = model.embedWeight().size(0);
            int numNew = (int) (rows - current);
            int[] ids = resolve(plan.newTokenIds(), rows);
            if (numNew <= 0 && ids.length == 0) {
                return new Result(current, rows, 0);
            }
            int n = initialize(model.embedWeight(), numNew, ids, plan, model, gen);
            if (!tied) {
                initialize(model.lmHeadWeight(), numNew, ids, plan, model, gen);
            }
            return new Result(current, rows, n);
        }
    }

    /**
     * Grows the vocabulary to {@code rows} with zero rows: for loading an adapter or checkpoint trained with a
     * resized vocabulary, whose saved rows then replace them.
     */
    public static void toRows(DecoderModel model, long rows) {
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            Tensor embed = zeroGrown(model.embedWeight(), rows); // (V', H)
            Tensor head = model.config().tieWordEmbeddings() ? null : zeroGrown(model.lmHeadWeight(), rows);
            embed.retainReference();
            if (head != null) {
                head.retainReference();
            }
            model.resizeVocabulary(embed, head);
        }
    }

    /** (V, H) -> (rows, H): the old rows, then N(0, std) rows drawn in fp32 (HF's _init_weights of the new module). */
    private static Tensor grown(Tensor w, long rows, double std, Generator gen) {
        long h = w.size(1);
        Tensor extra = torch.empty(new long[] {rows - w.size(0), h}, new TensorOptions(ScalarType.Float),
                new MemoryFormatOptional()).normal_(0.0, std, new GeneratorOptional(gen)); // (rows - V, H) host
        return torch.cat(new TensorVector(w.detach(), Devices.to(extra, w.device()).to(w.scalar_type())), 0);
    }

    private static Tensor zeroGrown(Tensor w, long rows) {
        Tensor extra = torch.zeros(new long[] {rows - w.size(0), w.size(1)},
                Devices.options(w.scalar_type(), w.device())); // (rows - V, H)
        return torch.cat(new TensorVector(w.detach(), extra), 0);
    }

    /** LF's _resolve_new_token_ids: in range, unique, sorted. */
    private static int[] resolve(int[] ids, long rows) {
        Set<Integer> out = new TreeSet<>();
        for (int id : ids) {
            if (id >= 0 && id < rows) {
                out.add(id);
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Initialises the rows of {@code w} (V, H) in place; returns how many rows were written. */
    private static int initialize(Tensor w, int numNew, int[] ids, Plan plan, DecoderModel model, Generator gen) {
        long v = w.size(0);
        long h = w.size(1);
        Tensor w32 = w.to(ScalarType.Float); // (V, H)
        Tensor existing = existing(w32, numNew, ids); // (V - new, H)
        boolean desc = !plan.descriptions().isEmpty() && plan.init().startsWith("desc_init");
        if (!desc) { // _noisy_mean_initialization
            Tensor avg = existing.mean(new long[] {0}, true, new ScalarTypeOptional()); // (1, H)
            long count = ids.length > 0 ? ids.length : numNew;
            Tensor noise = noise(count, h, gen, w); // (count, H)
            Tensor rows = avg.add(noise).to(w.scalar_type()); // (count, H)
            if (ids.length > 0) {
                w.index_copy_(0, index(ids, w), rows);
            } else {
                w.narrow(0, v - numNew, numNew).copy_(rows);
            }
            return (int) count;
        }
        // _description_based_initialization
        Set<Integer> newIds = new TreeSet<>();
        Arrays.stream(ids).forEach(newIds::add);
        Tensor fallback = existing.mean(new long[] {0}, false, new ScalarTypeOptional()); // (H)
        boolean addNoise = plan.init().equals("desc_init_w_noise");
        int written = 0;
        for (Description d : plan.descriptions()) {
            if (d.tokenId() < 0 || d.tokenId() >= v) {
                continue; // LF: "token not found or out of range, skipping"
            }
            long[] valid = Arrays.stream(d.textIds()).filter(t -> !newIds.contains(t) && t >= 0 && t < v)
                    .asLongStream().toArray();
            Tensor base; // (H)
            if (valid.length == 0) {
                base = fallback;
            } else { // model.get_input_embeddings()(ids).mean(0): the input embedding, also for the head
                Tensor e = model.embedWeight().index_select(0, index(valid, w)).to(ScalarType.Float); // (n, H)
                base = e.mean(new long[] {0}, false, new ScalarTypeOptional());
            }
            if (addNoise) { // randn_like(base) * (1 / sqrt(H))
                Tensor r = torch.empty(new long[] {h}, new TensorOptions(ScalarType.Float), new MemoryFormatOptional())
                        .normal_(0.0, 1.0, new GeneratorOptional(gen)); // (H) host
                base = base.add(Devices.to(r, w.device()).mul(new Scalar(1.0 / Math.sqrt(h))));
            }
            w.select(0, d.tokenId()).copy_(base);
            written++;
        }
        return written;
    }

    /** LF's _existing_embeddings: every row but the new tokens', else all but the last numNew, else all. */
    private static Tensor existing(Tensor w, int numNew, int[] ids) {
        long v = w.size(0);
        if (ids.length > 0) {
            boolean[] drop = new boolean[(int) v];
            for (int id : ids) {
                drop[id] = true;
            }
            long[] keep = new long[(int) v - ids.length];
            for (int i = 0, k = 0; i < v; i++) {
                if (!drop[i]) {
                    keep[k++] = i;
                }
            }
            return w.index_select(0, index(keep, w));
        }
        return numNew > 0 ? w.narrow(0, 0, v - numNew) : w;
    }

    /** N(0, 1/sqrt(H)) noise (count, H), drawn in fp32 on the host, on w's device. */
    private static Tensor noise(long count, long h, Generator gen, Tensor w) {
        Tensor n = torch.empty(new long[] {count, h}, new TensorOptions(ScalarType.Float), new MemoryFormatOptional())
                .normal_(0.0, 1.0 / Math.sqrt(h), new GeneratorOptional(gen)); // (count, H) host
        return Devices.to(n, w.device());
    }

    private static Tensor index(int[] ids, Tensor like) {
        return index(Arrays.stream(ids).asLongStream().toArray(), like);
    }

    private static Tensor index(long[] ids, Tensor like) {
        return Devices.to(Tensors.longs(ids, ids.length), like.device()); // (n) int64
    }
}
