#!/bin/bash
# tests/integration/ecr_test.sh -- ecr proxies against fake ECR APIs, all on 127.0.0.1.
#
#     bash tests/integration/ecr_test.sh build/upstreamfs      (as root; /dev/fuse)
#
# Private ECR: ecr/fake_ecr.py checks every request's SigV4 signature (recomputed with its own
# secret) and answers GetAuthorizationToken with base64("AWS:<password>") and a proxyEndpoint
# that names a docker/regproxy.py in front of docker-registry with htpasswd user AWS. The proxy
# URL is the registry form <account>.dkr.ecr.<region>.amazonaws.com: its host is replaced by
# the proxyEndpoint at run time. Asserts:
#   - reads: index.json names the pushed digest, every blob's sha256 is its name, skopeo copies
#     oci:MNT/e/<repo>/<tag>; one token for many requests; the registry only ever saw Basic;
#   - a docker registry with the ecr proxy as its upstream serves the same image, and so does
#     the HTTP shim (skopeo copy docker://.../e/...);
#   - a console URL scopes a proxy to its repository: the root shows the way to it, it reads,
#     and another repository is ENOENT without a single request (registry or API);
#   - a 403 DENIED "token has expired" (ECR's answer to a token that died early) to a manifest
#     and to a blob download renews the token once each, and the reads succeed; also to the
#     first ranged GET of a partial object (lazy_min=256K, own mount): refused, then one 206;
#   - a token that dies mid-fill of a 20 MB layer read by 4 streams (lazy_min=1M, own mount):
#     the streams' GETs refused (each once), one token request for them all, the read's sha256 right,
#     the 206s' bytes <= the layer's size + one request's worth (8 MiB); refused again after
#     the renewal: EIO, cause auth in the file's error xattr and the proxy's health (not digest);
#   - tokens that expire after 5 s are replaced (2+ token requests) while reads go on, and no
#     read fails;
#   - a wrong secret: EIO within a few seconds, a log line naming InvalidSignatureException,
#     no second signed request within the retry interval, nothing stored;
#   - --auth aws-chain takes AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the daemon's
#     environment;
#   - the secret and the registry password appear nowhere: the debug log, the upstreamfs
#     processes' command lines, `proxy show`, SQLite.
# ECR Public: ecr/fake_public.py plays https://public.ecr.aws/ (reached through it as the
# proxy's --http-proxy: CONNECT, then TLS with a self-signed certificate given as --ca-file),
# in front of an open docker-registry. Asserts, anonymous (public.ecr.aws/<alias>, token from
# the registry's realm) and with keys (a public console URL: the alias comes from
# DescribeRegistries, the ecr-public token is sent as Bearer): reads under the alias, and a
# 400 DENIED answer is taken as an expired token (renewed, the read succeeds).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
source "$(dirname "${BASH_SOURCE[0]}")/ecr/ecr.sh"
docker_need_tools
# Everything here is on 127.0.0.1; a proxy from the environment must not get in between.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_ECR AWS_ENDPOINT_URL_ECR_PUBLIC AWS_PROFILE AWS_CA_BUNDLE
export AWS_EC2_METADATA_DISABLED=true AWS_SHARED_CREDENTIALS_FILE="$T/no-credentials"
export AWS_CONFIG_FILE="$T/no-config"

OCI="$T/oci"
MNT="$T/mnt"
STORE="$T/store"
ACCOUNT=123456789012
REGION=eu-west-1
AKID=AKIDUPSTREAMFSTEST01
SECRET="ecrSecret/$RANDOM$RANDOM+K7MDENG"
PW="regpw-$RANDOM$RANDOM"
ECR_TOKEN="$(printf 'AWS:%s' "$PW" | base64 -w0)"

