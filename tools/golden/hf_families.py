"""A plain reference of the decoder families beyond Llama/Qwen, written against transformers' modeling code
(modeling_gemma2.py, modeling_gemma3.py (text), modeling_phi3.py, modeling_glm4.py, modeling_olmo2.py,
modeling_granite.py and modeling_rope_utils.py of transformers 4.5x, eager attention), step by step and with HF's
dtype changes. Each family's differences are spelled out where they happen (this is a reference, not a design):
  gemma2       embeddings * tensor(sqrt(H), dtype); RMSNorm in fp32 as x * (1 + w); norms before and after
               attention and MLP; gelu(tanh) MLP; scores * query_pre_attn_scalar^-0.5, soft-capped
               (s / cap -> tanh -> * cap); even layers slide (i - j < sliding_window); logits soft-capped
  gemma3_text  gemma2 + q/k norm per head (Gemma norm) before RoPE; sliding layers use rope_local_base_freq
               (default rope), others rope_theta (+ rope_scaling); layer i slides iff (i + 1) % pattern != 0
  phi3         fused qkv_proj (q | k | v) and gate_up_proj (gate | up, up * act(gate)); partial rotary on the first
               int(head_dim * partial_rotary_factor) dims; longrope (short/long factors by max position, cos/sin
               times the attention factor)
  glm4         gate_up_proj; norms after attention (post_self_attn_layernorm) and MLP (post_mlp_layernorm) too;
               q/k/v bias; partial rotary with interleaved pairs (rotate_half_llm)
  olmo2        no pre-norms: post_attention_layernorm / post_feedforward_layernorm on the block outputs; q/k RMSNorm
               over the whole projection; RMSNorm multiplies the weight in fp32 before casting
  baichuan     (remote code of Baichuan-7B / Baichuan2-7B) fused W_pack split as q | k | v; Baichuan2 (vocab
               125696) normalises the LM head rows (NormHead)
  granite      embedding_multiplier, attention_multiplier as the score scale, residual_multiplier on block outputs,
               logits / logits_scaling
Runs on Debian's python3-torch 1.13.
"""
import math

import torch
import torch.nn.functional as F

import hf_reference as llama

IGNORE_INDEX = llama.IGNORE_INDEX
causal_lm_loss = llama.causal_lm_loss

GEMMA = ("gemma2", "gemma3_text")


def head_dim(cfg):
    if cfg["model_type"] in GEMMA:
        return cfg.get("head_dim") or 256
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def rotary_dim(cfg):
    default = {"phi3": 1.0, "glm4": 0.5}.get(cfg["model_type"], 1.0)
    return int(head_dim(cfg) * cfg.get("partial_rotary_factor", default))


def sliding_layers(cfg):
    n = cfg["num_hidden_layers"]
    mt = cfg["model_type"]
    if mt == "gemma2":
        return [bool((i + 1) % 2) for i in range(n)]
    if mt == "gemma3_text":
        pattern = cfg.get("sliding_window_pattern", 6)
        return [bool((i + 1) % pattern) for i in range(n)]
    if mt == "phi3":
        return [cfg.get("sliding_window") is not None] * n
    if mt in ("qwen2", "qwen3") and cfg.get("use_sliding_window"):  # Qwen2Config.layer_types
        return [i >= cfg.get("max_window_layers", n) for i in range(n)]
    return [False] * n


# ----------------------------------------------------------------- rope (modeling_rope_utils)

# ----------------------------------------------------------------- baichuan 13B (remote modeling_baichuan.py)

def baichuan2(cfg):
    """Baichuan2's code (NormHead; z_loss_weight is a key of its configuration class only)."""
    return cfg["model_type"] == "baichuan" and (cfg["vocab_size"] == 125696 or "z_loss_weight" in cfg)


def baichuan_alibi(cfg):
    """Baichuan-13B / Baichuan2-13B: BaichuanForCausalLM with hidden_size != 4096 (vLLM's rule)."""
    return cfg["model_type"] == "baichuan" and cfg.get("architectures", ["BaichuanForCausalLM"])[0] == \
        "BaichuanForCausalLM" and cfg["hidden_size"] != 4096


