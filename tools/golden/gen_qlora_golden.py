#!/usr/bin/python3
"""Writes bitsandbytes-quantized golden checkpoints under src/test/resources/golden/qlora/ (committed; tests never
run Python).

Run from the repository root with Debian's python3-torch 1.13 (NOT a pyenv python), the shared material next to it:
    /usr/bin/python3 tools/golden/gen_qlora_golden.py
Input: the dense llama_gqa golden checkpoint (src/test/resources/golden/model/llama_gqa/checkpoint). For each variant
NAME it writes
    NAME/checkpoint/config.json + model.safetensors   what transformers saves for a model loaded with
                                                       BitsAndBytesConfig (spec section 2.7): every linear layer but
                                                       lm_head quantized, the rest dense
    NAME/expected.safetensors                          input_ids, labels, logits and gradients of dense parameters,
                                                       computed with the dequantized weights as plain tensors
    NAME/expected.json                                 loss
Quantization uses ../shared/tools/bnbref/bnb_ref.py (independent numpy reference of bitsandbytes' CUDA kernels);
8-bit is LLM.int8()'s row-wise format (CB = round-half-even(W * 127 / absmax(row)), SCB = absmax(row)).
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "shared", "tools", "bnbref"))
import bnb_ref as bnb  # noqa: E402
import hf_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

SRC = os.path.join("src", "test", "resources", "golden", "model", "llama_gqa", "checkpoint")
OUT = os.path.join("src", "test", "resources", "golden", "qlora")
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
           "mlp.up_proj", "mlp.down_proj"]
GRADS = ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
         "model.layers.1.post_attention_layernorm.weight", "model.norm.weight"]


def u8(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint8))


def f32(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def quantize_nf4_dq(w):
    """transformers' Linear4bit state dict entries (relative to 'weight') and the dequantized weight."""
    x = w.float().numpy().reshape(-1)
    n = x.size
    packed, qam, am2, offset = bnb.quantize_4bit_double(x, blocksize=64, qtype="nf4")
    blob = {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": list(w.shape),
            "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": float(offset)}
    state = {
        "": u8(packed).reshape(-1, 1),
        ".absmax": u8(qam),
        ".quant_map": f32(bnb.NF4),
        ".nested_absmax": f32(am2),
        ".nested_quant_map": f32(bnb.DYN),
        ".quant_state.bitsandbytes__nf4": u8(np.frombuffer(json.dumps(blob).encode("utf-8"), dtype=np.uint8).copy()),
    }
    absmax = bnb.dequant_absmax(qam, am2, offset)
    deq = bnb.dequantize_4bit(packed, absmax, n, blocksize=64, qtype="nf4")
    return state, torch.from_numpy(deq.reshape(w.shape).copy())


def quantize_int8(w):
    x = w.float()
    scb = x.abs().amax(dim=1)
    cb = torch.round(x * (127.0 / scb)[:, None]).clamp(-127, 127).to(torch.int8)
    deq = cb.float() * scb[:, None] / 127.0
    return {"weight": cb, "SCB": scb, "weight_format": torch.zeros((), dtype=torch.uint8)}, deq


def quantization_config(bits):
    return {"_load_in_4bit": bits == 4, "_load_in_8bit": bits == 8, "bnb_4bit_compute_dtype": "float32",
            "bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
            "llm_int8_enable_fp32_cpu_offload": False, "llm_int8_has_fp16_weight": False,
            "llm_int8_skip_modules": None, "llm_int8_threshold": 6.0, "load_in_4bit": bits == 4,
            "load_in_8bit": bits == 8, "quant_method": "bitsandbytes"}


def main():
    with open(os.path.join(SRC, "config.json")) as f:
        cfg = json.load(f)
    dense, _ = st.load(os.path.join(SRC, "model.safetensors"))
    gen = torch.Generator().manual_seed(2024)
    B, T = 2, 12
    ids = torch.randint(3, cfg["vocab_size"], (B, T), generator=gen)
    labels = ids.clone()
    labels[0, :3] = ref.IGNORE_INDEX
    labels[1, :5] = ref.IGNORE_INDEX
    pos = torch.arange(T)[None].expand(B, T).contiguous()
    vis = ref.visible_mask(cfg, batch=B, seq=T)
    for name, bits in (("llama_nf4_dq", 4), ("llama_int8", 8)):
        tensors = {}
        p = {}
        for k, v in dense.items():
            module = k[:-len(".weight")] if k.endswith(".weight") else None
            if module is not None and any(module.endswith(l) for l in LINEARS):
                if bits == 4:
                    state, deq = quantize_nf4_dq(v)
                    for suffix, t in state.items():
                        tensors[k + suffix] = t
                else:
                    state, deq = quantize_int8(v)
                    for suffix, t in state.items():
                        tensors[module + "." + suffix] = t
                p[k] = deq
            else:
                tensors[k] = v
                p[k] = v.float()
        ckpt = os.path.join(OUT, name, "checkpoint")
        os.makedirs(ckpt, exist_ok=True)
        c = dict(cfg)
        c["quantization_config"] = quantization_config(bits)
        with open(os.path.join(ckpt, "config.json"), "w") as f:
            json.dump(c, f, indent=2, sort_keys=True)
            f.write("\n")
        st.save(os.path.join(ckpt, "model.safetensors"), tensors, {"format": "pt"})

        q = {k: v.clone().requires_grad_(k in GRADS) for k, v in p.items()}
        logits = ref.forward(cfg, q, ids, pos, vis)
        loss = ref.causal_lm_loss(logits, labels)
        loss.backward()
        expected = {"input_ids": ids, "labels": labels, "logits": logits.detach().float()}
        for g in GRADS:
            expected["grad." + g] = q[g].grad.float()
        st.save(os.path.join(OUT, name, "expected.safetensors"), expected, {"format": "pt"})
        with open(os.path.join(OUT, name, "expected.json"), "w") as f:
            json.dump({"loss": float(loss), "bits": bits}, f, indent=2, sort_keys=True)
            f.write("\n")
        print(name, "loss", float(loss), "tensors", len(tensors))


if __name__ == "__main__":
    main()
