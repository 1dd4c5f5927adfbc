package io.sftnative.bench;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.model.AttentionKernel;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.torch.TorchRuntime;

/**
 * What Gemma 2's attention soft-cap and Baichuan-13B's ALiBi cost in training: forward + causal-LM loss + backward
 * (no optimizer) of one model per variant, each differing from its plain twin only in the attention variant, fp32,
 * one process per variant so that the peak resident memory ({@code VmHWM}) is that variant's own.
 *
 * <pre>
 * benchmarks/run-java.sh AttentionVariantsBench --variant gemma2-softcap [--kernel native|sdpa] [--seq 1024]
 *     [--batch 1] [--steps 3] [--threads 2]
 * variants: gemma2-softcap, gemma2-plain (the same config with attn_logit_softcapping null),
 *           baichuan-alibi (BaichuanForCausalLM, hidden != 4096), baichuan-rope (BaiChuanForCausalLM)
 * </pre>
 *
 * Shapes: hidden 512, 4 layers, 8 heads of 64 (8 KV heads), intermediate 1408, vocabulary 8000.
 */
public final class AttentionVariantsBench {
    private AttentionVariantsBench() {}

    public static void main(String[] args) {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        }
        String variant = a.getOrDefault("variant", "gemma2-softcap");
        String kernel = a.getOrDefault("kernel", "native");
        int seq = Integer.parseInt(a.getOrDefault("seq", "1024"));
        int batch = Integer.parseInt(a.getOrDefault("batch", "1"));
        int steps = Integer.parseInt(a.getOrDefault("steps", "3"));
        TorchRuntime.boot(Integer.parseInt(a.getOrDefault("threads", "2")));
        try (DecoderModel model = RandomInit.create(ModelConfig.fromMap(config(variant)), 1, ScalarType.Float)) {
            model.attentionKernel(AttentionKernel.parse(kernel, "--kernel"));
            model.setRequiresGrad(true);
            long baseline = ProcStatus.kb("VmHWM");
            double best = Double.MAX_VALUE;
            for (int s = 0; s <= steps; s++) { // step 0 warms up
                try (PointerScope scope = new PointerScope()) {
                    Tensor ids = torch.randint(3, 8000, new long[] {batch, seq}, new TensorOptions(ScalarType.Long));
                    long t0 = System.nanoTime();
                    Tensor logits = model.forward(ids, model.causalContext(batch, seq)); // (B, T, V)
                    Tensor loss = CausalLmLoss.mean(logits, ids);
                    loss.backward();
                    double ms = (System.nanoTime() - t0) / 1e6;
                    if (s > 0) {
                        best = Math.min(best, ms);
                    }
                    for (Tensor p : model.parameters().values()) {
                        if (p.grad().defined()) {
                            p.grad().zero_();
                        }
                    }
                }
            }
            System.out.printf("%s kernel=%s B=%d T=%d: best of %d steps %.0f ms (fwd+bwd); peak RSS %.0f MB (%.0f MB"
                    + " after the model was built)%n", variant, kernel, batch, seq, steps, best,
                    ProcStatus.kb("VmHWM") / 1024.0, baseline / 1024.0);
        }
    }

    static Map<String, Object> config(String variant) {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("vocab_size", 8000);
        k.put("hidden_size", 512);
        k.put("intermediate_size", 1408);
        k.put("num_hidden_layers", 4);
        k.put("num_attention_heads", 8);
        k.put("num_key_value_heads", 8);
        k.put("max_position_embeddings", 8192);
        k.put("pad_token_id", 0);
        switch (variant) {
            case "gemma2-softcap", "gemma2-plain" -> {
                k.put("model_type", "gemma2");
                k.put("head_dim", 64);
                k.put("query_pre_attn_scalar", 64);
                k.put("sliding_window", 8192); // no window at these lengths: only the cap differs
                k.put("attn_logit_softcapping", variant.equals("gemma2-softcap") ? 50.0 : null);
                k.put("final_logit_softcapping", null);
            }
            case "baichuan-alibi", "baichuan-rope" -> {
                k.put("model_type", "baichuan");
                k.put("architectures", List.of(variant.equals("baichuan-alibi") ? "BaichuanForCausalLM"
                        : "BaiChuanForCausalLM"));
                k.put("tie_word_embeddings", false);
            }
            default -> throw new IllegalArgumentException("unknown --variant " + variant);
        }
        return k;
    }
}