def _get_interleave(n):
    def _get_interleave_power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio ** i for i in range(n)]

    if math.log2(n).is_integer():
        return _get_interleave_power_of_2(n)
    closest_power_of_2 = 2 ** math.floor(math.log2(n))
    return _get_interleave_power_of_2(closest_power_of_2) + \
        _get_interleave(2 * closest_power_of_2)[0::2][:n - closest_power_of_2]


def alibi_attention_mask(cfg, vis, dtype):
    """BaichuanModel.forward in training mode: get_alibi_mask (Baichuan2: slopes * (j - i); Baichuan-13B:
    slopes * j) with the future masked by -inf, plus the 2-D attention mask expanded to finfo.min where invisible.
    vis (B, T, T) bool -> (B, nH, T, T) in dtype."""
    n_head = cfg["num_attention_heads"]
    L = vis.shape[-1]
    slopes = torch.Tensor(_get_interleave(n_head))
    if baichuan2(cfg):
        position_point = torch.arange(L) - L + 1
        position_point = position_point.unsqueeze(0).unsqueeze(0).expand(n_head, L, -1)
        diag = torch.diag(position_point[0])
        position_point = position_point - diag.unsqueeze(0).unsqueeze(0).transpose(-1, -2)
        alibi = slopes.unsqueeze(1).unsqueeze(1) * position_point
    else:
        alibi = slopes.unsqueeze(1).unsqueeze(1) * torch.arange(L).unsqueeze(0).unsqueeze(0).expand(n_head, -1, -1)
        alibi = alibi.view(n_head, 1, L)
    future = torch.triu(torch.zeros([L, L]).float().fill_(float("-inf")), 1)
    alibi_mask = (future.unsqueeze(0) + alibi).to(dtype)  # (nH, L, L)
    expanded = vis.unsqueeze(1).to(alibi_mask.dtype)  # (B, 1, L, L)
    inverted = 1.0 - expanded
    inverted = inverted.masked_fill(inverted.to(torch.bool), torch.finfo(alibi_mask.dtype).min)
    return inverted + alibi_mask.unsqueeze(0)


def rope_type(cfg):
    rs = cfg.get("rope_scaling")
    return rs.get("rope_type", rs.get("type")) if rs else None


def yarn_parameters(cfg):
    """_compute_yarn_parameters (transformers 4.56+, after the factor fix of PR 40320): the factor as given;
    original_max_position_embeddings from rope_scaling or max_position_embeddings; attention factor from
    attention_factor, else mscale / mscale_all_dim, else 0.1 ln(factor) + 1; beta_fast/beta_slow (or 32/1)."""
    rs = cfg["rope_scaling"]
    factor = rs["factor"]
    original = rs.get("original_max_position_embeddings") or cfg["max_position_embeddings"]

    def get_mscale(scale, mscale=1):
        if scale <= 1:
            return 1.0
        return 0.1 * mscale * math.log(scale) + 1.0

    af = rs.get("attention_factor")
    if af is None:
        if rs.get("mscale") and rs.get("mscale_all_dim"):
            af = float(get_mscale(factor, rs["mscale"]) / get_mscale(factor, rs["mscale_all_dim"]))
        else:
            af = get_mscale(factor)
    return factor, original, af, rs.get("beta_fast") or 32, rs.get("beta_slow") or 1, rs.get("truncate", True)


