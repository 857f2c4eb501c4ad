#!/bin/bash
# tests/integration/shim_api_test.sh -- /api/v1 of the HTTP shim against the CLI, and its security.
#
#     bash tests/integration/shim_api_test.sh build/upstreamfs
#
# Asserts:
#   proxies and registries are created (201 + the object), read, updated (PUT changes only the
#     fields it carries) and deleted (204) through /api; the objects are exactly what
#     `proxy show --json` / `registry show --json` print, and `proxy list --json` sees them;
#   every invalid proxy or registry the CLI refuses is refused by the API with the same field
#     and message as the CLI's stderr line, and the matching status (400 invalid, 404 unknown,
#     409 duplicate or in use); bodies over 1 MiB are 413, malformed JSON 400;
#   a posted secret is stored (0600) but never returned by /api, shown by /metrics or logged;
#   a change of url, http_proxy or TLS settings of a proxy with a secret is refused (400, the CLI's
#     message) unless the secret is given again or auth goes anonymous;
#   ca_file/client_cert/client_key are refused with byte-identical answers whether the file exists;
#   ca_pem is stored in STATEDIR/tls/KEY/ (0600, not SQLite), shown only as ca_pem_set, and used to
#     fetch over TLS from an https server whose certificate it signed; bad or mismatched PEM is 400;
#   a proxy created through /api shows up on the path routes at once;
#   every API call sends the admin token ($STATE/admin-token, api_req in shim/shim_common.sh);
#   --htpasswd + TLS: with credentials 200, without or wrong 401 + WWW-Authenticate: Basic
#     realm="upstreamfs" (bcrypt and SHA-crypt users), /healthz open; a weak htpasswd is refused;
#     the API answers the --admin user and the token, and 403 to a user who is not --admin;
#   a non-loopback --listen without TLS + --htpasswd or --open is refused with exit 2 (so are
#     --htpasswd with --open, and --tls-cert without --tls-key), and nothing listens.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
command -v curl >/dev/null || die "curl is missing"
command -v openssl >/dev/null || die "openssl is missing"

U="http://127.0.0.1:9/repo/"  # never contacted: no proxy command touches the network
SECRET="s3cr3t-$RANDOM$RANDOM-do-not-leak"

serve_start main
S="http://127.0.0.1:$SERVE_PORT_main"
API="$S/api/v1"

# ---- CRUD ------------------------------------------------------------------------------------
t_proxy_crud() {
    api_req POST "$API/proxies" "{\"key\":\"gen\",\"type\":\"generic\",\"url\":\"$U\",\"metadata_ttl\":120,\"include\":[\"a/**\"]}"
    assert_eq "$HTTP_STATUS" 201 "POST /api/v1/proxies"
    assert_eq "$(json_field 'j["key"]')" gen "key of the created object"
    assert_eq "$(json_field 'j["metadata_ttl"]')" 120 "metadata_ttl of the created object"
    assert_eq "$(json_field '"secret_key" in j')" False "secret_key in the object"
    local created="$BODY"
    api_get "$API/proxies/gen"
    assert_eq "$HTTP_STATUS" 200 "GET /api/v1/proxies/gen"
    json_eq "$BODY" "$created" || die "GET differs from the create answer: $BODY"
    json_eq "$BODY" "$(upfs proxy show gen --json)" || die "API object differs from proxy show --json: $BODY vs $(upfs proxy show gen --json)"
    # PUT changes only what it carries
    api_req PUT "$API/proxies/gen" '{"negative_ttl": 7, "offline": true}'
    assert_eq "$HTTP_STATUS" 200 "PUT /api/v1/proxies/gen"
    "$PYTHON" - "$created" "$BODY" <<'EOF' || die "PUT changed more than it carried"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert b["negative_ttl"] == 7 and b["offline"] is True, b
assert b["health"]["state"] == "offline", b  # the health follows the config
for k in a:
    if k not in ("negative_ttl", "offline", "health"):
        assert a[k] == b[k], (k, a[k], b[k])
EOF
    json_eq "$BODY" "$(upfs proxy show gen --json)" || die "PUT result differs from proxy show --json"
    # a GET body can be PUT back unchanged
    api_req PUT "$API/proxies/gen" "$BODY"
    assert_eq "$HTTP_STATUS" 200 "PUT of a GET body"
    # the CLI's list sees what the API made
    upfs proxy list --json | "$PYTHON" -c 'import json,sys; keys=[p["key"] for p in json.load(sys.stdin)]; sys.exit(0 if "gen" in keys else 1)' ||
        die "proxy list --json does not list gen"
    api_get "$API/proxies"
    json_eq "$BODY" "$(upfs proxy list --json)" || die "GET /api/v1/proxies differs from proxy list --json"
    # it shows at once on the path routes (the root index lists proxies)
    http_get "$S/"
    assert_contains "$BODY" '<a href="gen/">' "the new proxy in the root index"
}
check --setup "proxies: POST 201, GET, PUT (only its fields), equal to the CLI's --json" t_proxy_crud

