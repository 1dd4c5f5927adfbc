#!/usr/bin/env bash
# Hostile-input run against the built jar (issue 13): bad configs, data files, model files, checkpoints, adapters,
# signals, concurrent runs and odd chat input, as a user would meet them. Prints one verdict per case and the counts.
#
#   mvn -o -q package -DskipTests && tools/hostile/run.sh [path/to/sft-native.jar]
#
# A case passes when the command ends with the expected exit code, its output matches the expected message, nothing
# hangs (every command runs under `timeout`) and no JVM crash shows (hs_err, SIGSEGV, an uncaught exception trace).
# Needs: java on PATH (or JAVA_HOME), python3 (plain, no packages) to write hostile files, mkfifo, timeout.
set -u
JAR=$(realpath "${1:-target/sft-native.jar}")
[[ -f $JAR ]] || { echo "no jar at $JAR: build it with mvn -o -q package -DskipTests"; exit 2; }
[[ -n ${JAVA_HOME:-} ]] && PATH=$JAVA_HOME/bin:$PATH
PY=${PYTHON:-/usr/bin/python3}
W=$(mktemp -d /tmp/sft-hostile.XXXXXX)
export SFT_CACHE_DIR=$W/cache
cd "$W" || exit 2
PASS=0; FAIL=0; FAILED=()

sft() { timeout "${T:-300}" java -jar "$JAR" "$@"; }

# check NAME WANT_RC REGEX OUTPUT RC
check() {
  local name=$1 want=$2 pat=$3 out=$4 rc=$5
  if [[ $rc == "$want" ]] && grep -qE -- "$pat" <<<"$out" \
      && ! grep -qE 'hs_err|SIGSEGV|Exception in thread|^\s+at [a-z]+\.' <<<"$out"; then
    PASS=$((PASS + 1)); printf 'PASS  %s\n' "$name"
  else
    FAIL=$((FAIL + 1)); FAILED+=("$name"); printf 'FAIL  %s (exit %s, wanted %s; /%s/)\n' "$name" "$rc" "$want" "$pat"
    tail -n 4 <<<"$out" | sed 's/^/        | /'
  fi
}

# expect NAME WANT_RC REGEX -- command...   (ONLY=regex runs just the cases whose name matches)
expect() {
  local name=$1 want=$2 pat=$3; shift 4
  [[ -n ${ONLY:-} && ! $name =~ $ONLY ]] && return 0
  local out rc
  out=$("$@" 2>&1); rc=$?
  check "$name" "$want" "$pat" "$out" "$rc"
}

sha() { sha256sum "$1" | cut -c1-64; }
sel() { [[ -z ${ONLY:-} || $1 =~ $ONLY ]]; } # whether a multi-step case is selected

echo "== setup: the demo model, 4 training steps (work dir $W)"
sft train --demo output_dir="$W/demo" max_steps=4 save_steps=2 logging_steps=2 >"$W/demo.log" 2>&1 \
  || { echo "demo failed:"; tail "$W/demo.log"; exit 2; }
M=$W/demo/base_model; D=$W/demo/data; A=$W/demo
base=(model_name_or_path="$M" dataset=demo_sft dataset_dir="$D" template=qwen cutoff_len=64
      per_device_train_batch_size=4 max_steps=2 save_steps=2 logging_steps=1 preprocessing_num_workers=1)

echo "== config"
expect "max_steps wraps past 2^64" 1 "key 'max_steps' .* is 18446744073709551617, out of range" -- \
  sft train "${base[@]}" output_dir=o1 max_steps=18446744073709551617
expect "batch size past 2^32" 1 "per_device_train_batch_size.*4294967300, out of range" -- \
  sft train "${base[@]}" output_dir=o2 per_device_train_batch_size=4294967300
printf 'learning_rate: .nan\n' > nan.yaml
expect "learning_rate: .nan" 1 "key 'learning_rate' .* must be a finite number, got '.nan'" -- \
  sft train nan.yaml "${base[@]}" output_dir=o3
printf 'learning_rate: 1.0e-3\nlora_rank: 4\nlearning_rate: 2.0e-3\n' > dup.yaml
expect "duplicate YAML key" 1 "key 'learning_rate' is set twice, at line 1 and at line 3" -- \
  sft train dup.yaml "${base[@]}" output_dir=o4
