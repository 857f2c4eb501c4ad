#!/bin/bash
# tests/integration/fault_digest_test.sh -- a reader never reaches the end of an unverified object
# (issue 18).
#
#     bash tests/integration/fault_digest_test.sh build/upstreamfs      (as root; /dev/fuse)
#     ROUNDS=5 bash ...     fewer rounds of the small sizes (default 20); TYPES="npm oci" and
#                           KINDS="cat curl" select what the small sizes run (and KINDS the 300 MiB)
#
# Every type whose protocol gives a digest, served with bytes that do not match it (upstream.py's
# wrong_bytes flips the first body byte on the wire; the OCI layer is flipped in
# docker-registry's storage, so the registry itself serves a lying digest):
#     Maven .sha1 and .sha256 sidecars, npm dist.integrity, PyPI #sha256=, a Helm index digest,
#     an OCI layer through the mount and through the shim's /v2 blob route,
# at 1 KiB (the kernel's last read goes past the end) and 100 KiB (25 pages: its last read ends
# exactly at the end, the read that was answered before the verdict), each read ROUNDS times on fresh downloads (a failed download leaves
# nothing behind, and every round's GETs are counted) by
#     cat, dd bs=1M, two concurrent cats of one download, curl through the mount's shim
#     (-o listen=), cat through the mount concurrently with curl through a second process
#     (`serve`) on the same state dir, and cat and curl of the object through a registry over
#     its proxy (`registry create --upstream`), together;
# and a 300 MiB Maven jar (.sha1) once per reader kind. Every read to the end must fail with the
# cause digest: cat and dd with EIO (never another errno), curl with 22 for the shim's 502 naming
# "cause digest" (small content, awaited whole) or, for the 300 MiB jar only, 18 for a reply cut
# short before its last bytes; and after every failed read the object's user.upstreamfs.error
# says digest. Then the faults are cleared and the same files read whole with their sha256, by
# every reader kind.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
docker_need_tools

ROUNDS="${ROUNDS:-20}"
SRV="$T/srv"
MNT="$T/mnt"
OCI="$T/oci"
mkdir -p "$SRV"
upstream_start "$SRV" --quiet
"$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/lib/lying_fixtures.py" "$SRV" "$UPSTREAM_URL" \
    1k=1024 100k=102400 --big 300m=$((300 * MIB)) >"$T/objects"

# OCI: one image per size, its big layer being the object read. The 100 KiB one is made a whole
# number of pages long, as the other 100 KiB files are: then the kernel's last read of it ends
# exactly at its end (the read that used to be answered before the verdict); the 1 KiB objects
# end mid-page (the kernel's last read goes past the end).
declare -A OCI_LAYER=()
# oci_layer DIR REF BYTES: add the image, print "<layer hex> <layer size>"
oci_layer() {
    local m
    m="$(mkimage "$1" "$2" --text "$2" --big "$3")"
    "$PYTHON" -c '
import json, sys
m = json.load(open(sys.argv[1]))
l = max(m["layers"], key=lambda l: l["size"])
print(l["digest"].split(":")[1], l["size"])' "$1/blobs/sha256/${m#sha256:}"
}
big=102400
for try in 1 2 3 4 5 6 7 8; do
    read -r _ size < <(oci_layer "$T/oci-try$try" v100k "$big")
    ((size % 4096 == 0)) && break
    big=$((big + 4096 - size % 4096))
done
read -r "OCI_LAYER[1k]" _ < <(oci_layer "$OCI" v1k 1024)
read -r "OCI_LAYER[100k]" size < <(oci_layer "$OCI" v100k "$big")
log "OCI layers: 1k ${OCI_LAYER[1k]}, 100k ${OCI_LAYER[100k]} ($size bytes)"
registry_start a open
push "oci:$OCI:v1k" "127.0.0.1:$REG_PORT_a/test/v1k:1"
push "oci:$OCI:v100k" "127.0.0.1:$REG_PORT_a/test/v100k:1"
regproxy_start pa "http://127.0.0.1:$REG_PORT_a"
for n in 1k 100k; do
    h="${OCI_LAYER[$n]}"
    printf 'oci %s - %s\n' "$n" "$h" >>"$T/objects"
