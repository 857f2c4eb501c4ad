# shellcheck shell=bash
# tests/integration/docker/registry.sh -- docker-registry, a counting proxy, a token server and
# skopeo, for the docker_*_test.sh integration tests. Source after mount_common.sh (uses T, log,
# die, free_port, wait_for_port, on_exit, DIE_WITH_PARENT, PYTHON, CURL).
#
#     docker_need_tools                 docker-registry, skopeo (+ htpasswd, python3-cryptography,
#                                       openssl); installs missing ones with apt-get when root
#     mkimage DIR REF [ARGS...]         mkimage.py: add an image to an OCI layout; prints its digest
#     registry_start NAME MODE [STORAGE]
#                                       docker-registry on a free 127.0.0.1 port, storage in
#                                       STORAGE (default $T/NAME/storage). MODE: open | htpasswd
#                                       (file $T/NAME/htpasswd must exist) | token (needs
#                                       TOKEN_REALM TOKEN_SERVICE TOKEN_ISSUER TOKEN_CERT).
#                                       Sets REG_PORT_<NAME>. Stopped on exit. REG_CATALOG_MAX
#                                       caps a _catalog page (so that pagination happens).
#     registry_stop NAME                stop it (the port then refuses connections)
#     registry_restart NAME             start it again, same port, same storage
#     regproxy_start NAME BACKEND_URL [--redirect-blobs-to URL]
#                                       regproxy.py in front of BACKEND_URL; sets PROXY_PORT_<NAME>
#     regproxy_stop NAME
#     regproxy_count NAME METHOD PATH   requests the proxy forwarded as exactly "METHOD PATH"
#     regproxy_sum NAME METHOD REGEX    the sum over every "METHOD path" whose path matches REGEX
#     regproxy_requests NAME            the proxy's request log (JSON)
#     regproxy_reset NAME               zero its counts and log
#     regproxy_control NAME WHAT        POST /_control/WHAT (down, up, ratelimit?seconds=N)
#     token_start NAME ARGS...          tokenserver.py with ARGS; sets TOKEN_PORT_<NAME>
#     push SRC DST [SKOPEO ARGS...]     skopeo copy SRC docker://127.0.0.1:PORT/DST (plain http)
#     manifest_digest DIR               the sha256 of DIR/manifest.json (a skopeo dir: copy)

_DOCKER_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
declare -gA _REG_PID=() _REG_CFG=() _PROXY_PID=() _TOKEN_PID=()

docker_need_tools() {
    local missing=()
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v skopeo >/dev/null || missing+=(skopeo)
    command -v htpasswd >/dev/null || missing+=(apache2-utils)
    command -v openssl >/dev/null || missing+=(openssl)
    "$PYTHON" -c 'import cryptography' 2>/dev/null || missing+=(python3-cryptography)
    ((${#missing[@]} == 0)) && return 0
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        # As tools/deps.sh --test does (which installs these too): no service may start.
        log "installing ${missing[*]}"
        local guard=0
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            guard=1
        fi
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}"; } >"$T/apt.log" 2>&1 || {
            ((guard)) && rm -f /usr/sbin/policy-rc.d
            die "apt-get install ${missing[*]} failed: $(tail -n 5 "$T/apt.log")"
        }
        ((guard)) && rm -f /usr/sbin/policy-rc.d
    else
        die "missing ${missing[*]} (apt-get install ${missing[*]})"
    fi
}

mkimage() {
    "$PYTHON" "$_DOCKER_LIB_DIR/mkimage.py" "$@"
}

_var() { printf '%s_%s' "$1" "${2//[^A-Za-z0-9]/_}"; }

_registry_conf() {
    local name="$1" mode="$2" storage="$3" port="$4" cfg="$T/$name/config.yml"
    cat >"$cfg" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: upstreamfs-test-secret
catalog:
  maxentries: ${REG_CATALOG_MAX:-1000}
EOF
    case "$mode" in
    open) ;;
    htpasswd)
        cat >>"$cfg" <<EOF
auth:
  htpasswd:
    realm: test-realm
    path: $T/$name/htpasswd
EOF
        ;;
    token)
        cat >>"$cfg" <<EOF
auth:
  token:
    realm: $TOKEN_REALM
    service: $TOKEN_SERVICE
    issuer: $TOKEN_ISSUER
    rootcertbundle: $TOKEN_CERT
EOF
        ;;
    *) die "registry_start: unknown mode $mode" ;;
    esac
    printf '%s\n' "$cfg"
}

