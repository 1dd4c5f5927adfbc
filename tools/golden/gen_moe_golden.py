#!/usr/bin/python3
"""Writes the mixture-of-experts golden files under src/test/resources/golden/moe/ (committed; tests never run Python).

Run from the repository root with Debian's python3-torch 1.13 (NOT a pyenv python):
    /usr/bin/python3 tools/golden/gen_moe_golden.py
Deterministic (fixed seeds). For each tiny random-init MoE checkpoint NAME:
    NAME/checkpoint/        config.json + model.safetensors, one tensor per expert (the hub layout)
    NAME/fused/             the same weights with experts fused into 3-D tensors (transformers v5 layout:
                            <block>.experts.gate_up_proj (E, 2I, H), <block>.experts.down_proj (E, H, I); mixtral
                            under v5's `mlp.` prefix)
    NAME/expected.safetensors, NAME/expected.json
Cases: basic (2x16 causal: logits, LM loss, aux loss, LM + coef * aux, gradients of the total), padded (right
padding: the aux loss over the attention mask), sparse_hit (1x3 tokens: some experts get no token; their reference
gradient is zero), greedy generation. The reference math is hf_moe_reference.py.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_moe_reference as moe  # noqa: E402
import hf_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

OUT = os.path.join("src", "test", "resources", "golden", "moe")
VOCAB = 256

CONFIGS = {
    # qwen3_moe: q/k norm, 8 experts top-2 renormalised, layer 1 dense (mlp_only_layers) with intermediate_size
    "qwen3_moe": dict(model_type="qwen3_moe", architectures=["Qwen3MoeForCausalLM"], vocab_size=VOCAB,
                      hidden_size=64, intermediate_size=96, moe_intermediate_size=32, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
                      rope_theta=1000000.0, max_position_embeddings=256, num_experts=8, num_experts_per_tok=2,
                      norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[1], router_aux_loss_coef=0.05,
                      output_router_logits=True, attention_bias=False, tie_word_embeddings=False,
                      use_sliding_window=False, sliding_window=None, hidden_act="silu", initializer_range=0.02,
                      eos_token_id=2, torch_dtype="float32"),
    # qwen2_moe: q/k/v bias, 6 experts top-2 NOT renormalised, a shared expert with a sigmoid gate, sparse every
    # second layer (decoder_sparse_step 2: layer 1 only), tied embeddings
    "qwen2_moe": dict(model_type="qwen2_moe", architectures=["Qwen2MoeForCausalLM"], vocab_size=VOCAB,
                      hidden_size=64, intermediate_size=80, moe_intermediate_size=24,
                      shared_expert_intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=256,
                      num_experts=6, num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=2,
                      mlp_only_layers=[], router_aux_loss_coef=0.02, output_router_logits=True,
                      tie_word_embeddings=True, use_sliding_window=False, sliding_window=None, hidden_act="silu",
                      initializer_range=0.02, eos_token_id=2, torch_dtype="float32"),
    # mixtral: mistral attention (GQA), 4 experts w1/w2/w3 top-2 (always renormalised), every layer sparse
    "mixtral": dict(model_type="mixtral", architectures=["MixtralForCausalLM"], vocab_size=VOCAB, hidden_size=64,
                    intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=16, rms_norm_eps=1e-5, rope_theta=1000000.0, max_position_embeddings=256,
                    num_local_experts=4, num_experts_per_tok=2, router_aux_loss_coef=0.02,
                    output_router_logits=True, router_jitter_noise=0.0, sliding_window=None,
                    tie_word_embeddings=False, hidden_act="silu", initializer_range=0.02, bos_token_id=1,
                    eos_token_id=2, torch_dtype="float32"),
}


def param_shapes(cfg):
    acfg = moe.attention_cfg(cfg)
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], ref.head_dim(cfg)
    hid = cfg["hidden_size"]
    s = moe.spec(cfg)
    inter = cfg["intermediate_size"]
    einter = cfg["intermediate_size"] if cfg["model_type"] == "mixtral" else cfg["moe_intermediate_size"]
    shapes = {"model.embed_tokens.weight": (cfg["vocab_size"], hid)}
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % i
        shapes[pre + "input_layernorm.weight"] = (hid,)
        shapes[pre + "self_attn.q_proj.weight"] = (H * D, hid)
        shapes[pre + "self_attn.k_proj.weight"] = (KV * D, hid)
        shapes[pre + "self_attn.v_proj.weight"] = (KV * D, hid)
        shapes[pre + "self_attn.o_proj.weight"] = (hid, H * D)
        if acfg["model_type"] == "qwen2":
            shapes[pre + "self_attn.q_proj.bias"] = (H * D,)
            shapes[pre + "self_attn.k_proj.bias"] = (KV * D,)
            shapes[pre + "self_attn.v_proj.bias"] = (KV * D,)
        if acfg["model_type"] == "qwen3":
            shapes[pre + "self_attn.q_norm.weight"] = (D,)
            shapes[pre + "self_attn.k_norm.weight"] = (D,)
        shapes[pre + "post_attention_layernorm.weight"] = (hid,)
        if moe.is_sparse(cfg, i):
            b = pre + s["block"] + "."
            shapes[b + "gate.weight"] = (s["experts"], hid)
            g, u, d = s["names"]
            for e in range(s["experts"]):
                shapes[b + "experts.%d.%s.weight" % (e, g)] = (einter, hid)
                shapes[b + "experts.%d.%s.weight" % (e, u)] = (einter, hid)
                shapes[b + "experts.%d.%s.weight" % (e, d)] = (hid, einter)
            if cfg["model_type"] == "qwen2_moe":
                si = cfg["shared_expert_intermediate_size"]
                shapes[b + "shared_expert.gate_proj.weight"] = (si, hid)
                shapes[b + "shared_expert.up_proj.weight"] = (si, hid)
                shapes[b + "shared_expert.down_proj.weight"] = (hid, si)
                shapes[b + "shared_expert_gate.weight"] = (1, hid)
        else:
            shapes[pre + "mlp.gate_proj.weight"] = (inter, hid)
            shapes[pre + "mlp.up_proj.weight"] = (inter, hid)
            shapes[pre + "mlp.down_proj.weight"] = (hid, inter)
    shapes["model.norm.weight"] = (hid,)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (cfg["vocab_size"], hid)
    return shapes


def random_params(cfg, gen):
    """As gen_model_golden: matrices ~ N(0, 1/sqrt(fan_in)), biases ~ N(0, 0.1), norms ~ 1 + N(0, 0.1); routers
    ~ N(0, 1) / sqrt(fan_in) * 3 so that routing is decisive (clear top-k margins)."""
    p = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        elif name == "model.embed_tokens.weight":
            t = torch.randn(shape, generator=gen) * (0.3 if cfg["tie_word_embeddings"] else 1.0)
        elif name.endswith(".gate.weight"):
            t = 3.0 * torch.randn(shape, generator=gen) / (shape[1] ** 0.5)
        else:
            t = torch.randn(shape, generator=gen) / (shape[1] ** 0.5)
        p[name] = t
    return p


def fused(cfg, p):
    """The transformers v5 layout of p: experts stacked into gate_up_proj (E, 2I, H) and down_proj (E, H, I);
    mixtral moves from block_sparse_moe to v5's mlp prefix (router included)."""
    s = moe.spec(cfg)
    out = {}
    for name, t in p.items():
        if ".experts." not in name:
            if cfg["model_type"] == "mixtral" and ".block_sparse_moe.gate." in name:
                name = name.replace(".block_sparse_moe.", ".mlp.")
            out[name] = t
    g, u, d = s["names"]
    for i in range(cfg["num_hidden_layers"]):
        if not moe.is_sparse(cfg, i):
            continue
        b = "model.layers.%d.%s.experts." % (i, s["block"])
        target = "model.layers.%d.mlp.experts." % i
        gu = torch.stack([torch.cat([p[b + "%d.%s.weight" % (e, g)], p[b + "%d.%s.weight" % (e, u)]], 0)
                          for e in range(s["experts"])])
        dn = torch.stack([p[b + "%d.%s.weight" % (e, d)] for e in range(s["experts"])])
        out[target + "gate_up_proj"] = gu.contiguous()
        out[target + "down_proj"] = dn.contiguous()
    return out