printf 'warmup_ratio:\n' > empty.yaml
expect "empty value warns" 0 "config key 'warmup_ratio' .* has no value; its default is used" -- \
  sft train empty.yaml "${base[@]}" output_dir=o5
expect "unknown key" 1 "unknown config key 'learning_rte'.*did you mean 'learning_rate'" -- \
  sft train "${base[@]}" output_dir=o6 learning_rte=1e-3
expect "learning_rate not a number" 1 "key 'learning_rate' .* must be a number, got 'fast'" -- \
  sft train "${base[@]}" output_dir=o7 learning_rate=fast
expect "lora_rank 2.5" 1 "key 'lora_rank' .* must be a whole number" -- \
  sft train "${base[@]}" output_dir=o8 lora_rank=2.5
echo notes > afile
expect "output_dir is a file" 1 "output_dir afile is a file, not a directory" -- \
  sft train "${base[@]}" output_dir=afile
expect "dataset_dir is a file" 1 "dataset_dir afile is a file, not a directory" -- \
  sft train "${base[@]}" output_dir=o9 dataset_dir=afile
expect "no trainable tokens" 1 "no trainable tokens: every token" -- \
  sft train "${base[@]}" output_dir=o10 cutoff_len=2

echo "== data"
"$PY" - "$W" <<'PYEOF'
import json, os, sys
w = sys.argv[1]
rec = lambda i: {"instruction": f"question {i}", "output": f"answer {i}"}
open(f"{w}/latin1.jsonl", "wb").write(b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "x"}\n')
open(f"{w}/latin1.txt", "wb").write(b"plain line\ncaf\xe9 au lait\n")
open(f"{w}/latin1.json", "wb").write(b'[{"instruction": "caf\xe9", "output": "x"}]')
a = json.dumps([rec(i) for i in range(10)]); b = json.dumps([rec(i) for i in range(30)])
open(f"{w}/cat.json", "w").write(a + "\n" + b + "\n")
open(f"{w}/garbage.json", "w").write(a + "]]] garbage\n")
open(f"{w}/trunc.json", "w").write(a[:-40])
open(f"{w}/empty.jsonl", "w").write("")
open(f"{w}/twoperline.jsonl", "w").write("\n".join(json.dumps(rec(i)) for i in range(8)) + "\n"
    + json.dumps(rec(8)) + " " + json.dumps(rec(9)) + "\n")
open(f"{w}/notobjects.json", "w").write("[1, 2, 3]")
PYEOF
expect "Latin-1 .jsonl" 1 "latin1.jsonl:2:21: not valid UTF-8 \(byte 0xE9" -- \
  sft train "${base[@]}" output_dir=d1 dataset="$W/latin1.jsonl"
expect "Latin-1 .txt (pt)" 1 "latin1.txt:2:4: not valid UTF-8" -- \
  sft train "${base[@]}" output_dir=d2 dataset="$W/latin1.txt" stage=pt
expect "Latin-1 .json" 1 "latin1.json:1:.*UTF-8" -- \
  sft train "${base[@]}" output_dir=d3 dataset="$W/latin1.json"
expect "two arrays concatenated" 1 "cat.json:2:1: more content after the JSON array" -- \
  sft train "${base[@]}" output_dir=d4 dataset="$W/cat.json"
expect "garbage after the array" 1 "garbage.json:1:[0-9]+: more content after the JSON array" -- \
  sft train "${base[@]}" output_dir=d5 dataset="$W/garbage.json"
expect "truncated JSON array" 1 "trunc.json.*(not closed|malformed JSON|Unexpected end)" -- \
  sft train "${base[@]}" output_dir=d6 dataset="$W/trunc.json"
expect "empty data file" 1 "gives no examples: no records were read" -- \
  sft train "${base[@]}" output_dir=d7 dataset="$W/empty.jsonl"
expect "two objects on one JSON line dropped" 0 "dropped 1: malformed JSON \(first at twoperline.jsonl:9\)" -- \
  sft train "${base[@]}" output_dir=d8 dataset="$W/twoperline.jsonl"
expect "array of numbers" 1 "every record was dropped" -- \
  sft train "${base[@]}" output_dir=d9 dataset="$W/notobjects.json"
mkfifo "$W/pipe.jsonl"
expect "named pipe dataset" 1 "is not a regular file \(a named pipe" -- \
  timeout 60 java -jar "$JAR" train "${base[@]}" output_dir=d10 dataset="$W/pipe.jsonl"
