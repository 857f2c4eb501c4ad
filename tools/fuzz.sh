#!/usr/bin/env bash
# fuzz.sh [SECONDS [TARGET...]]: builds the libFuzzer targets (clang, -DUPSTREAMFS_FUZZ=ON) in
# build-fuzz/ and fuzzes each TARGET (default: every one) for SECONDS (default 30) from its seed
# corpus in tests/fuzz/corpus/<target>/. FUZZ_JOBS (default 1) targets run at once.
# New inputs go to a scratch dir, never into the repository; a crash leaves its reproducer in
# build-fuzz/crashes/ and makes the script fail (minimise it and save it in the corpus as
# crash-<short>, so it becomes a regression input of `ctest -L fuzz`). Each target prints one
# line: executions, seconds, final coverage and features; FUZZ_LOGS=DIR keeps the full logs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
jobs=${FUZZ_JOBS:-1}
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
logs=${FUZZ_LOGS:-$scratch/logs}
mkdir -p "$dir/crashes" "$logs"

targets=("$@")
if ((${#targets[@]} == 0)); then
    for corpus in tests/fuzz/corpus/*/; do targets+=("$(basename "$corpus")"); done
fi

# one target: its summary line goes to $logs/<t>.result, "FAILED" makes the script fail
fuzz_one() {
    local t=$1 bin log=$logs/$1.log
    bin=$(find "$dir" -name "fuzz_$t" -type f -perm -u+x | head -n 1)
    if [[ -z "$bin" ]]; then
        echo "fuzz $t: FAILED (no binary fuzz_$t in $dir)" >"$logs/$t.result"
        return
    fi
    mkdir -p "$scratch/$t"
    if "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$dir/crashes/$t-" "$scratch/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
        local done cov
        done=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second\(s\)' "$log" | tail -n 1)
        cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
        echo "fuzz $t: $done, $cov" >"$logs/$t.result"
    else
        { echo "fuzz $t: FAILED"; tail -n 30 "$log"; } >"$logs/$t.result"
    fi
}

running=0
for t in "${targets[@]}"; do
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
    fuzz_one "$t" &
    running=$((running + 1))
done
wait || true

failed=0
for t in "${targets[@]}"; do
    cat "$logs/$t.result"
    if grep -q '^fuzz .*: FAILED' "$logs/$t.result"; then failed=1; fi
done
exit "$failed"