# Distinct images, so that each proxy downloads its own blobs (the store is shared by digest).
D_HELLO="$(mkimage "$OCI" hello --text hello --big 300000)"
D_MULTI="$(mkimage "$OCI" multi --platform linux/amd64 --platform linux/arm64)"
D_OTHER="$(mkimage "$OCI" other --text other --big 100000)"
D_ROT1="$(mkimage "$OCI" rot1 --text rot1 --big 50000)"
D_ROT2="$(mkimage "$OCI" rot2 --text rot2 --big 50000)"
D_ROT3="$(mkimage "$OCI" rot3 --text rot3 --big 50000)"
D_EXP="$(mkimage "$OCI" expdl --text expdl --big 120000)"
D_EXPBIG="$(mkimage "$OCI" expbig --text expbig --big 1500000)"
D_EXPFILL="$(mkimage "$OCI" expfill --text expfill --big 20000000)"
D_EXPFAIL="$(mkimage "$OCI" expfail --text expfail --big 3000000)"
D_ANON="$(mkimage "$OCI" anon --text anonymous --big 200000)"
D_PUB="$(mkimage "$OCI" pub --text public --big 200000)"

# ---- servers -----------------------------------------------------------------------------
registry_start open open "$STORE"
push "oci:$OCI:hello" "127.0.0.1:$REG_PORT_open/test/hello:v1"
push "oci:$OCI:multi" "127.0.0.1:$REG_PORT_open/test/multi:1.0" --all
push "oci:$OCI:other" "127.0.0.1:$REG_PORT_open/test/other:v1"
push "oci:$OCI:rot1" "127.0.0.1:$REG_PORT_open/test/rot:v1"
push "oci:$OCI:rot2" "127.0.0.1:$REG_PORT_open/test/rot:v2"
push "oci:$OCI:rot3" "127.0.0.1:$REG_PORT_open/test/rot:v3"
push "oci:$OCI:expdl" "127.0.0.1:$REG_PORT_open/test/expdl:v1"
push "oci:$OCI:expbig" "127.0.0.1:$REG_PORT_open/test/expbig:v1"
push "oci:$OCI:expfill" "127.0.0.1:$REG_PORT_open/test/expfill:v1"
push "oci:$OCI:expfail" "127.0.0.1:$REG_PORT_open/test/expfail:v1"
push "oci:$OCI:anon" "127.0.0.1:$REG_PORT_open/fakealias/anon:v1"
push "oci:$OCI:anon" "127.0.0.1:$REG_PORT_open/fakealias/anon:v2"
push "oci:$OCI:pub" "127.0.0.1:$REG_PORT_open/fakealias/hello:v1"
push "oci:$OCI:pub" "127.0.0.1:$REG_PORT_open/fakealias/hello:v2"

mkdir -p "$T/priv"
htpasswd -Bbn AWS "$PW" >"$T/priv/htpasswd" 2>/dev/null
registry_start priv htpasswd "$STORE"
regproxy_start pe "http://127.0.0.1:$REG_PORT_priv"

fake_ecr_start api --access-key "$AKID" --secret "$SECRET" --password "$PW" \
    --account "$ACCOUNT" --alias fakealias --proxy-endpoint "http://127.0.0.1:$PROXY_PORT_pe"
fake_ecr_start short --access-key "$AKID" --secret "$SECRET" --password "$PW" --ttl 5 \
    --proxy-endpoint "http://127.0.0.1:$PROXY_PORT_pe"

selfsigned public.ecr.aws "$T"
fake_public_start pub --backend "http://127.0.0.1:$REG_PORT_open" --cert "$T/public.ecr.aws.crt" \
    --key "$T/public.ecr.aws.key" --ecr-password "$PW" --expires-in 300

API="http://127.0.0.1:$FAKE_PORT_api/"
PUBPROXY=(--http-proxy "http://127.0.0.1:$PUB_PORT_pub" --ca-file "$T/public.ecr.aws.crt")
CONSOLE="https://$REGION.console.aws.amazon.com/ecr/repositories"
mk() { printf '%s\n' "$2" | upfs proxy create "$1" --type ecr --secret-key-stdin "${@:3}" >/dev/null; }
mk e "$SECRET" --url "$ACCOUNT.dkr.ecr.$REGION.amazonaws.com" --auth access-key \
    --access-key "$AKID" --aws-endpoint "$API"
