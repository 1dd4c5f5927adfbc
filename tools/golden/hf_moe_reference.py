"""A plain reference of transformers' sparse mixture-of-experts decoders (Qwen3MoeForCausalLM,
Qwen2MoeForCausalLM, MixtralForCausalLM, transformers 4.5x eager code), on top of hf_reference.py's attention.

Followed op for op:
  - router: logits = gate(x) (nn.Linear, model dtype); softmax(dim=1, dtype=float32); topk(k);
    renormalise when norm_topk_prob (mixtral: always); cast to the activation dtype
  - experts: expert_mask = one_hot(selected, E).permute(2, 1, 0); for each expert e that got a token:
    idx, top_x = where(expert_mask[e]); y = expert(x[top_x]) * w[top_x, idx, None]; final.index_add_(0, top_x, y)
  - qwen2_moe: final += sigmoid(shared_expert_gate(x)) * shared_expert(x)
  - sparse layers (qwen): layer i not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0
  - load_balancing_loss_func(router_logits of the sparse layers, E, k, attention_mask), added to the LM loss as
    loss + router_aux_loss_coef * aux when output_router_logits
Attention is the dense sibling's: qwen2_moe = qwen2 (q/k/v bias), qwen3_moe = qwen3 (q/k norm), mixtral = mistral.
"""
import torch
import torch.nn.functional as F

import hf_reference as ref

SIBLING = {"qwen2_moe": "qwen2", "qwen3_moe": "qwen3", "mixtral": "mistral"}


def attention_cfg(cfg):
    """The config as hf_reference's attention code reads it (the dense sibling's model_type)."""
    return dict(cfg, model_type=SIBLING[cfg["model_type"]])


def spec(cfg):
    mixtral = cfg["model_type"] == "mixtral"
    return dict(
        experts=cfg["num_local_experts"] if mixtral else cfg["num_experts"],
        top_k=cfg["num_experts_per_tok"],
        norm=True if mixtral else cfg.get("norm_topk_prob", False),
        block="block_sparse_moe" if mixtral else "mlp",
        names=("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj"))


def is_sparse(cfg, layer):
    if cfg["model_type"] == "mixtral":
        return True
    return layer not in cfg.get("mlp_only_layers", []) and (layer + 1) % cfg.get("decoder_sparse_step", 1) == 0


def swiglu(p, prefix, names, x):
    g, u, d = names
    return F.linear(F.silu(F.linear(x, p[prefix + g + ".weight"])) * F.linear(x, p[prefix + u + ".weight"]),
                    p[prefix + d + ".weight"])


def make_mlp(cfg, p, router_logits):
    """The `mlp` hook for hf_reference.forward: the sparse block on sparse layers (appending its router logits)."""
    s = spec(cfg)

    def mlp(layer, hidden_states):
        if not is_sparse(cfg, layer):
            return None
        pre = "model.layers.%d.%s." % (layer, s["block"])
        B, T, H = hidden_states.shape
        hs = hidden_states.view(-1, H)
        logits = F.linear(hs, p[pre + "gate.weight"])
        w = F.softmax(logits, dim=1, dtype=torch.float)
        w, selected = torch.topk(w, s["top_k"], dim=-1)
        if s["norm"]:
            w /= w.sum(dim=-1, keepdim=True)
        w = w.to(hs.dtype)
        final = torch.zeros((B * T, H), dtype=hs.dtype)
        expert_mask = F.one_hot(selected, num_classes=s["experts"]).permute(2, 1, 0)
        hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
        for e in hit:
            e = int(e)
            idx, top_x = torch.where(expert_mask[e])
            cur = hs[None, top_x].reshape(-1, H)
            y = swiglu(p, pre + "experts.%d." % e, s["names"], cur) * w[top_x, idx, None]
            final.index_add_(0, top_x, y.to(hs.dtype))
        if cfg["model_type"] == "qwen2_moe":
            shared = swiglu(p, pre + "shared_expert.", ("gate_proj", "up_proj", "down_proj"), hs)
            shared = torch.sigmoid(F.linear(hs, p[pre + "shared_expert_gate.weight"])) * shared
            final = final + shared
        router_logits.append(logits)
        return final.reshape(B, T, H)

    return mlp


def load_balancing_loss_func(gate_logits, num_experts, top_k, attention_mask=None):
    """transformers' load_balancing_loss_func, op for op."""
    concatenated = torch.cat([g for g in gate_logits], dim=0)
    routing_weights = F.softmax(concatenated, dim=-1)
    _, selected = torch.topk(routing_weights, top_k, dim=-1)
    expert_mask = F.one_hot(selected, num_experts)
    if attention_mask is None:
        tokens_per_expert = torch.mean(expert_mask.float(), dim=0)
        router_prob_per_expert = torch.mean(routing_weights, dim=0)
    else:
        batch_size, sequence_length = attention_mask.shape
        num_hidden_layers = concatenated.shape[0] // (batch_size * sequence_length)
        expert_attention_mask = (attention_mask[None, :, :, None, None]
                                 .expand((num_hidden_layers, batch_size, sequence_length, top_k, num_experts))
                                 .reshape(-1, top_k, num_experts))
        tokens_per_expert = torch.sum(expert_mask.float() * expert_attention_mask, dim=0) / torch.sum(
            expert_attention_mask, dim=0)
        router_per_expert_attention_mask = (attention_mask[None, :, :, None]
                                            .expand((num_hidden_layers, batch_size, sequence_length, num_experts))
                                            .reshape(-1, num_experts))
        router_prob_per_expert = torch.sum(routing_weights * router_per_expert_attention_mask, dim=0) / torch.sum(
            router_per_expert_attention_mask, dim=0)
    overall = torch.sum(tokens_per_expert * router_prob_per_expert.unsqueeze(0))
    return overall * num_experts


def forward(cfg, p, input_ids, position_ids, vis, proj=None):
    """(logits (B, T, V), router logits per sparse layer)."""
    router_logits = []
    logits = ref.forward(attention_cfg(cfg), p, input_ids, position_ids, vis, proj=proj,
                         mlp=make_mlp(cfg, p, router_logits))
    return logits, router_logits


def greedy_generate(cfg, p, prompts, max_new_tokens, stop_ids, pad_id):
    return ref.greedy_generate(attention_cfg(cfg), p, prompts, max_new_tokens, stop_ids, pad_id,
                               mlp=make_mlp(cfg, p, []))
