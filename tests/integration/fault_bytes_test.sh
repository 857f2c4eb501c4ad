#!/bin/bash
# tests/integration/fault_bytes_test.sh -- wrong, truncated and cut bodies from the remote.
#
#     bash tests/integration/fault_bytes_test.sh build/upstreamfs
#
# upstream.py serves a Maven tree (jars with .sha1/.sha256 sidecars), a Helm repository (index.yaml
# with chart digests) and a generic tree; one mount with the shim in the same process
# (-o listen=). Asserts, for each fault:
#   * wrong bytes (one byte flipped mid-body) in a digest-addressed object -- the Maven jar
#     demo-1.0.jar and the Helm chart alpha-0.1.0.tgz: cat fails with EIO; nothing is committed
#     (user.upstreamfs.cached=none, no blob of the true or of the corrupted bytes, nothing left
#     in STATE/tmp, no new object but the checksum documents); a second read with the fault
#     still there sends a new GET (the failure is not remembered) and fails again; once the
#     fault is cleared a read sends a new GET and returns the true bytes (sha256, digest xattr);
#   * the same wrong bytes through the shim (demo-1.0-sources.jar): never a complete 200 with
#     the corrupted body (a 502, or a response cut short), nothing committed, then 200 with the
#     true bytes once cleared;
#   * a truncated body (Content-Length promised, FIN after 4 MiB of a 10 MiB generic file) and a
#     connection reset (RST after 4 MiB): cat fails with EIO, nothing committed, tmp/ empty;
#     through the shim the client sees an error, never a short 200; after the fault is cleared
#     the file reads with the right sha256 (within the back-off window at most);
#   * `cache verify` is clean at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

SRV="$T/srv"
MNT="$T/mnt"
mkdir -p "$SRV/maven" "$SRV/helm" "$SRV/www" "$T/other"
fixtures_maven "$SRV/maven"
fixtures_helm "$SRV/helm" "$T/other" "http://localhost:9/" # beta (other host) is not read here
fixture_bytes trunc $((10 * MIB)) "$SRV/www/trunc.bin"
fixture_bytes reset $((10 * MIB)) "$SRV/www/reset.bin"
fixture_bytes shim-trunc $((10 * MIB)) "$SRV/www/shim-trunc.bin"
fixture_bytes shim-reset $((10 * MIB)) "$SRV/www/shim-reset.bin"
upstream_start "$SRV" --quiet

upfs proxy create mvn --type maven --url "${UPSTREAM_URL}maven/" >/dev/null
upfs proxy create charts --type helm --url "${UPSTREAM_URL}helm/" >/dev/null
upfs proxy create gen --type generic --url "${UPSTREAM_URL}www/" >/dev/null
PORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$PORT"
wait_for_port "$PORT" 10 || die "the mount's shim is not listening on $PORT"
S="http://127.0.0.1:$PORT"

JAR=com/example/demo/1.0/demo-1.0.jar
SRC=com/example/demo/1.0/demo-1.0-sources.jar
ALPHA=charts/alpha-0.1.0.tgz

# sha256 of FILE with the byte at OFFSET flipped (XOR 0xFF), as upstream.py's wrong_bytes does
flipped_sha() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import hashlib, sys
b = bytearray(open(sys.argv[1], "rb").read())
b[int(sys.argv[2])] ^= 0xFF
print(hashlib.sha256(b).hexdigest())
EOF
}

blobs() { find "$STATE/blobs" -type f -printf '%f\n' 2>/dev/null | sort; }

