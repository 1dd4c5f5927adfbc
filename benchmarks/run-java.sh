#!/usr/bin/env bash
# Runs a Java benchmark main class from src/test/java/io/sftnative/bench with the project's JVM flags.
# Usage: benchmarks/run-java.sh FusedCrossEntropyBenchmark [args...]   (after: mvn -q test-compile)
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# glibc malloc: keep freed tensor memory (io.sftnative.torch.MallocEnvironment; the jar sets the same)
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-1} MALLOC_MMAP_MAX_=${MALLOC_MMAP_MAX_:-0} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-68719476736}
cls=$1; shift
cp_file=target/bench.classpath
if [ ! -f "$cp_file" ] || [ pom.xml -nt "$cp_file" ]; then
  mvn -q -o dependency:build-classpath -Dmdep.outputFile="$cp_file" >/dev/null
fi
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -Xmx4g \
  -cp "target/test-classes:target/classes:$(cat "$cp_file")" "io.sftnative.bench.$cls" "$@"
