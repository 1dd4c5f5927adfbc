#!/usr/bin/env bash
# The sft-native side of the Hugging Face interoperability check (tools/interop/hf_peft_check.py).
# Run from the repository root after `mvn package`; writes WORK (default .interop/, ignored by git):
#   demo/           the built-in demo trained briefly: random-init Qwen2-shaped base_model/ + a LoRA adapter with
#                   modules_to_save on the tied embedding
#   lora/           LoRA on q/v/down_proj with rsLoRA and dropout 0.1, 15 steps
#   full/           full fine-tune, 15 steps
#   merged/         `export` of lora/ merged into the base
#   eval.jsonl      the demo data, templated and tokenized (`preflight --dump`)
#   java_eval.txt   sft-native's eval_loss of each of them over eval.jsonl
# Then, on a machine with torch + transformers + peft (the GPU machines have them):
#   python3 tools/interop/hf_peft_check.py --dir WORK --java-eval WORK/java_eval.txt --out OUT
set -euo pipefail
WORK=$(realpath -m "${1:-.interop}")
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
JAR=$(realpath target/sft-native.jar)
sft() { "$JAVA" -jar "$JAR" "$@"; }
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
sft train --demo output_dir="$WORK/demo" num_train_epochs=2 logging_steps=10 >/dev/null
B=$WORK/demo/base_model
cat >lora.yaml <<YAML
model_name_or_path: $B
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_alpha: 16
lora_dropout: 0.1
use_rslora: true
lora_target: q_proj,v_proj,down_proj
dataset: demo_sft
dataset_dir: $WORK/demo/data
template: qwen
cutoff_len: 128
output_dir: $WORK/lora
overwrite_output_dir: true
per_device_train_batch_size: 8
learning_rate: 5.0e-3
max_steps: 15
logging_steps: 5
seed: 7
YAML
sed -e 's/finetuning_type: lora/finetuning_type: full/' -e "s#$WORK/lora#$WORK/full#" -e 's/5.0e-3/1.0e-3/' lora.yaml >full.yaml
sft train lora.yaml >/dev/null
sft train full.yaml >/dev/null
sft export model_name_or_path="$B" adapter_name_or_path="$WORK/lora" export_dir="$WORK/merged" >/dev/null
sft preflight lora.yaml --dump "$WORK/eval.jsonl" >/dev/null
rm -rf demo/checkpoint-* lora/checkpoint-* full/checkpoint-*
for c in "base:model_name_or_path=$B" "demo_adapter:model_name_or_path=$B adapter_name_or_path=$WORK/demo" \
    "lora_adapter:model_name_or_path=$B adapter_name_or_path=$WORK/lora" "merged:model_name_or_path=$WORK/merged" \
    "full:model_name_or_path=$WORK/full"; do
  # shellcheck disable=SC2086 # the overrides are word-split on purpose
  echo "\"${c%%:*}\": $(sft eval ${c#*:} dataset="$WORK/eval.jsonl" cutoff_len=128 per_device_eval_batch_size=8 2>/dev/null | tail -1)"
done >java_eval.txt
cat java_eval.txt