t_registry_crud() {
    upfs proxy create gen2 --type generic --url "$U" >/dev/null
    api_req POST "$API/registries" '{"name":"reg","type":"generic","upstreams":["gen","gen2"]}'
    assert_eq "$HTTP_STATUS" 201 "POST /api/v1/registries"
    json_eq "$BODY" '{"name":"reg","type":"generic","upstreams":["gen","gen2"]}' || die "created registry: $BODY"
    json_eq "$BODY" "$(upfs registry show reg --json)" || die "differs from registry show --json"
    api_req PUT "$API/registries/reg" '{"upstreams":["gen2"]}'
    assert_eq "$HTTP_STATUS" 200 "PUT upstreams"
    assert_eq "$(upfs registry show reg --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["upstreams"])')" "['gen2']" "upstreams after PUT"
    api_req PUT "$API/registries/reg" '{"type":"maven"}'
    assert_eq "$HTTP_STATUS" 400 "PUT of another type"
    api_get "$API/registries"
    json_eq "$BODY" "$(upfs registry list --json)" || die "GET /api/v1/registries differs from registry list --json"
    # a proxy still used by a registry: 409 naming it, as the CLI says
    run_capture upfs proxy delete gen2
    assert_eq "$RC" 2 "CLI proxy delete of a used proxy"
    api_req DELETE "$API/proxies/gen2"
    assert_eq "$HTTP_STATUS" 409 "DELETE of a proxy in use"
    assert_eq "upstreamfs: $(json_field 'j["error"]["field"]'): $(json_field 'j["error"]["message"]')" "$ERR" "409 message vs the CLI"
    assert_contains "$BODY" reg "the 409 names the registry"
    api_req DELETE "$API/registries/reg"
    assert_eq "$HTTP_STATUS" 204 "DELETE registry"
    api_req DELETE "$API/proxies/gen2"
    assert_eq "$HTTP_STATUS" 204 "DELETE proxy"
    api_get "$API/proxies/gen2"
    assert_eq "$HTTP_STATUS" 404 "GET of a deleted proxy"
    run_capture upfs proxy show gen2
    assert_eq "upstreamfs: $(json_field 'j["error"]["field"]'): $(json_field 'j["error"]["message"]')" "$ERR" "404 message vs the CLI"
    api_get "$API/registries/reg"
    assert_eq "$HTTP_STATUS" 404 "GET of a deleted registry"
    api_req DELETE "$API/registries/reg"
    assert_eq "$HTTP_STATUS" 404 "DELETE of an unknown registry"
}
check "registries: POST/GET/PUT/DELETE; 409 for a proxy in use, 404 after delete, as the CLI" t_registry_crud

# ---- the same refusals as the CLI ---------------------------------------------------------------
: >"$T/empty-secret"
printf '%s\n' "$SECRET" >"$T/secret"
upfs proxy create dup --type generic --url "$U" >/dev/null

# same_refusal WANT_STATUS JSON -- CLI ARGS...: the CLI fails with exit 2 and one line; POSTing
# JSON answers WANT_STATUS with {"error":{field,message}} that prints as that very line.
same_refusal() {
    local want="$1" json="$2" kind=proxies
    shift 3
    [[ "$1" == registry ]] && kind=registries
    run_capture upfs "$@"
    ((RC == 2)) || die "CLI '$*' exited $RC (want 2): $ERR"
    [[ "$(wc -l <<<"$ERR")" == 1 ]] || die "CLI '$*' printed more than one line: $ERR"
    api_req POST "$API/$kind" "$json"
    assert_eq "$HTTP_STATUS" "$want" "API status for $json"
    local line
    line="upstreamfs: $(json_field 'j["error"]["field"]'): $(json_field 'j["error"]["message"]')"
    assert_eq "$line" "$ERR" "API error for $json vs the CLI"
}

