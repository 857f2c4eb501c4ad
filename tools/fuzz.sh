#!/usr/bin/env bash
# fuzz.sh [SECONDS]: builds the libFuzzer targets (clang, -DUPSTREAMFS_FUZZ=ON) in build-fuzz/
# and fuzzes each for SECONDS (default 30) from its seed corpus in tests/fuzz/corpus/<target>/.
# New inputs go to a scratch dir, never into the repository; a crash leaves its reproducer in
# build-fuzz/crashes/ and makes the script fail (minimise it and save it in the corpus as
# crash-<short>, so it becomes a regression input of `ctest -L fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
dir=$PWD/build-fuzz
command -v clang >/dev/null || {
    echo "fuzz.sh: clang is needed (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
}
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DUPSTREAMFS_FUZZ=ON >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$dir/crashes"
failed=0
for corpus in tests/fuzz/corpus/*/; do
    t=$(basename "$corpus")
    bin=$(find "$dir" -name "fuzz_$t" -type f -perm -u+x | head -n 1)
    [[ -n "$bin" ]] || continue
    mkdir -p "$scratch/$t"
    out=$("$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$dir/crashes/$t-" "$scratch/$t" "$corpus" 2>&1) || {
        echo "fuzz $t: FAILED"
        echo "$out" | tail -n 30
        failed=1
        continue
    }
    echo "fuzz $t: $(echo "$out" | grep -Eo 'Done [0-9]+ runs in [0-9]+ second\(s\)' | tail -n 1)"
done
exit "$failed"
