#!/usr/bin/env python3
"""Interoperability check against the real Hugging Face stack (transformers + PEFT + safetensors).

Needs a Python with torch, transformers and peft (none of them is on the CPU development machine; the GPU machines
lent to sessions have them). Two directions, both compared by the causal-LM loss over the same pre-tokenized data
(the mean over target tokens, labels shifted by one — what `sft-native eval` prints as eval_loss):

  1. What sft-native wrote is loaded by HF: the random-init base model directory, PEFT adapters trained by
     `sft-native train` (one with modules_to_save on the tied embedding), the merged `export`, a full fine-tune.
     Each HF loss is compared with the eval_loss that `sft-native eval` printed for the same directory.
  2. What HF wrote is loaded by sft-native: a PEFT adapter made by peft's get_peft_model + save_pretrained (random
     non-zero B) and a Llama model saved by save_pretrained in several safetensors shards with an index. Their HF
     losses are written to hf_made/expected.json; `sft-native eval` on them must print the same.

Usage:
  python3 tools/interop/hf_peft_check.py --dir WORK --java-eval WORK/java_eval.txt --out OUT_DIR
WORK is prepared by tools/interop/prepare.sh (sft-native runs on the CPU machine).
"""
import argparse
import json
import math
import os
import sys
import tarfile
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F


def read_jsonl(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                rows.append((o["input_ids"], o.get("labels", o["input_ids"])))
    return rows


@torch.no_grad()
def causal_lm_loss(model, rows, batch=8, pad_id=0):
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        t = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), t), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), t), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), t), dtype=torch.long)
        for r, (x, y) in enumerate(chunk):  # right padding
            ids[r, :len(x)] = torch.tensor(x)
            labels[r, :len(y)] = torch.tensor(y)
            mask[r, :len(x)] = 1
        logits = model(input_ids=ids, attention_mask=mask).logits.float()  # (B, T, V)
        shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])  # (B*(T-1), V)
        shift_labels = labels[:, 1:].reshape(-1)  # (B*(T-1))
        total += F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum").item()
        count += int((shift_labels != -100).sum())
    return total / count, count


def load_java_eval(path):
    out = {}
    for line in open(path):
        name, _, obj = line.partition(": ")
        out[name.strip().strip('"')] = json.loads(obj)
    return out


def tied_variants(work, base, rows, java_loss, report):
    """How PEFT reads modules_to_save=[embed_tokens] on a tied model, written in three ways (diagnostic)."""
    import shutil
    import tempfile
    from peft import PeftModel
    from safetensors.torch import load_file, save_file
    src = work / "demo"
    for name, ensure, head in (("ensure_weight_tying", True, False), ("lm_head_in_modules_to_save", False, True),
                               ("both", True, True)):
        d = Path(tempfile.mkdtemp()) / name
        d.mkdir()
        cfg = json.loads((src / "adapter_config.json").read_text())
        tensors = load_file(src / "adapter_model.safetensors")
        if ensure:
            cfg["ensure_weight_tying"] = True
        if head:
            cfg["modules_to_save"] = cfg["modules_to_save"] + ["lm_head"]
            tensors["base_model.model.lm_head.weight"] = tensors["base_model.model.model.embed_tokens.weight"].clone()
        (d / "adapter_config.json").write_text(json.dumps(cfg))
        save_file(tensors, d / "adapter_model.safetensors", metadata={"format": "pt"})
        try:
            loss, _ = causal_lm_loss(PeftModel.from_pretrained(base(), d), rows)
            rel = abs(loss - java_loss) / java_loss
            msg = f"hf {loss:.8f} sft-native {java_loss:.8f} rel {rel:.2e}"
        except Exception as e:  # noqa: BLE001 - a diagnostic: report and go on
            loss, rel, msg = None, None, f"error: {e!r}"[:300]
        report.setdefault("tied_variants", []).append(dict(variant=name, hf_loss=loss, rel_diff=rel))
        print(f"     tied-embedding variant {name:28s} {msg}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--java-eval", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tol", type=float, default=2e-5, help="max relative loss difference")
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    import peft
    import transformers
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    work, out = Path(a.dir), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_jsonl(work / "eval.jsonl")
    java = load_java_eval(a.java_eval)
    base_dir = work / "demo" / "base_model"
    report = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
              "checks": []}

    def base():
        return AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")

    def check(name, model, note=""):
        loss, n = causal_lm_loss(model, rows)
        j = java[name]["eval_loss"]
        rel = abs(loss - j) / abs(j)
        ok = rel <= a.tol and n == java[name]["eval_tokens"]
        report["checks"].append(dict(name=name, hf_loss=loss, java_loss=j, rel_diff=rel, tokens=n, ok=ok, note=note))
        print(f"{'OK  ' if ok else 'FAIL'} {name:22s} hf {loss:.8f}  sft-native {j:.8f}  rel {rel:.2e}  {note}",
              flush=True)

    # 1. sft-native -> HF
    check("base", base())
    check("lora_adapter", PeftModel.from_pretrained(base(), work / "lora"), "PeftModel.from_pretrained")
    demo = PeftModel.from_pretrained(base(), work / "demo")
    check("demo_adapter", demo, "LoRA + modules_to_save=[embed_tokens] on a tied model")
    tied_variants(work, base, rows, java["demo_adapter"]["eval_loss"], report)
    check("merged", AutoModelForCausalLM.from_pretrained(work / "merged", dtype=torch.float32,
                                                         attn_implementation="eager"), "export (merged)")
    check("full", AutoModelForCausalLM.from_pretrained(work / "full", dtype=torch.float32,
                                                       attn_implementation="eager"), "full fine-tune")

    # 2. HF -> sft-native
    made = Path(tempfile.mkdtemp()) / "hf_made"  # only the tarball goes to --out
    made.mkdir()
    expected = {}
    cfg = LoraConfig(r=4, lora_alpha=8, use_rslora=True, init_lora_weights=False, lora_dropout=0.0,
                     target_modules=["q_proj", "k_proj", "o_proj", "gate_proj", "up_proj"], task_type="CAUSAL_LM")
    torch.manual_seed(1)
    pm = get_peft_model(base(), cfg)
    pm.save_pretrained(made / "peft_adapter")
    expected["peft_adapter"], _ = causal_lm_loss(pm, rows)
    torch.manual_seed(2)
    lc = LlamaConfig(vocab_size=751, hidden_size=128, intermediate_size=352, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                     tie_word_embeddings=False, rope_theta=500000.0, rms_norm_eps=1e-5, attn_implementation="eager")
    lm = LlamaForCausalLM(lc).float()
    lm.save_pretrained(made / "llama_sharded", max_shard_size="300KB", safe_serialization=True)
    expected["llama_sharded"], _ = causal_lm_loss(lm, rows)
    (made / "expected.json").write_text(json.dumps(expected, indent=1))
    print("HF-made:", json.dumps(expected), flush=True)
    with tarfile.open(out / "hf_made.tar.gz", "w:gz") as t:
        t.add(made, arcname="hf_made")
    (out / "interop.json").write_text(json.dumps(report, indent=1))
    if not all(c["ok"] for c in report["checks"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
