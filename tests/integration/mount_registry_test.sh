#!/bin/bash
# tests/integration/mount_registry_test.sh -- registries: local content over ordered upstreams.
#
#     bash tests/integration/mount_registry_test.sh build/upstreamfs
#
# Proxies p1 (nginx, 127.0.0.1) and p2 (nginx, "localhost" server block) both have hello.txt
# and flipN.txt with different bytes; only1.txt / only2.txt exist in one of them. pf serves p1's
# tree from upstream.py (faults). Registries: reg = [p1, p2], reg5 = [pf, p2].
# Asserts: reg/hello.txt is p1's (p2 not asked); a name only p2 has is p2's; the listing is the
# union; after `registry set-upstreams reg p2 p1` a new lookup sees p2 first within 3 s (and
# back); a local write shadows p1's hello.txt, rm shows p1's again; mkdir, cp of a 10 MiB file,
# rename, truncate round-trip with sha256 and are counted as local content; local content
# survives unmount + remount; a 503 from pf for hello.txt gives EREMOTEIO (never p2's bytes) while a
# 404 from pf still falls through to p2; last, names resolved before a set-upstreams (listed by
# ls, or read) follow the new order within 3 s too (changes take effect within 2 s: README.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"

P1="$T/p1"
P2="$T/p2"
MNT="$T/mnt"
mkdir -p "$P1/sub" "$P2/sub"
printf 'hello from p1\n' >"$P1/hello.txt"
printf 'hello from p2, longer\n' >"$P2/hello.txt"
printf 'only in p1\n' >"$P1/only1.txt"
printf 'only in p2\n' >"$P2/only2.txt"
printf 'p1 sub\n' >"$P1/sub/s1.txt"
printf 'p2 sub\n' >"$P2/sub/s2.txt"
for i in $(seq 1 80); do
    printf 'p1 flip %d\n' "$i" >"$P1/flip$i.txt"
    printf 'p2 flip %d\n' "$i" >"$P2/flip$i.txt"
done
fixture_bytes big10m $((10 * 1024 * 1024)) "$T/big10m.bin"
BIG_SHA="$(sha256_of "$T/big10m.bin")"

nginx_start "$P1" "$P2"
upstream_start "$P1" --quiet

upfs proxy create p1 --type generic --url "$NGINX_URL" >/dev/null
upfs proxy create p2 --type generic --url "$NGINX_OTHER_URL" >/dev/null
upfs proxy create pf --type generic --url "$UPSTREAM_URL" >/dev/null
upfs registry create reg --type generic --upstream p1 --upstream p2 >/dev/null
upfs registry create reg5 --type generic --upstream pf --upstream p2 >/dev/null
upfs_mount "$MNT"
R="$MNT/reg"

# ---- order ---------------------------------------------------------------------------------
t_order() {
    assert_eq "$(with_timeout 20 cat "$R/hello.txt")" "hello from p1" "reg/hello.txt (p1 first)"
    nginx_expect_count 1 --host 127.0.0.1 GET '^/hello\.txt$'
    assert_eq "$(nginx_count --host localhost '*' '^/hello\.txt$')" 0 "requests to p2 for hello.txt (p1 has it)"
    assert_eq "$(xattr source "$R/hello.txt")" "${NGINX_URL}hello.txt" "user.upstreamfs.source of reg/hello.txt"
    # the proxies themselves
    assert_eq "$(with_timeout 20 cat "$MNT/p2/hello.txt")" "hello from p2, longer" "p2/hello.txt"
    assert_eq "$(with_timeout 20 cat "$MNT/p1/hello.txt")" "hello from p1" "p1/hello.txt"
    assert_eq "$(stat -c %s "$R/hello.txt")" 14 "size of reg/hello.txt (p1's)"
}
check "registry [p1, p2]: reg/hello.txt is p1's, p2 is not asked" t_order

t_fallthrough() {
    assert_eq "$(with_timeout 20 cat "$R/only2.txt")" "only in p2" "reg/only2.txt (only p2 has it)"
    assert_eq "$(with_timeout 20 cat "$R/only1.txt")" "only in p1" "reg/only1.txt"
    nginx_expect_count 1 --host localhost GET '^/only2\.txt$'
    assert_eq "$(nginx_count --host 127.0.0.1 GET '^/only2\.txt$')" 0 "GETs of only2.txt from p1"
    expect_fail_with "No such file or directory" with_timeout 20 cat "$R/nowhere.txt"
}
check "a name only p2 has is p2's (404 in p1 falls through); a name nobody has is ENOENT" t_fallthrough

