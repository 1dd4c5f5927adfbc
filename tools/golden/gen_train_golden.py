#!/usr/bin/python3
"""Writes the trainer golden files under src/test/resources/golden/train/ (committed; tests never run Python).

Run from the repository root with Debian's python3-torch 1.13 (NOT a pyenv python):
    /usr/bin/python3 tools/golden/gen_train_golden.py

Each case trains a tiny random-init model for a few optimizer steps with torch itself and records the loss of every
step, so the Java trainer, fed the same checkpoint and the same pre-tokenized data, must reproduce them:
  - the data as sft-native's pipeline builds it from the committed JSONL (pt: rows concatenated and cut into
    cutoff_len blocks, remainder dropped; sft: rows as they are), the epoch order of io.sftnative.train.DataOrder
    (SplitMix64 permutation, re-implemented here), micro-batches of per_device_train_batch_size padded by the
    collator (pad id 0, labels -100, to a multiple of 8), gradient_accumulation_steps micro-batches per update;
  - loss per micro-batch = summed causal-LM cross-entropy (labels shifted by one, -100 ignored) divided by the
    target-token count of the whole accumulated batch, backward per micro-batch (HF's num_items_in_batch);
  - torch.nn.utils.clip_grad_norm_, torch.optim.AdamW with HF Trainer's two parameter groups (no weight decay for
    biases and norm weights), the HF learning-rate schedule (lr of update k = base_lr * multiplier(k));
  - LoRA (sft_lora): PEFT's y = base(x) + scaling * B(A(x)) on the target modules, the base frozen, starting from
    the adapter committed in sft_lora/adapter_init (PEFT format) which the Java run loads with
    adapter_name_or_path. Computed as x (W + scaling * B A)^T: the same function, autograd gives PEFT's gradients.
The model math is hf_reference.py (transformers' modeling code, eager attention).

Output per case NAME: NAME/model/ (config.json + model.safetensors), NAME/train.jsonl, (sft_lora) NAME/adapter_init/,
and NAME/expected.json (the config keys of the run, the per-step losses, the epoch permutations, and the eval loss
of the initial model, with the initial adapter for sft_lora, over all rows: what `sft-native eval` must print).
"""
import json
import math
import os
import random
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_optim_golden as sched  # noqa: E402
import hf_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

OUT = os.path.join("src", "test", "resources", "golden", "train")
IGNORE = -100
PAD_ID = 0  # the pipeline pads with 0 when there is no tokenizer (pre-tokenized data)
PAD_MULTIPLE = 8

CFG = dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"], vocab_size=96, hidden_size=32,
           intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
           rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=128, tie_word_embeddings=True,
           use_sliding_window=False, sliding_window=None, max_window_layers=2, hidden_act="silu",
           initializer_range=0.02, bos_token_id=None, eos_token_id=1, pad_token_id=PAD_ID, torch_dtype="float32")

# ---- io.sftnative.checkpoint.ResumableRandom (SplitMix64), used by io.sftnative.train.DataOrder ----
M64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class SplitMix:
    def __init__(self, seed):
        self.state = mix64(seed & M64)

    def next_long(self):
        self.state = (self.state + GOLDEN_GAMMA) & M64
        return mix64(self.state)

    def next_int(self, bound):
        while True:
            u = self.next_long() >> 1
            r = u % bound
            if u - r + (bound - 1) <= (1 << 63) - 1:  # Java: no signed overflow
                return r


def epoch_permutation(n, seed, epoch):
    order = list(range(n))
    rng = SplitMix((seed & M64) ^ mix64((epoch + 0x632BE59BD9B4E019) & M64))
    for i in range(n - 1, 0, -1):
        j = rng.next_int(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


# ---- the model ----
def init_params(gen):
    """transformers' _init_weights: N(0, initializer_range) matrices, zero biases, unit norms, zero padding row."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gen_model_golden import param_shapes
    p = {}
    for name, shape in param_shapes(CFG).items():
        if name.endswith("norm.weight"):
            t = torch.ones(shape)
        elif name.endswith(".bias"):
            t = torch.zeros(shape)
        else:
            t = torch.randn(shape, generator=gen) * CFG["initializer_range"]
            if name == "model.embed_tokens.weight":
                t[PAD_ID] = 0
        p[name] = t
    return p


def save_model(d, p):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2, sort_keys=True)
        f.write("\n")
    st.save(os.path.join(d, "model.safetensors"), p, {"format": "pt"})


def decays(name):
    """HF Trainer's get_decay_parameter_names by name (no decay: biases and norm weights)."""
    return re.search(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)", name.lower()) is None


# ---- data exactly as the pipeline + collator build it ----
def collate(rows):
    longest = max(len(r[0]) for r in rows)
    t = (longest + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE
    ids = torch.full((len(rows), t), PAD_ID, dtype=torch.long)
    labels = torch.full((len(rows), t), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), t), dtype=torch.long)
    pos = torch.zeros((len(rows), t), dtype=torch.long)
    for b, (i, l) in enumerate(rows):
        n = len(i)
        ids[b, :n] = torch.tensor(i)
        labels[b, :n] = torch.tensor(l)
        mask[b, :n] = 1
        pos[b, :n] = torch.arange(n)
    return ids, labels, mask, pos