expect "missing dataset" 1 "unknown dataset 'nope'" -- sft train "${base[@]}" output_dir=d11 dataset=nope

echo "== model files"
cp -r "$M" m_str; sed -i -E 's/"hidden_size" *: *256/"hidden_size": "256"/' m_str/config.json
expect "hidden_size as a string" 1 "key 'hidden_size' must be a positive whole number .*got the string \"256\"" -- \
  sft train "${base[@]}" output_dir=m1 model_name_or_path=m_str
cp -r "$M" m_nan
"$PY" - m_nan/model.safetensors model.layers.1.mlp.down_proj.weight <<'PYEOF'
import json, struct, sys
f = open(sys.argv[1], "r+b"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
f.seek(8 + n + h[sys.argv[2]]["data_offsets"][0]); f.write(struct.pack("<f", float("nan")))
PYEOF
expect "NaN base weights (train)" 1 "tensor 'model.layers.1.mlp.down_proj.weight' of the model in .* holds 1 NaN" -- \
  sft train "${base[@]}" output_dir=m2 model_name_or_path=m_nan
expect "NaN base weights (chat)" 1 "holds 1 NaN" -- bash -c "echo hello | java -jar '$JAR' chat m_nan"
printf 'model_name_or_path: m_nan\ndataset: demo_sft\ndataset_dir: %s\ntemplate: qwen\ncutoff_len: 64\nval_size: 8\n' "$D" > eval.yaml
expect "NaN base weights (eval)" 1 "holds 1 NaN" -- sft eval eval.yaml output_dir=m3
cp -r "$M" m_trunc; truncate -s -1000 m_trunc/model.safetensors
expect "truncated safetensors" 1 "model.safetensors" -- sft train "${base[@]}" output_dir=m4 model_name_or_path=m_trunc
expect "missing model dir" 1 "model_name_or_path .* is not a directory" -- \
  sft train "${base[@]}" output_dir=m5 model_name_or_path=nowhere

echo "== export"
ln -s "$M" m_link; before=$(sha "$M/model.safetensors")
expect "export onto the base through a symlink" 1 "would replace .*symbolic link" -- \
  sft export model_name_or_path=m_link adapter_name_or_path="$A" export_dir="$M"
[[ $(sha "$M/model.safetensors") == "$before" ]] && check "base model intact after that" 0 . ok 0 \
  || check "base model intact after that" 0 . changed 1
mkdir -p a_nan_only; cp "$A"/adapter_config.json "$A"/adapter_model.safetensors a_nan_only/
"$PY" - a_nan_only/adapter_model.safetensors <<'PYEOF'
import json, struct, sys
f = open(sys.argv[1], "r+b"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
k = sorted(x for x in h if x.endswith("lora_B.weight"))[0]; e = h[k]
f.seek(8 + n + e["data_offsets"][0]); f.write(struct.pack("<f", float("nan")) if e["dtype"] == "F32" else b"\xc0\x7f")
PYEOF
expect "export a NaN adapter" 1 "adapter tensor '.*lora_B.weight' in .* holds 1 NaN" -- \
  sft export model_name_or_path="$M" adapter_name_or_path=a_nan_only export_dir=e1
[[ ! -e e1 ]] && check "nothing exported" 0 . ok 0 || check "nothing exported" 0 . exists 1
mkdir -p a_rank; cp "$A"/adapter_config.json "$A"/adapter_model.safetensors a_rank/
sed -i -E 's/"r": *16/"r": 8/' a_rank/adapter_config.json
expect "adapter rank contradicts config" 1 "says r=8 but .* has rank 16" -- \
  sft export model_name_or_path="$M" adapter_name_or_path=a_rank export_dir=e2

echo "== runs, checkpoints, signals"
ln -s "$M" m_link2
expect "train output_dir = model (symlink)" 1 "which this run reads" -- \
  sft train "${base[@]}" model_name_or_path=m_link2 output_dir="$M" overwrite_output_dir=true finetuning_type=full
if sel "kill -9|lock"; then
java -jar "$JAR" train "${base[@]}" output_dir=r1 max_steps=400 save_steps=100 >r1.log 2>&1 &
launcher=$! # the java -jar process itself
for _ in $(seq 60); do grep -q "steps per epoch" r1.log 2>/dev/null && break; sleep 1; done
expect "second run on the same output_dir" 1 "output_dir r1 is in use by another run \(pid [0-9]+ on host" -- \
  sft train "${base[@]}" output_dir=r1 max_steps=400 save_steps=100
# kill -9 of the launcher JVM itself (the java -jar process), not a wrapper
child=$(pgrep -P "$launcher" | head -1)
kill -9 "$launcher"
gone=1; for _ in $(seq 20); do kill -0 "$child" 2>/dev/null || { gone=0; break; }; sleep 0.5; done
check "kill -9 of the launcher: the trainer child stops" 0 . "child ${child:-none}" $(( gone || ${#child} == 0 ))
wait "$launcher" 2>/dev/null
last=$(ls -d r1/checkpoint-* 2>/dev/null | sed 's/.*-//' | sort -n | tail -1)
expect "the lock is free after kill -9 (the next run resumes)" 0 "resuming from .*checkpoint-${last:-none}" -- \
  sft train "${base[@]}" output_dir=r1 max_steps=$(( ${last:-0} + 1 )) save_steps=100
fi

if sel "truncated optimizer"; then
sft train "${base[@]}" output_dir=c1 max_steps=4 save_steps=2 >/dev/null 2>&1
truncate -s 100 c1/checkpoint-4/optimizer.safetensors
expect "truncated optimizer file" 1 "checkpoint-4 is damaged: optimizer.safetensors has 100 bytes.*Resume from checkpoint-2 instead" -- \
  sft train "${base[@]}" output_dir=c1 max_steps=6 save_steps=2
fi
if sel "flipped byte"; then
sft train "${base[@]}" output_dir=c2 max_steps=4 save_steps=2 >/dev/null 2>&1
"$PY" - c2/checkpoint-4/adapter_model.safetensors <<'PYEOF'
import sys
f = open(sys.argv[1], "r+b"); f.seek(-3, 2); b = f.read(1); f.seek(-3, 2); f.write(bytes([b[0] ^ 0x10]))
PYEOF
expect "flipped byte in a checkpoint" 1 "checkpoint-4 is damaged: adapter_model.safetensors has checksum.*Resume from checkpoint-2" -- \
  sft train "${base[@]}" output_dir=c2 max_steps=6 save_steps=2
fi
if sel "SIGTERM"; then
setsid java -jar "$JAR" train "${base[@]}" output_dir=c3 max_steps=3000 save_steps=1000 >c3.log 2>&1 &
pid=$! # its own process group, as a terminal's foreground job
for _ in $(seq 120); do grep -q "steps per epoch" c3.log 2>/dev/null && break; sleep 0.5; done
# SIGTERM to the group (a script's background jobs ignore SIGINT, so Ctrl-C cannot be sent from here)
sleep 3; kill -TERM -- "-$pid" 2>/dev/null; wait "$pid"; rc=$?
check "SIGTERM stops after the step with a checkpoint (exit 143)" 143 \
  "cancelled after step [0-9]+; resume with resume_from_checkpoint: .*checkpoint-" "$(cat c3.log)" $rc
fi

echo "== chat and generate"
if sel "chat"; then
long=$("$PY" -c 'print("word " * 20000)')
out=$( (printf '%s\nhello\n/exit\n' "$long") | T=120 sft chat "$M" --adapter "$A" --max-new-tokens 8 2>&1); rc=$?
check "chat: a 100 KB line is refused, the session goes on" 0 "error: this message is [0-9]+ tokens.*context is 512" "$out" $rc
out=$( (for i in $(seq 20); do echo "tell me a long story about the sea, the sky, the mountains, the rivers, the"\
  "forests and the cities of the world, number $i"; done) | T=600 sft chat "$M" --max-new-tokens 8 2>&1); rc=$?
check "chat: a conversation outgrowing the context warns" 0 "outgrew the model's context of 512 tokens" "$out" $rc
fi
ids=$(seq -s, 1 600 | sed 's/[0-9]\+/5/g')
expect "generate: prompt longer than the context" 1 "the prompt is 600 tokens but the model's context is 512" -- \
  sft generate "$M" --ids "$ids" --max-new-tokens 4

echo
echo "hostile-input run: $PASS passed, $FAIL failed, $((PASS + FAIL)) cases (work dir $W)"
for f in "${FAILED[@]}"; do echo "  failed: $f"; done
[[ $FAIL == 0 ]]
