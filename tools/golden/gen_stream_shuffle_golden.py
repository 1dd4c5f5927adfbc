"""HF datasets' IterableDataset.shuffle(seed, buffer_size) orders, for StreamingTest.

Run with a Python that has datasets (pip install datasets):
    python tools/golden/gen_stream_shuffle_golden.py > src/test/resources/golden/formats/stream_shuffle.json
Each case: n examples 0..n-1 streamed through the shuffle buffer, at epoch 0 and epoch 1 (set_epoch), the order
LLaMA-Factory's streaming mode feeds to the Trainer (one shard).
"""
import json

import datasets

cases = []
for n, buffer_size, seed in [(10, 4, 42), (2500, 100, 0), (3000, 1200, 7), (50, 64, 123), (1, 3, 5)]:
    ds = datasets.Dataset.from_dict({"i": list(range(n))}).to_iterable_dataset(num_shards=1)
    ds = ds.shuffle(seed=seed, buffer_size=buffer_size)
    epochs = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        epochs.append([x["i"] for x in ds])
    cases.append({"n": n, "buffer_size": buffer_size, "seed": seed, "epoch0": epochs[0], "epoch1": epochs[1]})
print(json.dumps({"datasets": datasets.__version__, "cases": cases}))