done

upfs proxy create mvn --type maven --url "${UPSTREAM_URL}maven/" >/dev/null
upfs proxy create js --type npm --url "${UPSTREAM_URL}npm/docs/" >/dev/null
upfs proxy create py --type pypi --url "${UPSTREAM_URL}pypi/" >/dev/null
upfs proxy create charts --type helm --url "${UPSTREAM_URL}helm/" >/dev/null
upfs proxy create hub --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pa/" >/dev/null
# a registry over each proxy: objects read through a registry are held back the same way
upfs registry create mvnreg --type maven --upstream mvn >/dev/null
upfs registry create jsreg --type npm --upstream js >/dev/null
upfs registry create pyreg --type pypi --upstream py >/dev/null
upfs registry create chartsreg --type helm --upstream charts >/dev/null
upfs registry create hubreg --type docker --upstream hub >/dev/null
PORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$PORT"
wait_for_port "$PORT" 10 || die "the mount's shim is not listening on $PORT"
S="http://127.0.0.1:$PORT"
serve_start b # a second process on the same state dir
S2="http://127.0.0.1:$SERVE_PORT_b"

# rel TYPE NAME: the object's path below the mount and the shims
rel() {
    case "$1" in
    maven-sha1) echo "mvn/org/v/s1-$2/1.0/s1-$2-1.0.jar" ;;
    maven-sha256) echo "mvn/org/v/s256-$2/1.0/s256-$2-1.0.jar" ;;
    npm) echo "js/upfs-$2/-/upfs-$2-1.0.0.tgz" ;;
    pypi) echo "py/upfs-$2/upfs_$2-1.0.0-py3-none-any.whl" ;;
    helm) echo "charts/charts/c$2-1.0.0.tgz" ;;
    oci) echo "hub/test/v$2/1/blobs/sha256/${OCI_LAYER[$2]}" ;;
    esac
}
# url BASE TYPE NAME [REG]: the object through a shim (an OCI layer through /v2); REG: through
# the registry over its proxy
url() {
    local top
    if [[ "$2" == oci ]]; then
        echo "$1/v2/hub${4:+reg}/test/v$3/blobs/sha256:${OCI_LAYER[$3]}"
    else
        top="$(rel "$2" "$3")"
        echo "$1/${top%%/*}${4:+reg}/${top#*/}"
    fi
}
# reg_rel TYPE NAME: the object's path below the mount through the registry over its proxy
reg_rel() {
    local top
    top="$(rel "$1" "$2")"
    echo "${top%%/*}reg/${top#*/}"
}
# sha_of TYPE NAME: the true sha256 of the object
sha_of() { awk -v t="$1" -v n="$2" '$1 == t && $2 == n { print $4 }' "$T/objects"; }
# gets TYPE NAME: GETs of the object's body the remote has seen
gets() {
    if [[ "$1" == oci ]]; then
        regproxy_count pa GET "/v2/test/v$2/blobs/sha256:${OCI_LAYER[$2]}"
    else
        upstream_count GET "/$(awk -v t="$1" -v n="$2" '$1 == t && $2 == n { print $3 }' "$T/objects")"
    fi
}

# lie TYPE NAME / unlie TYPE NAME: serve the object with bytes that do not match its digest
oci_flip() {
    "$PYTHON" - "$T/a/storage/docker/registry/v2/blobs/sha256/${1:0:2}/$1/data" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    b = f.read(1)
    f.seek(0)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
}
lie() {
    if [[ "$1" == oci ]]; then
        oci_flip "${OCI_LAYER[$2]}"
    else
        local up
        up="$(awk -v t="$1" -v n="$2" '$1 == t && $2 == n { print $3 }' "$T/objects")"
        upstream_fault "{\"path\": \"$(rx "/$up")\", \"method\": \"GET\", \"fault\": \"wrong_bytes\"}"
    fi
}
unlie() {
    if [[ "$1" == oci ]]; then oci_flip "${OCI_LAYER[$2]}"; else upstream_clear_faults; fi
}

