#!/bin/bash
# tests/integration/mount_generic_test.sh -- a generic (plain HTTP tree) proxy through FUSE.
#
#     bash tests/integration/mount_generic_test.sh build/upstreamfs
#     UPFS_TEST_BIG=0 ...    skip the 1 GiB file (for a quick local run; ctest runs it)
#
# Asserts: sha256 of 0 B, 1 B, 4 KiB, 10 MiB and 1 GiB files read through the mount equal the
# fixtures; a deep path opens without a prior ls; a name with a space and '+'; `ls -l` and stat
# show true sizes (without downloading); modes 0444/0555; a second read (also after a remount)
# makes no new GET (the 1 GiB file: each byte fetched once, in ranged GETs); xattrs
# digest/source/cached/stale; writes fail with EROFS; 32 concurrent
# readers of one uncached 10 MiB file cause exactly one GET and all read the right bytes; a new
# URL (given while unmounted, or while mounted) makes the old remote's tree go away.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"

BIG="${UPFS_TEST_BIG:-1}"
W="$T/www"
MNT="$T/mnt"
if ((BIG)); then fixtures_generic "$W" --big; else fixtures_generic "$W"; fi
mkdir -p "$T/other"
printf 'only on the other remote\n' >"$T/other/only-other.txt"
nginx_start "$W" "$T/other"

upfs proxy create gen --type generic --url "$NGINX_URL" >/dev/null
upfs_mount "$MNT"
G="$MNT/gen"

# ---- deep path, no prior ls ----------------------------------------------------------------
t_deep() {
    local got
    got="$(with_timeout 20 cat "$G/a/b/c/deep.txt")" || die "cat of the deep path failed"
    assert_eq "$got" "deep file" "content of a/b/c/deep.txt"
    nginx_expect_count 1 GET '^/a/b/c/deep\.txt$'
    # nothing listed the root or the intermediate directories' index pages with GET
    assert_eq "$(nginx_count GET '^/$')" 0 "GET / before any ls (deep path must not need a listing)"
}
check "deep path a/b/c/deep.txt opens without a prior ls" t_deep

# ---- sizes and modes without downloading ---------------------------------------------------
declare -A SIZE=([empty.bin]=0 [one.bin]=1 [4k.bin]=4096 [10m.bin]=10485760 [hello.txt]=18
    ["with space+plus.txt"]=31)
((BIG)) && SIZE[1g.bin]=1073741824

t_sizes() {
    local f perm links user group size stamp name
    declare -A seen=()
    with_timeout 20 ls -l --time-style=+@ "$G/" >"$T/ls.txt" || die "ls -l $G failed"
    # shellcheck disable=SC2034  # only size and name are used
    while read -r perm links user group size stamp name; do
        [[ "$perm" == total ]] && continue
        seen["$name"]="$size"
    done <"$T/ls.txt"
    for f in "${!SIZE[@]}"; do
        [[ -n "${seen[$f]:-}" ]] || die "ls -l does not list '$f': $(cat "$T/ls.txt")"
        assert_eq "${seen[$f]}" "${SIZE[$f]}" "ls -l size of $f"
        assert_eq "$(stat -c %s -- "$G/$f")" "${SIZE[$f]}" "stat size of $f"
        assert_eq "$(stat -c %a -- "$G/$f")" 444 "mode of $f"
    done
    assert_eq "$(stat -c %a -- "$G/a")" 555 "mode of directory a"
    assert_eq "$(stat -c %F -- "$G/a")" directory "type of a"
    # true sizes come from the index page or HEAD, never from downloading the file
    assert_eq "$(nginx_count GET '^/10m\.bin$')" 0 "GETs of 10m.bin caused by ls -l/stat"
    assert_eq "$(nginx_count GET '^/4k\.bin$')" 0 "GETs of 4k.bin caused by ls -l/stat"
    if ((BIG)); then assert_eq "$(nginx_count GET '^/1g\.bin$')" 0 "GETs of 1g.bin caused by ls -l/stat"; fi
}
check "ls -l and stat show true sizes (and modes) without downloading" t_sizes

