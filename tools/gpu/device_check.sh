#!/usr/bin/env bash
# The whole GPU check of issue 19, run on a GPU machine from the repository root after every .gpu-bundle/part-*
# made by tools/gpu/pack.sh has been carried there. Writes its results under $OUT (default ./gpu-check-out):
#   versions.txt     driver, GPU, CUDA/cuDNN/NCCL wheel versions, native-info
#   junit/           DeviceTrainingTest on cuda (golden parity, LoRA/QLoRA/full vs CPU, bf16, generation, resume),
#                    NcclGroupTest and ZeroNcclTest (one-rank Gloo + NCCL group: collectives, ZeRO 1-3 vs the CPU)
#   demo.txt         the demo on the GPU (java -jar sft-native.jar train --demo device=cuda)
#   e2e.jsonl        a Qwen2.5-0.5B-shaped model: ours LoRA bf16, ours QLoRA + checkpointing + fused CE, PyTorch+PEFT
#                    LoRA bf16, each with tokens/s and peak GPU memory (nvidia-smi, sampled every 100 ms)
# SFT_TEST_DEVICE=cpu rehearses the Java part on a machine without a GPU (pack.sh cpu; no nvidia-smi, no e2e;
# DEMO_ARGS=num_train_epochs=1 shortens the demo there).
set -uo pipefail
OUT=${OUT:-$PWD/gpu-check-out}; mkdir -p "$OUT"
dev=${SFT_TEST_DEVICE:-cuda}
work=${GPU_CHECK_DIR:-/tmp/sft-gpu}; mkdir -p "$work"
(cd .gpu-bundle && sha256sum -c --quiet SHA256SUMS) || { echo "a part is missing or damaged"; exit 2; }
[ -f "$work/sft-native.jar" ] || cat .gpu-bundle/part-* | tar -x -C "$work" || exit 2
[ -d "$work/test-classes" ] || tar -C "$work" -xf "$work/test-classes.tar"
# The CUDA 13 / cuDNN 9 / NCCL 2 libraries libtorch links against: the nvidia-* wheels of the machine's PyTorch.
site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null)
if [ -n "$site" ]; then
  export LD_LIBRARY_PATH="$(ls -d "$site"/nvidia/*/lib | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
java=("$work/jre/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow
      -Dai.djl.offline=true)
export OMP_WAIT_POLICY=PASSIVE
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  python3 -m pip list 2>/dev/null | grep -iE '^(torch|nvidia-(cuda-runtime|cublas|cudnn|nccl)[a-z0-9-]*) '
  "${java[@]}" -jar "$work/sft-native.jar" native-info 2>&1
} > "$OUT/versions.txt"
cat "$OUT/versions.txt"

peak() { # runs "$@" while sampling the GPU's used memory; prints the peak MiB on the last line of $OUT/$tag.txt
  local tag=$1; shift
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$OUT/$tag.mem" &
    local smi=$!
  fi
  local t0=$(date +%s.%N); "$@" > "$OUT/$tag.txt" 2>&1; local rc=$?
  echo "wall_s $(awk "BEGIN {print $(date +%s.%N) - $t0}") rc $rc" >> "$OUT/$tag.txt"
  if [ -n "${smi:-}" ]; then kill "$smi"; echo "peak_gpu_mib $(sort -n "$OUT/$tag.mem" | tail -1)" >> "$OUT/$tag.txt"; fi
  tail -3 "$OUT/$tag.txt"
}

peak junit "${java[@]}" -Dsft.test.device="$dev" -cp \
  "$work/sft-native.jar:$work/test-classes:$work/junit-platform-console-standalone-1.14.1.jar" \
  org.junit.platform.console.ConsoleLauncher execute --select-class io.sftnative.gpu.DeviceTrainingTest --select-class io.sftnative.distributed.NcclGroupTest \
  --select-class io.sftnative.distributed.ZeroNcclTest \
  --include-tag gpu --reports-dir "$OUT/junit" --details summary --disable-banner
peak demo "${java[@]}" -jar "$work/sft-native.jar" train --demo device="$dev" output_dir="$work/demo" ${DEMO_ARGS:-}

[ "$dev" = cpu ] && exit 0
m="$work/qwen2_5_0_5b_shape"
[ -f "$m/config.json" ] || python3 tools/gpu/hf_side.py make "$m"
cp "$work/demo/base_model/"tokenizer* "$m/" 2>/dev/null   # a 751-token tokenizer: the rows are pre-tokenized
common=(model_name_or_path="$m" dataset="$m/data.jsonl" cutoff_len=1024 per_device_train_batch_size=4
        max_steps=16 learning_rate=1e-4 lora_rank=16 lora_alpha=32 lora_target=all logging_steps=1 save_steps=1000
        bf16=true device=cuda overwrite_output_dir=true plot_loss=false)
peak ours_lora "${java[@]}" -jar "$work/sft-native.jar" train "${common[@]}" output_dir="$work/lora"
peak ours_qlora "${java[@]}" -jar "$work/sft-native.jar" train "${common[@]}" quantization_bit=4 \
  gradient_checkpointing=true fused_cross_entropy=true output_dir="$work/qlora"
peak ref_lora python3 tools/gpu/hf_side.py train "$m"
for side in lora qlora; do
  echo "{\"side\": \"ours-$side\", \"train_results\": $(cat "$work/$side/train_results.json" 2>/dev/null || echo null)," \
       "\"peak_gpu_mib\": $(grep -oP 'peak_gpu_mib \K[0-9]+' "$OUT/ours_$side.txt" || echo null)}"
done > "$OUT/e2e.jsonl"
grep '^{' "$OUT/ref_lora.txt" >> "$OUT/e2e.jsonl"
cat "$OUT/e2e.jsonl"