def targets(labels):
    return int((labels[:, 1:] != IGNORE).sum())


def loss_sum(cfg, p, ids, labels, mask, pos):
    logits = ref.forward(cfg, p, ids, pos, ref.visible_mask(cfg, attention_mask=mask)).float()
    shift = torch.cat([labels[:, 1:], torch.full((labels.shape[0], 1), IGNORE, dtype=torch.long)], dim=1)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), shift.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")


def train(rows, keys, base, lora=None):
    """Runs the trainer's loop; returns (per-step losses, grad norms, lrs, permutations)."""
    n = len(rows)
    bs, accum = keys["per_device_train_batch_size"], keys["gradient_accumulation_steps"]
    micro_per_epoch = (n + bs - 1) // bs
    steps_per_epoch = (micro_per_epoch + accum - 1) // accum
    total = keys["max_steps"] if keys.get("max_steps", -1) > 0 else max(
        1, math.ceil(keys["num_train_epochs"] * steps_per_epoch))
    warm = sched.warmup_steps(total, keys.get("warmup_steps", 0), keys.get("warmup_ratio", 0.0))
    if lora is None:
        params = {k: v.clone().requires_grad_(True) for k, v in base.items()}
        trainable = params
    else:
        params = dict(base)
        trainable = {k: v.clone().requires_grad_(True) for k, v in lora["init"].items()}
    groups = [{"params": [t for k, t in trainable.items() if decays(k)], "weight_decay": keys["weight_decay"]},
              {"params": [t for k, t in trainable.items() if not decays(k)], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, lr=keys["learning_rate"], betas=(keys["adam_beta1"], keys["adam_beta2"]),
                            eps=keys["adam_epsilon"])

    def effective():
        if lora is None:
            return params
        q = dict(params)
        for module in lora["modules"]:
            a = trainable["base_model.model." + module + ".lora_A.weight"]
            b = trainable["base_model.model." + module + ".lora_B.weight"]
            q[module + ".weight"] = params[module + ".weight"] + lora["scaling"] * (b @ a)
        return q

    losses, norms, lrs, perms = [], [], [], {}
    for step in range(total):
        epoch, in_epoch = divmod(step, steps_per_epoch)
        if epoch not in perms:
            perms[epoch] = epoch_permutation(n, keys["seed"], epoch)
        order = perms[epoch]
        micro = []
        for m in range(in_epoch * accum, min(in_epoch * accum + accum, micro_per_epoch)):
            micro.append(collate([rows[i] for i in order[m * bs:(m + 1) * bs]]))
        total_targets = max(1, sum(targets(b[1]) for b in micro))
        lr = keys["learning_rate"] * sched.multiplier(keys["lr_scheduler_type"], step, total, warm)
        for g in opt.param_groups:
            g["lr"] = lr
        step_sum = 0.0
        for ids, labels, mask, pos in micro:
            s = loss_sum(CFG, effective(), ids, labels, mask, pos)
            (s / total_targets).backward()
            step_sum += float(s)
        norm = float(torch.nn.utils.clip_grad_norm_(list(trainable.values()), keys["max_grad_norm"]))
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(step_sum / total_targets)
        norms.append(norm)
        lrs.append(lr)
    return losses, norms, lrs, {str(k): v for k, v in perms.items()}


def eval_loss(rows, p, lora=None, batch=4):
    """The eval command's number: summed loss over all target tokens / their count (batches of `batch` rows)."""
    q = dict(p)
    if lora is not None:
        for module in lora["modules"]:
            a = lora["init"]["base_model.model." + module + ".lora_A.weight"]
            b = lora["init"]["base_model.model." + module + ".lora_B.weight"]
            q[module + ".weight"] = p[module + ".weight"] + lora["scaling"] * (b @ a)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            ids, labels, mask, pos = collate(rows[i:i + batch])
            total += float(loss_sum(CFG, q, ids, labels, mask, pos))
            count += targets(labels)
    return total / count, count


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for ids, labels in rows:
            f.write(json.dumps({"input_ids": ids, "labels": labels}) + "\n")


def pt_case(rng, gen):
    """Full-parameter pretraining: pt blocks of cutoff_len from 20 texts of 5..30 tokens (every token a target)."""
    name = "pt_full"
    base = init_params(gen)
    save_model(os.path.join(OUT, name, "model"), base)
    texts = [[rng.randrange(2, CFG["vocab_size"]) for _ in range(rng.randrange(5, 31))] + [CFG["eos_token_id"]]
             for _ in range(20)]
    write_jsonl(os.path.join(OUT, name, "train.jsonl"), [(t, t) for t in texts])
    cutoff = 32
    flat = [x for t in texts for x in t]
    blocks = [flat[i:i + cutoff] for i in range(0, len(flat) // cutoff * cutoff, cutoff)]
    rows = [(b, b) for b in blocks]
    keys = dict(stage="pt", finetuning_type="full", cutoff_len=cutoff, per_device_train_batch_size=2,
                gradient_accumulation_steps=2, learning_rate=5e-3, num_train_epochs=3.0, lr_scheduler_type="cosine",
                warmup_steps=2, weight_decay=0.1, max_grad_norm=0.5, adam_beta1=0.9, adam_beta2=0.95,
                adam_epsilon=1e-8, seed=7)
    losses, norms, lrs, perms = train(rows, keys, base)
    return name, keys, losses, norms, lrs, perms, len(rows), eval_loss(rows, base)


def sft_case(rng, gen):
    """LoRA SFT: 21 rows of 6..30 tokens whose first part (the prompt) is labelled -100; padding in every batch."""
    name = "sft_lora"
    base = init_params(gen)
    save_model(os.path.join(OUT, name, "model"), base)
    rows = []
    for _ in range(21):
        n = rng.randrange(6, 31)
        ids = [rng.randrange(2, CFG["vocab_size"]) for _ in range(n - 1)] + [CFG["eos_token_id"]]
        prompt = rng.randrange(2, n - 2)
        rows.append((ids, [IGNORE] * prompt + ids[prompt:]))
    write_jsonl(os.path.join(OUT, name, "train.jsonl"), rows)
    rank, alpha = 4, 8.0
    targets_ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    modules, init = [], {}
    for i in range(CFG["num_hidden_layers"]):
        for t in targets_:
            part = "self_attn" if t.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            module = "model.layers.%d.%s.%s" % (i, part, t)
            w = base[module + ".weight"]
            modules.append(module)
            # A as PEFT's kaiming_uniform_(a=sqrt(5)); B non-zero here so both get gradients from the first step
            bound = 1.0 / math.sqrt(w.shape[1])
            init["base_model.model." + module + ".lora_A.weight"] = (torch.rand(rank, w.shape[1], generator=gen)
                                                                       * 2 - 1) * bound
            init["base_model.model." + module + ".lora_B.weight"] = torch.randn(w.shape[0], rank, generator=gen) * 0.01
    adir = os.path.join(OUT, name, "adapter_init")
    os.makedirs(adir, exist_ok=True)
    st.save(os.path.join(adir, "adapter_model.safetensors"), init, {"format": "pt"})
    with open(os.path.join(adir, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha,
                   "lora_dropout": 0.0, "target_modules": targets_, "use_rslora": False, "bias": "none",
                   "fan_in_fan_out": False, "modules_to_save": None, "base_model_name_or_path": "model"},
                  f, indent=2, sort_keys=True)
        f.write("\n")
    keys = dict(stage="sft", finetuning_type="lora", lora_rank=rank, lora_alpha=alpha, lora_dropout=0.0,
                lora_target=",".join(targets_), cutoff_len=64, per_device_train_batch_size=3,
                gradient_accumulation_steps=2, learning_rate=3e-2, num_train_epochs=3.0, lr_scheduler_type="linear",
                warmup_ratio=0.1, weight_decay=0.01, max_grad_norm=1.0, adam_beta1=0.9, adam_beta2=0.999,
                adam_epsilon=1e-8, seed=11)
    lora = {"modules": modules, "init": init, "scaling": alpha / rank}
    losses, norms, lrs, perms = train(rows, keys, base, lora)
    return name, keys, losses, norms, lrs, perms, len(rows), eval_loss(rows, base, lora)


def main():
    torch.manual_seed(0)
    rng = random.Random(2024)
    for i, case in enumerate((pt_case, sft_case)):
        gen = torch.Generator().manual_seed(500 + i)
        name, keys, losses, norms, lrs, perms, n, (ev, ev_tokens) = case(rng, gen)
        meta = {"case": name, "keys": keys, "train_rows": n, "losses": losses, "grad_norms": norms, "lrs": lrs,
                "permutations": perms, "eval_loss_initial": ev, "eval_tokens": ev_tokens}
        with open(os.path.join(OUT, name, "expected.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.write("\n")
        print(name, "rows", n, "steps", len(losses), "losses", ["%.5f" % x for x in losses])


if __name__ == "__main__":
    main()