# ---- xattrs of an uncached file ------------------------------------------------------------
t_xattr_uncached() {
    local v
    v="$(xattr cached "$G/4k.bin")" || die "getfattr user.upstreamfs.cached on uncached 4k.bin failed"
    assert_eq "$v" none "user.upstreamfs.cached of a file never read"
    assert_eq "$(nginx_count GET '^/4k\.bin$')" 0 "GETs of 4k.bin caused by getfattr"
}
check "xattr cached=none on a file not read yet (and getfattr does not download)" t_xattr_uncached

# ---- attributes other than user.*: not supported, so ls -l asks once per listing -----------
t_xattr_unsupported() {
    local n
    expect_fail_with "Operation not supported" getfattr -n security.selinux "$G/4k.bin"
    expect_fail_with "Operation not supported" getfattr -n system.posix_acl_access "$G/4k.bin"
    expect_fail_with "No such attribute" getfattr -n user.other "$G/4k.bin"
    # every name getfattr -d lists can be read: no digest before the content is known
    run_capture getfattr --absolute-names -d "$G/one.bin"
    ((RC == 0)) && [[ -z "$ERR" ]] || die "getfattr -d of an uncached file: rc $RC, $ERR"
    [[ "$OUT" != *digest* ]] || die "an uncached file lists a digest: $OUT"
    if command -v strace >/dev/null && strace -qq -o /dev/null true 2>/dev/null; then
        strace -qq -f -e trace=getxattr,lgetxattr -o "$T/ls.strace" ls -l "$G/" >/dev/null
        n="$(grep -c xattr "$T/ls.strace")"
        ((n <= 4)) || die "ls -l of $(ls "$G" | wc -l) entries made $n getxattr calls (at most 4: one per name)"
    else
        log "strace unavailable: the getxattr count of ls -l is not checked"
    fi
}
check "security.*, system.* (ACLs): not supported; ls -l asks once, not per file" t_xattr_unsupported

# ---- 32 concurrent readers of one uncached 10 MiB file -------------------------------------
t_concurrent() {
    local want i pids=() bad=0 got
    want="$(fixture_sha256 "$W" 10m.bin)"
    assert_eq "$(nginx_count GET '^/10m\.bin$')" 0 "10m.bin must still be uncached here"
    mkdir -p "$T/conc"
    for i in $(seq 1 32); do
        (
            set -o pipefail
            with_timeout 60 cat "$G/10m.bin" | openssl dgst -sha256 -r >"$T/conc/$i.sum"
        ) 2>"$T/conc/$i.err" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            log "reader $((i + 1)) failed: $(cat "$T/conc/$((i + 1)).err")"
            bad=$((bad + 1))
        fi
    done
    for i in $(seq 1 32); do
        got="$(cut -d' ' -f1 "$T/conc/$i.sum" 2>/dev/null || true)"
        if [[ "$got" != "$want" ]]; then
            log "reader $i read sha256 '$got', want $want"
            bad=$((bad + 1))
        fi
    done
    ((bad == 0)) || die "$bad of 32 concurrent readers failed or read wrong bytes"
    nginx_expect_count 1 GET '^/10m\.bin$'
}
check "32 concurrent cats of an uncached 10 MiB file: 1 GET, 32 correct sha256" t_concurrent

# ---- content of every small file -----------------------------------------------------------
t_contents() {
    local f
    for f in empty.bin one.bin 4k.bin 10m.bin hello.txt a/b/c/deep.txt "with space+plus.txt"; do
        with_timeout 60 cat -- "$G/$f" >"$T/read.tmp" || die "cat $f failed"
        assert_sha256 "$T/read.tmp" "$(fixture_sha256 "$W" "$f")"
    done
    nginx_expect_count 1 GET '^/with space\+plus\.txt$'
    nginx_expect_count 1 GET '^/one\.bin$'
    nginx_expect_count 1 GET '^/4k\.bin$'
    nginx_expect_count 1 GET '^/hello\.txt$'
}
check --setup "sha256 of empty/1 B/4 KiB/10 MiB/hello/deep/'with space+plus.txt' read through the mount" t_contents

