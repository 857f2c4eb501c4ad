#!/usr/bin/env bash
# test.sh: runs every test on a fresh Debian bookworm machine, as root.
#
# Stages, each with a timing line: install (Debian packages), build, fuzz (every libFuzzer
# target for FUZZ_SECONDS, default 20, from its seed corpus), sanitizers (unit and integration
# tests under ASan+UBSan, the concurrency tests under TSan), then one ctest run of the main
# build: unit, integration and the benchmark smoke test (labels unit, integration, bench),
# ending with ctest's summary. Integration tests start and stop their own servers on 127.0.0.1
# and mount FUSE file systems of their own. Arguments go to the final ctest (e.g. -L unit);
# TEST_QUICK=1 skips the fuzz and sanitizer stages.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
stage() {
    local name=$1 start rc
    shift
    start=$(date +%s)
    echo "== stage $name: $*"
    "$@"
    rc=$?
    echo "== stage $name: $(($(date +%s) - start)) s, $([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")"
    ((rc == 0)) || failed+=("$name")
    return "$rc"
}

install_all() {
    tools/deps.sh --test &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            clang libclang-rt-14-dev llvm >/dev/null
}

stage install install_all || exit 1
stage build tools/build.sh -DUPSTREAMFS_TESTS=ON || exit 1
if [[ "${TEST_QUICK:-0}" != 1 ]]; then
    stage fuzz tools/fuzz.sh "${FUZZ_SECONDS:-20}"
    SANITIZE_JOBS=2 stage asan tools/sanitize.sh asan -L "unit|integration" -LE bench
    stage tsan tools/sanitize.sh tsan -R "test_flight|test_sink|test_chunks|test_state|test_configdb|test_token|test_ecr_auth"
fi
if ((${#failed[@]})); then
    echo "== stages that failed: ${failed[*]}"
fi
echo "== stage tests: ctest in build/ (labels unit, integration, bench)"
cd build
ctest --output-on-failure --timeout 900 -j2 "$@"
rc=$?
((${#failed[@]})) && exit 1
exit "$rc"
