#!/usr/bin/env bash
# deps.sh: installs what upstreamfs needs from Debian's packages.
#   tools/deps.sh          build and run (libraries, compiler, FUSE)
#   tools/deps.sh --test   also what the tests start and drive (nginx, attr, ...)
# Run as root on Debian bookworm. Safe to run again: apt-get skips what is there.
set -euo pipefail

build=(build-essential cmake pkg-config ca-certificates
       libfuse3-dev fuse3 libcurl4-openssl-dev libsqlite3-dev libjansson-dev libssl-dev
       libmicrohttpd-dev libyaml-dev libxml2-dev libcmocka-dev)
testing=(nginx-light curl attr openssl python3 python3-yaml sqlite3 psmisc procps util-linux
         docker-registry skopeo apache2-utils python3-cryptography)
# the web page's browser test (tests/integration/ui_browser_test.sh): headless Chromium over WebDriver
testing+=(chromium chromium-driver fonts-dejavu-core)
# npm_test and pypi_test: node and npm, Debian's pip, and what pip needs to prepare an sdist's
# metadata with --no-build-isolation. A nodejs from elsewhere (nodesource) bundles its own npm
# and conflicts with Debian's npm package, which is therefore only wanted when no npm is there.
testing+=(nodejs python3-pip python3-setuptools python3-wheel)
command -v npm >/dev/null 2>&1 || testing+=(npm)
# shim_v2_test: podman pulls through the shim's registry API (as root, no systemd)
testing+=(podman)
# tier_test: Squid as the shared HTTP cache between edges and parent shims
testing+=(squid)

want=("${build[@]}")
if [[ "${1:-}" == "--test" ]]; then
    want+=("${testing[@]}")
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: run as root (it installs packages with apt-get)" >&2
    exit 1
fi
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Package scripts must not start system services (nginx on :80) during the install.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
