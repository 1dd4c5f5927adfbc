#!/usr/bin/env bash
# The end-to-end benchmark in one command: sft-native's trainer vs a plain eager PyTorch reference, same model,
# data, batches, hyper-parameters and threads, each mode of each side in its own process. See benchmarks/README.md.
#
#   benchmarks/run.sh                 # default modes (~15-20 min on 2 cores)
#   benchmarks/run.sh --quick         # 3 modes, 16 examples (a few minutes)
#   benchmarks/run.sh --modes full-padded-plain,lora-padded-plain --threads 2 --record benchmarks/RESULTS.md
#
# Options (passed to io.sftnative.bench.Harness): --quick, --threads N (default: all cores), --modes LIST,
# --examples N, --optim adamw_torch_fused|adamw_torch (ours; default fused), --work DIR (default target/bench-e2e), --out DIR (default benchmarks/results), --shared DIR
# (default ../shared), --python PATH (default /usr/bin/python3), --reference-blas auto|system|PATH,
# --record FILE (write the table into FILE between its e2e-harness markers), --report-only (the table again from
# the results already in the work directory).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if ! "$JAVA" -version 2>&1 | grep -qE 'version "(2[5-9]|[3-9][0-9])'; then
  echo "benchmarks/run.sh: needs JDK 25 or newer (set JAVA_HOME); found: $("$JAVA" -version 2>&1 | head -1)" >&2
  exit 2
fi

python=/usr/bin/python3
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "--python" ] && [ $((i + 1)) -lt ${#args[@]} ]; then python=${args[$((i + 1))]}; fi
done
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
  echo "benchmarks/run.sh: the PyTorch reference needs torch for $python. Install it:" >&2
  echo "    apt-get install python3-torch" >&2
  exit 2
fi

jar=target/sft-native.jar
if [ ! -f "$jar" ] || [ -n "$(find src benchmarks/src bindings/src native pom.xml -newer "$jar" -type f -print -quit)" ]; then
  echo "building $jar (mvn package -DskipTests) ..."
  mvn -q -o package -DskipTests 2>/dev/null || mvn -q package -DskipTests
fi

export OMP_WAIT_POLICY=PASSIVE OPT_OUT_TRACKING=true SFT_NATIVE_NO_RELAUNCH=1
exec "$JAVA" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -Dai.djl.offline=true \
  -Djava.awt.headless=true -Xmx2g -cp "$jar" io.sftnative.bench.Harness --repo . "$@"
