#!/usr/bin/env bash
# quickstart.sh [MOUNTPOINT]: from a fresh clone to a live mount, as root.
# Installs the packages, builds and installs upstreamfs, creates a Docker Hub
# proxy named "dockerhub" if the state has no proxy yet, and mounts every
# proxy and registry at MOUNTPOINT (default /mnt/upstreamfs), with the HTTP
# shim serving the same cache on 127.0.0.1:5000, and prints the web page's
# address with its admin token (on a terminal).
set -euo pipefail
cd "$(dirname "$0")/.."
mnt="${1:-/mnt/upstreamfs}"

tools/deps.sh
tools/build.sh -DUPSTREAMFS_TESTS=OFF
cmake --install build >/dev/null
bin=$(command -v upstreamfs)
echo "installed $bin"

if [[ "$("$bin" proxy list --json)" == "[]" ]]; then
    "$bin" proxy create dockerhub --type docker --source dockerhub
fi
"$bin" proxy list

mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
    echo "$mnt is already mounted; unmount it first with: fusermount3 -u $mnt" >&2
    exit 1
fi
"$bin" mount -o listen=127.0.0.1:5000 "$mnt"
state="${UPSTREAMFS_STATE:-/var/lib/upstreamfs}"
echo "mounted at $mnt, HTTP shim on http://127.0.0.1:5000/; the daemon logs to $state/upstreamfs.log"
# The web page needs the admin token (docs/SECURITY.md): shown on a terminal only, never logged.
if [[ -t 1 ]]; then
    echo "web page (admin): http://127.0.0.1:5000/ui/#token=$(cat "$state/admin-token")"
else
    echo "web page (admin): http://127.0.0.1:5000/ui/#token=TOKEN with TOKEN from $state/admin-token"
fi
echo "unmount with: fusermount3 -u $mnt"
ls -l "$mnt"
