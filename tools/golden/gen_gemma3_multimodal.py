#!/usr/bin/python3
"""Writes the gemma3 (multimodal) checkpoints of the golden tests from gemma3_text_local's (gen_family_golden.py):
the same text weights under Gemma3ForConditionalGeneration's names, in both layouts transformers writes
(language_model.model.* up to 4.5x, model.language_model.* in 5.x), next to small stand-in vision tower and projector
tensors that must be skipped, with a gemma3 config.json whose text_config leaves some keys to Gemma3TextConfig's
defaults. GoldenParityTest checks them against gemma3_text_local's expected outputs (the text model computes the same).

Run from the repository root with Debian's python3-torch 1.13, after gen_family_golden.py:
    /usr/bin/python3 tools/golden/gen_gemma3_multimodal.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402

ROOT = os.path.join("src", "test", "resources", "golden", "model")
SOURCE = "gemma3_text_local"
# keys left to Gemma3TextConfig's defaults (equal to the source's values); eos comes from the top level
DEFAULTED = ("rms_norm_eps", "rope_local_base_freq", "attention_bias", "pad_token_id", "bos_token_id", "eos_token_id",
             "hidden_activation", "initializer_range", "tie_word_embeddings", "architectures", "torch_dtype")
LAYOUTS = {
    "gemma3_mm_legacy": ("language_model.model.", "language_model.lm_head.weight", ""),
    "gemma3_mm_nested": ("model.language_model.", "lm_head.weight", "model."),
}


def main():
    with open(os.path.join(ROOT, SOURCE, "checkpoint", "config.json")) as f:
        text = json.load(f)
    text_config = {k: v for k, v in text.items() if k not in DEFAULTED}
    config = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": text_config,
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 8, "intermediate_size": 16,
                          "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 16, "patch_size": 4},
        "mm_tokens_per_image": 4, "boi_token_index": 250, "eoi_token_index": 251, "image_token_index": 252,
        "eos_token_id": [1, 106], "initializer_range": 0.02, "torch_dtype": "float32",
    }
    weights, _ = st.load(os.path.join(ROOT, SOURCE, "checkpoint", "model.safetensors"))
    gen = torch.Generator().manual_seed(7)
    for name, (text_prefix, head, vision_prefix) in LAYOUTS.items():
        out = {}
        for k, v in weights.items():
            out[head if k == "lm_head.weight" else text_prefix + k[len("model."):]] = v
        for k, shape in (("vision_tower.vision_model.embeddings.patch_embedding.weight", (8, 3, 4, 4)),
                         ("vision_tower.vision_model.post_layernorm.weight", (8,)),
                         ("multi_modal_projector.mm_input_projection_weight", (8, 64)),
                         ("multi_modal_projector.mm_soft_emb_norm.weight", (8,))):
            out[vision_prefix + k] = torch.randn(shape, generator=gen)
        ckpt = os.path.join(ROOT, name, "checkpoint")
        os.makedirs(ckpt, exist_ok=True)
        with open(os.path.join(ckpt, "config.json"), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")
        st.save(os.path.join(ckpt, "model.safetensors"), out, {"format": "pt"})
        print("wrote", ckpt, len(out), "tensors")


if __name__ == "__main__":
    main()
