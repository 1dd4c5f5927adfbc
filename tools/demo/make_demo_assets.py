#!/usr/bin/python3
"""Makes the embedded demo's tokenizer and instruction dataset (committed under src/main/resources/io/sftnative/demo).

Run with Debian's python3 (needs only the `regex` module):  /usr/bin/python3 tools/demo/make_demo_assets.py
Deterministic: the same script always writes the same files.

- demo_sft.json: a small alpaca-format instruction dataset of templated facts (capitals, sums, opposites,
  colours, animal sounds), so a tiny model visibly learns in a couple of minutes on 2 cores.
- tokenizer.json: a byte-level BPE (GPT-2 pre-tokenizer, 256 byte symbols + merges learned here on the
  demo data rendered with the ChatML/qwen template) with the ChatML special tokens, in HF `tokenizers` format.
- tokenizer_config.json: special tokens and a ChatML `chat_template`, like Qwen2.5's.
"""
import collections
import json
import os
import random

import regex

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "main", "resources", "io", "sftnative", "demo")
NUM_MERGES = 700
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def dataset():
    rng = random.Random(1234)
    capitals = {"France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
                "China": "Beijing", "Egypt": "Cairo", "Canada": "Ottawa", "Peru": "Lima", "Kenya": "Nairobi",
                "Norway": "Oslo", "Greece": "Athens", "Poland": "Warsaw", "Chile": "Santiago", "India": "New Delhi",
                "Brazil": "Brasilia", "Russia": "Moscow", "Sweden": "Stockholm", "Turkey": "Ankara",
                "Mexico": "Mexico City", "Portugal": "Lisbon", "Austria": "Vienna", "Cuba": "Havana",
                "Ireland": "Dublin", "Thailand": "Bangkok"}
    opposites = {"hot": "cold", "big": "small", "fast": "slow", "up": "down", "day": "night", "open": "closed",
                 "happy": "sad", "light": "dark", "early": "late", "old": "young", "full": "empty",
                 "strong": "weak", "wet": "dry", "hard": "soft", "loud": "quiet", "rich": "poor"}
    colours = {"banana": "yellow", "grass": "green", "the sky": "blue", "snow": "white", "coal": "black",
               "a tomato": "red", "an orange": "orange", "a plum": "purple", "chocolate": "brown",
               "a lemon": "yellow", "a strawberry": "red", "a cloud": "white"}
    sounds = {"dog": "woof", "cat": "meow", "cow": "moo", "duck": "quack", "sheep": "baa", "lion": "roar",
              "owl": "hoot", "frog": "croak", "horse": "neigh", "pig": "oink"}
    ex = []
    for c, cap in capitals.items():
        ex.append({"instruction": f"What is the capital of {c}?", "input": "",
                   "output": f"The capital of {c} is {cap}."})
    for a, b in opposites.items():
        ex.append({"instruction": f"What is the opposite of {a}?", "input": "",
                   "output": f"The opposite of {a} is {b}."})
    for thing, col in colours.items():
        ex.append({"instruction": f"What colour is {thing}?", "input": "",
                   "output": f"{thing[0].upper() + thing[1:]} is {col}."})
    for animal, s in sounds.items():
        ex.append({"instruction": "What sound does this animal make?", "input": f"a {animal}",
                   "output": f"A {animal} says {s}."})
    pairs = [(a, b) for a in range(10) for b in range(10)]
    rng.shuffle(pairs)
    for a, b in pairs[:70]:
        ex.append({"instruction": f"What is {a} plus {b}?", "input": "", "output": f"{a} plus {b} is {a + b}."})
    rng.shuffle(ex)
    return ex


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode map (what HF's ByteLevel pre-tokenizer uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def render_chatml(example):
    user = example["instruction"] + ("\n" + example["input"] if example["input"] else "")
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            f"<|im_start|>assistant\n{example['output']}<|im_end|>\n")


def train_bpe(texts):
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for t in texts:
        for piece in regex.split("(" + "|".join(regex.escape(s) for s in SPECIALS) + ")", t):
            if piece in SPECIALS or not piece:
                continue
            for w in regex.findall(GPT2_SPLIT, piece):
                words[tuple(b2u[b] for b in w.encode("utf-8"))] += 1
    vocab = [b2u[b] for b in range(256)]
    merges = []
    words = dict(words)
    for _ in range(NUM_MERGES):
        pairs = collections.Counter()
        for w, f in words.items():
            for i in range(len(w) - 1):
                pairs[(w[i], w[i + 1])] += f
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]  # ties broken deterministically
        merges.append(best)
        vocab.append(best[0] + best[1])
        new = {}
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + f
        words = new
    return vocab, merges


def main():
    os.makedirs(OUT, exist_ok=True)
    ex = dataset()
    with open(os.path.join(OUT, "demo_sft.json"), "w", encoding="utf-8") as f:
        json.dump(ex, f, ensure_ascii=False, indent=1)
    with open(os.path.join(OUT, "dataset_info.json"), "w", encoding="utf-8") as f:
        json.dump({"demo_sft": {"file_name": "demo_sft.json"}}, f, indent=2)
    vocab, merges = train_bpe([render_chatml(e) for e in ex])
    vocab_map = {tok: i for i, tok in enumerate(vocab)}
    added = []
    for s in SPECIALS:
        added.append({"id": len(vocab_map), "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
        vocab_map[s] = len(vocab_map)
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True}
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
           "pre_tokenizer": byte_level, "post_processor": byte_level, "decoder": byte_level,
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                     "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                     "vocab": vocab_map, "merges": [a + " " + b for a, b in merges]}}
    with open(os.path.join(OUT, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    template = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                "{{ '<|im_start|>system\\n" + SYSTEM + "<|im_end|>\\n' }}{% endif %}"
                "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
                "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    cfg = {"tokenizer_class": "Qwen2Tokenizer", "bos_token": None, "eos_token": "<|im_end|>",
           "pad_token": "<|endoftext|>", "unk_token": None, "model_max_length": 512, "chat_template": template,
           "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
           "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]}
    with open(os.path.join(OUT, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
    print(f"{len(ex)} examples, vocab {len(vocab_map)} ({len(merges)} merges) -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
