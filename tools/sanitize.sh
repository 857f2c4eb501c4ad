#!/usr/bin/env bash
# sanitize.sh: builds upstreamfs under a sanitizer in a build directory of its own and runs the
# tests there (tools/test.sh runs them in CI).
#
#   tools/sanitize.sh asan [CTEST ARGS]   ASan + UBSan (UPSTREAMFS_ASAN) in build-asan/
#   tools/sanitize.sh tsan [CTEST ARGS]   TSan (UPSTREAMFS_TSAN) in build-tsan/
#
# CTEST ARGS default to "-L unit"; "-L integration" runs the mount tests (as root, /dev/fuse).
# SANITIZE_JOBS sets the build and ctest parallelism (default 1). Needs clang.
#
# Every process a test starts (daemonized FUSE mounts and `serve` included) inherits the
# *SAN_OPTIONS below, whose log_path sends each report to build-*/sanitizer/<kind>.<pid>, so a
# report from a daemon whose stderr a test throws away is not lost. The script prints every
# report at the end and fails when there is one, even if ctest passed.
#
# Leak checking: LeakSanitizer runs at exit of every process. A FUSE daemon unmounted with
# fusermount3 -u leaves fuse_session_loop and exits normally, so its leaks are reported too;
# libfuse's and libcurl's own caches that live until exit are not leaks (still reachable) and
# LSan does not report them. Checked on the integration tests: LSan works in the daemon although
# it sets PR_SET_DUMPABLE 0 (as root), and every report there was upstreamfs's own memory, so
# detect_leaks=0 is not needed for FUSE. SANITIZE_LEAKS=0 turns leak checking off if that changes.
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-}
case "$kind" in
asan) option=UPSTREAMFS_ASAN ;;
tsan) option=UPSTREAMFS_TSAN ;;
*)
    echo "usage: tools/sanitize.sh asan|tsan [ctest arguments]" >&2
    exit 2
    ;;
esac
shift
(($#)) || set -- -L unit

if ! command -v clang >/dev/null; then
    echo "sanitize.sh: clang is needed (apt-get install clang)" >&2
    exit 1
fi

dir=$PWD/build-$kind
jobs=${SANITIZE_JOBS:-1}
logs=$dir/sanitizer
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -D$option=ON >/dev/null
# A target that does not build (a clang-only warning in one test, say) must not hide what the
# others find: the rest is built and run, and the script fails at the end.
build_rc=0
if ! cmake --build "$dir" -j"$jobs"; then
    build_rc=1
    echo "sanitize.sh: the build failed; building the other targets and running their tests" >&2
    keep=(-k)
    [[ -f $dir/build.ninja ]] && keep=(-k 0)
    cmake --build "$dir" -j"$jobs" -- "${keep[@]}" >/dev/null 2>&1 || true
fi

rm -rf "$logs"
mkdir -p "$logs"
symbolizer=$(command -v llvm-symbolizer || ls /usr/bin/llvm-symbolizer-* 2>/dev/null | head -n1 || true)
common="log_path=$logs/$kind:log_exe_name=1${symbolizer:+:external_symbolizer_path=$symbolizer}"
# Tests read this to tell a sanitizer run (whose memory use is not the product's) from the real one.
export UPSTREAMFS_SANITIZER=$kind
export ASAN_OPTIONS="$common:detect_leaks=${SANITIZE_LEAKS:-1}:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:abort_on_error=1"
export UBSAN_OPTIONS="$common:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="$common"
export TSAN_OPTIONS="$common:second_deadlock_stack=1:history_size=4"

# TSan (clang 14) maps its shadow at fixed addresses; a kernel that randomises more address
# bits than it expects makes every instrumented program die at start with "unexpected memory
# mapping". Running without address randomisation avoids it; the tests do not depend on it.
runner=()
if [[ $kind == tsan ]] && (($(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0) > 28)); then
    runner=(setarch "$(uname -m)" -R)
fi

rc=$build_rc
(cd "$dir" && "${runner[@]}" ctest --output-on-failure -j"$jobs" "$@") || rc=$?

reports=("$logs"/*)
if [[ -e ${reports[0]} ]]; then
    for r in "${reports[@]}"; do
        echo "==== $r"
        cat "$r"
    done
    echo "sanitize.sh: ${#reports[@]} sanitizer report(s) in $logs" >&2
    ((rc)) || rc=1
fi
exit "$rc"