t_refusals() {
    local k65
    k65="k$(printf 'a%.0s' $(seq 1 64))"
    same_refusal 400 "{\"key\":\"Bad_Key\",\"type\":\"generic\",\"url\":\"$U\"}" -- proxy create Bad_Key --type generic --url "$U"
    same_refusal 400 "{\"key\":\"9lives\",\"type\":\"generic\",\"url\":\"$U\"}" -- proxy create 9lives --type generic --url "$U"
    same_refusal 400 "{\"key\":\"$k65\",\"type\":\"generic\",\"url\":\"$U\"}" -- proxy create "$k65" --type generic --url "$U"
    local r
    for r in v2 api metrics healthz ui static; do
        same_refusal 400 "{\"key\":\"$r\",\"type\":\"generic\",\"url\":\"$U\"}" -- proxy create "$r" --type generic --url "$U"
    done
    same_refusal 409 "{\"key\":\"dup\",\"type\":\"generic\",\"url\":\"$U\"}" -- proxy create dup --type generic --url "$U"
    same_refusal 400 '{"key":"ftp1","type":"generic","url":"ftp://example.com/x/"}' -- proxy create ftp1 --type generic --url ftp://example.com/x/
    same_refusal 400 '{"key":"nourl","type":"generic","url":"not a url"}' -- proxy create nourl --type generic --url "not a url"
    same_refusal 400 '{"key":"nourl2","type":"maven"}' -- proxy create nourl2 --type maven
    same_refusal 400 "{\"key\":\"src1\",\"type\":\"generic\",\"source\":\"dockerhub\",\"url\":\"$U\"}" -- proxy create src1 --type generic --source dockerhub --url "$U"
    same_refusal 400 "{\"key\":\"ak1\",\"type\":\"maven\",\"url\":\"$U\",\"auth\":\"access-key\",\"access_key\":\"bob\"}" -- proxy create ak1 --type maven --url "$U" --auth access-key --access-key bob
    same_refusal 400 "{\"key\":\"ak2\",\"type\":\"maven\",\"url\":\"$U\",\"auth\":\"access-key\",\"access_key\":\"bob\",\"secret_key\":\"\"}" -- proxy create ak2 --type maven --url "$U" --auth access-key --access-key bob --secret-key-file "$T/empty-secret"
    same_refusal 400 "{\"key\":\"ak3\",\"type\":\"maven\",\"url\":\"$U\",\"auth\":\"aws-chain\"}" -- proxy create ak3 --type maven --url "$U" --auth aws-chain
    same_refusal 400 "{\"key\":\"ty1\",\"type\":\"bogus\",\"url\":\"$U\"}" -- proxy create ty1 --type bogus --url "$U"
    same_refusal 400 "{\"key\":\"au1\",\"type\":\"generic\",\"url\":\"$U\",\"auth\":\"kerberos\"}" -- proxy create au1 --type generic --url "$U" --auth kerberos
    same_refusal 400 "{\"key\":\"ep1\",\"type\":\"generic\",\"url\":\"$U\",\"aws_endpoint\":\"https://ecr.example.com\"}" -- proxy create ep1 --type generic --url "$U" --aws-endpoint https://ecr.example.com
    same_refusal 400 "{\"key\":\"cred1\",\"type\":\"generic\",\"url\":\"http://user:pw@example.com/\"}" -- proxy create cred1 --type generic --url "http://user:pw@example.com/"
    # registries
    upfs proxy create mvnp --type maven --url "$U" >/dev/null
    same_refusal 400 '{"name":"Reg","type":"generic"}' -- registry create Reg --type generic
    same_refusal 400 '{"name":"api","type":"generic"}' -- registry create api --type generic
    same_refusal 409 '{"name":"dup","type":"generic"}' -- registry create dup --type generic
    same_refusal 400 '{"name":"r1","type":"generic","upstreams":["mvnp"]}' -- registry create r1 --type generic --upstream mvnp
    same_refusal 400 '{"name":"r2","type":"generic","upstreams":["nosuch"]}' -- registry create r2 --type generic --upstream nosuch
    same_refusal 400 '{"name":"r3","type":"bogus"}' -- registry create r3 --type bogus
    # updates refused the same way
    run_capture upfs proxy update dup --url ftp://x/
    api_req PUT "$API/proxies/dup" '{"url":"ftp://x/"}'
    assert_eq "$HTTP_STATUS" 400 "PUT of a bad url"
    assert_eq "upstreamfs: $(json_field 'j["error"]["field"]'): $(json_field 'j["error"]["message"]')" "$ERR" "PUT error vs proxy update"
    run_capture upfs proxy update nosuch --offline
    api_req PUT "$API/proxies/nosuch" '{"offline":true}'
    assert_eq "$HTTP_STATUS" 404 "PUT of an unknown proxy"
    assert_eq "upstreamfs: $(json_field 'j["error"]["field"]'): $(json_field 'j["error"]["message"]')" "$ERR" "404 error vs proxy update"
    run_capture upfs proxy show BAD
    api_get "$API/proxies/BAD"
    assert_eq "$HTTP_STATUS" 400 "GET of a malformed key"
    assert_eq "upstreamfs: $(json_field 'j["error"]["field"]'): $(json_field 'j["error"]["message"]')" "$ERR" "key error vs proxy show"
    # nothing invalid was written
    local keys
    keys="$(upfs proxy list --json | "$PYTHON" -c 'import json,sys; print(" ".join(sorted(p["key"] for p in json.load(sys.stdin))))')"
    assert_eq "$keys" "dup gen mvnp" "proxies after the refusals"
}
check "every proxy/registry the CLI refuses is refused by the API with the CLI's message" t_refusals