mk scoped "$SECRET" --url "$CONSOLE/private/$ACCOUNT/test/hello?region=$REGION" \
    --auth access-key --access-key "$AKID" --aws-endpoint "$API"
mk bad "wrong-$SECRET" --url "$ACCOUNT.dkr.ecr.$REGION.amazonaws.com" --auth access-key \
    --access-key "$AKID" --aws-endpoint "$API"
mk short "$SECRET" --url "$ACCOUNT.dkr.ecr.$REGION.amazonaws.com" --auth access-key \
    --access-key "$AKID" --aws-endpoint "http://127.0.0.1:$FAKE_PORT_short/" --metadata-ttl 1
mk pubkeys "$SECRET" --url "$CONSOLE/public/$ACCOUNT/hello?region=$REGION" --auth access-key \
    --access-key "$AKID" --aws-endpoint "$API" "${PUBPROXY[@]}"
upfs proxy create chain --type ecr --url "https://$ACCOUNT.dkr.ecr.$REGION.amazonaws.com/" \
    --auth aws-chain --aws-endpoint "$API" >/dev/null
upfs proxy create pubanon --type ecr --url public.ecr.aws/fakealias "${PUBPROXY[@]}" >/dev/null
upfs registry create r --type docker --upstream e >/dev/null

# The aws-chain proxy finds its keys in the daemon's environment (the first link of the chain).
export AWS_ACCESS_KEY_ID="$AKID" AWS_SECRET_ACCESS_KEY="$SECRET" UPSTREAMFS_LOG=debug
SHIM_PORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$SHIM_PORT"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY UPSTREAMFS_LOG