def check_fused_forward(cfg, p, pf, ids):
    """The fused layout's forward (v5 Experts.forward: gate, up = linear(x, gate_up_proj[e]).chunk(2, -1)) equals
    the per-expert one: a self-check of fused() before the Java test relies on it."""
    s = moe.spec(cfg)
    g, u, d = s["names"]
    for i in range(cfg["num_hidden_layers"]):
        if not moe.is_sparse(cfg, i):
            continue
        x = torch.randn(5, cfg["hidden_size"])
        for e in range(s["experts"]):
            gate, up = torch.nn.functional.linear(x, pf["model.layers.%d.mlp.experts.gate_up_proj" % i][e]).chunk(2, -1)
            y1 = torch.nn.functional.linear(torch.nn.functional.silu(gate) * up,
                                            pf["model.layers.%d.mlp.experts.down_proj" % i][e])
            b = "model.layers.%d.%s.experts.%d." % (i, s["block"], e)
            y2 = moe.swiglu(p, b, s["names"], x)
            assert torch.allclose(y1, y2, atol=1e-6), "fused layout mismatch"


def grad_params(cfg, p, all_experts):
    s = moe.spec(cfg)
    names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"]
    if not cfg["tie_word_embeddings"]:
        names.append("lm_head.weight")
    for i in range(cfg["num_hidden_layers"]):
        if moe.is_sparse(cfg, i):
            b = "model.layers.%d.%s." % (i, s["block"])
            names.append(b + "gate.weight")
            for e in range(s["experts"] if all_experts else 2):
                for n in s["names"]:
                    names.append(b + "experts.%d.%s.weight" % (e, n))
            if cfg["model_type"] == "qwen2_moe":
                names += [b + "shared_expert.up_proj.weight", b + "shared_expert_gate.weight"]
        else:
            names.append("model.layers.%d.mlp.down_proj.weight" % i)
    return [n for n in names if n in p]