t_bad_bodies() {
    api_req POST "$API/proxies" '{"key":"x1",'
    assert_eq "$HTTP_STATUS" 400 "malformed JSON"
    assert_eq "$(json_field 'j["error"]["field"]')" body "field of a malformed body"
    api_req POST "$API/proxies" '[1,2]'
    assert_eq "$HTTP_STATUS" 400 "a JSON array"
    api_req POST "$API/proxies" "{\"key\":\"x2\",\"type\":\"generic\",\"url\":\"$U\",\"colour\":\"red\"}"
    assert_eq "$HTTP_STATUS" 400 "an unknown field"
    assert_eq "$(json_field 'j["error"]["field"]')" colour "field of an unknown member"
    head -c $((1024 * 1024 + 10)) /dev/zero | tr '\0' ' ' >"$T/big.json"
    api_req POST "$API/proxies" "" --data-binary "@$T/big.json" -H 'Content-Type: application/json'
    assert_eq "$HTTP_STATUS" 413 "a body over 1 MiB"
    # chunked, so no Content-Length warns the shim: the connection is dropped at the cap
    api_req POST "$API/proxies" "" --data-binary "@$T/big.json" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked'
    [[ "$HTTP_STATUS" =~ ^(413|000|100)$ ]] || die "a chunked body over 1 MiB: status $HTTP_STATUS"
    http_get "$S/healthz"
    assert_eq "$HTTP_STATUS" 200 "the shim after an oversized body"
    api_req PATCH "$API/proxies/dup" '{"a":1}'
    assert_eq "$HTTP_STATUS" 405 "a PATCH with a body"
    api_req PATCH "$API/proxies/dup" '{}'
    assert_eq "$HTTP_STATUS" 405 "PATCH"
    api_get "$S/api/v2/proxies"
    assert_eq "$HTTP_STATUS" 404 "an unknown API version"
    api_get "$API/proxies/dup/extra"
    assert_eq "$HTTP_STATUS" 404 "a path below an object"
}
check "bad bodies: malformed 400, unknown field 400, over 1 MiB 413 (chunked: dropped); unknown routes 404" t_bad_bodies