# reader KIND SRC OUT: read SRC (a file, or a URL for curl) to its end; the reader's status
reader() {
    case "$1" in
    cat) with_timeout 120 cat -- "$2" >"$3" 2>"$3.err" ;;
    dd) with_timeout 120 dd if="$2" of="$3" bs=1M status=none 2>"$3.err" ;;
    curl) "${CURL[@]}" --fail-with-body --max-time 120 -o "$3" "$2" 2>"$3.err" ;;
    esac
}

# must_fail WHAT KIND RC OUT FILE [BIG]: the read to the end failed, as its kind reports it, with
# the cause digest: EIO through the mount; through a shim a 502 naming cause digest (BIG: a reply
# cut short, curl 18, may come instead); and, for a reader alone (SOLO=1), FILE (the object below
# the mount) says digest in its user.upstreamfs.error. With two readers at once the attribute
# says what the mount's last attempt saw: when the other process (xproc) or a fresh download of
# the other reader had the digest failure, the mount may have recorded none (docs/RELIABILITY.md)
must_fail() {
    local what="$1" kind="$2" rc="$3" out="$4" file="$5" big="${6:-}" e
    ((rc != 0)) || die "$what: $kind read the unverified object to its end and exited 0 ($(stat -c %s "$out") bytes)"
    ((rc != 124)) || die "$what: $kind hung"
    if [[ "$kind" == curl ]]; then
        if [[ "$rc" == 22 ]]; then
            grep -q "cause digest" "$out" || die "$what: the shim's error names no cause digest: $(head -c 400 "$out")"
        elif [[ -z "$big" || "$rc" != 18 ]]; then
            die "$what: curl exited $rc ($(cat "$out.err")), want 22 (a 502)${big:+ or 18 (cut short)}"
        fi
    else
        grep -q "Input/output error" "$out.err" || die "$what: $kind failed with '$(cat "$out.err")', want Input/output error"
    fi
    [[ "${SOLO:-1}" == 1 ]] || return 0
    e="$(getfattr --absolute-names --only-values -n user.upstreamfs.error -- "$file" 2>/dev/null)" || true
    [[ "$e" == "digest "* ]] || die "$what: user.upstreamfs.error of $file is '$e', want digest"
}

# one_read WHAT KIND TYPE NAME: KIND reads the lying object to its end, and must fail
one_read() {
    local what="$1" kind="$2" ty="$3" n="$4" f="$MNT/$(rel "$3" "$4")" o="$T/out" rc=0 rc2=0 p1 p2
    local file="$f" big=""
    [[ "$n" == 300m ]] && big=1
    case "$kind" in
    cat | dd) reader "$kind" "$f" "$o" || rc=$? ;;
    curl)
        o="$T/out.curl"
        reader curl "$(url "$S" "$ty" "$n")" "$o" || rc=$?
        ;;
    pair | xproc | reg)
        if [[ "$kind" == reg ]]; then
            f="$MNT/$(reg_rel "$ty" "$n")"
        fi
        reader cat "$f" "$o.1" &
        p1=$!
        case "$kind" in
        pair) reader cat "$f" "$o.2" & ;;
        xproc) reader curl "$(url "$S2" "$ty" "$n")" "$o.2" & ;;
        reg) reader curl "$(url "$S" "$ty" "$n" reg)" "$o.2" & ;;
        esac
        p2=$!
        wait "$p1" || rc=$?
        wait "$p2" || rc2=$?
        SOLO=0 must_fail "$what ($kind, 1st)" cat "$rc" "$o.1" "$file" "$big"
        SOLO=0 must_fail "$what ($kind, 2nd)" "$([[ $kind == pair ]] && echo cat || echo curl)" "$rc2" "$o.2" "$file" "$big"
        return 0
        ;;
    esac
    must_fail "$what" "$kind" "$rc" "$o" "$file" "$big"
}

