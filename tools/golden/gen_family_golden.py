#!/usr/bin/python3
"""Writes the golden files of the families beyond Llama/Qwen under src/test/resources/golden/model/ (committed; tests
never run Python), in the layout of gen_model_golden.py (checkpoint/, expected.safetensors, expected.json) and with
its cases (basic, padded, packed, greedy generation). The reference math is hf_families.py.

Run from the repository root with Debian's python3-torch 1.13 (NOT a pyenv python):
    /usr/bin/python3 tools/golden/gen_family_golden.py [name ...]
Deterministic (fixed seeds).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_model_golden as base  # noqa: E402
import hf_families as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

OUT = base.OUT
VOCAB = base.VOCAB
COMMON = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=256, initializer_range=0.02, torch_dtype="float32")

CONFIGS = {
    # gemma2: head_dim 32 != hidden/heads, query_pre_attn_scalar 24 != head_dim, caps small enough to bite on random
    # weights (real checkpoints: 50 / 30), layer 0 slides over 6 keys, tied head, pad id 0
    "gemma2_softcap": dict(COMMON, model_type="gemma2", architectures=["Gemma2ForCausalLM"], intermediate_size=128,
                           head_dim=32, query_pre_attn_scalar=24, attn_logit_softcapping=4.0,
                           final_logit_softcapping=6.0, sliding_window=6, hidden_activation="gelu_pytorch_tanh",
                           hidden_act="gelu_pytorch_tanh", rms_norm_eps=1e-6, rope_theta=10000.0,
                           tie_word_embeddings=True, attention_bias=False, pad_token_id=0, eos_token_id=1,
                           bos_token_id=2),
    # gemma3 (text): 3 layers, pattern 3 (layers 0, 1 slide over 5 keys with the local base; layer 2 global with
    # linear scaling), q/k norm per head, multi-query attention, no soft-caps
    "gemma3_text_local": dict(COMMON, model_type="gemma3_text", architectures=["Gemma3ForCausalLM"],
                              num_hidden_layers=3, num_key_value_heads=1, intermediate_size=96, head_dim=16,
                              query_pre_attn_scalar=16, attn_logit_softcapping=None, final_logit_softcapping=None,
                              sliding_window=5, sliding_window_pattern=3, rope_local_base_freq=10000.0,
                              rope_theta=1000000.0, rope_scaling=dict(rope_type="linear", factor=2.0),
                              hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, tie_word_embeddings=True,
                              attention_bias=False, pad_token_id=0, eos_token_id=1, bos_token_id=2),
    # phi3: fused projections, 12 of 16 dims rotate, longrope with an original context of 12 (16-token rows use the
    # long factors, the packed case's short segments the short ones, generation switches mid-way)
    "phi3_longrope": dict(COMMON, model_type="phi3", architectures=["Phi3ForCausalLM"], intermediate_size=128,
                          partial_rotary_factor=0.75, rope_theta=10000.0, max_position_embeddings=96,
                          original_max_position_embeddings=12,
                          rope_scaling=dict(type="longrope", short_factor=[1.0, 1.1, 1.3, 1.6, 2.0, 2.5],
                                            long_factor=[1.0, 1.5, 2.5, 4.0, 6.0, 9.0]),
                          sliding_window=None, hidden_act="silu", rms_norm_eps=1e-5, tie_word_embeddings=False,
                          pad_token_id=0, eos_token_id=2, bos_token_id=1),
    # glm4: q/k/v bias, gate_up_proj, four norms, half of each head rotates with interleaved pairs
    "glm4_partial": dict(COMMON, model_type="glm4", architectures=["Glm4ForCausalLM"], intermediate_size=96,
                         head_dim=16, partial_rotary_factor=0.5, attention_bias=True, rope_theta=10000.0,
                         hidden_act="silu", rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=0,
                         eos_token_id=2),
    # olmo2: post-norms only, q/k norm over the whole projection (64 and 32 wide)
    "olmo2_postnorm": dict(COMMON, model_type="olmo2", architectures=["Olmo2ForCausalLM"], intermediate_size=128,
                           attention_bias=False, rope_theta=500000.0, hidden_act="silu", rms_norm_eps=1e-6,
                           tie_word_embeddings=False, pad_token_id=1, eos_token_id=2),
    # granite: all four multipliers away from 1, tied head
    "granite_mult": dict(COMMON, model_type="granite", architectures=["GraniteForCausalLM"], intermediate_size=128,
                         embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=0.0625,
                         logits_scaling=8.0, attention_bias=False, mlp_bias=False, rope_theta=10000.0,
                         hidden_act="silu", rms_norm_eps=1e-5, tie_word_embeddings=True, pad_token_id=0,
                         eos_token_id=2),
    # qwen2 with use_sliding_window: layer 0 full, layer 1 slides over 5 keys (max_window_layers 1)
    "qwen2_swa": dict(COMMON, model_type="qwen2", architectures=["Qwen2ForCausalLM"], intermediate_size=128,
                      use_sliding_window=True, sliding_window=5, max_window_layers=1, rope_theta=1000000.0,
                      hidden_act="silu", rms_norm_eps=1e-6, tie_word_embeddings=False, eos_token_id=2),
    # baichuan (Baichuan-7B code): fused W_pack, multi-head attention
    "baichuan_wpack": dict(COMMON, model_type="baichuan", architectures=["BaiChuanForCausalLM"],
                           num_key_value_heads=4, intermediate_size=128, hidden_act="silu", rms_norm_eps=1e-6,
                           tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2),
}
# gemma2 stored in bf16: Gemma's fp32 norm and the embedding scale rounded to bf16 (checked in bf16 too)
CONFIGS["gemma2_bf16"] = dict(CONFIGS["gemma2_softcap"], torch_dtype="bfloat16")
# olmo2 stored in bf16: its norm multiplies the weight before the cast
CONFIGS["olmo2_bf16"] = dict(CONFIGS["olmo2_postnorm"], torch_dtype="bfloat16")
# qwen2 with YaRN: factor 4 over an original context of 64 (rotary dims 0-2 extrapolate, 3+ interpolate with a
# ramp between), attention factor 0.1 ln 4 + 1 on cos/sin
CONFIGS["qwen2_yarn"] = dict(COMMON, model_type="qwen2", architectures=["Qwen2ForCausalLM"],
                             intermediate_size=128, rope_theta=10000.0,
                             rope_scaling=dict(type="yarn", factor=4.0, original_max_position_embeddings=64),
                             hidden_act="silu", rms_norm_eps=1e-6, tie_word_embeddings=False, eos_token_id=2)
# llama with dynamic NTK: max_position_embeddings 12, so 16-token rows (and generation past 12) recompute the
# table from the sequence length; the packed case (positions < 9) uses the original one
CONFIGS["llama_dynamic"] = dict(COMMON, model_type="llama", architectures=["LlamaForCausalLM"],
                                intermediate_size=128, max_position_embeddings=12, rope_theta=10000.0,
                                rope_scaling=dict(rope_type="dynamic", factor=2.0), hidden_act="silu",
                                rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=0, eos_token_id=2,
                                bos_token_id=1)
# Baichuan2-13B's code: BaichuanForCausalLM with hidden_size != 4096 (ALiBi, no RoPE), z_loss_weight (Baichuan2:
# NormHead on the LM head); 6 heads, so the slopes take _get_interleave's non-power-of-two branch
CONFIGS["baichuan2_13b_alibi"] = dict(COMMON, model_type="baichuan", architectures=["BaichuanForCausalLM"],
                                      hidden_size=96, num_attention_heads=6, num_key_value_heads=6,
                                      intermediate_size=128, model_max_length=256, z_loss_weight=0, hidden_act="silu",
                                      rms_norm_eps=1e-6, tie_word_embeddings=False, pad_token_id=0, bos_token_id=1,
                                      eos_token_id=2)
# Baichuan2-13B stored in bf16: the remote code's eager attention adds the ALiBi mask to bf16 scores and takes the
# softmax in bf16 (checked in bf16 against our fused path, which keeps the probabilities in fp32)
CONFIGS["baichuan2_13b_alibi_bf16"] = dict(CONFIGS["baichuan2_13b_alibi"], torch_dtype="bfloat16")


def param_shapes(cfg):
    mt = cfg["model_type"]
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], ref.head_dim(cfg)
    hid, inter = cfg["hidden_size"], cfg["intermediate_size"]
    bias = cfg.get("attention_bias", False) or mt == "qwen2"
    shapes = {"model.embed_tokens.weight": (cfg["vocab_size"], hid)}
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % i
        a = pre + "self_attn."
        if mt == "phi3":
            shapes[a + "qkv_proj.weight"] = ((H + 2 * KV) * D, hid)
        elif mt == "baichuan":
            shapes[a + "W_pack.weight"] = (3 * hid, hid)
        else:
            for n, out in (("q_proj", H * D), ("k_proj", KV * D), ("v_proj", KV * D)):
                shapes[a + n + ".weight"] = (out, hid)
                if bias:
                    shapes[a + n + ".bias"] = (out,)
        shapes[a + "o_proj.weight"] = (hid, H * D)
        if bias and mt not in ("glm4", "qwen2"):
            shapes[a + "o_proj.bias"] = (hid,)
        if mt == "gemma3_text":
            shapes[a + "q_norm.weight"] = (D,)
            shapes[a + "k_norm.weight"] = (D,)
        if mt == "olmo2":
            shapes[a + "q_norm.weight"] = (H * D,)
            shapes[a + "k_norm.weight"] = (KV * D,)
        m = pre + "mlp."
        if mt in ("phi3", "glm4"):
            shapes[m + "gate_up_proj.weight"] = (2 * inter, hid)
        else:
            shapes[m + "gate_proj.weight"] = (inter, hid)
            shapes[m + "up_proj.weight"] = (inter, hid)
        shapes[m + "down_proj.weight"] = (hid, inter)
        for n in ref.norm_names(cfg):
            if n:
                shapes[pre + n + ".weight"] = (hid,)
    shapes["model.norm.weight"] = (hid,)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (cfg["vocab_size"], hid)
    return shapes


def random_params(cfg, gen):
    """As gen_model_golden.random_params; Gemma norm weights are offsets from 1 (stored ~ N(0, 0.1))."""
    gemma = cfg["model_type"] in ref.GEMMA
    p = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("norm.weight"):
            t = (0.0 if gemma else 1.0) + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        elif name == "model.embed_tokens.weight":
            t = torch.randn(shape, generator=gen) * (0.3 if cfg["tie_word_embeddings"] else 1.0)
            if cfg["model_type"] == "granite":
                t = t / cfg["embedding_multiplier"]
        else:
            t = torch.randn(shape, generator=gen) / (shape[1] ** 0.5)
        p[name] = t
    return p


def grad_params(shapes, few=False):
    """The gradients checked: per parameter kind of layer 0 and layer 1 (all when not few)."""
    if few:
        names = [n for n in shapes if n.startswith("model.layers.0.")
                 and ("norm" in n or "q" in n.split(".")[-2] or "W_pack" in n)]
        return names[:4] + ["model.norm.weight"]
    keep = []
    for n in shapes:
        if n.startswith("model.layers.0.self_attn") or n.startswith("model.layers.1.mlp") or "layernorm" in n \
                and n.startswith("model.layers.0.") or not n.startswith("model.layers."):
            keep.append(n)
    keep.append("model.layers.1.self_attn.o_proj.weight")
    return keep


def run_case(cfg, p, ids, pos, vis, labels, valid, names, rope_state=None):
    q = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    logits = ref.forward(cfg, q, ids, pos, vis, rope_state=rope_state)
    loss = ref.causal_lm_loss(logits, labels)
    loss.backward()
    grads = {n: q[n].grad.float() for n in names if n in q}
    out = logits.detach().float()
    out[~valid] = 0.0
    return out, float(loss), grads


def main(names):
    for mi, (name, cfg) in enumerate(CONFIGS.items()):
        if names and name not in names:
            continue
        gen = torch.Generator().manual_seed(2000 + mi)
        p = random_params(cfg, gen)
        bf16 = cfg["torch_dtype"] == "bfloat16"
        if bf16:
            p = {k: v.to(torch.bfloat16) for k, v in p.items()}
        p_stored, p = p, {k: v.float() for k, v in p.items()}  # fp32 cases run on exactly the stored values
        state = ref.DynamicRope(cfg) if ref.rope_type(cfg) == "dynamic" else None
        shapes = param_shapes(cfg)
        ckpt = os.path.join(OUT, name, "checkpoint")
        os.makedirs(ckpt, exist_ok=True)
        with open(os.path.join(ckpt, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        st.save(os.path.join(ckpt, "model.safetensors"), p_stored, {"format": "pt"})

        tensors, meta = {}, {"model": name, "cases": {}}
        B, T = 2, 16
        ids = torch.randint(3, VOCAB, (B, T), generator=gen)
        pos = torch.arange(T)[None].expand(B, T).contiguous()
        ignore = torch.zeros(B, T, dtype=torch.bool)
        ignore[0, :4] = True
        ignore[1, :7] = True
        labels = base.labels_for(ids, ignore)
        vis = ref.visible_mask(batch=B, seq=T)
        logits, loss, grads = run_case(cfg, p, ids, pos, vis, labels, torch.ones(B, T, dtype=torch.bool),
                                       grad_params(shapes), state)
        base.put_case(tensors, meta, "basic", ids, pos, labels, logits, loss, grads)
        if bf16:
            with torch.no_grad():
                lb = ref.forward(cfg, p_stored, ids, pos, vis)
            tensors["basic.logits_bf16"] = lb.float()
            meta["cases"]["basic"]["loss_bf16"] = float(ref.causal_lm_loss(lb, labels))
            meta["cases"]["basic"]["bf16_vs_fp32_rel_err"] = float(
                (lb.float() - logits).abs().max() / logits.abs().max())

        lens = [16, 11, 6]
        ids = torch.randint(3, VOCAB, (3, T), generator=gen)
        am = torch.zeros(3, T, dtype=torch.long)
        for b, n in enumerate(lens):
            am[b, :n] = 1
            ids[b, n:] = 0
        pos = torch.arange(T)[None].expand(3, T).contiguous()
        ignore = am == 0
        ignore[:, :2] = True
        labels = base.labels_for(ids, ignore)
        vis = ref.visible_mask(attention_mask=am)
        logits, loss, grads = run_case(cfg, p, ids, pos, vis, labels, am.bool(), grad_params(shapes, True),
                                       state)
        base.put_case(tensors, meta, "padded", ids, pos, labels, logits, loss, grads, {"attention_mask": am})

        segs = [[5, 4, 5, 0], [9, 7, 0, 0]]
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
        ignore = (seg == 0) | (pos == 0)
        labels = base.labels_for(ids, ignore)
        vis = ref.visible_mask(segment_ids=seg)
        logits, loss, grads = run_case(cfg, p, ids, pos, vis, labels, seg != 0, grad_params(shapes, True),
                                       state)
        base.put_case(tensors, meta, "packed", ids, pos, labels, logits, loss, grads, {"segment_ids": seg})

        prompts = [torch.randint(3, VOCAB, (n,), generator=gen).tolist() for n in (5, 9, 3)]
        pad = cfg.get("pad_token_id", 0)
        out, margin = ref.greedy_generate(cfg, p, prompts, 12, [], pad, state)
        stop = out[0][3]
        out_stop, margin_stop = ref.greedy_generate(cfg, p, prompts, 12, [stop], pad, state)
        meta["generate"] = {"prompts": prompts, "max_new_tokens": 12, "pad_token_id": pad, "greedy": out,
                            "stop_token_id": stop, "greedy_with_stop": out_stop,
                            "min_top2_margin": min(margin, margin_stop)}
        st.save(os.path.join(OUT, name, "expected.safetensors"), tensors, {"generator": "tools/golden"})
        with open(os.path.join(OUT, name, "expected.json"), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
        print(name, "losses", {c: round(v["loss"], 6) for c, v in meta["cases"].items()},
              "min greedy margin %.4f" % meta["generate"]["min_top2_margin"])


if __name__ == "__main__":
    main(sys.argv[1:])