# nothing_committed NAME BEFORE TRUE_HEX WRONG_HEX ALLOWED...: no blob of TRUE_HEX or WRONG_HEX,
# no new blob except ALLOWED hexes (checksum documents), nothing in tmp/
nothing_committed() {
    local name="$1" before="$2" true_hex="$3" wrong_hex="$4" b new=()
    shift 4
    local -A allowed=()
    for b in "$@"; do allowed[$b]=1; done
    [[ ! -e "$STATE/blobs/sha256/${true_hex:0:2}/$true_hex" ]] || die "$name: the store holds the true object although the download failed"
    if [[ -n "$wrong_hex" ]] && find "$STATE/blobs" -name "$wrong_hex" | grep -q .; then
        die "$name: the corrupted bytes were committed to the store (sha256 $wrong_hex)"
    fi
    while IFS= read -r b; do
        [[ -n "$b" && -z "${allowed[$b]:-}" ]] && new+=("$b")
    done < <(comm -13 <(printf '%s\n' "$before") <(blobs))
    ((${#new[@]} == 0)) || die "$name: new blob(s) after a failed download: ${new[*]}"
    wait_until 5 test -z "$(tmp_leftovers)" || die "$name: STATE/tmp still holds $(tmp_leftovers | tr '\n' ' ')"
}

sidecar_hexes() {
    local f
    for f in "$@"; do [[ -f "$f" ]] && sha256_of "$f"; done
    return 0
}

# ---- wrong bytes in digest-addressed objects (FUSE) ------------------------------------------
# wrong_bytes_fuse NAME MNT_PATH SRC_FILE UPSTREAM_PATH OFFSET ALLOWED_HEX...
wrong_bytes_fuse() {
    local name="$1" f="$2" src="$3" up="$4" off="$5" want wrong before n0 n1
    shift 5
    want="$(sha256_of "$src")"
    wrong="$(flipped_sha "$src" "$off")"
    with_timeout 20 stat "$f" >/dev/null || die "$name: stat failed"
    before="$(blobs)"
    n0="$(upstream_count GET "$up")"
    upstream_fault "{\"path\": \"$(rx "$up")\", \"method\": \"GET\", \"fault\": \"wrong_bytes\", \"offset\": $off}"
    expect_fail_with "Input/output error" with_timeout 30 cat -- "$f"
    n1="$(upstream_count GET "$up")"
    ((n1 > n0)) || die "$name: no GET reached the remote (the fault was not exercised)"
    assert_eq "$(xattr cached "$f")" none "$name: user.upstreamfs.cached after the wrong bytes"
    nothing_committed "$name" "$before" "$want" "$wrong" "$@"
    # not remembered: a second read asks the remote again (and fails again)
    expect_fail_with "Input/output error" with_timeout 30 cat -- "$f"
    (($(upstream_count GET "$up") > n1)) || die "$name: the second read sent no new GET (the failure was remembered)"
    n1="$(upstream_count GET "$up")"
    nothing_committed "$name (second read)" "$before" "$want" "$wrong" "$@"
    upstream_clear_faults
    with_timeout 30 cat -- "$f" >"$T/read.tmp" || die "$name: the read after clearing the fault failed"
    assert_sha256 "$T/read.tmp" "$want"
    (($(upstream_count GET "$up") == n1 + 1)) || die "$name: GETs after clearing the fault: $(upstream_count GET "$up") (want $((n1 + 1)))"
    assert_eq "$(xattr cached "$f")" complete "$name: user.upstreamfs.cached after the good read"
    assert_eq "$(xattr digest "$f")" "sha256:$want" "$name: user.upstreamfs.digest"
}

t_wrong_maven() {
    # shellcheck disable=SC2046  # one word per hex
    wrong_bytes_fuse "maven jar" "$MNT/mvn/$JAR" "$SRV/maven/$JAR" "/maven/$JAR" 100 \
        $(sidecar_hexes "$SRV/maven/$JAR".sha1 "$SRV/maven/$JAR".sha256 "$SRV/maven/$JAR".md5)
}
check "wrong bytes in a Maven jar (.sha1/.sha256 sidecars): EIO, nothing committed, retried, then the true bytes" t_wrong_maven

t_wrong_helm() {
    # shellcheck disable=SC2046
    wrong_bytes_fuse "helm chart" "$MNT/charts/$ALPHA" "$SRV/helm/$ALPHA" "/helm/$ALPHA" 10 \
        $(sidecar_hexes "$SRV/helm/index.yaml")
}
check "wrong bytes in a Helm chart (index digest): EIO, nothing committed, retried, then the true bytes" t_wrong_helm

# ---- wrong bytes through the shim ------------------------------------------------------------
# shim_get PATH: GET through the mount's shim into $T/body; sets HTTP_STATUS (000 if none) and
# CURL_RC (curl's exit status: 18 = body shorter than Content-Length, 56 = connection reset, ...)
shim_get() {
    CURL_RC=0
    HTTP_STATUS="$("${CURL[@]}" --max-time 60 -o "$T/body" -w '%{http_code}' "$S/$1" 2>"$T/curl.err")" || CURL_RC=$?
}

# a complete, successful 200 is a failure of the test when the content is wrong
not_a_clean_200() {
    local name="$1" bad_hex="$2"
    if ((CURL_RC == 0)) && [[ "$HTTP_STATUS" == 200 ]]; then
        if [[ "$(sha256_of "$T/body")" == "$bad_hex" ]]; then
            die "$name: the shim answered a complete 200 with the corrupted bytes"
        fi
        die "$name: the shim answered a complete 200 ($(stat -c %s "$T/body") bytes) although the remote failed"
    fi
    log "$name: the shim answered status $HTTP_STATUS, curl exit $CURL_RC ($(head -c 150 "$T/curl.err" | tr '\n' ' '))"
}

t_wrong_shim() {
    local want wrong before
    want="$(sha256_of "$SRV/maven/$SRC")"
    wrong="$(flipped_sha "$SRV/maven/$SRC" 200)"
    before="$(blobs)"
    upstream_fault "{\"path\": \"$(rx "/maven/$SRC")\", \"method\": \"GET\", \"fault\": \"wrong_bytes\", \"offset\": 200}"
    shim_get "mvn/$SRC"
    not_a_clean_200 "shim, wrong bytes" "$wrong"
    (($(upstream_count GET "/maven/$SRC") >= 1)) || die "the sources jar was never requested"
    # shellcheck disable=SC2046
    nothing_committed "shim, wrong bytes" "$before" "$want" "$wrong" $(sidecar_hexes "$SRV/maven/$SRC".sha1)
    upstream_clear_faults
    shim_get "mvn/$SRC"
    assert_eq "$HTTP_STATUS/$CURL_RC" "200/0" "shim GET of the sources jar after clearing the fault"
    assert_sha256 "$T/body" "$want"
}
check "wrong bytes through the shim: never a clean 200, nothing committed, then the true bytes" t_wrong_shim

# ---- truncated body, connection reset (generic files, hashed while downloading) -------------
# cut_fuse NAME FAULT FILE
cut_fuse() {
    local name="$1" fault="$2" file="$3" want before n0 i ok=0
    want="$(sha256_of "$SRV/www/$file")"
    with_timeout 20 stat "$MNT/gen/$file" >/dev/null || die "$name: stat failed"
    before="$(blobs)"
    n0="$(upstream_count GET "/www/$file")"
    upstream_fault "{\"path\": \"$(rx "/www/$file")\", \"method\": \"GET\", \"fault\": \"$fault\", \"bytes\": $((4 * MIB))}"
    elapsed_ms with_timeout 40 cp -- "$MNT/gen/$file" "$T/cut.out"
    ((RC != 124)) || die "$name: the read hung for 40 s"
    ((RC != 0)) || die "$name: the read succeeded ($(stat -c %s "$T/cut.out") bytes) although the body was cut"
    assert_contains "$ERR" "Input/output error" "$name: stderr of cp"
    log "$name: the read failed after $MS ms: $ERR"
    (($(upstream_count GET "/www/$file") > n0)) || die "$name: no GET reached the remote"
    assert_eq "$(xattr cached "$MNT/gen/$file")" none "$name: user.upstreamfs.cached"
    nothing_committed "$name" "$before" "$want" ""
    upstream_clear_faults
    # one failure does not start the back-off (3 do); allow its first step (1-2 s) anyway
    for i in 1 2 3 4 5 6; do
        if with_timeout 30 cat -- "$MNT/gen/$file" >"$T/read.tmp" 2>"$T/cat.err"; then ok=1; break; fi
        log "$name: read $i after clearing the fault failed: $(cat "$T/cat.err")"
        sleep 0.5
    done
    ((ok)) || die "$name: the file does not read after the fault was cleared"
    assert_sha256 "$T/read.tmp" "$want"
    assert_eq "$(xattr cached "$MNT/gen/$file")" complete "$name: user.upstreamfs.cached after the good read"
}

t_truncate_fuse() { cut_fuse "truncated body" truncate trunc.bin; }
check "truncated body (FIN after 4 of 10 MiB): EIO, nothing committed, then the file reads" t_truncate_fuse

t_reset_fuse() { cut_fuse "connection reset" reset reset.bin; }
check "connection reset mid-body (RST after 4 of 10 MiB): EIO, nothing committed, then the file reads" t_reset_fuse

cut_shim() {
    local name="$1" fault="$2" file="$3" want before i ok=0
    want="$(sha256_of "$SRV/www/$file")"
    before="$(blobs)"
    upstream_fault "{\"path\": \"$(rx "/www/$file")\", \"method\": \"GET\", \"fault\": \"$fault\", \"bytes\": $((4 * MIB))}"
    shim_get "gen/$file"
    not_a_clean_200 "$name" ""
    (($(upstream_count GET "/www/$file") >= 1)) || die "$name: no GET reached the remote"
    nothing_committed "$name" "$before" "$want" ""
    upstream_clear_faults
    for i in 1 2 3 4 5 6; do
        shim_get "gen/$file"
        if [[ "$HTTP_STATUS/$CURL_RC" == 200/0 ]]; then ok=1; break; fi
        log "$name: GET $i after clearing the fault: status $HTTP_STATUS, curl $CURL_RC"
        sleep 0.5
    done
    ((ok)) || die "$name: the file does not download after the fault was cleared"
    assert_sha256 "$T/body" "$want"
}

t_truncate_shim() { cut_shim "shim, truncated body" truncate shim-trunc.bin; }
check "truncated body through the shim: the client sees an error, never a short 200; then the file" t_truncate_shim

t_reset_shim() { cut_shim "shim, connection reset" reset shim-reset.bin; }
check "connection reset through the shim: the client sees an error, never a short 200; then the file" t_reset_shim

t_verify_end() { verify_clean; assert_eq "$(db_integrity)" ok "integrity_check"; }
check "cache verify and integrity_check are clean at the end" t_verify_end

finish