# ---- set-upstreams flips the order for new lookups within 3 s ------------------------------
NEXT_FLIP=1
# wait_flip WANT_PREFIX: read a NEW flipN.txt every 100 ms until it comes from WANT (p1|p2);
# dies unless that happens within 3 s of the command.
wait_flip() {
    local want="$1" t0 got i
    t0="$(_upfs_now_ms)"
    while :; do
        i=$NEXT_FLIP
        NEXT_FLIP=$((NEXT_FLIP + 1))
        ((i <= 80)) || die "ran out of flip files"
        got="$(with_timeout 10 cat "$R/flip$i.txt" 2>&1)" || die "cat reg/flip$i.txt failed: $got"
        if [[ "$got" == "$want flip $i" ]]; then
            log "order flipped to $want first after $(($(_upfs_now_ms) - t0)) ms (flip$i.txt)"
            return 0
        fi
        (($(_upfs_now_ms) - t0 < 3000)) || die "3 s after set-upstreams, a new lookup still reads '$got' (want '$want flip $i')"
        sleep 0.1
    done
}
t_flip() {
    wait_flip p1 # the initial order
    upfs registry set-upstreams reg p2 p1 >/dev/null
    wait_flip p2
    # names only one upstream has still fall through
    assert_eq "$(with_timeout 20 cat "$R/flip$NEXT_FLIP.txt")" "p2 flip $NEXT_FLIP" "a later new lookup keeps p2 first"
    NEXT_FLIP=$((NEXT_FLIP + 1))
    upfs registry set-upstreams reg p1 p2 >/dev/null
    wait_flip p1
}
check "set-upstreams reversed: a new lookup sees the new order within 3 s (and back)" t_flip
# whatever happened above, the rest of the test needs the order [p1, p2] in effect
upfs registry set-upstreams reg p1 p2 >/dev/null
sleep 3
# keep the counter across checks (they run in subshells)
NEXT_FLIP=40

t_listing() {
    local l n
    l="$(with_timeout 20 ls -1 "$R")" || die "ls reg failed"
    for n in hello.txt only1.txt only2.txt sub flip1.txt; do
        grep -qxF "$n" <<<"$l" || die "ls reg does not list $n: $(echo $l | head -c 300)"
    done
    assert_eq "$(grep -cxF hello.txt <<<"$l")" 1 "hello.txt listed once"
    l="$(with_timeout 20 ls -1 "$R/sub")" || die "ls reg/sub failed"
    assert_eq "$(echo $l)" "s1.txt s2.txt" "ls reg/sub (union of p1's and p2's sub/)"
    assert_eq "$(with_timeout 20 cat "$R/sub/s2.txt")" "p2 sub" "reg/sub/s2.txt"
}
check "the registry lists the union of its upstreams (each name once)" t_listing

# ---- local content -------------------------------------------------------------------------
t_shadow() {
    echo local >"$R/hello.txt" || die "writing reg/hello.txt failed"
    assert_eq "$(cat "$R/hello.txt")" local "reg/hello.txt after the local write"
    assert_eq "$(stat -c %s "$R/hello.txt")" 6 "size of the local reg/hello.txt"
    assert_eq "$(cat "$MNT/p1/hello.txt")" "hello from p1" "p1/hello.txt is untouched by the local write"
    assert_eq "$(nginx_count PUT '.*')" 0 "PUTs sent upstream"
    (($(stats_field local_objects) >= 1)) || die "cache stats local_objects is $(stats_field local_objects) after a local write"
    rm "$R/hello.txt" || die "rm reg/hello.txt failed"
    assert_eq "$(with_timeout 20 cat "$R/hello.txt")" "hello from p1" "reg/hello.txt after rm of the local copy"
    assert_eq "$(stat -c %s "$R/hello.txt")" 14 "size of reg/hello.txt after rm (p1's again)"
    assert_eq "$(cat "$MNT/p1/hello.txt")" "hello from p1" "p1/hello.txt"
}
check "a local write shadows p1's hello.txt; rm shows p1's again" t_shadow

t_local_tree() {
    mkdir "$R/dir" || die "mkdir reg/dir failed"
    mkdir -p "$R/dir/sub/deeper" || die "mkdir -p reg/dir/sub/deeper failed"
    cp "$T/big10m.bin" "$R/dir/big.bin" || die "cp of a 10 MiB file into reg/dir failed"
    assert_sha256 "$R/dir/big.bin" "$BIG_SHA"
    assert_eq "$(stat -c %s "$R/dir/big.bin")" 10485760 "size of reg/dir/big.bin"
    mv "$R/dir/big.bin" "$R/dir/sub/moved.bin" || die "rename of reg/dir/big.bin failed"
    [[ ! -e "$R/dir/big.bin" ]] || die "reg/dir/big.bin still exists after the rename"
    assert_sha256 "$R/dir/sub/moved.bin" "$BIG_SHA"
    assert_eq "$(ls "$R/dir/sub" | tr '\n' ' ')" "deeper moved.bin " "ls reg/dir/sub"
    printf 'first line\n' >"$R/dir/notes.txt"
    printf 'second line\n' >>"$R/dir/notes.txt"
    assert_eq "$(cat "$R/dir/notes.txt")" $'first line\nsecond line' "reg/dir/notes.txt after append"
    truncate -s 5 "$R/dir/notes.txt" || die "truncate reg/dir/notes.txt failed"
    assert_eq "$(cat "$R/dir/notes.txt")" "first" "reg/dir/notes.txt after truncate -s 5"
    # a copy back out is the same bytes
    cp "$R/dir/sub/moved.bin" "$T/back.bin"
    assert_sha256 "$T/back.bin" "$BIG_SHA"
    (($(stats_field local_bytes) >= 10485760)) || die "cache stats local_bytes is $(stats_field local_bytes), want >= 10 MiB"
    # proxies stay read-only next to the registry
    expect_fail_with "Read-only file system" cp "$T/big10m.bin" "$MNT/p1/big.bin"
}
check --setup "mkdir, cp of a 10 MiB file, rename, append, truncate in the registry round-trip" t_local_tree

