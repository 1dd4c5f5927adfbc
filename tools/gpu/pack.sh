#!/usr/bin/env bash
# Prepares the GPU check (issue 19) for a GPU machine that has python3 + CUDA 13 wheels but no JDK: the GPU jar,
# a jlink'd JRE, the compiled tests and the JUnit console launcher, as an uncompressed tar (the jar is deflated and
# jlink compresses the JRE already: xz gained little at a high CPU cost) cut into parts of at most PART_MB (default 50) under
# .gpu-bundle/ (git-ignored), so each part fits one device call next to the working tree (64 MiB per call).
#   tools/gpu/pack.sh          the GPU jar (mvn -Pgpu package; target/ then holds the GPU build)
#   tools/gpu/pack.sh cpu      the CPU jar: rehearse the whole sequence here with tools/gpu/device_check.sh
# Then carry .gpu-bundle/<part> in consecutive calls (one path each) and run tools/gpu/device_check.sh last.
set -euo pipefail
cd "$(dirname "$0")/../.."
variant=${1:-gpu}
part_mb=${PART_MB:-50}
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export PATH="$JAVA_HOME/bin:$PATH"
grep -qx '/.gpu-bundle/' .git/info/exclude 2>/dev/null || echo '/.gpu-bundle/' >> .git/info/exclude
out=.gpu-bundle
rm -rf "$out" && mkdir -p "$out" && stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

profile=(); [ "$variant" = gpu ] && profile=(-Pgpu)
[ -n "${SKIP_BUILD:-}" ] || mvn -q -B -ntp "${profile[@]}" package -DskipTests   # the jar and the test classes
cp target/sft-native.jar "$stage/sft-native.jar"
if [ "$variant" = gpu ]; then
  # The GPU jar also carries the CPU libtorch as JavaCPP's fallback; on the GPU machine a failed CUDA load must
  # be an error, not a silent CPU run, and the parts get 330 MB lighter.
  command -v zip >/dev/null || { echo "pack.sh needs zip (apt-get install zip)"; exit 1; }
  rc=0; zip -q -d "$stage/sft-native.jar" 'org/bytedeco/pytorch/linux-x86_64/*' || rc=$?
  case $rc in
    0) ;;
    12) echo "note: the GPU jar holds no CPU libtorch under org/bytedeco/pytorch/linux-x86_64/ (nothing removed)" ;;
    *) echo "zip failed ($rc) removing the CPU libtorch from the GPU jar"; exit 1 ;;
  esac
fi
mvn -q -B -ntp dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1 \
  -DoutputDirectory="$stage"
mods=$(jdeps --multi-release 25 --print-module-deps --ignore-missing-deps "$stage/sft-native.jar")
jlink --add-modules "$mods,jdk.unsupported,jdk.crypto.ec,jdk.zipfs" --strip-debug --no-man-pages \
  --no-header-files --compress zip-9 --output "$stage/jre"
tar -C target -cf "$stage/test-classes.tar" test-classes
tar -C "$stage" -cf - sft-native.jar jre test-classes.tar junit-platform-console-standalone-1.14.1.jar \
  | split -b "${part_mb}M" -d -a 2 - "$out/part-"
(cd "$out" && sha256sum part-* > SHA256SUMS)
echo "$variant bundle: $(ls "$out"/part-* | wc -l) parts of <= ${part_mb} MB in $out ($(du -sh "$out" | cut -f1))"
ls -l "$out"
