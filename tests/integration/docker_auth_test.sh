#!/bin/bash
# tests/integration/docker_auth_test.sh -- docker proxies of registries that want credentials.
#
#     bash tests/integration/docker_auth_test.sh build/upstreamfs      (as root; /dev/fuse)
#
# Three docker-registry (distribution 2.8) processes share one storage dir: "open" (no auth; the
# images are pushed there, and it backs the CDN), "basic" (htpasswd, bcrypt) and "tok"
# (distribution's token auth: auth.token with a self-signed P-256 certificate, tokens issued by
# docker/tokenserver.py as ES256 JWTs with an x5c header; they live 5 s, so they are refreshed
# during the test). The proxies reach "basic" and "tok" through docker/regproxy.py, which
# counts requests and answers every blob GET with a 307 to another origin (a second regproxy
# at http://localhost:PORT in front of "open"), the way registries send blobs to a CDN.
# Asserts, for Basic (access-key + secret), Bearer with credentials and anonymous Bearer:
#   - listing, index.json, every blob's sha256 equals its name, skopeo copy oci:MNT/...;
#   - every request to the registry carried the right Authorization (Basic / Bearer), and no
#     request that followed a redirect to the CDN carried any;
#   - the token server saw the repository:<name>:pull scope, Basic credentials only when the
#     proxy has them, and few token requests (tokens are cached); an expired token is replaced;
#   - no credentials, or wrong ones: EACCES (cause auth), and nothing is stored;
#   - the secret appears nowhere in the log or in `proxy show`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
docker_need_tools

OCI="$T/oci"
MNT="$T/mnt"
STORE="$T/store"
SECRET="s3cret-$RANDOM$RANDOM"
# One image per proxy, so that each one downloads its blobs itself (the store is shared).
D_V1="$(mkimage "$OCI" v1 --text one --big 200000)"
D_MULTI="$(mkimage "$OCI" multi --platform linux/amd64 --platform linux/arm64)"
D_TOK="$(mkimage "$OCI" tok --text token --big 200000)"
D_ANON="$(mkimage "$OCI" anon --text anonymous --big 200000)"

# ---- servers -----------------------------------------------------------------------------
registry_start open open "$STORE"
push "oci:$OCI:v1" "127.0.0.1:$REG_PORT_open/test/hello:v1"
push "oci:$OCI:multi" "127.0.0.1:$REG_PORT_open/test/multi:1.0" --all
push "oci:$OCI:tok" "127.0.0.1:$REG_PORT_open/test/tok:v1"
push "oci:$OCI:anon" "127.0.0.1:$REG_PORT_open/test/anon:v1"

mkdir -p "$T/basic"
htpasswd -Bbn alice "$SECRET" >"$T/basic/htpasswd" 2>/dev/null
registry_start basic htpasswd "$STORE"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=upstreamfs-test-token -keyout "$T/token.key" -out "$T/token.crt" 2>/dev/null ||
    die "openssl could not make the token certificate"
token_start ts --key "$T/token.key" --cert "$T/token.crt" --issuer test-issuer \
    --service test-registry --user "alice:$SECRET" --expires-in 5 --anonymous-pull
TOKEN_REALM="http://127.0.0.1:$TOKEN_PORT_ts/token"
TOKEN_SERVICE=test-registry
TOKEN_ISSUER=test-issuer
TOKEN_CERT="$T/token.crt"
registry_start tok token "$STORE"

regproxy_start cdn "http://127.0.0.1:$REG_PORT_open"
regproxy_start pb "http://127.0.0.1:$REG_PORT_basic" --redirect-blobs-to "http://localhost:$PROXY_PORT_cdn"
regproxy_start pt "http://127.0.0.1:$REG_PORT_tok" --redirect-blobs-to "http://localhost:$PROXY_PORT_cdn"

printf '%s\n' "$SECRET" >"$T/secret"
# The blob CDN is on loopback under another host name: a learned origin that the address rule
# refuses unless the proxy allows it (docs/SECURITY.md). The token realm is on the
# registry's own host (127.0.0.1, another port), which needs nothing.
printf '%s\n' "wrong-$SECRET" >"$T/wrong"
upfs proxy create basic --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pb/" \
    --auth access-key --access-key alice --secret-key-file "$T/secret" --allow-host localhost >/dev/null
upfs proxy create nocreds --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pb/" >/dev/null
upfs proxy create badcreds --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pb/" \
    --auth access-key --access-key alice --secret-key-file "$T/wrong" >/dev/null
upfs proxy create tok --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pt/" \
    --auth access-key --access-key alice --secret-key-file "$T/secret" --allow-host localhost >/dev/null
upfs proxy create tokanon --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pt/" \
    --allow-host localhost >/dev/null
upfs_mount "$MNT"

