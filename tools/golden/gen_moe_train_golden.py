#!/usr/bin/python3
"""Writes src/test/resources/golden/train/moe_lora/ (committed; tests never run Python): a 12-step LoRA SFT run of a
tiny qwen3_moe model with the load-balancing loss, trained by torch 1.13 through hf_moe_reference.py.

Run from the repository root with Debian's python3-torch 1.13:
    /usr/bin/python3 tools/golden/gen_moe_train_golden.py

Same trainer semantics as gen_train_golden.py (data order, collator, accumulation by target tokens, AdamW with HF's
groups, clipping, schedule, LoRA as W + scaling * B A from a committed PEFT adapter), plus transformers' MoE loss:
per micro-batch  sum_CE / T_step + coef * (T_micro / T_step) * aux_loss(router logits, attention_mask)
(one micro-batch: exactly loss + router_aux_loss_coef * aux_loss). LoRA targets attention and every expert
projection (PEFT suffix matching of gate_proj/up_proj/down_proj); the router is not adapted. The logged loss of a
step includes the aux term, as transformers' does.
"""
import json
import math
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_optim_golden as sched  # noqa: E402
import gen_train_golden as tg  # noqa: E402
import hf_moe_reference as moe  # noqa: E402
import hf_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

NAME = "moe_lora"
OUT = os.path.join(tg.OUT, NAME)
CFG = dict(model_type="qwen3_moe", architectures=["Qwen3MoeForCausalLM"], vocab_size=96, hidden_size=32,
           intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, head_dim=8, rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=128,
           num_experts=4, num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
           router_aux_loss_coef=0.001, output_router_logits=False, attention_bias=False, tie_word_embeddings=False,
           use_sliding_window=False, sliding_window=None, hidden_act="silu", initializer_range=0.02,
           eos_token_id=1, pad_token_id=tg.PAD_ID, torch_dtype="float32")
COEF = 0.05  # moe_aux_loss_coef of the run (overrides the config's 0.001)


def init_params(gen):
    """transformers' init (N(0, 0.02), unit norms, zero padding row), routers N(0, 0.3): decisive routing, so that
    float rounding never flips a top-k choice between torch and libtorch during the run."""
    p = {}
    for name, shape in gen_moe_shapes().items():
        if name.endswith("norm.weight"):
            t = torch.ones(shape)
        elif name.endswith(".gate.weight"):
            t = torch.randn(shape, generator=gen) * 0.3
        else:
            t = torch.randn(shape, generator=gen) * CFG["initializer_range"]
            if name == "model.embed_tokens.weight":
                t[tg.PAD_ID] = 0
        p[name] = t
    return p


def gen_moe_shapes():
    import gen_moe_golden
    return gen_moe_golden.param_shapes(CFG)


def loss_and_aux(p, ids, labels, mask, pos):
    acfg = moe.attention_cfg(CFG)
    logits, router = moe.forward(CFG, p, ids, pos, ref.visible_mask(acfg, attention_mask=mask))
    logits = logits.float()
    shift = torch.cat([labels[:, 1:], torch.full((labels.shape[0], 1), tg.IGNORE, dtype=torch.long)], dim=1)
    s = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), shift.reshape(-1),
                                          ignore_index=tg.IGNORE, reduction="sum")
    aux = moe.load_balancing_loss_func(router, CFG["num_experts"], CFG["num_experts_per_tok"], mask)
    return s, aux