jq_py() { "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# read_image DIR DIGEST NBLOBS NAME: index.json of the layout DIR names DIGEST, its NBLOBS blobs
# are verified, and skopeo copies it
read_image() {
    local dir="$1" digest="$2" want="$3" name="$4" f n=0
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$dir/index.json")" "$digest" \
        "$name: index.json"
    for f in "$dir"/blobs/sha256/*; do
        assert_sha256 "$f" "$(basename "$f")"
        n=$((n + 1))
    done
    assert_eq "$n" "$want" "$name: blobs"
    rm -rf "$T/copy-$name"
    expect_ok with_timeout 120 skopeo copy --quiet "oci:$dir" "dir:$T/copy-$name"
    assert_eq "$(manifest_digest "$T/copy-$name")" "$digest" "$name: skopeo copy"
}

# auth_of NAME METHOD: the Authorization schemes a regproxy saw for METHOD, sorted, unique
auth_of() {
    regproxy_requests "$1" | "$PYTHON" -c '
import json, sys
print(" ".join(sorted({r["auth"] or "none" for r in json.load(sys.stdin) if r["method"] == sys.argv[1]})))' "$2"
}

regproxy_total() {
    "${CURL[@]}" "http://127.0.0.1:$PROXY_PORT_pe/_control/counts" | jq_py 'sum(d.values())'
}

# ---- private ------------------------------------------------------------------------------
t_private() {
    assert_eq "$(ls "$MNT/e" | tr '\n' ' ')" "fakealias test " "e: catalog"
    assert_eq "$(ls "$MNT/e/test/hello" | tr '\n' ' ')" "v1 " "e: tags"
    read_image "$MNT/e/test/hello/v1" "$D_HELLO" 4 e-hello
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$MNT/e/test/multi/1.0/index.json")" \
        "$D_MULTI" "e: index.json of a multi-platform image"
    local f n=0
    for f in "$MNT/e/test/multi/1.0/blobs/sha256"/*; do
        assert_sha256 "$f" "$(basename "$f")"
        n=$((n + 1))
    done
    assert_eq "$n" 7 "e: blobs of test/multi:1.0"
    assert_eq "$(fake_ecr_count api ecr.GetAuthorizationToken)" 1 "token requests (cached)"
    assert_eq "$(auth_of pe GET) $(auth_of pe HEAD)" "basic basic" "Authorization at the registry"
    (($(regproxy_sum pe GET '/blobs/') >= 3)) || die "blobs did not come from the proxyEndpoint"
    local src
    src="$(xattr source "$MNT/e/test/hello/v1/blobs/sha256/${D_HELLO#sha256:}")"
    assert_contains "$src" "http://127.0.0.1:$PROXY_PORT_pe/v2/test/hello/manifests/" \
        "e: where the manifest came from"
}
check "private: reads through the proxyEndpoint with the token as Basic" t_private

# regproxy's /_control/expire answers the next authorised request 403 DENIED "token has expired",
# as ECR does when a token dies before its expiresAt (revoked, or a skewed clock)
denied_403() {
    regproxy_requests pe | "$PYTHON" -c 'import json,sys; print(sum(r["status"] == 403 for r in json.load(sys.stdin)))'
}
t_expired_403() {
    local tokens f n=0
    tokens="$(fake_ecr_count api ecr.GetAuthorizationToken)"
    regproxy_reset pe
    regproxy_control pe "expire?n=1"
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$MNT/e/test/other/v1/index.json")" \
        "$D_OTHER" "e: index.json after a 403 DENIED"
    assert_eq "$(denied_403)" 1 "403 answers to metadata"
    assert_eq "$(fake_ecr_count api ecr.GetAuthorizationToken)" $((tokens + 1)) \
        "token requests after a 403 DENIED to metadata"
    regproxy_control pe "expire?n=1"
    for f in "$MNT/e/test/other/v1/blobs/sha256"/*; do
        assert_sha256 "$f" "$(basename "$f")"
        n=$((n + 1))
    done
    ((n >= 3)) || die "test/other:v1 has only $n blobs"
    assert_eq "$(denied_403)" 2 "403 answers in all"
    assert_eq "$(fake_ecr_count api ecr.GetAuthorizationToken)" $((tokens + 2)) \
        "token requests after a 403 DENIED to a download"
    grep -q "proxy e: the registry refused the credentials (HTTP 403); renewing them" \
        "$STATE/upstreamfs.log" || die "no log line for the refused token"
}
check "private: a 403 DENIED (expired token) renews the token once; the read succeeds" t_expired_403

# The download's own retry (src/engine/download.c, download_attempt): a layer not stored yet,
# its manifest and listing read first, so the first authorised request after the expiry is the
# layer's GET itself.
t_expired_403_download() {
    local layer tokens denied
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$MNT/e/test/expdl/v1/index.json")" \
        "$D_EXP" "e: expdl index.json"
    layer="$(ls -S "$MNT/e/test/expdl/v1/blobs/sha256" | head -n 1)"
    tokens="$(fake_ecr_count api ecr.GetAuthorizationToken)"
    regproxy_reset pe
    regproxy_control pe "expire?n=1"
    assert_sha256 "$MNT/e/test/expdl/v1/blobs/sha256/$layer" "$layer"
    denied="$(regproxy_requests pe |
        jq_py '[r["method"] + " " + r["path"].split("/")[-2] for r in d if r["status"] == 403]')"
    assert_eq "$denied" "['GET blobs']" "the 403 DENIED answered the layer's GET"
    assert_eq "$(regproxy_sum pe GET "/blobs/sha256:$layer")" 2 \
        "GETs of the layer: refused, then with a fresh token"
    assert_eq "$(fake_ecr_count api ecr.GetAuthorizationToken)" $((tokens + 1)) \
        "token requests after a 403 DENIED to the layer's GET"
}
check "private: a 403 DENIED to a download's GET renews the token; that read succeeds" \
    t_expired_403_download

# lazy_layer NAME IMAGE DIGEST OPTS: in this check's subshell, a state of its own ($T/state-NAME)
# with proxy e, mounted on $T/mnt-NAME with -o OPTS; sets dir to test/IMAGE/v1 there (its
# index.json checked against DIGEST) and layer to its largest blob's name
lazy_layer() {
    STATE="$T/state-$1" # this check's subshell only
    mk e "$SECRET" --url "$ACCOUNT.dkr.ecr.$REGION.amazonaws.com" --auth access-key \
        --access-key "$AKID" --aws-endpoint "$API"
    upfs_mount "$T/mnt-$1" -o "$4"
    dir="$T/mnt-$1/e/test/$2/v1"
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$dir/index.json")" "$3" "e: $2 index.json"
    layer="$(ls -S "$dir/blobs/sha256" | head -n 1)"
}

# The same for a layer that is a partial object (a mount of its own with lazy_min=256K): its
# open returns before the answer, so the flight itself asks again (src/engine/download.c,
# dl_reauth), with the same Range: a tail read is then the refused GET and one ranged GET. (The
# layer is 1.5 MB: a read within 1 MiB of the start would wait for the fill, src/fetch/lazy.c.)
t_expired_403_partial() {
    local m="$T/mnt-lazy" dir layer size tokens reqs want got r chunk=$((128 * 1024))
    lazy_layer lazy expbig "$D_EXPBIG" lazy_min=256K
    size="$(stat -c %s "$dir/blobs/sha256/$layer")"
    ((size > 2 * chunk)) || die "the layer is only $size bytes"
    tokens="$(fake_ecr_count api ecr.GetAuthorizationToken)"
    regproxy_reset pe
    regproxy_control pe "expire?n=1"
    want="$(tail -c 65536 "$OCI/blobs/sha256/$layer" | sha256sum | cut -d' ' -f1)"
    got="$(with_timeout 20 dd if="$dir/blobs/sha256/$layer" bs=65536 count=1 iflag=skip_bytes \
        skip=$((size - 65536)) status=none | sha256sum | cut -d' ' -f1)"
    assert_eq "$got" "$want" "sha256 of the layer's last 64 KiB after a 403 DENIED"
    reqs="$(regproxy_requests pe | jq_py '" ".join("%s:%s" % (r["range"] or "-", r["status"]) for r in d if r["method"] == "GET" and r["path"].endswith("'"$layer"'"))')"
    r="bytes=$(((size - 65536) / chunk * chunk))-$((size - 1))"
    assert_eq "$reqs" "$r:403 $r:206" "GETs of the layer's tail: refused, then with a fresh token"
    assert_eq "$(fake_ecr_count api ecr.GetAuthorizationToken)" $((tokens + 1)) \
        "token requests after a 403 DENIED to a partial object's GET"
    upfs_unmount "$m"
}
upfs_register_mount "$T/mnt-lazy"
check "private: a 403 DENIED to a partial object's first GET (open returned): renewed, one ranged GET" \
    t_expired_403_partial

# A token that dies while a partial object fills (src/fetch/lazy.c, fetch_range): the probe's
# GET passes, then every stream's first GET is refused (regproxy expire after=1, once: a GET
# asked again passes). One renewal serves all the streams refused at once (reauth_wave).
t_expired_mid_fill() {
    local m="$T/mnt-fill" dir layer size tokens denied bytes
    lazy_layer fill expfill "$D_EXPFILL" lazy_min=1M,streams=4,streams_min=1M
    size="$(stat -c %s "$dir/blobs/sha256/$layer")"
    ((size > 16 * 1024 * 1024)) || die "the layer is only $size bytes"
    tokens="$(fake_ecr_count api ecr.GetAuthorizationToken)"
    regproxy_reset pe
    regproxy_control pe "expire?n=3&after=1&once=1"
    assert_sha256 "$dir/blobs/sha256/$layer" "$layer"
    regproxy_control pe up
    denied="$(regproxy_requests pe | jq_py 'len([r for r in d if r["status"] == 403])')"
    log "GETs of a $size-byte layer: $(regproxy_requests pe | jq_py '" ".join("%s:%s" % (r["range"] or "-", r["status"]) for r in d if r["path"].endswith("'"$layer"'"))')"
    # each stream's first GET is refused, unless it came after the renewal's first retry
    ((denied >= 2 && denied <= 3)) || die "$denied GETs refused: expected the 3 streams' (2 at least)"
    assert_eq "$(fake_ecr_count api ecr.GetAuthorizationToken)" $((tokens + 1)) \
        "token requests after $denied streams were refused at once (one renewal)"
    bytes="$(regproxy_requests pe | jq_py 'sum(int(r["range"].split("-")[1]) - int(r["range"][6:].split("-")[0]) + 1 for r in d if r["status"] == 206 and r["path"].endswith("'"$layer"'"))')"
    ((bytes >= size && bytes <= size + 8 * 1024 * 1024)) ||
        die "the 206 answers carried $bytes bytes of a $size-byte layer"
    upfs_unmount "$m"
}
upfs_register_mount "$T/mnt-fill"
check "private: a token that dies mid-fill: one renewal for every stream, the layer reads whole" \
    t_expired_mid_fill

# Refused again with the renewed token: the flight fails with cause auth, recorded on the proxy
# (src/engine/download.c, dl_fail: the open had returned), never digest.
t_expired_mid_fill_refused() {
    local m="$T/mnt-fail" dir layer tokens
    lazy_layer fail expfail "$D_EXPFAIL" lazy_min=1M
    tokens="$(fake_ecr_count api ecr.GetAuthorizationToken)"
    regproxy_reset pe
    regproxy_control pe "expire?n=1000&after=1"
    run_capture with_timeout 30 cat "$dir/blobs/sha256/$layer"
    regproxy_control pe up
    ((RC != 0)) || die "a read refused after the renewal succeeded"
    assert_contains "$ERR" "Input/output error" "cat's error"
    log "GETs of the layer: $(regproxy_requests pe | jq_py '" ".join("%s:%s" % (r["range"] or "-", r["status"]) for r in d if r["path"].endswith("'"$layer"'"))')"
    assert_eq "$(regproxy_requests pe | jq_py '" ".join(str(r["status"]) for r in d if r["path"].endswith("'"$layer"'"))')" \
        "206 403 403" "GETs of the layer: the probe's, the fill's refused, asked once more"
    assert_eq "$(fake_ecr_count api ecr.GetAuthorizationToken)" $((tokens + 1)) "token requests"
    wait_until 10 eval '[[ "$(xattr error "$dir/blobs/sha256/$layer")" == "auth 403 "* ]]' ||
        die "error xattr: '$(xattr error "$dir/blobs/sha256/$layer" || true)'"
    wait_until 10 eval '[[ "$(jq_py "d[\"cause\"]" <"$STATE/health/e.json")" == auth ]]' ||
        die "the proxy's health: $(cat "$STATE/health/e.json" || true)"
    upfs_unmount "$m"
}
upfs_register_mount "$T/mnt-fail"
check "private: refused again after the renewal mid-fill: EIO, cause auth on the file and the proxy" \
    t_expired_mid_fill_refused

t_registry_upstream() {
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$MNT/r/test/hello/v1/index.json")" \
        "$D_HELLO" "r: index.json through the ecr upstream"
    local f
    for f in "$MNT/r/test/hello/v1/blobs/sha256"/*; do assert_sha256 "$f" "$(basename "$f")"; done
}
check "a docker registry with the ecr proxy as upstream" t_registry_upstream

t_shim() {
    rm -rf "$T/shim-copy"
    expect_ok with_timeout 120 skopeo copy --quiet --src-tls-verify=false \
        "docker://127.0.0.1:$SHIM_PORT/e/test/hello:v1" "dir:$T/shim-copy"
    assert_eq "$(manifest_digest "$T/shim-copy")" "$D_HELLO" "skopeo copy through the shim"
    assert_eq "$("${CURL[@]}" -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$SHIM_PORT/v2/scoped/test/other/manifests/v1")" 404 \
        "the shim: another repository of a scoped proxy"
}
check "the HTTP shim serves ecr proxies" t_shim

t_scoped() {
    assert_eq "$(ls "$MNT/scoped" | tr '\n' ' ')" "test " "scoped: root"
    assert_eq "$(ls "$MNT/scoped/test" | tr '\n' ' ')" "hello " "scoped: namespace"
    assert_eq "$(ls "$MNT/scoped/test/hello" | tr '\n' ' ')" "v1 " "scoped: tags"
    read_image "$MNT/scoped/test/hello/v1" "$D_HELLO" 4 scoped
    regproxy_reset pe
    local api
    api="$(fake_ecr_count api total)"
    expect_fail_with "No such file or directory" cat "$MNT/scoped/test/other/v1/index.json"
    expect_fail_with "No such file or directory" ls "$MNT/scoped/test/other"
    expect_fail_with "No such file or directory" ls "$MNT/scoped/other"
    expect_fail_with "No such file or directory" stat "$MNT/scoped/test/multi/1.0"
    expect_fail_with "No such file or directory" stat "$MNT/scoped/test/hello2"
    assert_eq "$(regproxy_total)" 0 "registry requests for other repositories"
    assert_eq "$(fake_ecr_count api total)" "$api" "API requests for other repositories"
}
check "a console URL scopes the proxy to its repository; others: ENOENT, no request" t_scoped

t_refresh() {
    local end=$((SECONDS + 16)) k=0 tag want f
    while ((SECONDS < end)); do
        tag=$((k % 3 + 1))
        case $tag in 1) want="$D_ROT1" ;; 2) want="$D_ROT2" ;; *) want="$D_ROT3" ;; esac
        assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$MNT/short/test/rot/v$tag/index.json")" \
            "$want" "short: index.json of v$tag (round $k)"
        for f in "$MNT/short/test/rot/v$tag/blobs/sha256"/*; do
            assert_sha256 "$f" "$(basename "$f")"
        done
        ((k == 5)) && for f in "$MNT/short/test/other/v1/blobs/sha256"/*; do
            assert_sha256 "$f" "$(basename "$f")"
        done
        k=$((k + 1))
        sleep 1
    done
    local n
    n="$(fake_ecr_count short ecr.GetAuthorizationToken)"
    ((n >= 2)) || die "tokens living 5 s were not refreshed over 16 s ($n token requests)"
    ((n <= 6)) || die "too many token requests for tokens living 5 s over 16 s: $n"
    assert_eq "$(fake_ecr_count short denied)" 0 "refused token requests"
    ! grep -E "proxy short|ecr short" "$STATE/upstreamfs.log" | grep -qiE "error|refused" ||
        die "errors for the refreshing proxy: $(grep -E "proxy short|ecr short" "$STATE/upstreamfs.log" | grep -iE "error|refused" | head -n 3)"
}
check "tokens are refreshed before they expire; no read fails" t_refresh

t_wrong_secret() {
    local objs t0 dt before
    objs="$(stats_field cache_objects)"
    t0="$(date +%s%N)"
    run_capture with_timeout 30 cat "$MNT/bad/test/other/v1/index.json"
    dt=$((($(date +%s%N) - t0) / 1000000))
    ((RC != 0)) || die "a wrong secret read something"
    [[ "$ERR" == *"Input/output error"* || "$ERR" == *"Permission denied"* ]] ||
        die "wrong secret: unexpected error: $ERR"
    ((dt < 5000)) || die "wrong secret: the error took $dt ms"
    grep -F "ecr bad:" "$STATE/upstreamfs.log" | grep -q InvalidSignatureException ||
        die "no log line names InvalidSignatureException"
    (($(fake_ecr_count api denied) >= 1)) || die "the fake saw no refused request"
    before="$(fake_ecr_count api denied)"
    expect_fail_with "Permission denied" with_timeout 30 cat "$MNT/bad/test/hello/v1/index.json"
    assert_eq "$(fake_ecr_count api denied)" "$before" "signed requests again within the retry interval"
    assert_eq "$(stats_field cache_objects)" "$objs" "objects stored with a wrong secret"
}
check "a wrong secret: a quick, clear authentication error" t_wrong_secret

t_chain() {
    local before
    before="$(fake_ecr_count api ecr.GetAuthorizationToken)"
    read_image "$MNT/chain/test/other/v1" "$D_OTHER" 4 chain
    (($(fake_ecr_count api ecr.GetAuthorizationToken) > before)) || die "chain: no token request"
}
check "aws-chain: keys from the daemon's environment" t_chain

# ---- public -------------------------------------------------------------------------------
t_public_anonymous() {
    fake_public_control pub reset
    read_image "$MNT/pubanon/anon/v1" "$D_ANON" 4 pubanon
    (($(fake_public_count pub token) >= 1)) || die "no anonymous token from the realm"
    (($(fake_public_count pub bearer.anon) >= 3)) || die "requests not authorised by the anonymous token"
    assert_eq "$(fake_public_count pub bearer.ecr)" 0 "requests with an ecr-public token"
    assert_eq "$(fake_public_count pub basic)" 0 "requests with Basic credentials"
    assert_eq "$(fake_public_count pub denied)" 0 "denied requests"
    # a 400 DENIED (ECR Public's answer to an expired token) renews the token
    local tokens
    tokens="$(fake_public_count pub token)"
    fake_public_control pub 'deny?n=1'
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$MNT/pubanon/anon/v2/index.json")" \
        "$D_ANON" "pubanon: index.json after DENIED"
    assert_eq "$(fake_public_count pub denied)" 1 "denied requests"
    (($(fake_public_count pub token) == tokens + 1)) || die "no new token after 400 DENIED"
}
check "public, anonymous: the registry's token realm, under the alias; 400 DENIED renews" \
    t_public_anonymous

t_public_keys() {
    fake_public_control pub reset
    assert_eq "$(ls "$MNT/pubkeys" | tr '\n' ' ')" "hello " "pubkeys: root (the scope)"
    read_image "$MNT/pubkeys/hello/v1" "$D_PUB" 4 pubkeys
    (($(fake_ecr_count api ecr-public.DescribeRegistries) >= 1)) || die "no DescribeRegistries"
    (($(fake_ecr_count api ecr-public.GetAuthorizationToken) == 1)) || die "ecr-public tokens: $(fake_ecr_count api ecr-public.GetAuthorizationToken)"
    (($(fake_public_count pub bearer.ecr) >= 3)) || die "requests not authorised by the ecr-public token"
    assert_eq "$(fake_public_count pub token)" 0 "anonymous tokens for a proxy with keys"
    local before
    before="$(fake_ecr_count api ecr-public.GetAuthorizationToken)"
    fake_public_control pub 'deny?n=1'
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$MNT/pubkeys/hello/v2/index.json")" \
        "$D_PUB" "pubkeys: index.json after DENIED"
    assert_eq "$(fake_ecr_count api ecr-public.GetAuthorizationToken)" "$((before + 1))" \
        "ecr-public token requests after 400 DENIED"
    expect_fail_with "No such file or directory" cat "$MNT/pubkeys/anon/v1/index.json"
}
check "public with keys: console URL, alias from DescribeRegistries, Bearer; DENIED renews" \
    t_public_keys

# ---- secrets ------------------------------------------------------------------------------
t_secret_hidden() {
    local s
    for s in "$SECRET" "$PW" "$ECR_TOKEN"; do
        ! grep -qF -- "$s" "$STATE/upstreamfs.log" || die "a secret is in the log"
        ! grep -rqaF -- "$s" "$STATE"/*.db* 2>/dev/null || die "a secret is in SQLite"
        ! ps -eww -o args= | grep -F -- "$UPFS" | grep -qF -- "$s" || die "a secret is in ps"
    done
    grep -q "DEBUG\|debug" "$STATE/upstreamfs.log" || die "the log is not at debug level"
    ! upfs proxy show e --json | grep -qF -- "$SECRET" || die "proxy show prints the secret"
    ! upfs proxy show e | grep -qF -- "$SECRET" || die "proxy show prints the secret"
}
check "the secret and the registry password appear nowhere" t_secret_hidden

finish
