#!/usr/bin/python3
"""Writes the LoRA golden files under src/test/resources/golden/lora/ (committed; tests never run Python).

Run from the repository root with Debian's python3-torch 1.13 (NOT a pyenv python; PEFT is not installed there):
    /usr/bin/python3 tools/golden/gen_lora_golden.py
For each case it takes a committed tiny checkpoint of src/test/resources/golden/model/, builds LoRA adapters with
fixed A/B values and writes
    CASE/adapter/adapter_config.json + adapter_model.safetensors   in PEFT's format and key names
    CASE/expected.safetensors   input_ids, labels, logits, and the gradients of every lora_A / lora_B (PEFT keys)
    CASE/expected.json          loss, scaling
The LoRA layer is a faithful copy of PEFT's lora.Linear (tuners/lora/layer.py): base_layer(x), then for the adapter
x = x.to(lora_A.weight.dtype); result = result + lora_B(lora_A(dropout(x))) * scaling; result.to(base dtype);
scaling = lora_alpha / r (use_rslora: lora_alpha / sqrt(r)). Dropout is 0 here (deterministic). The decoder around it
is hf_reference.py (transformers' math).
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

MODELS = os.path.join("src", "test", "resources", "golden", "model")
OUT = os.path.join("src", "test", "resources", "golden", "lora")
PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

CASES = {
    # every linear layer but lm_head (LLaMA-Factory's lora_target: all), alpha / r scaling
    "llama_all": dict(model="llama_gqa", r=4, alpha=8, rslora=False, targets=PROJ),
    # q/v only with rsLoRA scaling on a model with q/k RMSNorm and head_dim != hidden / heads
    "qwen3_qv_rslora": dict(model="qwen3_qknorm", r=4, alpha=16, rslora=True, targets=["q_proj", "v_proj"]),
}


class LoraLinear(nn.Module):
    """PEFT's lora.Linear forward for one active adapter (bias 'none', no DoRA, fan_in_fan_out False)."""

    def __init__(self, weight, bias, a, b, scaling):
        super().__init__()
        self.base_layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            self.base_layer.weight.copy_(weight)
            if bias is not None:
                self.base_layer.bias.copy_(bias)
        self.base_layer.requires_grad_(False)
        self.lora_A = nn.Linear(a.shape[1], a.shape[0], bias=False)
        self.lora_B = nn.Linear(b.shape[1], b.shape[0], bias=False)
        with torch.no_grad():
            self.lora_A.weight.copy_(a)
            self.lora_B.weight.copy_(b)
        self.lora_dropout = nn.Identity()  # lora_dropout == 0
        self.scaling = scaling

    def forward(self, x):
        result = self.base_layer(x)
        torch_result_dtype = result.dtype
        x = x.to(self.lora_A.weight.dtype)
        result = result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling
        return result.to(torch_result_dtype)