def main():
    torch.manual_seed(0)
    rng = random.Random(77)
    gen = torch.Generator().manual_seed(900)
    base = init_params(gen)
    os.makedirs(os.path.join(OUT, "model"), exist_ok=True)
    with open(os.path.join(OUT, "model", "config.json"), "w") as f:
        json.dump(CFG, f, indent=2, sort_keys=True)
        f.write("\n")
    st.save(os.path.join(OUT, "model", "model.safetensors"), base, {"format": "pt"})
    rows = []
    for _ in range(21):
        n = rng.randrange(6, 31)
        ids = [rng.randrange(2, CFG["vocab_size"]) for _ in range(n - 1)] + [CFG["eos_token_id"]]
        prompt = rng.randrange(2, n - 2)
        rows.append((ids, [tg.IGNORE] * prompt + ids[prompt:]))
    tg.write_jsonl(os.path.join(OUT, "train.jsonl"), rows)

    rank, alpha = 4, 8.0
    targets_ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    modules = [n[:-len(".weight")] for n in base if n.endswith(".weight") and n.split(".")[-2] in targets_]
    init = {}
    for module in modules:
        w = base[module + ".weight"]
        bound = 1.0 / math.sqrt(w.shape[1])
        init["base_model.model." + module + ".lora_A.weight"] = (torch.rand(rank, w.shape[1], generator=gen)
                                                                   * 2 - 1) * bound
        init["base_model.model." + module + ".lora_B.weight"] = torch.randn(w.shape[0], rank, generator=gen) * 0.01
    adir = os.path.join(OUT, "adapter_init")
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
                gradient_accumulation_steps=2, learning_rate=2e-2, max_steps=12, lr_scheduler_type="linear",
                warmup_ratio=0.1, weight_decay=0.01, max_grad_norm=1.0, adam_beta1=0.9, adam_beta2=0.999,
                adam_epsilon=1e-8, seed=5, moe_aux_loss_coef=COEF)

    n = len(rows)
    bs, accum = keys["per_device_train_batch_size"], keys["gradient_accumulation_steps"]
    micro_per_epoch = (n + bs - 1) // bs
    steps_per_epoch = (micro_per_epoch + accum - 1) // accum
    total = keys["max_steps"]
    warm = sched.warmup_steps(total, 0, keys["warmup_ratio"])
    scaling = alpha / rank
    trainable = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    groups = [{"params": [t for k, t in trainable.items() if tg.decays(k)], "weight_decay": keys["weight_decay"]},
              {"params": [t for k, t in trainable.items() if not tg.decays(k)], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, lr=keys["learning_rate"], betas=(keys["adam_beta1"], keys["adam_beta2"]),
                            eps=keys["adam_epsilon"])

    def effective():
        q = dict(base)
        for module in modules:
            a = trainable["base_model.model." + module + ".lora_A.weight"]
            b = trainable["base_model.model." + module + ".lora_B.weight"]
            q[module + ".weight"] = base[module + ".weight"] + scaling * (b @ a)
        return q

    losses, auxes, perms = [], [], {}
    for step in range(total):
        epoch, in_epoch = divmod(step, steps_per_epoch)
        if epoch not in perms:
            perms[epoch] = tg.epoch_permutation(n, keys["seed"], epoch)
        order = perms[epoch]
        micro = []
        for m in range(in_epoch * accum, min(in_epoch * accum + accum, micro_per_epoch)):
            micro.append(tg.collate([rows[i] for i in order[m * bs:(m + 1) * bs]]))
        total_targets = max(1, sum(tg.targets(b[1]) for b in micro))
        lr = keys["learning_rate"] * sched.multiplier(keys["lr_scheduler_type"], step, total, warm)
        for g in opt.param_groups:
            g["lr"] = lr
        step_sum, step_aux = 0.0, 0.0
        for ids, labels, mask, pos in micro:
            s, aux = loss_and_aux(effective(), ids, labels, mask, pos)
            share = tg.targets(labels) / total_targets
            (s / total_targets + COEF * share * aux).backward()
            step_sum += float(s)
            step_aux += share * float(aux)
        torch.nn.utils.clip_grad_norm_(list(trainable.values()), keys["max_grad_norm"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(step_sum / total_targets + COEF * step_aux)
        auxes.append(step_aux)
    meta = {"case": NAME, "keys": keys, "train_rows": n, "losses": losses, "aux_losses": auxes,
            "lora_modules": len(modules)}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    print(NAME, "modules", len(modules), "losses", ["%.5f" % x for x in losses], "aux",
          ["%.4f" % x for x in auxes])


if __name__ == "__main__":
    main()
