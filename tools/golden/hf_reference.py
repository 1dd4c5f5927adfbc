"""A plain reference of the HF decoder-only Llama family, written against transformers' modeling code.

It follows the math of LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM (transformers
4.4x-4.5x, eager attention) step by step, including where HF changes dtype:
  - RMSNorm: upcast to fp32, x * rsqrt(mean(x^2) + eps), cast back, then weight * x (in the weight's dtype)
  - RoPE: inv_freq = 1 / theta^(arange(0, d, 2) / d) in fp32 (+ `linear` or `llama3` scaling), cos/sin computed in
    fp32 from (inv_freq x position_ids), then cast to the activation dtype; q*cos + rotate_half(q)*sin
  - attention: repeat_kv for GQA, (q k^T) * d^-0.5 + additive mask (dtype min), softmax in fp32 then cast, @ v
  - MLP: down(silu(gate(x)) * up(x)); qwen2: q/k/v bias; qwen3: RMSNorm over head_dim on q and k before RoPE
  - mistral: sliding window (key j visible from query i iff i - j < sliding_window)
  - loss: logits.float(), labels shifted left by one, ignore_index -100, mean over the counted tokens
Runs on Debian's python3-torch 1.13 (no SDPA there: the eager attention path is the reference).
"""
import math

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def inv_freq(cfg):
    """transformers' ROPE_INIT_FUNCTIONS for default, linear and llama3."""
    dim = head_dim(cfg)
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / rs["factor"]
    if kind == "llama3":
        factor = rs["factor"]
        low_freq_factor = rs["low_freq_factor"]
        high_freq_factor = rs["high_freq_factor"]
        old_context_len = rs["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv
        inv_llama = torch.where(wavelen > low_freq_wavelen, inv / factor, inv)
        smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
        is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium, smoothed, inv_llama)
    raise ValueError("rope type " + str(kind))


def rope_cos_sin(cfg, position_ids, dtype):
    """LlamaRotaryEmbedding.forward: (B, T) positions -> cos, sin (B, T, D) in `dtype`."""
    inv = inv_freq(cfg)
    inv_expanded = inv[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    pos_expanded = position_ids[:, None, :].float()
    freqs = (inv_expanded.float() @ pos_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rms_norm(x, weight, eps):
    input_dtype = x.dtype
    h = x.to(torch.float32)
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + eps)
    return weight * h.to(input_dtype)


def repeat_kv(x, n_rep):
    b, kv, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, t, d).reshape(b, kv * n_rep, t, d)


def visible_mask(cfg, attention_mask=None, segment_ids=None, batch=None, seq=None):
    """(B, T, T) bool: query i may see key j. Causal, plus padding (0/1 mask) or block-diagonal (segment ids 1,2,..;
    0 = padding, LLaMA-Factory neat_packing), plus mistral's sliding window."""
    if segment_ids is not None:
        batch, seq = segment_ids.shape
    elif attention_mask is not None:
        batch, seq = attention_mask.shape
    i = torch.arange(seq)[:, None]
    j = torch.arange(seq)[None, :]
    vis = (j <= i)[None].expand(batch, seq, seq).clone()
    window = cfg.get("sliding_window") if cfg["model_type"] == "mistral" else None
    if window is not None:
        vis &= (i - j < window)[None]
    if segment_ids is not None:
        same = segment_ids[:, :, None] == segment_ids[:, None, :]
        vis &= same & (segment_ids[:, None, :] != 0)
    elif attention_mask is not None:
        vis &= attention_mask[:, None, :].bool()
    return vis


def additive(vis, dtype):
    """HF's 4D float mask: 0 where visible, finfo(dtype).min where not."""
    m = torch.zeros(vis.shape, dtype=dtype)
    m.masked_fill_(~vis, torch.finfo(dtype).min)
    return m[:, None, :, :]


def linear(x, w, b=None):
    return F.linear(x, w, b)