def run_case(cfg, p, ids, pos, vis, labels, valid, attention_mask, all_experts=False):
    """Forward; LM loss; aux loss; total = LM + coef * aux; backward of the total. Experts that got no token have
    no gradient in transformers (None); we record zeros for them (what the Java side guarantees)."""
    q = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    logits, router = moe.forward(cfg, q, ids, pos, vis)
    lm = ref.causal_lm_loss(logits, labels)
    s = moe.spec(cfg)
    aux = moe.load_balancing_loss_func(router, s["experts"], s["top_k"], attention_mask)
    total = lm + cfg["router_aux_loss_coef"] * aux
    total.backward()
    grads = {}
    for n in grad_params(cfg, p, all_experts):
        g = q[n].grad
        grads[n] = torch.zeros_like(p[n]) if g is None else g.float()
    out = logits.detach().float()
    out[~valid] = 0.0
    unused = []
    for li, r in enumerate(router):
        chosen = set(torch.topk(torch.softmax(r.detach().float(), -1), s["top_k"], -1).indices.flatten().tolist())
        unused.append([e for e in range(s["experts"]) if e not in chosen])
    return out, dict(loss=float(lm), aux_loss=float(aux), loss_with_aux=float(total), unused_experts=unused), grads


def put(tensors, meta, case, ids, pos, labels, logits, info, grads, extra=None):
    tensors[case + ".input_ids"] = ids
    tensors[case + ".position_ids"] = pos
    tensors[case + ".labels"] = labels
    tensors[case + ".logits"] = logits
    for n, g in grads.items():
        tensors[case + ".grad." + n] = g
    for k, v in (extra or {}).items():
        tensors[case + "." + k] = v
    meta["cases"][case] = info


def main():
    torch.manual_seed(0)
    for mi, (name, cfg) in enumerate(CONFIGS.items()):
        gen = torch.Generator().manual_seed(2000 + mi)
        p = random_params(cfg, gen)
        for sub, weights in (("checkpoint", p), ("fused", fused(cfg, p))):
            d = os.path.join(OUT, name, sub)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2, sort_keys=True)
                f.write("\n")
            st.save(os.path.join(d, "model.safetensors"), weights, {"format": "pt"})
        check_fused_forward(cfg, p, fused(cfg, p), None)

        tensors, meta = {}, {"model": name, "cases": {}}
        B, T = 2, 16
        ids = torch.randint(3, VOCAB, (B, T), generator=gen)
        pos = torch.arange(T)[None].expand(B, T).contiguous()
        labels = ids.clone()
        labels[0, :4] = ref.IGNORE_INDEX
        labels[1, :7] = ref.IGNORE_INDEX
        vis = ref.visible_mask(moe.attention_cfg(cfg), batch=B, seq=T)
        logits, info, grads = run_case(cfg, p, ids, pos, vis, labels, torch.ones(B, T, dtype=torch.bool), None)
        put(tensors, meta, "basic", ids, pos, labels, logits, info, grads)

        lens = [16, 11, 6]
        ids = torch.randint(3, VOCAB, (3, T), generator=gen)
        am = torch.zeros(3, T, dtype=torch.long)
        for b, n in enumerate(lens):
            am[b, :n] = 1
            ids[b, n:] = 0
        pos = torch.arange(T)[None].expand(3, T).contiguous()
        labels = ids.clone()
        labels[am == 0] = ref.IGNORE_INDEX
        labels[:, :2] = ref.IGNORE_INDEX
        vis = ref.visible_mask(moe.attention_cfg(cfg), attention_mask=am)
        logits, info, grads = run_case(cfg, p, ids, pos, vis, labels, am.bool(), am)
        put(tensors, meta, "padded", ids, pos, labels, logits, info, grads, {"attention_mask": am})

        # 3 tokens x top-2 = 6 picks: with 8 (or 6) experts some get no token; mixtral (4 experts) may cover all
        ids = torch.randint(3, VOCAB, (1, 3), generator=gen)
        pos = torch.arange(3)[None]
        labels = ids.clone()
        vis = ref.visible_mask(moe.attention_cfg(cfg), batch=1, seq=3)
        logits, info, grads = run_case(cfg, p, ids, pos, vis, labels, torch.ones(1, 3, dtype=torch.bool), None,
                                       all_experts=True)
        put(tensors, meta, "sparse_hit", ids, pos, labels, logits, info, grads)

        prompts = [torch.randint(3, VOCAB, (n,), generator=gen).tolist() for n in (5, 9, 3)]
        out, margin = moe.greedy_generate(cfg, p, prompts, 10, [], 0)
        meta["generate"] = {"prompts": prompts, "max_new_tokens": 10, "pad_token_id": 0, "greedy": out,
                            "min_top2_margin": margin}
        st.save(os.path.join(OUT, name, "expected.safetensors"), tensors, {"generator": "tools/golden"})
        with open(os.path.join(OUT, name, "expected.json"), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
        print(name, {c: (round(v["loss"], 5), round(v["aux_loss"], 5), v["unused_experts"])
                     for c, v in meta["cases"].items()}, "margin %.4f" % margin)


if __name__ == "__main__":
    main()
