#!/usr/bin/python3
"""Writes the model golden files under src/test/resources/golden/model/ (committed; tests never run Python).

Run from the repository root with Debian's python3-torch 1.13 (NOT a pyenv python):
    /usr/bin/python3 tools/golden/gen_model_golden.py
Output is deterministic (fixed seeds). For each tiny random-init checkpoint NAME it writes
    NAME/checkpoint/config.json + model.safetensors (mistral: two shards + model.safetensors.index.json)
    NAME/expected.safetensors   inputs and expected tensors, keys '<case>.<what>'
    NAME/expected.json          losses, greedy generations, margins, the list of cases
The reference math is hf_reference.py (transformers' modeling semantics, eager attention).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

OUT = os.path.join("src", "test", "resources", "golden", "model")
VOCAB = 256

CONFIGS = {
    # llama with GQA (4 query heads over 2 kv heads) and llama3 rope scaling: with head_dim 16, theta 5e5 and an
    # original context of 64 the 8 frequencies fall in all three llama3 bands (kept, smoothed, divided by 8).
    "llama_gqa": dict(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=VOCAB, hidden_size=64,
                      intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=16, rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=256,
                      rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                        original_max_position_embeddings=64),
                      tie_word_embeddings=False, attention_bias=False, mlp_bias=False, hidden_act="silu",
                      initializer_range=0.02, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                      torch_dtype="float32"),
    # qwen2: q/k/v bias, tied embeddings, weights stored in bf16
    "qwen2_tied_bf16": dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"], vocab_size=VOCAB, hidden_size=64,
                            intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=256,
                            tie_word_embeddings=True, use_sliding_window=False, sliding_window=None,
                            max_window_layers=2, hidden_act="silu", initializer_range=0.02, bos_token_id=None,
                            eos_token_id=2, torch_dtype="bfloat16"),
    # qwen3: q/k RMSNorm over head_dim, head_dim (32) != hidden/heads (16), linear rope scaling
    "qwen3_qknorm": dict(model_type="qwen3", architectures=["Qwen3ForCausalLM"], vocab_size=VOCAB, hidden_size=64,
                         intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=32, rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=256,
                         rope_scaling=dict(rope_type="linear", factor=2.0), attention_bias=False,
                         tie_word_embeddings=False, use_sliding_window=False, sliding_window=None,
                         hidden_act="silu", initializer_range=0.02, eos_token_id=2, torch_dtype="float32"),
    # mistral: multi-query attention (1 kv head) and a sliding window shorter than the sequences; sharded on disk
    "mistral_swa": dict(model_type="mistral", architectures=["MistralForCausalLM"], vocab_size=VOCAB, hidden_size=64,
                        intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                        head_dim=16, rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=256,
                        sliding_window=6, tie_word_embeddings=False, hidden_act="silu", initializer_range=0.02,
                        bos_token_id=1, eos_token_id=2, torch_dtype="float32"),
}

# parameters whose gradients are checked (those that exist in the model)
GRAD_PARAMS = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
               "model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.k_proj.weight",
               "model.layers.0.self_attn.v_proj.bias", "model.layers.0.self_attn.q_norm.weight",
               "model.layers.0.self_attn.k_norm.weight", "model.layers.0.input_layernorm.weight",
               "model.layers.1.self_attn.o_proj.weight", "model.layers.1.mlp.gate_proj.weight",
               "model.layers.1.mlp.down_proj.weight", "model.layers.1.post_attention_layernorm.weight",
               "model.norm.weight", "lm_head.weight"]

# the padded and packed cases check fewer gradients (keeps the committed files small)
FEW_GRADS = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
             "model.layers.0.input_layernorm.weight", "model.norm.weight"]


def param_shapes(cfg):
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], ref.head_dim(cfg)
    hid, inter = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {"model.embed_tokens.weight": (cfg["vocab_size"], hid)}
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % i
        shapes[pre + "input_layernorm.weight"] = (hid,)
        shapes[pre + "self_attn.q_proj.weight"] = (H * D, hid)
        shapes[pre + "self_attn.k_proj.weight"] = (KV * D, hid)
        shapes[pre + "self_attn.v_proj.weight"] = (KV * D, hid)
        shapes[pre + "self_attn.o_proj.weight"] = (hid, H * D)
        if cfg["model_type"] == "qwen2":
            shapes[pre + "self_attn.q_proj.bias"] = (H * D,)
            shapes[pre + "self_attn.k_proj.bias"] = (KV * D,)
            shapes[pre + "self_attn.v_proj.bias"] = (KV * D,)
        if cfg["model_type"] == "qwen3":
            shapes[pre + "self_attn.q_norm.weight"] = (D,)
            shapes[pre + "self_attn.k_norm.weight"] = (D,)
        shapes[pre + "post_attention_layernorm.weight"] = (hid,)
        shapes[pre + "mlp.gate_proj.weight"] = (inter, hid)
        shapes[pre + "mlp.up_proj.weight"] = (inter, hid)
        shapes[pre + "mlp.down_proj.weight"] = (hid, inter)
    shapes["model.norm.weight"] = (hid,)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (cfg["vocab_size"], hid)
    return shapes


def random_params(cfg, gen):
    """Random weights scaled so that logits are far from uniform (greedy decoding then has clear winners):
    matrices ~ N(0, 1/sqrt(fan_in)), biases ~ N(0, 0.1), norm weights ~ 1 + N(0, 0.1), embeddings ~ N(0, 1)."""
    p = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        elif name == "model.embed_tokens.weight":
            # tied embeddings double as the LM head: keep logits in a realistic range
            t = torch.randn(shape, generator=gen) * (0.3 if cfg["tie_word_embeddings"] else 1.0)
        else:
            t = torch.randn(shape, generator=gen) / (shape[1] ** 0.5)
        p[name] = t
    return p


def labels_for(ids, ignore):
    lab = ids.clone()
    lab[ignore] = ref.IGNORE_INDEX
    return lab


def run_case(cfg, p, ids, pos, vis, labels, valid, grad_params=GRAD_PARAMS):
    """Forward + loss + backward on copies of p that require grad; returns (logits, loss, grads)."""
    q = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    logits = ref.forward(cfg, q, ids, pos, vis)
    loss = ref.causal_lm_loss(logits, labels)
    loss.backward()
    grads = {n: q[n].grad.float() for n in grad_params if n in q}
    out = logits.detach().float()
    out[~valid] = 0.0  # padding rows are unspecified: zero them, the Java test compares valid rows only
    return out, float(loss), grads


def put_case(tensors, meta, case, ids, pos, labels, logits, loss, grads, extra=None):
    tensors[case + ".input_ids"] = ids
    tensors[case + ".position_ids"] = pos
    tensors[case + ".labels"] = labels
    tensors[case + ".logits"] = logits
    for n, g in grads.items():
        tensors[case + ".grad." + n] = g
    meta["cases"][case] = {"loss": loss}
    for k, v in (extra or {}).items():
        tensors[case + "." + k] = v


def main():
    torch.manual_seed(0)
    for mi, (name, cfg) in enumerate(CONFIGS.items()):
        gen = torch.Generator().manual_seed(1000 + mi)
        p = random_params(cfg, gen)
        bf16 = cfg["torch_dtype"] == "bfloat16"
        if bf16:
            p = {k: v.to(torch.bfloat16) for k, v in p.items()}
        p32 = {k: v.float() for k, v in p.items()}  # fp32 reference runs on exactly the stored values
        ckpt = os.path.join(OUT, name, "checkpoint")
        os.makedirs(ckpt, exist_ok=True)
        with open(os.path.join(ckpt, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        meta_st = {"format": "pt"}
        if name == "mistral_swa":
            st.save_sharded(ckpt, p, meta_st, shards=2)
        else:
            st.save(os.path.join(ckpt, "model.safetensors"), p, meta_st)

        tensors, meta = {}, {"model": name, "cases": {}}
        B, T = 2, 16
        # --- basic: full rows, causal, arange positions; some prompt tokens masked out of the loss
        ids = torch.randint(3, VOCAB, (B, T), generator=gen)
        pos = torch.arange(T)[None].expand(B, T).contiguous()
        ignore = torch.zeros(B, T, dtype=torch.bool)
        ignore[0, :4] = True
        ignore[1, :7] = True
        labels = labels_for(ids, ignore)
        vis = ref.visible_mask(cfg, batch=B, seq=T)
        valid = torch.ones(B, T, dtype=torch.bool)
        logits, loss, grads = run_case(cfg, p32, ids, pos, vis, labels, valid)
        put_case(tensors, meta, "basic", ids, pos, labels, logits, loss, grads)
        if bf16:
            with torch.no_grad():
                lb = ref.forward(cfg, p, ids, pos, vis)
            tensors["basic.logits_bf16"] = lb.float()
            meta["cases"]["basic"]["loss_bf16"] = float(ref.causal_lm_loss(lb, labels))
            meta["cases"]["basic"]["bf16_vs_fp32_rel_err"] = float(
                (lb.float() - logits).abs().max() / logits.abs().max())

        # --- padded: right padding (training collator), 0/1 attention mask, arange positions
        lens = [16, 11, 6]
        ids = torch.randint(3, VOCAB, (3, T), generator=gen)
        am = torch.zeros(3, T, dtype=torch.long)
        for b, n in enumerate(lens):
            am[b, :n] = 1
            ids[b, n:] = 0
        pos = torch.arange(T)[None].expand(3, T).contiguous()
        ignore = am == 0
        ignore[:, :2] = True
        labels = labels_for(ids, ignore)
        vis = ref.visible_mask(cfg, attention_mask=am)
        logits, loss, grads = run_case(cfg, p32, ids, pos, vis, labels, am.bool(), FEW_GRADS)
        put_case(tensors, meta, "padded", ids, pos, labels, logits, loss, grads, {"attention_mask": am})

        # --- packed: neat_packing segments 1,2,3 (0 = padding), positions restart per segment
        segs = [[5, 4, 5, 0], [9, 7, 0, 0]]  # lengths of segments, then padding to T
        seg = torch.zeros(B, T, dtype=torch.long)
        pos = torch.zeros(B, T, dtype=torch.long)
        for b, lengths in enumerate(segs):
            at = 0
            for si, n in enumerate(x for x in lengths if x):
                seg[b, at:at + n] = si + 1
                pos[b, at:at + n] = torch.arange(n)
                at += n
        ids = torch.randint(3, VOCAB, (B, T), generator=gen)
        ids[seg == 0] = 0
        ignore = seg == 0
        ignore |= pos == 0  # each segment's first token is never a target (no cross-segment prediction)
        labels = labels_for(ids, ignore)
        vis = ref.visible_mask(cfg, segment_ids=seg)
        logits, loss, grads = run_case(cfg, p32, ids, pos, vis, labels, seg != 0, FEW_GRADS)
        put_case(tensors, meta, "packed", ids, pos, labels, logits, loss, grads, {"segment_ids": seg})

        # --- greedy generation: left-padded batch of 3 prompts, once without and once with a stop token
        prompts = [torch.randint(3, VOCAB, (n,), generator=gen).tolist() for n in (5, 9, 3)]
        out, margin = ref.greedy_generate(cfg, p32, prompts, 12, [], 0)
        stop = out[0][3]  # a token row 0 emits at step 4: row 0 must stop there
        out_stop, margin_stop = ref.greedy_generate(cfg, p32, prompts, 12, [stop], 0)
        meta["generate"] = {"prompts": prompts, "max_new_tokens": 12, "pad_token_id": 0,
                            "greedy": out, "stop_token_id": stop, "greedy_with_stop": out_stop,
                            "min_top2_margin": min(margin, margin_stop)}
        st.save(os.path.join(OUT, name, "expected.safetensors"), tensors, {"generator": "tools/golden"})
        with open(os.path.join(OUT, name, "expected.json"), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
        print(name, "losses", {c: round(v["loss"], 6) for c, v in meta["cases"].items()},
              "min greedy margin %.4f" % meta["generate"]["min_top2_margin"])


if __name__ == "__main__":
    main()