# good_reads TYPE NAME KIND...: with the digest matching, every KIND reads the true bytes
good_reads() {
    local ty="$1" n="$2" want k o="$T/good"
    shift 2
    want="$(sha_of "$ty" "$n")"
    for k in "$@"; do
        case "$k" in
        cat | dd) reader "$k" "$MNT/$(rel "$ty" "$n")" "$o" || die "$ty $n: $k of the true bytes failed: $(cat "$o.err")" ;;
        curl) reader curl "$(url "$S" "$ty" "$n")" "$o" || die "$ty $n: curl of the true bytes failed: $(cat "$o.err") $(head -c 300 "$o"); the daemon's last log lines: $(tail -n 8 "$STATE/upstreamfs.log" | tr '\n' '|')" ;;
        curl2) reader curl "$(url "$S2" "$ty" "$n")" "$o" || die "$ty $n: curl (serve) of the true bytes failed: $(cat "$o.err")" ;;
        reg) reader cat "$MNT/$(reg_rel "$ty" "$n")" "$o" || die "$ty $n: cat through the registry of the true bytes failed: $(cat "$o.err")" ;;
        regcurl) reader curl "$(url "$S" "$ty" "$n" reg)" "$o" || die "$ty $n: curl through the registry of the true bytes failed: $(cat "$o.err")" ;;
        esac
        assert_sha256 "$o" "$want"
    done
}

read -r -a KINDS <<<"${KINDS:-cat dd pair curl xproc reg}"

# small TYPE: ROUNDS rounds of every reader kind at 1 KiB and 100 KiB, then the true bytes
small() {
    local ty="$1" n i k g0 g1
    for n in 1k 100k; do
        with_timeout 20 stat "$MNT/$(rel "$ty" "$n")" >/dev/null || die "$ty $n: stat failed"
        # through the registry too: its /v2 serves a blob once a manifest pulled through it names it
        with_timeout 20 stat "$MNT/$(reg_rel "$ty" "$n")" >/dev/null || die "$ty $n: stat through the registry failed"
        lie "$ty" "$n"
        g0="$(gets "$ty" "$n")"
        for ((i = 1; i <= ROUNDS; i++)); do
            for k in "${KINDS[@]}"; do one_read "$ty $n round $i" "$k" "$ty" "$n"; done
        done
        g1="$(gets "$ty" "$n")"
        # every read finds nothing cached: at least one download per reader kind and round
        ((g1 - g0 >= ROUNDS * ${#KINDS[@]})) || die "$ty $n: $((g1 - g0)) GETs for $ROUNDS rounds of ${#KINDS[@]} reads"
        unlie "$ty" "$n"
        good_reads "$ty" "$n" cat dd curl curl2 reg regcurl
    done
}

for ty in ${TYPES:-maven-sha1 maven-sha256 npm pypi helm oci}; do
    check "$ty: no reader reaches the end of a lying object (1 KiB, 100 KiB, $ROUNDS rounds); the true bytes read" small "$ty"
done

t_big() {
    local k g0
    with_timeout 20 stat "$MNT/$(rel maven-sha1 300m)" >/dev/null || die "300m: stat failed"
    assert_eq "$(stat -c %s "$MNT/$(rel maven-sha1 300m)")" $((300 * MIB)) "size of the 300 MiB jar"
    lie maven-sha1 300m
    g0="$(gets maven-sha1 300m)"
    for k in "${KINDS[@]}"; do one_read "300 MiB jar" "$k" maven-sha1 300m; done
    (($(gets maven-sha1 300m) - g0 >= ${#KINDS[@]})) || die "300m: fewer GETs than reads"
    # the shims' replies were cut short: all but the last bytes at most
    local got f
    for k in "${KINDS[@]}"; do
        case "$k" in
        curl) f="$T/out.curl" ;;
        xproc) f="$T/out.2" ;;
        *) continue ;;
        esac
        got="$(stat -c %s "$f")"
        log "300m: $k: the shim sent $got bytes, then closed the connection"
        ((got < 300 * MIB)) || die "300m: $k: the shim sent all $got bytes"
    done
    unlie maven-sha1 300m
    good_reads maven-sha1 300m curl cat
}
check "300 MiB Maven jar with a lying .sha1: cat, dd, two readers, curl (mount and serve) all fail; the true bytes read" t_big

t_nothing_kept() { verify_clean; assert_eq "$(tmp_leftovers)" "" "STATE/tmp"; }
check "cache verify is clean and tmp/ empty at the end" t_nothing_kept

finish