t_remount() {
    upfs_unmount "$MNT"
    upfs_mount "$MNT"
    assert_sha256 "$R/dir/sub/moved.bin" "$BIG_SHA"
    assert_eq "$(cat "$R/dir/notes.txt")" "first" "reg/dir/notes.txt after remount"
    [[ -d "$R/dir/sub/deeper" ]] || die "reg/dir/sub/deeper is gone after remount"
    assert_eq "$(cat "$R/hello.txt")" "hello from p1" "reg/hello.txt after remount"
    assert_eq "$(nginx_count --status 200 '*' 'moved\.bin|notes\.txt')" 0 "local files fetched from an upstream"
}
check "local content survives unmount + remount" t_remount

# ---- a failing higher upstream never falls through -----------------------------------------
t_5xx_no_fallthrough() {
    local before
    # a 404 from pf falls through to p2
    assert_eq "$(with_timeout 20 cat "$MNT/reg5/only2.txt")" "only in p2" "reg5/only2.txt (404 in pf)"
    upstream_fault '{"path": "^/hello\\.txt/?$", "fault": "status", "status": 503}'
    before="$(nginx_count --host localhost GET '^/hello\.txt$')"
    expect_fail_with "Remote I/O error" with_timeout 30 cat "$MNT/reg5/hello.txt"
    [[ "$OUT" != *"hello from p2"* ]] || die "reg5/hello.txt served p2's bytes while pf answered 503"
    [[ -z "$OUT" ]] || die "cat reg5/hello.txt printed '$OUT' while pf answered 503"
    expect_fail_with "Remote I/O error" with_timeout 30 cat "$MNT/reg5/hello.txt"
    [[ -z "$OUT" ]] || die "second cat reg5/hello.txt printed '$OUT' while pf answered 503"
    (($(upstream_count '*' /hello.txt) >= 1)) || die "pf was never asked for hello.txt"
    assert_eq "$(nginx_count --host localhost GET '^/hello\.txt$')" "$before" "GETs of hello.txt from p2 while pf failed"
    upstream_clear_faults
}
check --setup "503 from the higher upstream: EREMOTEIO, not the lower upstream's bytes" t_5xx_no_fallthrough

_reg5_hello_ok() { [[ "$(cat "$MNT/reg5/hello.txt" 2>/dev/null)" == "hello from p1" ]]; }
t_5xx_recovers() {
    wait_until 5 _reg5_hello_ok || die "reg5/hello.txt does not read pf's bytes 5 s after the 503s stopped: $(cat "$MNT/reg5/hello.txt" 2>&1)"
}
check "after the 503s stop, reg5/hello.txt is pf's" t_5xx_recovers

# ---- names resolved before a set-upstreams (listed or read) -------------------------------
# (last: if the order does not come back, nothing after this depends on it)
_reads() { [[ "$(cat "$R/$1" 2>/dev/null)" == "$2" ]]; }
t_flip_known() {
    # flip70.txt was listed by `ls reg` but never read; only1/hello.txt were read
    upfs registry set-upstreams reg p2 p1 >/dev/null
    local bad=()
    wait_until 3 _reads flip70.txt "p2 flip 70" || bad+=("reg/flip70.txt (listed, never read) reads '$(cat "$R/flip70.txt" 2>&1)'")
    wait_until 3 _reads hello.txt "hello from p2, longer" || bad+=("reg/hello.txt (read before) reads '$(cat "$R/hello.txt" 2>&1)'")
    wait_until 3 _reads only1.txt "only in p1" || bad+=("reg/only1.txt reads '$(cat "$R/only1.txt" 2>&1)'")
    upfs registry set-upstreams reg p1 p2 >/dev/null
    wait_until 3 _reads hello.txt "hello from p1" || bad+=("after restoring [p1, p2], reg/hello.txt reads '$(cat "$R/hello.txt" 2>&1)'")
    ((${#bad[@]} == 0)) || die "3 s after set-upstreams reg p2 p1: $(printf '%s; ' "${bad[@]}")"
}
check "set-upstreams also re-orders names already listed or read (within 3 s)" t_flip_known

finish