# ---- secrets -------------------------------------------------------------------------------------
t_secrets() {
    api_req POST "$API/proxies" "{\"key\":\"sec\",\"type\":\"maven\",\"url\":\"$U\",\"auth\":\"access-key\",\"access_key\":\"bob\",\"secret_key\":\"$SECRET\"}"
    assert_eq "$HTTP_STATUS" 201 "POST with a secret"
    assert_eq "$(json_field 'j["secret_set"]')" True "secret_set"
    [[ "$BODY" != *"$SECRET"* ]] || die "the create answer holds the secret"
    assert_eq "$(cat "$STATE/secrets/sec")" "$SECRET" "stored secret"
    assert_eq "$(stat -c %a "$STATE/secrets/sec")" 600 "mode of the secret file"
    # a PUT that changes the secret, and one that keeps it
    api_req PUT "$API/proxies/sec" "{\"secret_key\":\"$SECRET-2\"}"
    assert_eq "$HTTP_STATUS" 200 "PUT of a new secret"
    [[ "$BODY" != *"$SECRET"* ]] || die "the PUT answer holds the secret"
    assert_eq "$(cat "$STATE/secrets/sec")" "$SECRET-2" "stored secret after PUT"
    api_req PUT "$API/proxies/sec" '{"metadata_ttl": 30}'
    assert_eq "$(json_field 'j["secret_set"]')" True "secret kept by a PUT without one"
    local u out=""
    for u in "$API/proxies" "$API/proxies/sec" "$API/registries" "$S/metrics" "$S/"; do
        api_get "$u"
        out+="$BODY"
    done
    [[ "$out" != *"$SECRET"* ]] || die "/api or /metrics returned the secret"
    upfs proxy show sec --json | grep -qF "$SECRET" && die "proxy show printed the secret" || true
    if grep -rqF "$SECRET" "$SERVE_LOG_main" "$STATE/index.db" "$STATE"/index.db-wal 2>/dev/null; then
        die "the secret is in the log or the database"
    fi
}
check "a posted secret is stored 0600 but never in /api answers, /metrics, logs or SQLite" t_secrets

# ---- exposure rules ------------------------------------------------------------------------------
t_exposure() {
    local p
    p="$(free_port)"
    expect_fail_with "not a loopback address" "$UPFS" --state "$STATE" serve --listen "0.0.0.0:$p"
    assert_eq "$RC" 2 "exit status of serve --listen 0.0.0.0"
    assert_contains "$ERR" "--open" "the message names the way out"
    expect_fail_with "not a loopback address" "$UPFS" --state "$STATE" serve --listen "0.0.0.0:$p" --htpasswd "$T/htpasswd"
    assert_eq "$RC" 2 "exit status with --htpasswd but no TLS"
    expect_fail_with "not both" "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$p" --htpasswd "$T/htpasswd" --open
    assert_eq "$RC" 2 "exit status of --htpasswd with --open"
    expect_fail_with "together" "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$p" --tls-cert "$T/cert.pem"
    assert_eq "$RC" 2 "exit status of --tls-cert alone"
    expect_fail_with "listen:" "$UPFS" --state "$STATE" serve --listen "127.0.0.1"
    assert_eq "$RC" 2 "exit status of a listen without port"
    expect_fail_with "htpasswd:" "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$p" --htpasswd "$T/weak-htpasswd"
    assert_eq "$RC" 2 "exit status of a weak htpasswd"
    expect_fail_with "tls_key:" "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$p" --tls-cert "$T/cert.pem" --tls-key "$T/nonexistent.pem"
    assert_eq "$RC" 2 "exit status of a missing key"
    port_is_open "$p" && die "something listens on $p after the refusals" || true
    # a port that is taken is a runtime failure (1)
    expect_fail_with "cannot listen" "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$SERVE_PORT_main"
    assert_eq "$RC" 1 "exit status of a taken port"
}

