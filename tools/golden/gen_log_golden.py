#!/usr/bin/python3
"""Writes src/test/resources/golden/log/:
- float_repr.json: random doubles (as IEEE-754 bits) with Python's repr and round(x, 4), for PyJson;
- trainer_state.json: an HF TrainerState as HF writes it (json.dumps(asdict(state), indent=2, sort_keys=True)),
  for TrainerState (fields as in transformers 4.5x; written from the dataclass's field list, transformers itself is
  not installed here).
Run: /usr/bin/python3 tools/golden/gen_log_golden.py"""
import json
import math
import os
import random
import struct

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "test", "resources", "golden", "log")


def bits(x):
    return struct.unpack("<q", struct.pack("<d", x))[0]


def main():
    rng = random.Random(20240611)
    values = []
    for _ in range(400):
        kind = rng.random()
        if kind < 0.3:
            x = rng.uniform(-10, 10) * 10 ** rng.randint(-12, 20)
        elif kind < 0.5:
            x = round(rng.uniform(0, 5), rng.randint(0, 6))  # loss-like short decimals
        elif kind < 0.7:
            x = rng.uniform(0, 1e-3) * rng.choice([1, 1e-2, 1e-4])  # learning-rate-like
        elif kind < 0.85:
            x = struct.unpack("<d", struct.pack("<q", rng.getrandbits(63)))[0]  # any finite double
            if math.isnan(x) or math.isinf(x):
                continue
        else:
            x = rng.randint(0, 10 ** rng.randint(1, 18)) / rng.choice([1, 3, 7, 1000])
        values.append({"bits": bits(x), "repr": repr(x), "round4": repr(round(x, 4)) if abs(x) < 1e300 else None})
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "float_repr.json"), "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(v) for v in values) + "\n]\n")
    with open(os.path.join(OUT, "trainer_state.json"), "w") as f:
        f.write(json.dumps(trainer_state(), indent=2, sort_keys=True) + "\n")


def trainer_state():
    control = {"should_epoch_stop": False, "should_evaluate": False, "should_log": False, "should_save": True,
               "should_training_stop": False}
    return {
        "epoch": 0.5, "global_step": 4, "max_steps": 8, "logging_steps": 2, "eval_steps": 500, "save_steps": 4,
        "train_batch_size": 2, "num_train_epochs": 1, "num_input_tokens_seen": 0, "total_flos": 1234.0,
        "log_history": [
            {"epoch": 0.25, "grad_norm": 1.5, "learning_rate": 5e-05, "loss": round(2.34567, 4), "step": 2},
            {"epoch": 0.5, "eval_loss": 2.0, "eval_runtime": round(1.2345678, 4),
             "eval_samples_per_second": round(10 / 1.2345678, 3), "eval_steps_per_second": round(2 / 1.2345678, 3),
             "step": 4},
        ],
        "best_metric": None, "best_global_step": None, "best_model_checkpoint": None,
        "is_local_process_zero": True, "is_world_process_zero": True, "is_hyper_param_search": False,
        "trial_name": None, "trial_params": None,
        "stateful_callbacks": {"TrainerControl": {"args": control, "attributes": {}}},
    }


if __name__ == "__main__":
    main()
