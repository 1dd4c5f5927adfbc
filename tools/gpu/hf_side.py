"""The PyTorch side of the GPU end-to-end check (issue 19), run on the GPU machine by tools/gpu/device_check.sh.

  make  DIR   writes a random-init Qwen2.5-0.5B-shaped model (bf16 safetensors, transformers' own save) and
              DIR/data.jsonl: pre-tokenized rows {"input_ids", "labels"} that sft-native and this script both train on
  train DIR   LoRA (r=16, alpha=32, every linear layer) in bf16 with transformers + PEFT over the same rows, batch
              and steps as the Java run; prints one JSON line: tokens/s and torch.cuda peak memory
"""
import json
import sys
import time

import torch

ROWS, SEQ, BATCH, STEPS = 64, 1024, 4, 16


def make(d):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                      num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                      rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, torch_dtype="bfloat16")
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).to(torch.bfloat16).save_pretrained(d)
    g = torch.Generator().manual_seed(1)
    with open(f"{d}/data.jsonl", "w") as f:
        for _ in range(ROWS):
            ids = torch.randint(0, 151936, (SEQ,), generator=g).tolist()
            f.write(json.dumps({"input_ids": ids, "labels": ids}) + "\n")


def train(d):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.bfloat16).cuda()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"))
    rows = [json.loads(l)["input_ids"] for l in open(f"{d}/data.jsonl")]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(STEPS):
        batch = torch.tensor(rows[(step * BATCH) % ROWS:(step * BATCH) % ROWS + BATCH], device="cuda")
        torch.cuda.synchronize()
        t = time.perf_counter()
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    steady = times[2:]  # the first steps pay cuBLAS/cuDNN set-up
    print(json.dumps({"side": "pytorch-peft-lora-bf16", "torch": torch.__version__,
                      "tokens_per_s": BATCH * SEQ * len(steady) / sum(steady),
                      "peak_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
                      "last_loss": loss.item()}))


if __name__ == "__main__":
    {"make": make, "train": train}[sys.argv[1]](sys.argv[2])
