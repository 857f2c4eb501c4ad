#!/usr/bin/env bash
# test.sh: runs every test on a fresh Debian bookworm machine, as root.
# Installs the packages, builds, and runs ctest (labels: unit, integration).
# Integration tests start and stop their own servers on 127.0.0.1 and mount
# FUSE file systems of their own. Arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh --test
tools/build.sh -DUPSTREAMFS_TESTS=ON
cd build
exec ctest --output-on-failure --timeout 900 "$@"
