#!/usr/bin/env bash
# build.sh: configures and builds upstreamfs into build/ (CMake, Release with debug info).
# Extra arguments go to cmake's configure step, e.g. -DUPSTREAMFS_ASAN=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build build -j"$(nproc)"
