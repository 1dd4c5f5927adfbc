"""Golden draws for NumpyRandomTest and the num_samples / interleave_probs tests.

Run with any python3 that has numpy (the pyenv python3 here has numpy 2.4.6; Debian's /usr/bin/python3 has none):
    python3 tools/golden/gen_numpy_sampling_golden.py > src/test/resources/golden/data/numpy_sampling.json

What LLaMA-Factory does with these generators (loader.py _load_single_dataset, HF datasets
_interleave_map_style_datasets) is re-stated in our own words in DatasetSampling / DatasetMix.
"""
import json

import numpy as np

out = {"numpy": np.__version__}

# legacy global state after transformers.set_seed(seed): permutation, then choice (num_samples)
legacy = []
for seed, n, size in [(42, 10, 5), (0, 1, 3), (1234, 1000, 7), (7, 70000, 4), (42, 3, 8)]:
    np.random.seed(seed)
    perm = np.random.permutation(n).tolist()
    if n > 100:  # keep the file small: the ends of a long permutation
        perm = perm[:10] + perm[-10:]
    choice = np.random.choice(n, size).tolist()
    legacy.append({"seed": seed, "n": n, "size": size, "permutation": perm, "choice": choice})
out["legacy"] = legacy

# LLaMA-Factory's num_samples rule for two datasets in a row sharing the global state
def sample(n, target):
    idx = np.random.permutation(n)[:target]
    rest = target - len(idx)
    if rest > 0:
        idx = np.concatenate((idx, np.random.choice(n, rest)), axis=0)
    return idx.tolist()

np.random.seed(42)
out["num_samples"] = {"seed": 42, "first": {"n": 7, "num_samples": 3, "indices": sample(7, 3)},
                      "second": {"n": 4, "num_samples": 10, "indices": sample(4, 10)}}

gens = []
for seed, p in [(42, [0.2, 0.3, 0.5]), (0, [0.5, 0.5]), (2**40 + 5, [0.1, 0.9]), (123, [1.0])]:
    rng = np.random.default_rng(seed)
    doubles = rng.random(5).tolist()
    choice = [int(i) for i in rng.choice(len(p), size=1000, p=p)]
    gens.append({"seed": seed, "p": p, "random": doubles, "choice": choice})
out["generator"] = gens

# HF datasets' interleave of map-style datasets with probabilities, restated: draw sources 1000 at a time from
# default_rng(seed); stop when any (first_exhausted) / every (all_exhausted, ..._without_replacement) source is used up
def interleave(lengths, probs, seed, strategy):
    offsets = np.cumsum([0] + lengths[:-1])
    once = strategy == "all_exhausted_without_replacement"
    stop = np.any if strategy == "first_exhausted" else np.all
    exhausted = np.full(len(lengths), False)
    current = [0] * len(lengths)
    rng = np.random.default_rng(seed)
    out = []
    while True:
        for src in (int(i) for i in rng.choice(len(lengths), size=1000, p=probs)):
            if stop(exhausted):
                return out
            if not once or not exhausted[src]:
                out.append(int(current[src] + offsets[src]))
                current[src] += 1
            if current[src] >= lengths[src]:
                exhausted[src] = True
                if not once:
                    current[src] = 0

out["interleave"] = [
    {"lengths": l, "probs": p, "seed": s, "strategy": st, "indices": interleave(l, p, s, st)}
    for l, p, s, st in [([5, 3, 4], [0.2, 0.3, 0.5], 42, "first_exhausted"),
                        ([5, 3, 4], [0.2, 0.3, 0.5], 42, "all_exhausted"),
                        ([5, 3, 4], [0.2, 0.3, 0.5], 42, "all_exhausted_without_replacement"),
                        ([40, 2], [0.9, 0.1], 7, "all_exhausted")]]
print(json.dumps(out))