def forward(cfg, p, mods, input_ids, position_ids, vis):
    """hf_reference.forward with every projection going through mods[path] when it has a LoRA layer."""
    dtype = p["model.embed_tokens.weight"].dtype
    B, T = input_ids.shape
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    D = ref.head_dim(cfg)
    eps = cfg["rms_norm_eps"]
    qk_norm = cfg["model_type"] == "qwen3"
    mask = ref.additive(vis, dtype)
    cos, sin = ref.rope_cos_sin(cfg, position_ids, dtype)
    cos_u, sin_u = cos.unsqueeze(1), sin.unsqueeze(1)

    def proj(path, x):
        if path in mods:
            return mods[path](x)
        return F.linear(x, p[path + ".weight"], p.get(path + ".bias"))

    h = F.embedding(input_ids, p["model.embed_tokens.weight"], padding_idx=cfg.get("pad_token_id"))
    for li in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % li
        residual = h
        x = ref.rms_norm(h, p[pre + "input_layernorm.weight"], eps)
        q = proj(pre + "self_attn.q_proj", x).view(B, T, H, D)
        k = proj(pre + "self_attn.k_proj", x).view(B, T, KV, D)
        v = proj(pre + "self_attn.v_proj", x).view(B, T, KV, D)
        if qk_norm:
            q = ref.rms_norm(q, p[pre + "self_attn.q_norm.weight"], eps)
            k = ref.rms_norm(k, p[pre + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = (q * cos_u) + (ref.rotate_half(q) * sin_u)
        k = (k * cos_u) + (ref.rotate_half(k) * sin_u)
        k = ref.repeat_kv(k, H // KV)
        v = ref.repeat_kv(v, H // KV)
        w = torch.matmul(q, k.transpose(2, 3)) * (D ** -0.5)
        w = F.softmax(w + mask, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(w, v).transpose(1, 2).contiguous().reshape(B, T, H * D)
        h = residual + proj(pre + "self_attn.o_proj", o)
        residual = h
        x = ref.rms_norm(h, p[pre + "post_attention_layernorm.weight"], eps)
        h = residual + proj(pre + "mlp.down_proj", F.silu(proj(pre + "mlp.gate_proj", x)) * proj(pre + "mlp.up_proj", x))
    h = ref.rms_norm(h, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else p["lm_head.weight"]
    return F.linear(h, head)


def peft_config(case, model_dir):
    """adapter_config.json as PEFT's LoraConfig.save_pretrained writes it (json.dumps indent=2, sort_keys)."""
    return {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": model_dir, "bias": "none",
        "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {}, "lora_alpha": case["alpha"],
        "lora_dropout": 0.0, "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None,
        "peft_type": "LORA", "r": case["r"], "rank_pattern": {}, "revision": None,
        "target_modules": sorted(case["targets"]), "task_type": "CAUSAL_LM", "use_dora": False,
        "use_rslora": case["rslora"],
    }


def main():
    for ci, (name, case) in enumerate(CASES.items()):
        model_dir = os.path.join(MODELS, case["model"], "checkpoint")
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        p, _ = st.load(os.path.join(model_dir, "model.safetensors"))
        p = {k: v.float() for k, v in p.items()}
        gen = torch.Generator().manual_seed(2000 + ci)
        r = case["r"]
        scaling = case["alpha"] / math.sqrt(r) if case["rslora"] else case["alpha"] / r
        mods, adapter = {}, {}
        for li in range(cfg["num_hidden_layers"]):
            for t in case["targets"]:
                path = "model.layers.%d.%s.%s" % (li, "mlp" if t in ("gate_proj", "up_proj", "down_proj")
                                                  else "self_attn", t)
                w = p[path + ".weight"]
                bound = 1 / math.sqrt(w.shape[1])  # kaiming_uniform_(a=sqrt(5))
                a = (torch.rand(r, w.shape[1], generator=gen) * 2 - 1) * bound
                b = torch.randn(w.shape[0], r, generator=gen) * 0.05  # nonzero: trained-looking adapters
                mods[path] = LoraLinear(w, p.get(path + ".bias"), a, b, scaling)
                adapter["base_model.model." + path + ".lora_A.weight"] = a
                adapter["base_model.model." + path + ".lora_B.weight"] = b

        B, T = 2, 12
        ids = torch.randint(3, cfg["vocab_size"], (B, T), generator=gen)
        labels = ids.clone()
        labels[0, :3] = ref.IGNORE_INDEX
        labels[1, :5] = ref.IGNORE_INDEX
        pos = torch.arange(T)[None].expand(B, T).contiguous()
        vis = ref.visible_mask(cfg, batch=B, seq=T)
        logits = forward(cfg, p, mods, ids, pos, vis)
        loss = ref.causal_lm_loss(logits, labels)
        loss.backward()

        out = os.path.join(OUT, name)
        os.makedirs(os.path.join(out, "adapter"), exist_ok=True)
        st.save(os.path.join(out, "adapter", "adapter_model.safetensors"), adapter, {"format": "pt"})
        with open(os.path.join(out, "adapter", "adapter_config.json"), "w") as f:
            f.write(json.dumps(peft_config(case, model_dir), indent=2, sort_keys=True))
        tensors = {"input_ids": ids, "labels": labels, "logits": logits.detach()}
        for path, m in mods.items():
            tensors["grad." + path + ".lora_A.weight"] = m.lora_A.weight.grad
            tensors["grad." + path + ".lora_B.weight"] = m.lora_B.weight.grad
            assert m.base_layer.weight.grad is None
        st.save(os.path.join(out, "expected.safetensors"), tensors)
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump({"case": name, "model": case["model"], "loss": float(loss), "scaling": scaling}, f, indent=2,
                      sort_keys=True)
            f.write("\n")
        print(name, "loss", float(loss), "scaling", scaling, "lora tensors", len(adapter))


if __name__ == "__main__":
    main()