_registry_launch() {
    local name="$1" cfg="$2" port="$3"
    "${DIE_WITH_PARENT[@]}" docker-registry serve "$cfg" >>"$T/$name/registry.log" 2>&1 &
    _REG_PID[$name]=$!
    wait_for_port "$port" 15 || { tail -n 20 "$T/$name/registry.log" >&2; return 1; }
}

registry_start() {
    local name="$1" mode="$2" storage="${3:-$T/$1/storage}" port cfg try
    mkdir -p "$T/$name" "$storage"
    for try in 1 2 3; do
        port="$(free_port)"
        cfg="$(_registry_conf "$name" "$mode" "$storage" "$port")"
        _REG_CFG[$name]="$cfg"
        if _registry_launch "$name" "$cfg" "$port"; then
            printf -v "$(_var REG_PORT "$name")" '%s' "$port"
            on_exit registry_stop "$name"
            return 0
        fi
        kill "${_REG_PID[$name]}" 2>/dev/null || true
    done
    die "docker-registry $name did not start"
}

registry_stop() {
    local name="$1" pid="${_REG_PID[$1]:-}" v
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _REG_PID[$name]=""
    v="$(_var REG_PORT "$name")"
    wait_port_closed "${!v}" 10 || true
}

registry_restart() {
    local name="$1" v
    v="$(_var REG_PORT "$name")"
    registry_stop "$name"
    _registry_launch "$name" "${_REG_CFG[$name]}" "${!v}" || die "docker-registry $name did not restart"
}

regproxy_start() {
    local name="$1" backend="$2" pf="$T/$1.port" try
    shift 2
    for try in 1 2 3; do
        rm -f "$pf"
        "${DIE_WITH_PARENT[@]}" "$PYTHON" "$_DOCKER_LIB_DIR/regproxy.py" --backend "$backend" \
            --port-file "$pf" "$@" >"$T/$name.log" 2>&1 &
        _PROXY_PID[$name]=$!
        if wait_until 10 test -s "$pf"; then
            printf -v "$(_var PROXY_PORT "$name")" '%s' "$(cat "$pf")"
            on_exit regproxy_stop "$name"
            return 0
        fi
    done
    die "regproxy $name did not start: $(cat "$T/$name.log")"
}

regproxy_stop() {
    local pid="${_PROXY_PID[$1]:-}"
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _PROXY_PID[$1]=""
}

_regproxy_url() {
    local v
    v="$(_var PROXY_PORT "$1")"
    printf 'http://127.0.0.1:%s/_control/%s' "${!v}" "$2"
}

regproxy_count() {
    "${CURL[@]}" "$(_regproxy_url "$1" counts)" |
        "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$2 $3"
}

regproxy_sum() {
    "${CURL[@]}" "$(_regproxy_url "$1" counts)" | "$PYTHON" -c '
import json, re, sys
c = json.load(sys.stdin)
print(sum(n for k, n in c.items() if k.split(" ", 1)[0] == sys.argv[1] and re.search(sys.argv[2], k.split(" ", 1)[1])))' "$2" "$3"
}

regproxy_requests() {
    "${CURL[@]}" "$(_regproxy_url "$1" requests)"
}

regproxy_reset() {
    "${CURL[@]}" -X POST "$(_regproxy_url "$1" reset)" >/dev/null
}

regproxy_control() {
    "${CURL[@]}" -X POST "$(_regproxy_url "$1" "$2")" >/dev/null
}

token_start() {
    local name="$1" pf="$T/$1.port"
    shift
    rm -f "$pf"
    "${DIE_WITH_PARENT[@]}" "$PYTHON" "$_DOCKER_LIB_DIR/tokenserver.py" --port-file "$pf" "$@" \
        >"$T/$name.log" 2>&1 &
    _TOKEN_PID[$name]=$!
    wait_until 10 test -s "$pf" || die "token server $name did not start: $(cat "$T/$name.log")"
    printf -v "$(_var TOKEN_PORT "$name")" '%s' "$(cat "$pf")"
    on_exit _token_stop "$name"
}

_token_stop() {
    local pid="${_TOKEN_PID[$1]:-}"
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

push() {
    local src="$1" dst="$2"
    shift 2
    with_timeout 120 skopeo copy --quiet --dest-tls-verify=false "$@" "$src" "docker://$dst" \
        >"$T/skopeo.log" 2>&1 || die "skopeo copy $src $dst failed: $(tail -n 5 "$T/skopeo.log")"
}

manifest_digest() {
    printf 'sha256:%s\n' "$(sha256_of "$1/manifest.json")"
}