def forward(cfg, p, input_ids, position_ids, vis, proj=None, mlp=None):
    """Returns logits (B, T, V) in the weights' dtype (as HF's lm_head output).

    mlp(layer, x): the MLP output of decoder layer `layer` for its normed input x, or None for the dense SwiGLU MLP
    (hf_moe_reference.py passes the sparse mixture-of-experts block here).

    proj(module, x): computes the linear layer at HF module path `module` (e.g. "model.layers.0.self_attn.q_proj")
    on x; default F.linear with p[module + ".weight"] and p.get(module + ".bias"). The benchmark reference passes a
    PEFT-style LoRA linear here."""
    if proj is None:
        def proj(module, x):
            return linear(x, p[module + ".weight"], p.get(module + ".bias"))
    dtype = p["model.embed_tokens.weight"].dtype
    B, T = input_ids.shape
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    D = head_dim(cfg)
    eps = cfg["rms_norm_eps"]
    qk_norm = cfg["model_type"] == "qwen3"
    mask = additive(vis, dtype)
    cos, sin = rope_cos_sin(cfg, position_ids, dtype)
    cos_u, sin_u = cos.unsqueeze(1), sin.unsqueeze(1)
    # nn.Embedding(vocab, hidden, padding_idx=pad_token_id): the padding row gets no gradient
    pad = cfg.get("pad_token_id")
    h = F.embedding(input_ids, p["model.embed_tokens.weight"], padding_idx=pad)
    for li in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % li
        residual = h
        x = rms_norm(h, p[pre + "input_layernorm.weight"], eps)
        q = proj(pre + "self_attn.q_proj", x).view(B, T, H, D)
        k = proj(pre + "self_attn.k_proj", x).view(B, T, KV, D)
        v = proj(pre + "self_attn.v_proj", x).view(B, T, KV, D)
        if qk_norm:
            q = rms_norm(q, p[pre + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, p[pre + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = (q * cos_u) + (rotate_half(q) * sin_u)
        k = (k * cos_u) + (rotate_half(k) * sin_u)
        k = repeat_kv(k, H // KV)
        v = repeat_kv(v, H // KV)
        w = torch.matmul(q, k.transpose(2, 3)) * (D ** -0.5)
        w = w + mask
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(w, v).transpose(1, 2).contiguous().reshape(B, T, H * D)
        h = residual + proj(pre + "self_attn.o_proj", o)
        residual = h
        x = rms_norm(h, p[pre + "post_attention_layernorm.weight"], eps)
        sparse = mlp(li, x) if mlp is not None else None
        if sparse is not None:
            h = residual + sparse
            continue
        gate = proj(pre + "mlp.gate_proj", x)
        up = proj(pre + "mlp.up_proj", x)
        h = residual + proj(pre + "mlp.down_proj", F.silu(gate) * up)
    h = rms_norm(h, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else p["lm_head.weight"]
    return linear(h, head)


def causal_lm_loss(logits, labels):
    """transformers' ForCausalLMLoss (mean reduction)."""
    logits = logits.float()
    labels = F.pad(labels, (0, 1), value=IGNORE_INDEX)
    shift = labels[..., 1:].contiguous()
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), shift.view(-1), ignore_index=IGNORE_INDEX,
                           reduction="mean")


def greedy_generate(cfg, p, prompts, max_new_tokens, stop_ids, pad_id, mlp=None):
    """HF generate(do_sample=False) on left-padded prompts, recomputing the whole prefix each step (no cache):
    position_ids = cumsum(mask) - 1 (1 on padding), finished rows emit pad. Returns (ids per row, min top-1/top-2
    logit margin over all steps of unfinished rows)."""
    B = len(prompts)
    T = max(len(r) for r in prompts)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for b, r in enumerate(prompts):
        ids[b, T - len(r):] = torch.tensor(r)
        mask[b, T - len(r):] = 1
    unfinished = torch.ones(B, dtype=torch.long)
    out = [[] for _ in range(B)]
    margin = float("inf")
    for _ in range(max_new_tokens):
        pos = mask.cumsum(-1) - 1
        pos.masked_fill_(mask == 0, 1)
        vis = visible_mask(cfg, attention_mask=mask)
        with torch.no_grad():
            logits = forward(cfg, p, ids, pos, vis, mlp=mlp)[:, -1, :].float()
        top2 = logits.topk(2, dim=-1).values
        for b in range(B):
            if unfinished[b]:
                margin = min(margin, float(top2[b, 0] - top2[b, 1]))
        nxt = logits.argmax(-1)
        nxt = nxt * unfinished + pad_id * (1 - unfinished)
        for b in range(B):
            if unfinished[b]:
                out[b].append(int(nxt[b]))
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones((B, 1), dtype=torch.long)], dim=1)
        for b in range(B):
            if int(nxt[b]) in stop_ids:
                unfinished[b] = 0
        if int(unfinished.sum()) == 0:
            break
    return out, margin
