# shellcheck shell=bash
# tests/integration/shim/v2.sh -- helpers for shim_v2_test.sh (the registry API under /v2/).
# Source after mount_common.sh, shim_common.sh and docker/registry.sh.
#
#     copy_from URL_REF DEST [SKOPEO ARGS...]  skopeo copy --src-tls-verify=false docker://URL_REF
#                                    DEST (within 120 s); dies with skopeo's last lines on failure
#     copy_digest DIR                the manifest digest of a skopeo dir: copy (sha256:<hex>)
#     dir_verified DIR               every blob file of a skopeo dir: copy hashes to its name
#     v2_code                        the first error code of the last http_* answer's JSON body
#     expect_v2_error STATUS CODE WHAT   the last http_* answer is STATUS with registry error CODE
#     layer_of LAYOUT DIGEST N       the N-th layer digest of manifest DIGEST in an OCI layout
#     config_of LAYOUT DIGEST        the config digest of manifest DIGEST in an OCI layout
#     child_of LAYOUT DIGEST ARCH    the ARCH manifest digest of index DIGEST in an OCI layout
#     podman_ready                   status 0 when podman is there (installed from Debian's
#                                    packages when missing and root); sets PODMAN_WHY otherwise
#     podman_run ARGS...             podman as root without systemd, storage under $T/podman
#     make_cert DIR                  a self-signed cert for 127.0.0.1: DIR/cert.pem, DIR/key.pem,
#                                    DIR/ca/ca.crt (skopeo's --src-cert-dir form)
#     throttle_start HOST:PORT       throttle.py (a slow relay: 64 KiB per 20 ms) in front of
#                                    HOST:PORT; sets THROTTLE_PORT; stopped on exit

copy_from() {
    local src="$1" dst="$2"
    shift 2
    rm -rf -- "$dst"
    with_timeout 120 skopeo copy --quiet --src-tls-verify=false "$@" "docker://$src" "$dst" \
        >"$T/skopeo.log" 2>&1 || die "skopeo copy docker://$src $dst failed: $(tail -n 5 "$T/skopeo.log")"
}

copy_digest() {
    printf 'sha256:%s\n' "$(sha256_of "$1/manifest.json")"
}

dir_verified() {
    local f n=0 name
    for f in "$1"/*; do
        name="$(basename "$f")"
        [[ "$name" =~ ^[0-9a-f]{64}$ ]] || continue
        assert_sha256 "$f" "$name"
        n=$((n + 1))
    done
    ((n > 0)) || die "no blobs in $1"
}

v2_code() {
    "$PYTHON" -c 'import json,sys
try:
    print(json.load(open(sys.argv[1]))["errors"][0]["code"])
except Exception:
    print("(no registry error body)")' "$T/body"
}

expect_v2_error() {
    assert_eq "$HTTP_STATUS" "$1" "status of $3"
    assert_eq "$(v2_code)" "$2" "registry error code of $3"
    assert_eq "$(header_of Docker-Distribution-Api-Version)" registry/2.0 "API version header of $3"
}

_layout_json() { cat "$1/blobs/sha256/${2#sha256:}"; }

layer_of() {
    _layout_json "$1" "$2" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["layers"][int(sys.argv[1])]["digest"])' "$3"
}

config_of() {
    _layout_json "$1" "$2" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])'
}

child_of() {
    _layout_json "$1" "$2" | "$PYTHON" -c 'import json,sys
print([m["digest"] for m in json.load(sys.stdin)["manifests"] if m["platform"]["architecture"] == sys.argv[1]][0])' "$3"
}

podman_ready() {
    PODMAN_WHY=""
    command -v podman >/dev/null && return 0
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
        PODMAN_WHY="podman is missing and cannot be installed here (not root, or no apt-get)"
        return 1
    fi
    log "installing podman from Debian's packages"
    local guard=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        guard=1
    fi
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman; }; } \
        >"$T/apt-podman.log" 2>&1; then
        PODMAN_WHY="apt-get install podman failed: $(tail -n 3 "$T/apt-podman.log" | tr '\n' ' ')"
    fi
    ((guard)) && rm -f /usr/sbin/policy-rc.d
    [[ -z "$PODMAN_WHY" ]] && command -v podman >/dev/null
}

podman_run() {
    mkdir -p "$T/podman/root" "$T/podman/run" "$T/podman/tmp"
    TMPDIR="$T/podman/tmp" with_timeout 180 podman --root "$T/podman/root" \
        --runroot "$T/podman/run" --storage-driver vfs --cgroup-manager cgroupfs \
        --events-backend file "$@"
}

make_cert() {
    local d="$1"
    mkdir -p "$d/ca"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$d/key.pem" -out "$d/cert.pem" >"$T/openssl.log" 2>&1 ||
        die "openssl req failed: $(tail -n 3 "$T/openssl.log")"
    cp "$d/cert.pem" "$d/ca/ca.crt"
}

throttle_start() {
    local pf="$T/throttle.port"
    rm -f "$pf"
    "${DIE_WITH_PARENT[@]}" "$PYTHON" "$_SHIM_COMMON_DIR/throttle.py" --backend "$1" \
        --port-file "$pf" >"$T/throttle.log" 2>&1 &
    local pid=$!
    on_exit "kill $pid 2>/dev/null || true"
    wait_until 10 test -s "$pf" || die "throttle.py did not start: $(cat "$T/throttle.log")"
    # shellcheck disable=SC2034  # used by the test
    THROTTLE_PORT="$(cat "$pf")"
}