# ---- second reads make no new GET ----------------------------------------------------------
t_second_read() {
    local f
    for f in hello.txt 4k.bin 10m.bin one.bin; do
        with_timeout 30 cat -- "$G/$f" >"$T/read.tmp" || die "second cat of $f failed"
        assert_sha256 "$T/read.tmp" "$(fixture_sha256 "$W" "$f")"
    done
    nginx_expect_count 1 GET '^/hello\.txt$'
    nginx_expect_count 1 GET '^/4k\.bin$'
    nginx_expect_count 1 GET '^/10m\.bin$'
    nginx_expect_count 1 GET '^/one\.bin$'
}
check "a second read of a file makes no new GET" t_second_read

# ---- xattrs of cached files ----------------------------------------------------------------
t_xattrs() {
    local f v
    for f in hello.txt 10m.bin 4k.bin; do
        v="$(xattr digest "$G/$f")" || die "getfattr user.upstreamfs.digest $f failed"
        assert_eq "$v" "sha256:$(fixture_sha256 "$W" "$f")" "user.upstreamfs.digest of $f"
        v="$(xattr source "$G/$f")" || die "getfattr user.upstreamfs.source $f failed"
        assert_eq "$v" "${NGINX_URL}$f" "user.upstreamfs.source of $f"
        v="$(xattr cached "$G/$f")" || die "getfattr user.upstreamfs.cached $f failed"
        assert_eq "$v" complete "user.upstreamfs.cached of $f"
        v="$(xattr stale "$G/$f")" || die "getfattr user.upstreamfs.stale $f failed"
        assert_eq "$v" 0 "user.upstreamfs.stale of $f"
    done
    v="$(xattr source "$G/a/b/c/deep.txt")" || die "getfattr user.upstreamfs.source deep.txt failed"
    assert_eq "$v" "${NGINX_URL}a/b/c/deep.txt" "user.upstreamfs.source of a/b/c/deep.txt"
    v="$(xattr source "$G/with space+plus.txt")" || die "getfattr source of the space+plus file failed"
    case "$v" in
        "${NGINX_URL}with%20space%2Bplus.txt" | "${NGINX_URL}with%20space+plus.txt") ;;
        *) die "user.upstreamfs.source of 'with space+plus.txt' is '$v' (want the percent-encoded URL)" ;;
    esac
    # listxattr names all four
    v="$(getfattr --absolute-names -d -m '^user\.upstreamfs\.' -- "$G/hello.txt" 2>&1)"
    for f in digest source cached stale; do
        assert_contains "$v" "user.upstreamfs.$f=" "listxattr of hello.txt"
    done
}
check "xattrs digest/source/cached/stale on cached files" t_xattrs

# ---- read-only -----------------------------------------------------------------------------
t_erofs() {
    expect_fail_with "Read-only file system" bash -c 'echo x >"$1"' _ "$G/new.txt"
    expect_fail_with "Read-only file system" bash -c 'echo x >>"$1"' _ "$G/hello.txt"
    expect_fail_with "Read-only file system" mkdir "$G/newdir"
    expect_fail_with "Read-only file system" rm -f "$G/hello.txt"
    expect_fail_with "Read-only file system" mv "$G/hello.txt" "$G/renamed.txt"
    expect_fail_with "Read-only file system" touch "$G/4k.bin"
    expect_fail_with "Read-only file system" truncate -s 0 "$G/one.bin"
    [[ ! -e "$G/new.txt" ]] || die "$G/new.txt exists after a refused write"
    assert_eq "$(cat "$G/hello.txt")" "hello, upstreamfs" "hello.txt after refused writes"
    assert_eq "$(nginx_count PUT '.*')$(nginx_count DELETE '.*')" 00 "PUT/DELETE requests sent upstream"
}
check "writes, mkdir, rm, mv, touch, truncate fail with EROFS" t_erofs