def yarn_inv_freq(cfg, base):
    dim = rotary_dim(cfg)
    factor, original, _, beta_fast, beta_slow, truncate = yarn_parameters(cfg)

    def find_correction_dim(num_rotations):
        return (dim * math.log(original / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    low = find_correction_dim(beta_fast)
    high = find_correction_dim(beta_slow)
    if truncate:
        low = math.floor(low)
        high = math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos_freqs = base ** (torch.arange(0, dim, 2).float() / dim)
    extrapolation = 1.0 / pos_freqs
    interpolation = 1.0 / (factor * pos_freqs)
    extrapolation_factor = 1 - ramp.float()
    return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor


def dynamic_inv_freq(cfg, base, seq_len):
    """_compute_dynamic_ntk_parameters: seq_len None (init) in Python floats; a tensor seq_len (the forward's
    torch.max(position_ids) + 1) in fp32 tensor arithmetic, as transformers does it."""
    dim = rotary_dim(cfg)
    factor = cfg["rope_scaling"]["factor"]
    mpe = cfg["max_position_embeddings"]
    if seq_len is None:
        seq_len = mpe
    else:
        seq_len = torch.maximum(seq_len, torch.tensor(mpe, dtype=seq_len.dtype))
    base = base * ((factor * seq_len / mpe) - (factor - 1)) ** (dim / (dim - 2))
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


class DynamicRope:
    """The state of a dynamic-NTK rotary module (dynamic_rope_update's dynamic_frequency_update): the table grows
    when a forward's max position + 1 exceeds the cached length and resets once it is below the original again."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.base = cfg.get("rope_theta", 10000.0)
        self.original_max = cfg["max_position_embeddings"]
        self.cached = self.original_max
        self.original_inv = dynamic_inv_freq(cfg, self.base, None)
        self.inv = self.original_inv

    def update(self, position_ids):
        seq_len = torch.max(position_ids) + 1
        if seq_len > self.cached:
            self.inv = dynamic_inv_freq(self.cfg, self.base, seq_len)
            self.cached = int(seq_len)
        if seq_len < self.original_max and self.cached > self.original_max:
            self.inv = self.original_inv
            self.cached = self.original_max
        return self.inv


def inv_freq(cfg, base=None, scaling=True, long=False):
    """(dim/2) fp32: default, linear, yarn, or longrope's short/long table (dynamic: DynamicRope)."""
    dim = rotary_dim(cfg)
    base = cfg.get("rope_theta", 10000.0) if base is None else base
    kind = rope_type(cfg) if scaling else None
    shape = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    rs = cfg.get("rope_scaling")
    if kind == "longrope":
        ext = torch.tensor(rs["long_factor"] if long else rs["short_factor"], dtype=torch.float32)
        return 1.0 / (ext * base ** shape)
    if kind == "linear":
        return (1.0 / (base ** shape)) / rs["factor"]
    if kind == "yarn":
        return yarn_inv_freq(cfg, base)
    if kind not in (None, "default"):
        raise ValueError("reference: rope type " + str(rs))
    return 1.0 / (base ** shape)


def longrope_attention_factor(cfg):
    rs = cfg.get("rope_scaling")
    if rope_type(cfg) == "yarn":
        return yarn_parameters(cfg)[2], None
    if not rs or rope_type(cfg) != "longrope":
        return 1.0, None
    if "original_max_position_embeddings" in cfg:
        original = cfg["original_max_position_embeddings"]
        factor = cfg["max_position_embeddings"] / original
    else:
        original = cfg["max_position_embeddings"]
        factor = rs.get("factor", 1.0)
    af = rs.get("attention_factor")
    if af is None:
        af = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
    return af, original


def cos_sin(cfg, position_ids, dtype, base=None, scaling=True, use_long=None, inv_cols=None):
    """(B, T) -> cos, sin (B, T, dim) in dtype. use_long: None = choose by max(position_ids) + 1 > original
    (dynamic_rope_update's longrope rule), or a (T,) bool tensor per column (cached generation). inv_cols: a
    (T, dim/2) table per column (dynamic: the table each column was computed with)."""
    af, original = longrope_attention_factor(cfg) if scaling else (1.0, None)

    def table(inv):
        inv_e = inv[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        freqs = (inv_e @ position_ids[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos() * af, emb.sin() * af

    if inv_cols is not None and scaling:
        freqs = position_ids[:, :, None].float() * inv_cols[None, :, :]  # one product per element, as the matmul
        emb = torch.cat((freqs, freqs), dim=-1)
        c, s = emb.cos() * af, emb.sin() * af
    elif original is None:
        c, s = table(inv_freq(cfg, base, scaling))
    else:
        cs_short = table(inv_freq(cfg, base, scaling, long=False))
        cs_long = table(inv_freq(cfg, base, scaling, long=True))
        if use_long is None:
            use_long = torch.full((position_ids.shape[1],), int(position_ids.max()) + 1 > original)
        sel = use_long[None, :, None]
        c = torch.where(sel, cs_long[0], cs_short[0])
        s = torch.where(sel, cs_long[1], cs_short[1])
    return c.to(dtype), s.to(dtype)


def apply_rope(cfg, x, cos, sin):
    """x (B, h, T, D); cos/sin (B, 1, T, dim)."""
    if cfg["model_type"] == "glm4":  # modeling_glm4.apply_rotary_pos_emb
        cos = cos[..., : cos.shape[-1] // 2].repeat_interleave(2, dim=-1)
        sin = sin[..., : sin.shape[-1] // 2].repeat_interleave(2, dim=-1)
        rd = cos.shape[-1]
        x_rot, x_pass = x[..., :rd], x[..., rd:]
        x1 = x_rot[..., 0::2]
        x2 = x_rot[..., 1::2]
        rot = torch.stack((-x2, x1), dim=-1).flatten(-2)
        return torch.cat([(x_rot * cos) + (rot * sin), x_pass], dim=-1)
    rd = cos.shape[-1]
    x_rot, x_pass = x[..., :rd], x[..., rd:]
    return torch.cat([(x_rot * cos) + (llama.rotate_half(x_rot) * sin), x_pass], dim=-1)


# ----------------------------------------------------------------- norms

def norm(cfg, x, w):
    mt = cfg["model_type"]
    eps = cfg.get("rms_norm_eps", 1e-6)
    if mt in GEMMA:  # Gemma2RMSNorm / Gemma3RMSNorm
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        return (out * (1.0 + w.float())).type_as(x)
    if mt == "olmo2":  # Olmo2RMSNorm: weight applied before the cast
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
        return (w * h).to(x.dtype)
    return llama.rms_norm(x, w, eps)


# ----------------------------------------------------------------- model

def norm_names(cfg):
    """(pre-attention, post-attention, pre-MLP, post-MLP) norm names, None where absent."""
    return {
        "gemma2": ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                   "post_feedforward_layernorm"),
        "gemma3_text": ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                        "post_feedforward_layernorm"),
        "glm4": ("input_layernorm", "post_self_attn_layernorm", "post_attention_layernorm", "post_mlp_layernorm"),
        "olmo2": (None, "post_attention_layernorm", None, "post_feedforward_layernorm"),
    }.get(cfg["model_type"], ("input_layernorm", None, "post_attention_layernorm", None))


def forward(cfg, p, input_ids, position_ids, vis, use_long=None, rope_state=None, inv_cols=None):
    """Logits (B, T, V) in the weights' dtype. vis (B, T, T) bool: causal + padding/segments (no window); sliding
    layers add i - j < sliding_window."""
    mt = cfg["model_type"]
    dtype = p["model.embed_tokens.weight"].dtype
    B, T = input_ids.shape
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    D = head_dim(cfg)
    h = F.embedding(input_ids, p["model.embed_tokens.weight"], padding_idx=cfg.get("pad_token_id"))
    if mt in GEMMA:
        h = h * torch.tensor(cfg["hidden_size"] ** 0.5, dtype=h.dtype)
    if mt == "granite":
        h = h * cfg.get("embedding_multiplier", 1.0)
    if inv_cols is None and rope_type(cfg) == "dynamic":
        inv = (rope_state or DynamicRope(cfg)).update(position_ids)
        inv_cols = inv[None, :].expand(position_ids.shape[1], -1)
    cos, sin = cos_sin(cfg, position_ids, dtype, use_long=use_long, inv_cols=inv_cols)
    local = cos_sin(cfg, position_ids, dtype, base=cfg.get("rope_local_base_freq", 10000.0), scaling=False) \
        if mt == "gemma3_text" else (cos, sin)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    window = cfg.get("sliding_window")
    slide = sliding_layers(cfg)
    if mt in GEMMA:
        scaling = cfg.get("query_pre_attn_scalar", 256) ** -0.5
    elif mt == "granite":
        scaling = cfg.get("attention_multiplier", 1.0)
    else:
        scaling = D ** -0.5
    softcap = cfg.get("attn_logit_softcapping", 50.0 if mt == "gemma2" else None)
    pre_a, post_a, pre_m, post_m = norm_names(cfg)
    resid = cfg.get("residual_multiplier", 1.0) if mt == "granite" else None
    alibi = baichuan_alibi(cfg)
    for li in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % li
        a = pre + "self_attn."
        lvis = vis & (i - j < window)[None] if slide[li] else vis
        mask = llama.additive(lvis, dtype)  # (B, 1, T, T)
        c, s = (local if slide[li] else (cos, sin))
        c, s = c.unsqueeze(1), s.unsqueeze(1)
        if alibi:
            mask = alibi_attention_mask(cfg, lvis, dtype)  # (B, nH, T, T)
        residual = h
        x = norm(cfg, h, p[pre + pre_a + ".weight"]) if pre_a else h
        if mt == "baichuan":  # remote modeling_baichuan.py: proj.unflatten(-1, (3, hidden)) -> q, k, v
            proj = F.linear(x, p[a + "W_pack.weight"]).unflatten(-1, (3, cfg["hidden_size"]))
            proj = proj.unsqueeze(0).transpose(0, -2).squeeze(-2)
            q, k, v = proj[0], proj[1], proj[2]
        elif mt == "phi3":
            qkv = F.linear(x, p[a + "qkv_proj.weight"])
            qp = H * D
            q, k, v = qkv[..., :qp], qkv[..., qp:qp + KV * D], qkv[..., qp + KV * D:]
        else:
            q = F.linear(x, p[a + "q_proj.weight"], p.get(a + "q_proj.bias"))
            k = F.linear(x, p[a + "k_proj.weight"], p.get(a + "k_proj.bias"))
            v = F.linear(x, p[a + "v_proj.weight"], p.get(a + "v_proj.bias"))
        if mt == "olmo2":
            q = norm(cfg, q, p[a + "q_norm.weight"])
            k = norm(cfg, k, p[a + "k_norm.weight"])
        q = q.view(B, T, H, D).transpose(1, 2)
        k = k.view(B, T, KV, D).transpose(1, 2)
        v = v.view(B, T, KV, D).transpose(1, 2)
        if mt == "gemma3_text":
            q = norm(cfg, q, p[a + "q_norm.weight"])
            k = norm(cfg, k, p[a + "k_norm.weight"])
        if not alibi:
            q = apply_rope(cfg, q, c, s)
            k = apply_rope(cfg, k, c, s)
        k = llama.repeat_kv(k, H // KV)
        v = llama.repeat_kv(v, H // KV)
        if alibi:  # remote BaichuanAttention (eager): / sqrt(head_dim), + mask, clamp at finfo.min, softmax in dtype
            w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(D)
            w = w + mask
            w = torch.max(w, torch.tensor(torch.finfo(w.dtype).min))
            w = F.softmax(w, dim=-1)
            o = torch.matmul(w, v).transpose(1, 2).contiguous().reshape(B, T, H * D)
            o = F.linear(o, p[a + "o_proj.weight"], p.get(a + "o_proj.bias"))
            h = residual + o
            residual = h
            x = norm(cfg, h, p[pre + pre_m + ".weight"])
            m = pre + "mlp."
            y = F.silu(F.linear(x, p[m + "gate_proj.weight"])) * F.linear(x, p[m + "up_proj.weight"])
            h = residual + F.linear(y, p[m + "down_proj.weight"])
            continue
        w = torch.matmul(q, k.transpose(2, 3)) * scaling
        if softcap is not None:
            w = w / softcap
            w = torch.tanh(w)
            w = w * softcap
        w = w + mask
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(w, v).transpose(1, 2).contiguous().reshape(B, T, H * D)
        o = F.linear(o, p[a + "o_proj.weight"], p.get(a + "o_proj.bias"))
        if post_a:
            o = norm(cfg, o, p[pre + post_a + ".weight"])
        h = residual + (o * resid if resid is not None else o)
        residual = h
        x = norm(cfg, h, p[pre + pre_m + ".weight"]) if pre_m else h
        m = pre + "mlp."
        if mt in ("phi3", "glm4"):
            up = F.linear(x, p[m + "gate_up_proj.weight"])
            gate, up = up.chunk(2, dim=-1)
            y = up * F.silu(gate)
        else:
            gate = F.linear(x, p[m + "gate_proj.weight"], p.get(m + "gate_proj.bias"))
            up = F.linear(x, p[m + "up_proj.weight"], p.get(m + "up_proj.bias"))
            act = F.gelu(gate, approximate="tanh") if mt in GEMMA else F.silu(gate)
            y = act * up
        y = F.linear(y, p[m + "down_proj.weight"], p.get(m + "down_proj.bias"))
        if post_m:
            y = norm(cfg, y, p[pre + post_m + ".weight"])
        h = residual + (y * resid if resid is not None else y)
    h = norm(cfg, h, p["model.norm.weight"])
    tied = cfg.get("tie_word_embeddings", mt in GEMMA)
    head = p["model.embed_tokens.weight"] if tied else p["lm_head.weight"]
    if baichuan2(cfg):  # Baichuan2 NormHead (training mode)
        head = F.normalize(head)
    logits = F.linear(h, head)
    if mt == "granite":
        logits = logits / cfg.get("logits_scaling", 1.0)
    cap = cfg.get("final_logit_softcapping", 30.0 if mt == "gemma2" else None)
    if cap is not None:
        logits = logits / cap
        logits = torch.tanh(logits)
        logits = logits * cap
    return logits


def visible_mask(attention_mask=None, segment_ids=None, batch=None, seq=None):
    """(B, T, T) causal + padding or segments; windows are per layer (forward)."""
    return llama.visible_mask({"model_type": "llama"}, attention_mask, segment_ids, batch, seq)


def greedy_generate(cfg, p, prompts, max_new_tokens, stop_ids, pad_id, rope_state=None):
    """hf_reference.greedy_generate for these families. For longrope it reproduces HF's cached generation: the
    prefill columns use the table chosen by the prompt's largest position, each later column the table chosen when
    it was decoded (max position of that step + 1 > original). Dynamic NTK likewise: the prefill columns keep the
    table of the prefill step, each decoded column the table of its step (rope_state: the module's state)."""
    _, original = longrope_attention_factor(cfg)
    dynamic = rope_type(cfg) == "dynamic"
    if dynamic and rope_state is None:
        rope_state = DynamicRope(cfg)
    inv_cols = []
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
    columns_long = []
    for step in range(max_new_tokens):
        pos = mask.cumsum(-1) - 1
        pos.masked_fill_(mask == 0, 1)
        if original is not None:
            if step == 0:
                columns_long = [int(pos.max()) + 1 > original] * T
            else:
                columns_long.append(int(pos[:, -1].max()) + 1 > original)
        use_long = torch.tensor(columns_long) if original is not None else None
        if dynamic:
            if step == 0:
                inv_cols = [rope_state.update(pos)] * T
            else:
                inv_cols.append(rope_state.update(pos[:, -1:]))
        vis = visible_mask(attention_mask=mask)
        with torch.no_grad():
            logits = forward(cfg, p, ids, pos, vis, use_long,
                             inv_cols=torch.stack(inv_cols) if dynamic else None)[:, -1, :].float()
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
