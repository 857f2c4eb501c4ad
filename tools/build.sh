#!/usr/bin/env bash
# build.sh: configures and builds upstreamfs into build/ (CMake, Release with debug info).
# Extra arguments go to cmake's configure step, e.g. -DUPSTREAMFS_ASAN=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# The compiler's progress goes to build/build.log; a failure shows its tail.
if ! cmake --build build -j"$(nproc)" >build/build.log 2>&1; then
    tail -n 40 build/build.log
    exit 1
fi
echo "built build/upstreamfs (log: build/build.log)"
