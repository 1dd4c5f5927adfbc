#!/usr/bin/python3
"""Writes the DoRA golden files under src/test/resources/golden/dora/ (committed; tests never run Python).

Run from the repository root with Debian's python3-torch 1.13 (NOT a pyenv python; PEFT is not installed there):
    /usr/bin/python3 tools/golden/gen_dora_golden.py
The DoRA layer below transcribes PEFT's lora.Linear forward with the DoRA variant op for op
(tuners/lora/layer.py Linear.forward, variants.py DoraLinearVariant.forward, dora.py DoraLinearLayer):
    result = base_layer(x); x = x.to(lora_A.weight.dtype)
    base_result = result                      (lora_dropout is nn.Identity here)
    lora_weight = lora_B(lora_A(eye(in))).T; weight = base_layer.weight.to(x.dtype)
    weight_norm = linalg.norm(weight + scaling * lora_weight.detach(), dim=1).detach()
    mag_norm_scale = (magnitude / weight_norm).view(1, -1)
    base_result = base_result - bias (when the base has one)
    result = result + (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_B(lora_A(x)) * scaling
    result.to(base dtype)
PEFT's init of the magnitude (DoraLinearLayer.update_layer): linalg.norm(W + scaling * (B @ A), dim=1); its merge
(DoraLinearVariant.merge_safe): delta = (B @ A) * scaling, W' = (magnitude / ||W + delta||_row).view(-1, 1) * (W + delta).
For each case it writes
    CASE/adapter/adapter_config.json + adapter_model.safetensors   PEFT's format (key ...lora_magnitude_vector)
    CASE/expected.safetensors   input_ids, labels, logits, gradients of every lora_A / lora_B / magnitude,
                                init_magnitude.<path> (PEFT's init for B = 0), merged.<path>.weight,
                                after.<param> (the parameters after STEPS plain SGD steps)
    CASE/expected.json          loss, scaling, the loss of every SGD step, lr
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

MODELS = os.path.join("src", "test", "resources", "golden", "model")
OUT = os.path.join("src", "test", "resources", "golden", "dora")
PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
STEPS = 3

CASES = {
    # every linear layer but lm_head, alpha / r scaling
    "llama_all": dict(model="llama_gqa", r=4, alpha=8, rslora=False, targets=PROJ, lr=0.5),
    # q/v/o with rsLoRA on a model whose q/k/v have a bias (PEFT subtracts it from base_result); 5 tokens = the
    # sliding window of this checkpoint, so every layer attends fully (hf_reference has no per-layer qwen2 window)
    "qwen2_bias_rslora": dict(model="qwen2_swa", r=4, alpha=16, rslora=True, targets=["q_proj", "v_proj", "o_proj"],
                              lr=0.1, seq=5),
}


def weight_norm(weight, lora_weight, scaling):
    """DoraLinearLayer.get_weight_norm (fan_in_fan_out False)."""
    weight = weight + scaling * lora_weight
    return torch.linalg.norm(weight, dim=1).to(weight.dtype)


class DoraLinear(nn.Module):
    """PEFT's lora.Linear with use_dora=True, one active adapter, bias 'none', dropout 0 (nn.Identity)."""

    def __init__(self, weight, bias, a, b, magnitude, scaling):
        super().__init__()
        self.base_layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            self.base_layer.weight.copy_(weight)
            if bias is not None:
                self.base_layer.bias.copy_(bias)
        self.base_layer.requires_grad_(False)
        self.lora_A = nn.Linear(a.shape[1], a.shape[0], bias=False)
        self.lora_B = nn.Linear(b.shape[1], b.shape[0], bias=False)
        with torch.no_grad():
            self.lora_A.weight.copy_(a)
            self.lora_B.weight.copy_(b)
        self.magnitude = nn.Parameter(magnitude.clone())
        self.scaling = scaling

    def forward(self, x):
        result = self.base_layer(x)
        torch_result_dtype = result.dtype
        x = x.to(self.lora_A.weight.dtype)
        base_result = result  # DoraLinearVariant.forward: dropout is nn.Identity
        x_eye = torch.eye(self.lora_A.weight.shape[1], dtype=self.lora_A.weight.dtype)
        lora_weight = self.lora_B(self.lora_A(x_eye)).T  # DoraLinearLayer.get_lora_weight
        lora_weight = lora_weight.to(x.dtype)
        magnitude = self.magnitude
        weight = self.base_layer.weight.to(x.dtype)  # dequantize_module_weight(base_layer).to(x.dtype)
        norm = weight_norm(weight, lora_weight.detach(), self.scaling)
        norm = norm.detach()  # DoRA paper section 4.3
        mag_norm_scale = (magnitude / norm).view(1, -1)
        lora_result = self.lora_B(self.lora_A(x))
        bias = self.base_layer.bias
        if bias is not None:
            base_result = base_result - bias
        result_dora = (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * self.scaling
        result = result + result_dora
        return result.to(torch_result_dtype)

    def merged_weight(self):
        """DoraLinearVariant.merge_safe."""
        with torch.no_grad():
            orig = self.base_layer.weight
            delta = (self.lora_B.weight @ self.lora_A.weight) * self.scaling  # get_delta_weight
            norm = weight_norm(orig, delta, 1).detach()
            factor = self.magnitude / norm
            return (factor.view(-1, 1) * (orig + delta)).to(orig.dtype)


def peft_config(case, model_dir):
    """adapter_config.json as PEFT's LoraConfig.save_pretrained writes it (json.dumps indent=2, sort_keys)."""
    return {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": model_dir, "bias": "none",
        "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {}, "lora_alpha": case["alpha"],
        "lora_dropout": 0.0, "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None,
        "peft_type": "LORA", "r": case["r"], "rank_pattern": {}, "revision": None,
        "target_modules": sorted(case["targets"]), "task_type": "CAUSAL_LM", "use_dora": True,
        "use_rslora": case["rslora"],
    }


def main():
    for ci, (name, case) in enumerate(CASES.items()):
        model_dir = os.path.join(MODELS, case["model"], "checkpoint")
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        p, _ = st.load(os.path.join(model_dir, "model.safetensors"))
        p = {k: v.float() for k, v in p.items()}
        gen = torch.Generator().manual_seed(3000 + ci)
        r = case["r"]
        scaling = case["alpha"] / math.sqrt(r) if case["rslora"] else case["alpha"] / r
        mods, adapter, tensors = {}, {}, {}
        for li in range(cfg["num_hidden_layers"]):
            for t in case["targets"]:
                path = "model.layers.%d.%s.%s" % (li, "mlp" if t in ("gate_proj", "up_proj", "down_proj")
                                                  else "self_attn", t)
                w = p[path + ".weight"]
                bound = 1 / math.sqrt(w.shape[1])  # kaiming_uniform_(a=sqrt(5))
                a = (torch.rand(r, w.shape[1], generator=gen) * 2 - 1) * bound
                tensors["init_magnitude." + path] = weight_norm(w, torch.zeros(w.shape[0], r) @ a, scaling)
                b = torch.randn(w.shape[0], r, generator=gen) * 0.05  # nonzero: trained-looking adapters
                m = weight_norm(w, b @ a, scaling) * (1 + 0.1 * torch.randn(w.shape[0], generator=gen))
                mods[path] = DoraLinear(w, p.get(path + ".bias"), a, b, m, scaling)
                adapter["base_model.model." + path + ".lora_A.weight"] = a
                adapter["base_model.model." + path + ".lora_B.weight"] = b
                adapter["base_model.model." + path + ".lora_magnitude_vector"] = m

        B, T = 2, case.get("seq", 12)
        ids = torch.randint(3, cfg["vocab_size"], (B, T), generator=gen)
        labels = ids.clone()
        labels[0, :3] = ref.IGNORE_INDEX
        labels[1, :5] = ref.IGNORE_INDEX
        pos = torch.arange(T)[None].expand(B, T).contiguous()
        vis = ref.visible_mask(cfg, batch=B, seq=T)

        def proj(module, x):
            if module in mods:
                return mods[module](x)
            return ref.linear(x, p[module + ".weight"], p.get(module + ".bias"))

        def params():
            out = {}
            for path, mod in mods.items():
                out[path + ".lora_A.weight"] = mod.lora_A.weight
                out[path + ".lora_B.weight"] = mod.lora_B.weight
                out[path + ".lora_magnitude_vector"] = mod.magnitude
            return out

        logits = ref.forward(cfg, p, ids, pos, vis, proj=proj)
        loss = ref.causal_lm_loss(logits, labels)
        loss.backward()
        tensors.update({"input_ids": ids, "labels": labels, "logits": logits.detach()})
        for k, v in params().items():
            tensors["grad." + k] = v.grad.clone()
        for path, mod in mods.items():
            tensors["merged." + path + ".weight"] = mod.merged_weight()
            assert mod.base_layer.weight.grad is None

        losses = []
        for _ in range(STEPS):  # plain SGD: p -= lr * grad, from the gradients of the previous forward
            with torch.no_grad():
                for v in params().values():
                    v -= case["lr"] * v.grad
                    v.grad = None
            step_loss = ref.causal_lm_loss(ref.forward(cfg, p, ids, pos, vis, proj=proj), labels)
            step_loss.backward()
            losses.append(float(step_loss))
        for k, v in params().items():
            tensors["after." + k] = v.detach().clone()

        out = os.path.join(OUT, name)
        os.makedirs(os.path.join(out, "adapter"), exist_ok=True)
        st.save(os.path.join(out, "adapter", "adapter_model.safetensors"), adapter, {"format": "pt"})
        with open(os.path.join(out, "adapter", "adapter_config.json"), "w") as f:
            f.write(json.dumps(peft_config(case, model_dir), indent=2, sort_keys=True))
        st.save(os.path.join(out, "expected.safetensors"), tensors)
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump({"case": name, "model": case["model"], "loss": float(loss), "scaling": scaling,
                       "lr": case["lr"], "step_losses": losses}, f, indent=2, sort_keys=True)
            f.write("\n")
        print(name, "loss", float(loss), "steps", losses, "scaling", scaling, "tensors", len(adapter))


if __name__ == "__main__":
    main()