# credentials and a self-signed certificate for 127.0.0.1
"$PYTHON" - "$T/htpasswd" "$T/weak-htpasswd" <<'EOF' 2>/dev/null
import crypt, sys
with open(sys.argv[1], "w") as f:
    f.write("alice:%s\n" % crypt.crypt("alice-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5)))
    f.write("carol:%s\n" % crypt.crypt("carol-pw", crypt.mksalt(crypt.METHOD_SHA512)))
with open(sys.argv[2], "w") as f:
    f.write("mallory:$apr1$abcdefgh$0123456789abcdefghijkl\n")
EOF
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null ||
    die "openssl could not make a certificate"
check "exposure: non-loopback without TLS+htpasswd or --open exits 2; bad option sets exit 2" t_exposure

# ---- a stored secret never follows a new destination ---------------------------------------------
# api_error: the answer's {"error"} as the CLI's stderr line.
api_error() { echo "upstreamfs: $(json_field 'j["error"]["field"]'): $(json_field 'j["error"]["message"]')"; }
# pem_json FILE: the file's text as a JSON string.
pem_json() { "$PYTHON" -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$1"; }

t_secret_destination() {
    local rule="changing where a proxy with a stored secret connects needs the secret again (--secret-key-file/-stdin) or --auth anonymous"
    local before body
    before="$(upfs proxy show sec --json)"
    for body in '{"url":"http://127.0.0.1:8/evil/"}' '{"http_proxy":"http://127.0.0.1:8"}' \
        "{\"ca_pem\":$(pem_json "$T/cert.pem")}"; do
        api_req PUT "$API/proxies/sec" "$body"
        assert_eq "$HTTP_STATUS" 400 "PUT $body on a proxy with a secret"
        assert_contains "$(api_error)" "$rule" "the refusal names the rule"
    done
    api_req PUT "$API/proxies/sec" '{"url":"http://127.0.0.1:8/evil/"}'
    run_capture upfs proxy update sec --url http://127.0.0.1:8/evil/
    assert_eq "$RC" 2 "CLI exit status of the same change"
    assert_eq "$(api_error)" "$ERR" "API and CLI give the same refusal"
    assert_eq "$ERR" "upstreamfs: url: $rule" "the CLI's message"
    json_eq "$(upfs proxy show sec --json)" "$before" || die "a refused change changed the proxy"
    assert_eq "$(cat "$STATE/secrets/sec")" "$SECRET-2" "the secret after the refusals"
    # the stored url again, and fields that are not destinations, are no change of destination
    api_req PUT "$API/proxies/sec" "{\"url\":\"$U\",\"negative_ttl\":9}"
    assert_eq "$HTTP_STATUS" 200 "PUT of the stored url and a ttl"
    # with the secret given again the change is taken
    api_req PUT "$API/proxies/sec" "{\"url\":\"http://127.0.0.1:8/new/\",\"secret_key\":\"$SECRET-3\"}"
    assert_eq "$HTTP_STATUS" 200 "PUT of a url with the secret"
    assert_eq "$(cat "$STATE/secrets/sec")" "$SECRET-3" "the secret given with the new url"
    # switching to anonymous drops the secret, so the url may change
    api_req PUT "$API/proxies/sec" '{"url":"http://127.0.0.1:8/anon/","auth":"anonymous"}'
    assert_eq "$HTTP_STATUS" 200 "PUT of a url with auth anonymous"
    assert_eq "$(json_field 'j["secret_set"]')" False "secret_set after anonymous"
    [[ ! -e "$STATE/secrets/sec" ]] || die "the secret file outlived auth anonymous"
}

# ---- path fields are local only; PEM content instead ---------------------------------------------
# refusal_bytes FIELD PATH: the status line, headers but Date, and body of a POST naming PATH.
refusal_bytes() {
    api_req POST "$API/proxies" "{\"key\":\"pf\",\"type\":\"generic\",\"url\":\"$U\",\"$1\":\"$2\"}"
    tr -d '\r' <"$T/headers" | grep -iv '^date:'
    cat "$T/body"
}

t_path_fields() {
    local f
    for f in ca_file client_cert client_key; do
        refusal_bytes "$f" "$T/cert.pem" >"$T/refusal-exists"
        assert_eq "$HTTP_STATUS" 400 "POST with $f naming an existing file"
        assert_contains "$BODY" "not by the HTTP API" "the refusal says why"
        refusal_bytes "$f" "/root/no-such-file-$RANDOM" >"$T/refusal-missing"
        assert_eq "$HTTP_STATUS" 400 "POST with $f naming a missing file"
        cmp -s "$T/refusal-exists" "$T/refusal-missing" ||
            die "the answers for an existing and a missing $f differ: $(diff "$T/refusal-exists" "$T/refusal-missing")"
        api_req PUT "$API/proxies/dup" "{\"$f\":\"$T/cert.pem\"}"
        assert_eq "$HTTP_STATUS" 400 "PUT with $f"
        # the page's check as you type says what a create would
        api_req POST "$API/validate/proxy" "{\"key\":\"pf\",\"type\":\"generic\",\"url\":\"$U\",\"$f\":\"$T/cert.pem\"}"
        assert_eq "$HTTP_STATUS" 400 "the dry run with $f"
        assert_contains "$BODY" "not by the HTTP API" "the dry run's refusal"
    done
    upfs proxy show pf >/dev/null 2>&1 && die "a refused POST created a proxy" || true
    # a CA in PEM, a server certificate it signed, an https server on 127.0.0.1
    local d="$T/pki" port pid
    mkdir -p "$d/www/dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout "$d/ca.key" \
        -out "$d/ca.pem" 2>/dev/null || die "openssl could not make a CA"
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$d/srv.key" \
        -out "$d/srv.csr" 2>/dev/null || die "openssl could not make a request"
    printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext"
    openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/ext" -out "$d/srv.pem" 2>/dev/null || die "openssl could not sign"
    head -c 70000 /dev/urandom >"$d/www/dir/blob.bin"
    cat >"$d/https.py" <<'PY'
import functools, http.server, ssl, sys
port, d = int(sys.argv[1]), sys.argv[2]
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=d + "/www")
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), h)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/srv.pem", d + "/srv.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
    port="$(free_port)"
    "${DIE_WITH_PARENT[@]}" "$PYTHON" "$d/https.py" "$port" "$d" >"$T/https.log" 2>&1 &
    pid=$!
    on_exit "kill $pid 2>/dev/null || true"
    wait_until 10 port_is_open "$port" || die "the https server did not start: $(cat "$T/https.log")"
    # the same server without the CA fails TLS: what follows shows the stored CA is what is used
    api_req POST "$API/proxies" "{\"key\":\"notrust\",\"type\":\"generic\",\"url\":\"https://127.0.0.1:$port/\"}"
    assert_eq "$HTTP_STATUS" 201 "POST of a proxy without the CA"
    http_get "$S/notrust/dir/blob.bin"
    [[ "$HTTP_STATUS" != 200 ]] || die "a certificate of an unknown CA was trusted"
    api_req POST "$API/proxies" "{\"key\":\"pem\",\"type\":\"generic\",\"url\":\"https://127.0.0.1:$port/\",\"ca_pem\":$(pem_json "$d/ca.pem")}"
    assert_eq "$HTTP_STATUS" 201 "POST with ca_pem"
    assert_eq "$(json_field 'j["ca_pem_set"]')" True "ca_pem_set in the answer"
    [[ "$BODY" != *"BEGIN CERTIFICATE"* ]] || die "the answer holds the PEM"
    assert_eq "$(stat -c %a "$STATE/tls/pem/ca_pem")" 600 "mode of the stored CA"
    cmp -s "$STATE/tls/pem/ca_pem" "$d/ca.pem" || die "the stored CA differs from the posted one"
    http_get "$S/pem/dir/blob.bin"
    assert_eq "$HTTP_STATUS" 200 "a file fetched over TLS trusting ca_pem"
    assert_eq "$(sha256sum <"$T/body" | cut -d' ' -f1)" "$(sha256sum <"$d/www/dir/blob.bin" | cut -d' ' -f1)" "bytes over TLS"
    local shown
    shown="$(upfs proxy show pem --json)"
    assert_eq "$("$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["ca_pem_set"])' "$shown")" True "proxy show --json: ca_pem_set"
    [[ "$shown" != *"BEGIN"* ]] || die "proxy show --json printed the PEM"
    if grep -rqF "BEGIN CERTIFICATE" "$STATE/index.db" "$STATE"/index.db-wal 2>/dev/null; then
        die "the PEM is in SQLite"
    fi
    # what is not PEM of the right kind is refused, and the key must match the certificate
    api_req PUT "$API/proxies/pem" '{"ca_pem":"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}'
    assert_eq "$HTTP_STATUS" 400 "ca_pem that is not a certificate"
    assert_eq "$(api_error)" "upstreamfs: ca_pem: must be one or more X.509 certificates in PEM form" "its message"
    api_req PUT "$API/proxies/pem" "{\"client_cert_pem\":$(pem_json "$d/srv.pem"),\"client_key_pem\":$(pem_json "$d/ca.key")}"
    assert_eq "$HTTP_STATUS" 400 "a client key of another certificate"
    assert_eq "$(api_error)" "upstreamfs: client_key_pem: is not the key of client_cert_pem's certificate" "its message"
    api_req PUT "$API/proxies/pem" "{\"client_cert_pem\":$(pem_json "$d/srv.pem")}"
    assert_eq "$HTTP_STATUS" 400 "a client certificate without its key"
    api_req PUT "$API/proxies/pem" "{\"client_cert_pem\":$(pem_json "$d/srv.pem"),\"client_key_pem\":$(pem_json "$d/srv.key")}"
    assert_eq "$HTTP_STATUS" 200 "a matching client pair"
    assert_eq "$(json_field '(j["client_cert_pem_set"], j["client_key_pem_set"])')" "(True, True)" "the pair is set"
    assert_eq "$(stat -c %a "$STATE/tls/pem/client_key_pem")" 600 "mode of the stored key"
    # "" removes a PEM field; deleting the proxy removes its directory
    api_req PUT "$API/proxies/pem" '{"client_cert_pem":"","client_key_pem":""}'
    assert_eq "$HTTP_STATUS" 200 "PUT removing the pair"
    assert_eq "$(json_field '(j["client_cert_pem_set"], j["client_key_pem_set"], j["ca_pem_set"])')" "(False, False, True)" "the pair removed"
    [[ ! -e "$STATE/tls/pem/client_key_pem" ]] || die "the removed key file is still there"
    api_req DELETE "$API/proxies/pem"
    assert_eq "$HTTP_STATUS" 204 "DELETE of the proxy"
    [[ ! -e "$STATE/tls/pem" ]] || die "STATEDIR/tls/pem outlived its proxy"
}
check "a url/http_proxy/TLS change of a proxy with a secret needs the secret again or anonymous (API = CLI)" t_secret_destination
check "the API refuses path fields (one answer whether the file exists); ca_pem is stored 0600 and used for TLS" t_path_fields

