"""Writes the .csv/.parquet/.arrow/save_to_disk test datasets of DatasetFormatsTest with independent writers.

Run with a Python that has pyarrow and datasets (e.g. a venv: pip install pyarrow datasets):
    python tools/golden/gen_dataset_formats.py src/test/resources/golden/formats
Each dataset is also written as JSON lines; the test checks that every format yields the JSON's examples.
"""
import json
import os
import shutil
import sys

import datasets
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

alpaca = [
    {"instruction": "Say hi", "input": "", "output": "Hi!"},
    {"instruction": "Translate", "input": "caf\u00e9, \"quoted\", comma", "output": "coffee shop"},
    {"instruction": "Two lines", "input": "first\nsecond", "output": "done"},
    {"instruction": "Unicode \u4f60\u597d \U0001F600", "input": "x", "output": "y"},
    {"instruction": "Last", "input": "", "output": "end"},
]
sharegpt = [
    {"conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hi there"}],
     "system": "Be brief."},
    {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"},
                       {"from": "human", "value": "and 3+3?"}, {"from": "gpt", "value": "6"}],
     "system": None},
    {"conversations": [{"from": "human", "value": "\u00fcml\u00e4ut"}, {"from": "gpt", "value": "ok"}],
     "system": ""},
]
openai = [
    {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q1"},
                  {"role": "assistant", "content": "a1"}]},
    {"messages": [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]},
]


def jsonl(name, rows):
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def ipc_stream(path, table, max_chunksize):
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=max_chunksize)


def ipc_file(path, table, max_chunksize):
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table, max_chunksize=max_chunksize)


def save_to_disk(name, rows, shards):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    datasets.Dataset.from_list(rows).save_to_disk(d, num_shards=shards)


for name, rows in [("alpaca", alpaca), ("sharegpt", sharegpt), ("openai", openai)]:
    jsonl(name + ".jsonl", rows)
    table = pa.Table.from_pylist(rows)
    # two rows per row group / record batch: the readers must go batch by batch
    pq.write_table(table, os.path.join(out, name + ".parquet"), row_group_size=2)  # snappy (pyarrow's default)
    ipc_stream(os.path.join(out, name + ".arrow"), table, 2)
    save_to_disk(name + "_disk", rows, 2)

alpaca_table = pa.Table.from_pylist(alpaca)
pq.write_table(alpaca_table, os.path.join(out, "alpaca_zstd.parquet"), compression="zstd", row_group_size=3)
pq.write_table(alpaca_table, os.path.join(out, "alpaca_gzip.parquet"), compression="gzip")
ipc_file(os.path.join(out, "alpaca_file_format.arrow"), alpaca_table, 3)
pacsv.write_csv(alpaca_table, os.path.join(out, "alpaca.csv"))
# large_string columns (what HF datasets writes for large text) and a DatasetDict directory
large = alpaca_table.cast(pa.schema([pa.field(f.name, pa.large_string()) for f in alpaca_table.schema]))
ipc_stream(os.path.join(out, "alpaca_large_string.arrow"), large, 2)
dd = os.path.join(out, "alpaca_dict")
shutil.rmtree(dd, ignore_errors=True)
datasets.DatasetDict({"train": datasets.Dataset.from_list(alpaca)}).save_to_disk(dd)
# a column of an unsupported type (a map), to test the error
maps = pa.table({"instruction": ["a"], "output": ["b"],
                 "input": pa.array([[("k", "v")]], type=pa.map_(pa.string(), pa.string()))})
pq.write_table(maps, os.path.join(out, "alpaca_map_column.parquet"))
ipc_stream(os.path.join(out, "alpaca_map_column.arrow"), maps, 1)
print("pyarrow", pa.__version__, "datasets", datasets.__version__)
