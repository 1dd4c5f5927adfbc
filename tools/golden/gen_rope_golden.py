#!/usr/bin/python3
"""Writes src/test/resources/golden/rope/tables.json: RoPE inverse-frequency tables and attention factors of the
scaling variants (yarn with its options, dynamic NTK after growing), from hf_families.py (transformers'
modeling_rope_utils). RotaryTablesTest compares RotaryEmbedding with them.

Run from the repository root with Debian's python3-torch 1.13:
    /usr/bin/python3 tools/golden/gen_rope_golden.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_families as ref  # noqa: E402

BASE = dict(model_type="llama", vocab_size=32, hidden_size=64, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256, rope_theta=10000.0)
WIDE = dict(BASE, hidden_size=512, num_attention_heads=8, num_key_value_heads=8)  # head_dim 64

CASES = {
    "yarn_original": dict(BASE, rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=64)),
    "yarn_no_original": dict(BASE, max_position_embeddings=2048, rope_scaling=dict(type="yarn", factor=8.0)),
    "yarn_mscale": dict(WIDE, max_position_embeddings=163840,
                        rope_scaling=dict(type="yarn", factor=40.0, mscale=1.0, mscale_all_dim=0.707,
                                          original_max_position_embeddings=4096, beta_fast=16, beta_slow=2)),
    "yarn_no_truncate": dict(WIDE, rope_theta=150000.0, max_position_embeddings=131072,
                             rope_scaling=dict(rope_type="yarn", factor=32.0, original_max_position_embeddings=4096,
                                               beta_fast=32.0, beta_slow=1.0, truncate=False)),
    "yarn_attention_factor": dict(BASE, rope_scaling=dict(rope_type="yarn", factor=4.0, attention_factor=1.0)),
    "yarn_partial_phi3": dict(BASE, model_type="phi3", partial_rotary_factor=0.5, max_position_embeddings=4096,
                              rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=1024)),
    "dynamic": dict(BASE, rope_scaling=dict(rope_type="dynamic", factor=2.0)),
    "dynamic_lf": dict(BASE, max_position_embeddings=1024,  # LLaMA-Factory's config: 256 x factor 4
                       rope_scaling=dict(rope_type="dynamic", factor=4.0, original_max_position_embeddings=256)),
}
# dynamic: the forwards' sequence lengths in order (growth, a length in between keeps the table, reset, growth)
SEQ_LENS = [200, 300, 280, 100, 1500]


def main():
    out = {}
    for name, cfg in CASES.items():
        entry = {"config": cfg}
        if ref.rope_type(cfg) == "dynamic":
            state = ref.DynamicRope(cfg)
            entry["seq_lens"] = SEQ_LENS
            entry["inv_freq_after"] = [state.update(torch.tensor([[n - 1]])).tolist() for n in SEQ_LENS]
            entry["inv_freq"] = ref.DynamicRope(cfg).inv.tolist()
            entry["attention_factor"] = 1.0
        else:
            entry["inv_freq"] = ref.inv_freq(cfg).tolist()
            entry["attention_factor"] = ref.longrope_attention_factor(cfg)[0]
        out[name] = entry
    path = os.path.join("src", "test", "resources", "golden", "rope", "tables.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", path, len(out), "cases")


if __name__ == "__main__":
    main()