jq_py() { "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
token_counts() { "${CURL[@]}" "http://127.0.0.1:$TOKEN_PORT_ts/_control/counts"; }

# read_image KEY REPO DIGEST NBLOBS: index.json of REPO:v1 names DIGEST, its NBLOBS blobs are
# verified, skopeo copies the tag dir
read_image() {
    local key="$1" repo="$2" digest="$3" want="$4" f n=0 dir="$MNT/$1/$2/v1"
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$dir/index.json")" "$digest" \
        "$key: index.json of $repo"
    for f in "$dir"/blobs/sha256/*; do
        assert_sha256 "$f" "$(basename "$f")"
        n=$((n + 1))
    done
    assert_eq "$n" "$want" "$key: blobs of $repo:v1"
    expect_ok with_timeout 120 skopeo copy --quiet "oci:$dir" "dir:$T/copy-$key"
    assert_eq "$(manifest_digest "$T/copy-$key")" "$digest" "$key: skopeo copy"
}

# auth_of NAME METHOD: the Authorization schemes a regproxy saw for METHOD, sorted, unique
auth_of() {
    regproxy_requests "$1" | "$PYTHON" -c '
import json, sys
print(" ".join(sorted({r["auth"] or "none" for r in json.load(sys.stdin) if r["method"] == sys.argv[1] and r["status"] != 401})))' "$2"
}

# ---- Basic -------------------------------------------------------------------------------
t_basic() {
    assert_eq "$(ls "$MNT/basic/test/hello" | tr '\n' ' ')" "v1 " "basic: tags"
    read_image basic test/hello "$D_V1" 4
    local f n=0
    for f in "$MNT/basic"/test/multi/1.0/blobs/sha256/*; do
        assert_sha256 "$f" "$(basename "$f")"
        n=$((n + 1))
    done
    assert_eq "$n" 7 "basic: blobs of test/multi:1.0"
    assert_eq "$(auth_of pb GET) $(auth_of pb HEAD)" "basic basic" "Authorization sent to the registry"
    (($(regproxy_sum cdn GET '/blobs/') >= 3)) || die "blobs did not go through the redirect"
    assert_eq "$(auth_of cdn GET)" none "Authorization after the cross-origin redirect"
}
check "Basic credentials; blobs through a cross-origin 307 without Authorization" t_basic

t_no_or_bad_creds() {
    local key objs
    objs="$(stats_field cache_objects)"
    for key in nocreds badcreds; do
        expect_fail_with "Permission denied" with_timeout 30 cat "$MNT/$key/test/hello/v1/index.json"
    done
    assert_eq "$(stats_field cache_objects)" "$objs" "objects stored without credentials"
}
check "no or wrong credentials: EACCES, nothing stored" t_no_or_bad_creds

# ---- Bearer ------------------------------------------------------------------------------
t_bearer() {
    "${CURL[@]}" -X POST "http://127.0.0.1:$TOKEN_PORT_ts/_control/reset" >/dev/null
    regproxy_reset cdn
    assert_contains "$(ls "$MNT/tok")" test "tok: catalog (registry:catalog:* scope)"
    read_image tok test/tok "$D_TOK" 4
    (($(regproxy_sum cdn GET '/v2/test/tok/blobs/') == 3)) || die "tok: blobs not downloaded once each"
    assert_eq "$(auth_of pt GET) $(auth_of pt HEAD)" "bearer bearer" "Bearer sent to the registry"
    assert_eq "$(auth_of cdn GET)" none "Authorization after the cross-origin redirect"
    local c
    c="$(token_counts)"
    (($(jq_py 'd["scopes"].get("repository:test/tok:pull", 0)' <<<"$c") >= 1)) ||
        die "no token for repository:test/tok:pull: $c"
    assert_eq "$(jq_py 'd.get("GET /token anonymous", 0)' <<<"$c")" 0 "token requests without credentials"
    # a catalog, tags, a manifest, 3 blobs, skopeo's reads: tokens are cached, not asked per request
    (($(jq_py 'd["GET /token"]' <<<"$c") <= 4)) || die "too many token requests: $c"
}
check --setup "Bearer token flow with credentials" t_bearer

t_token_expiry() {
    # tokens live 5 s (refreshed after 4.5 s): a request after 6 s needs a new one
    local before
    sleep 6
    before="$(token_counts | jq_py 'd["GET /token"]')"
    assert_eq "$(ls "$MNT/tok/test/hello" | tr '\n' ' ')" "v1 " "tok: tags after expiry"
    (($(token_counts | jq_py 'd["GET /token"]') > before)) || die "no new token after expiry"
}
check "an expired token is replaced" t_token_expiry

t_bearer_anonymous() {
    "${CURL[@]}" -X POST "http://127.0.0.1:$TOKEN_PORT_ts/_control/reset" >/dev/null
    read_image tokanon test/anon "$D_ANON" 4
    local c
    c="$(token_counts)"
    (($(jq_py 'd.get("GET /token anonymous", 0)' <<<"$c") >= 1)) || die "no anonymous token request: $c"
    assert_eq "$(jq_py 'd.get("GET /token basic", 0)' <<<"$c")" 0 "token requests with credentials"
}
check "anonymous Bearer token flow" t_bearer_anonymous

t_secret_hidden() {
    ! grep -rqF -- "$SECRET" "$STATE/upstreamfs.log" || die "the secret is in the log"
    ! upfs proxy show basic --json | grep -qF -- "$SECRET" || die "proxy show prints the secret"
    ! grep -rqa -- "$SECRET" "$STATE"/*.db* 2>/dev/null || die "the secret is in SQLite"
}
check "the secret appears nowhere" t_secret_hidden

finish
