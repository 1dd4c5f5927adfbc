#!/usr/bin/python3
"""Writes src/test/resources/golden/new_tokens/ (committed; tests never run Python).

Run from the repository root with Debian's python3-torch 1.13 (NOT a pyenv python):
    /usr/bin/python3 tools/golden/gen_new_tokens_golden.py

A transcription of LLaMA-Factory's resize_embedding_layer (src/llamafactory/model/model_utils/embedding.py, 2026)
and of the part of transformers' resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64, mean_resizing=False)
it relies on (new rows from _init_weights: normal(0, initializer_range)). One difference, on purpose and shared with
sft-native: every random draw comes from one torch.Generator seeded per case, in LF's order (new embedding rows, new
head rows, embedding init noise, head init noise), drawn in float32; LF draws from the global generator, after
whatever model loading consumed. So the golden pins the rule and the draw order, not an LF run's noise values.

For each case: case.json (parameters) and case.safetensors (embed, head inputs; expected_embed, expected_head).
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402

OUT = os.path.join("src", "test", "resources", "golden", "new_tokens")
H = 24
STD = 0.02  # config.initializer_range


# ---------------------------------------------------------------- LF's embedding.py, with an explicit generator

def _resolve_new_token_ids(new_token_ids, embed_size):
    if not new_token_ids:
        return None
    ids = {i for i in new_token_ids if 0 <= i < embed_size}
    return sorted(ids) or None


def _existing_embeddings(embed_weight, num_new_tokens, new_token_ids):
    if new_token_ids:
        mask = torch.ones(embed_weight.size(0), dtype=torch.bool)
        mask[torch.as_tensor(new_token_ids, dtype=torch.long)] = False
        return embed_weight[mask]
    if num_new_tokens > 0:
        return embed_weight[:-num_new_tokens]
    return embed_weight


def _noisy_mean_initialization(embed_weight, num_new_tokens, token_ids, gen):
    embedding_dim = embed_weight.size(1)
    avg_weight = _existing_embeddings(embed_weight, num_new_tokens, token_ids).mean(dim=0, keepdim=True)
    if token_ids:
        noise_weight = torch.empty(len(token_ids), embedding_dim, dtype=embed_weight.dtype)
        noise_weight.normal_(mean=0, std=(1.0 / math.sqrt(embedding_dim)), generator=gen)
        embed_weight[token_ids] = avg_weight + noise_weight
    else:
        noise_weight = torch.empty_like(embed_weight[-num_new_tokens:])
        noise_weight.normal_(mean=0, std=(1.0 / math.sqrt(embedding_dim)), generator=gen)
        embed_weight[-num_new_tokens:] = avg_weight + noise_weight


def _description_based_initialization(embed_weight, num_new_tokens, descriptions, input_embeddings, new_token_ids,
                                      add_noise, gen):
    """descriptions: [(token_id, description token ids)] in the config's order (the tokenizer part done by the
    caller, as tokenizer.convert_tokens_to_ids / tokenizer(desc, add_special_tokens=False) would)."""
    embedding_dim = embed_weight.size(1)
    vocab_size = embed_weight.size(0)
    new_id_set = set(new_token_ids or [])
    fallback_embedding = _existing_embeddings(embed_weight, num_new_tokens, new_token_ids).mean(dim=0)
    for token_id, token_ids in descriptions:
        if token_id is None or not (0 <= token_id < vocab_size):
            continue
        valid_token_ids = [tid for tid in token_ids if tid not in new_id_set and 0 <= tid < vocab_size]
        if len(valid_token_ids) == 0:
            base_embedding = fallback_embedding
        else:
            valid_ids_tensor = torch.as_tensor(valid_token_ids, dtype=torch.long)
            token_embeds = torch.nn.functional.embedding(valid_ids_tensor, input_embeddings)  # get_input_embeddings()
            base_embedding = token_embeds.mean(dim=0)
        if add_noise:  # torch.randn_like(base_embedding) * (1.0 / math.sqrt(embedding_dim))
            noise = torch.empty_like(base_embedding).normal_(generator=gen) * (1.0 / math.sqrt(embedding_dim))
            embed_weight[token_id] = base_embedding + noise
        else:
            embed_weight[token_id] = base_embedding


def _initialize_embeddings(embed_weight, num_new_tokens, init_method, descriptions, input_embeddings, new_token_ids,
                           gen):
    if init_method == "desc_init" and descriptions:
        _description_based_initialization(embed_weight, num_new_tokens, descriptions, input_embeddings,
                                          new_token_ids, False, gen)
    elif init_method == "desc_init_w_noise" and descriptions:
        _description_based_initialization(embed_weight, num_new_tokens, descriptions, input_embeddings,
                                          new_token_ids, True, gen)
    else:
        _noisy_mean_initialization(embed_weight, num_new_tokens, new_token_ids, gen)


def resize_token_embeddings(weight, new_num_tokens, gen):
    """transformers' _get_resized_embeddings / _get_resized_lm_head with mean_resizing=False: a new matrix
    initialised by _init_weights (normal(0, initializer_range)), the old rows copied over."""
    new = torch.empty(new_num_tokens, weight.size(1))
    new[weight.size(0):] = torch.empty(new_num_tokens - weight.size(0), weight.size(1)).normal_(0.0, STD,
                                                                                               generator=gen)
    new[:weight.size(0)] = weight
    return new


def resize_embedding_layer(embed, head, tokenizer_len, new_token_ids, descriptions, init, seed):
    gen = torch.Generator().manual_seed(seed)
    current = embed.size(0)
    if tokenizer_len > current:
        rows = (tokenizer_len + 63) // 64 * 64  # pad_to_multiple_of=64
        embed = resize_token_embeddings(embed, rows, gen)
        if head is not None:
            head = resize_token_embeddings(head, rows, gen)
    else:
        embed = embed.clone()
        head = None if head is None else head.clone()
    new_size = embed.size(0)
    num_new = new_size - current
    ids = _resolve_new_token_ids(new_token_ids, new_size)
    if num_new <= 0 and not ids:
        return embed, head
    _initialize_embeddings(embed, num_new, init, descriptions, embed, ids, gen)
    if head is not None:  # untied
        _initialize_embeddings(head, num_new, init, descriptions, embed, ids, gen)
    return embed, head


CASES = {
    # tied; 3 tokens past the 40 rows: 43 -> 64 rows, noise_init on ids 40..42
    "tied_grow_noise": dict(rows=40, tied=True, length=43, ids=[40, 41, 42], init="noise_init", desc=[], seed=7),
    # untied; the tokens land in the checkpoint's padding rows (ids 36, 37 < 40 rows): no resize, rows re-initialised
    "untied_padding_noise": dict(rows=40, tied=False, length=38, ids=[37, 36], init="noise_init", desc=[], seed=8),
    # untied; resize_vocab alone (no new-token ids): 70 -> 128 rows, the 88 new rows initialised from the tail rule
    "untied_grow_tail": dict(rows=40, tied=False, length=70, ids=[], init="noise_init", desc=[], seed=9),
    # untied desc_init_w_noise: 41 from [3, 5, 7]; 42 from [40, 99] (new / out of range: the fallback mean)
    "untied_desc_noise": dict(rows=40, tied=False, length=42, ids=[40, 41], init="desc_init_w_noise",
                              desc=[[40, [3, 5, 7]], [41, [40, 99]]], seed=10),
    # tied desc_init (no noise): 40 from [1, 2]; 41 has no description (left at the resize's random row)
    "tied_desc": dict(rows=40, tied=True, length=42, ids=[40, 41], init="desc_init", desc=[[40, [1, 2]]], seed=11),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for ci, (name, c) in enumerate(sorted(CASES.items())):
        g = torch.Generator().manual_seed(300 + ci)
        embed = torch.empty(c["rows"], H).normal_(0.0, 0.5, generator=g)
        head = None if c["tied"] else torch.empty(c["rows"], H).normal_(0.0, 0.5, generator=g)
        desc = [(t, ids) for t, ids in c["desc"]]
        e, h = resize_embedding_layer(embed, head, c["length"], c["ids"], desc, c["init"], c["seed"])
        tensors = {"embed": embed, "expected_embed": e}
        if head is not None:
            tensors["head"] = head
            tensors["expected_head"] = h
        st.save(os.path.join(OUT, name + ".safetensors"), tensors)
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(dict(c, hidden=H, initializer_range=STD), f, indent=1)
            f.write("\n")
        print(name, tuple(e.shape))


if __name__ == "__main__":
    main()