serve_start tls --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" --htpasswd "$T/htpasswd" --admin alice
TS="https://127.0.0.1:$SERVE_PORT_tls"

t_tls_auth() {
    http_get "$TS/api/v1/proxies" --cacert "$T/cert.pem" -u alice:alice-pw
    assert_eq "$HTTP_STATUS" 200 "TLS + bcrypt credentials"
    json_eq "$BODY" "$(upfs proxy list --json)" || die "TLS answer differs from proxy list --json"
    http_get "$TS/metrics" --cacert "$T/cert.pem" -u carol:carol-pw
    assert_eq "$HTTP_STATUS" 200 "TLS + SHA-crypt credentials"
    # carol may pull but is no --admin: the API refuses her; the admin token works here too
    http_get "$TS/api/v1/proxies" --cacert "$T/cert.pem" -u carol:carol-pw
    assert_eq "$HTTP_STATUS" 403 "the API for a user who is not --admin"
    assert_eq "$(json_field 'j["error"]["message"]')" 'user "carol" may pull but not use the admin API: it needs a user named by --admin, or the admin token' "the 403's message"
    api_get "$TS/api/v1/proxies" --cacert "$T/cert.pem"
    assert_eq "$HTTP_STATUS" 200 "the API with the admin token behind --htpasswd"
    http_get "$TS/api/v1/proxies" --cacert "$T/cert.pem"
    assert_eq "$HTTP_STATUS" 401 "no credentials"
    assert_eq "$(header_of WWW-Authenticate)" 'Basic realm="upstreamfs"' "the challenge"
    http_get "$TS/api/v1/proxies" --cacert "$T/cert.pem" -u alice:wrong
    assert_eq "$HTTP_STATUS" 401 "a wrong password"
    http_get "$TS/api/v1/proxies" --cacert "$T/cert.pem" -u eve:alice-pw
    assert_eq "$HTTP_STATUS" 401 "an unknown user"
    local r
    for r in / /gen/x /v2/ /metrics /api/v1/registries; do
        http_get "$TS$r" --cacert "$T/cert.pem"
        assert_eq "$HTTP_STATUS" 401 "$r without credentials"
    done
    http_req POST "$TS/api/v1/proxies" "{\"key\":\"sneaky\",\"type\":\"generic\",\"url\":\"$U\"}" --cacert "$T/cert.pem"
    assert_eq "$HTTP_STATUS" 401 "POST without credentials"
    upfs proxy show sneaky >/dev/null 2>&1 && die "an unauthenticated POST created a proxy" || true
    http_get "$TS/healthz" --cacert "$T/cert.pem"
    assert_eq "$HTTP_STATUS" 200 "/healthz needs no credentials"
    # plain HTTP on the TLS port gets no answer
    http_get "http://127.0.0.1:$SERVE_PORT_tls/healthz"
    [[ "$HTTP_STATUS" != 200 ]] || die "plain HTTP answered on the TLS port"
    grep -qF alice-pw "$SERVE_LOG_tls" && die "a password is in the log" || true
}
check "--htpasswd + TLS: credentials 200, none or wrong 401 with the Basic challenge" t_tls_auth

serve_stop tls
serve_stop main
finish