# ---- a remount reads from the cache --------------------------------------------------------
t_remount() {
    upfs_unmount "$MNT"
    upfs_mount "$MNT"
    local f
    for f in hello.txt 10m.bin a/b/c/deep.txt; do
        with_timeout 30 cat -- "$G/$f" >"$T/read.tmp" || die "cat $f after remount failed"
        assert_sha256 "$T/read.tmp" "$(fixture_sha256 "$W" "$f")"
    done
    nginx_expect_count 1 GET '^/hello\.txt$'
    nginx_expect_count 1 GET '^/10m\.bin$'
    nginx_expect_count 1 GET '^/a/b/c/deep\.txt$'
}
check "after unmount + mount, cached files read with no new GET" t_remount

# ---- 1 GiB ---------------------------------------------------------------------------------
t_big() {
    local want start
    want="$(fixture_sha256 "$W" 1g.bin)"
    start=$SECONDS
    with_timeout 400 cat "$G/1g.bin" | openssl dgst -sha256 -r >"$T/1g.sum" || die "cat 1g.bin failed"
    log "1 GiB read through the mount in $((SECONDS - start)) s"
    assert_eq "$(cut -d' ' -f1 "$T/1g.sum")" "$want" "sha256 of 1g.bin read through the mount"
    # A file this large is a partial object (src/fetch/lazy.c): the open asks for its first
    # chunk by Range and the fill the rest in runs of chunks, so single flight is about bytes:
    # every byte is sent once.
    wait_until 5 _bytes_are /1g.bin 1073741824 || true
    assert_eq "$(_bytes_of /1g.bin)" 1073741824 "bytes nginx sent for 1g.bin (each byte once)"
    # A file with no expected digest reaches its readers' end before its commit records the
    # digest (src/fetch/flight.c): the xattr follows within moments.
    wait_until 10 _digest_is "$G/1g.bin" "sha256:$want" || true
    assert_eq "$(xattr digest "$G/1g.bin")" "sha256:$want" "user.upstreamfs.digest of 1g.bin"
}
_digest_is() { [[ "$(xattr digest "$1" 2>/dev/null)" == "$2" ]]; }
_bytes_of() { awk -F'\t' -v p="$1" '$3 == "GET" && $4 == p { s += $7 } END { print s + 0 }' "$NGINX_LOG"; }
_bytes_are() { [[ "$(_bytes_of "$1")" == "$2" ]]; }
if ((BIG)); then
    check "sha256 of a 1 GiB file read through the mount; each byte fetched once" t_big
else
    log "UPFS_TEST_BIG=0: skipping the 1 GiB file"
fi

# ---- a new URL: what the old remote listed is forgotten ------------------------------------
t_source_change() {
    ls "$G" | grep -qx hello.txt || die "hello.txt is not listed before the change"
    upfs_unmount "$MNT"
    upfs proxy update gen --url "$NGINX_OTHER_URL" >/dev/null
    upfs_mount "$MNT"
    assert_eq "$(ls "$G" | tr '\n' ' ')" "only-other.txt " "the listing after a new URL given while unmounted"
    [[ ! -e "$G/hello.txt" ]] || die "hello.txt of the old remote is still in the mount"
    grep -q "proxy gen: its source changed" "$STATE/upstreamfs.log" ||
        die "no log line for the changed source: $(tail -n 5 "$STATE/upstreamfs.log")"
    # and while mounted: back to the first remote
    upfs proxy update gen --url "$NGINX_URL" >/dev/null
    wait_until 5 test -e "$G/hello.txt" || die "hello.txt did not come back after the URL changed again"
    assert_eq "$(cat "$G/hello.txt")" "hello, upstreamfs" "hello.txt from the first remote again"
}
check "a proxy's new URL, given while unmounted or mounted: the old remote's tree is forgotten" t_source_change

finish
