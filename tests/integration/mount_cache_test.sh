#!/bin/bash
# tests/integration/mount_cache_test.sh -- quota/eviction, pins, verify, prefetch, mount(8), kill -9.
#
#     bash tests/integration/mount_cache_test.sh build/upstreamfs
#
# Asserts:
#   * `upstreamfs mount MNT -o quota=25M` (options after the mount point, as documented) mounts;
#   * reading five 10 MiB files keeps `cache stats --json` cache_bytes <= 25 MiB + one object after
#     every read; the file pinned first (`cache pin gen/big/f1.bin`) stays cached (no second GET);
#     an evicted file re-reads its true bytes with a new GET; `cache stats` reports quota_bytes
#     = 25 MiB next to that mount;
#   * `cache verify` reports 0 bad; a corrupted blob is reported ("1 bad", non-zero exit),
#     removed, and the file then reads its true bytes again; `cache verify --json` prints
#     {"bad": 1, ...} in that case too;
#   * `mount -t fuse.upstreamfs STATEDIR MNT2` works through mount.fuse3 (skipped, with the
#     reason, if /sbin/mount.fuse3 is missing; run in a private mount namespace, see t_mount_t);
#   * `prefetch gen/tree` fetches a whole directory tree with one GET per file; its files then
#     read (and list) with nginx stopped;
#   * after `kill -9` of the daemon the mount point reports ENOTCONN, STATEDIR/index.db passes
#     PRAGMA integrity_check (Python's sqlite3), `upstreamfs mount` on the same mount point
#     succeeds, cached files read with the same sha256 while nginx is still stopped, and the
#     dead mount was detached (exactly one mount on MNT, not a new one stacked on the dead one).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"

W="$T/www"
MNT="$T/mnt"
MIB=$((1024 * 1024))
mkdir -p "$W/big" "$W/tree/sub/deeper"
declare -A SHA=()
for i in 1 2 3 4 5; do
    fixture_bytes "f$i" $((10 * MIB)) "$W/big/f$i.bin"
    SHA["big/f$i.bin"]="$(sha256_of "$W/big/f$i.bin")"
done
printf 'tree a\n' >"$W/tree/a.txt"
fixture_bytes tree-b $((100 * 1024)) "$W/tree/sub/b.bin"
fixture_bytes tree-c $((1 * MIB)) "$W/tree/sub/deeper/c.bin"
printf 'hello, cache\n' >"$W/hello.txt"
printf 'this one gets corrupted in the store\n' >"$W/corrupt.txt"
for f in tree/a.txt tree/sub/b.bin tree/sub/deeper/c.bin hello.txt corrupt.txt; do
    SHA["$f"]="$(sha256_of "$W/$f")"
done

nginx_start "$W"
upfs proxy create gen --type generic --url "$NGINX_URL" >/dev/null
G="$MNT/gen"
# The documented form puts the options after the mount point. If that is refused, the check
# fails and the rest of the test runs on a mount made with the options first.
t_mount_opts_after() {
    upfs_mount "$MNT" -o quota=25M
}
upfs_register_mount "$MNT"
check --setup "upstreamfs mount MNT -o quota=25M (options after the mount point) mounts" t_mount_opts_after
if ! grep -qF " $MNT fuse" /proc/self/mounts; then
    log "continuing with: upstreamfs mount -o quota=25M MNT"
    with_timeout 30 "$UPFS" --state "$STATE" mount -o quota=25M "$MNT" || die "upstreamfs mount -o quota=25M MNT failed too"
fi
QUOTA=$((25 * MIB))
LIMIT=$((QUOTA + 10 * MIB)) # the quota plus one object

# read_ok REL: read G/REL and compare with the source's sha256
read_ok() {
    with_timeout 60 cat -- "$G/$1" >"$T/read.tmp" || die "cat $1 failed"
    assert_sha256 "$T/read.tmp" "${SHA[$1]}"
}
_under_limit() { (($(stats_field cache_bytes) <= LIMIT)); }
rx() { printf '^/%s$' "$(sed 's/[.+]/\\&/g' <<<"$1")"; }

# ---- quota, eviction, pin ------------------------------------------------------------------
t_quota() {
    local i n=0 b
    read_ok big/f1.bin
    expect_ok upfs cache pin gen/big/f1.bin
    for i in 2 3 4 5; do
        read_ok "big/f$i.bin"
        wait_until 2 _under_limit || die "after reading f$i.bin cache_bytes is $(stats_field cache_bytes) > $LIMIT (quota 25 MiB + one object)"
        log "after f$i.bin: cache_bytes=$(stats_field cache_bytes) cache_objects=$(stats_field cache_objects)"
    done
    # the pinned file survived every eviction
    assert_eq "$(xattr cached "$G/big/f1.bin")" complete "user.upstreamfs.cached of the pinned f1.bin"
    [[ -f "$STATE/blobs/sha256/${SHA[big/f1.bin]:0:2}/${SHA[big/f1.bin]}" ]] ||
        die "the pinned f1.bin's blob is not in $STATE/blobs/sha256/"
    read_ok big/f1.bin
    nginx_expect_count 1 GET "$(rx big/f1.bin)"
    # something was evicted: at most 3 of the five 10 MiB files fit in 25 MiB + one object
    for i in 1 2 3 4 5; do
        [[ "$(xattr cached "$G/big/f$i.bin")" == complete ]] && n=$((n + 1))
    done
    ((n <= 3)) || die "$n of five 10 MiB files are cached=complete under a 25 MiB quota"
    ((n >= 1)) || die "no 10 MiB file is cached at all"
    # an evicted file reads its true bytes again, with a new GET
    for i in 2 3 4; do
        if [[ "$(xattr cached "$G/big/f$i.bin")" == none ]]; then
            read_ok "big/f$i.bin"
            nginx_expect_count 2 GET "$(rx "big/f$i.bin")"
            b=1
            break
        fi
    done
    [[ -n "${b:-}" ]] || die "none of f2..f4 shows user.upstreamfs.cached=none after eviction"
    wait_until 2 _under_limit || die "after re-reading an evicted file cache_bytes is $(stats_field cache_bytes) > $LIMIT"
    assert_eq "$(xattr cached "$G/big/f1.bin")" complete "user.upstreamfs.cached of the pinned f1.bin at the end"
}
check "quota=25M: cache_bytes stays <= 25 MiB + one object; the pinned file survives" t_quota

t_quota_reported() {
    assert_eq "$(stats_field quota_bytes)" "$QUOTA" "cache stats --json quota_bytes next to a mount with -o quota=25M"
}
check "cache stats reports the running mount's quota (25 MiB)" t_quota_reported

# ---- verify --------------------------------------------------------------------------------
t_verify() {
    read_ok hello.txt
    expect_ok upfs cache verify --json
    "$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["bad"] == 0 and d["checked"] >= 2 else 1)' "$OUT" ||
        die "cache verify --json: $OUT (want bad 0, checked >= 2)"
    expect_ok upfs cache verify
    assert_contains "$OUT" "0 bad" "cache verify output"
}
check "cache verify reports 0 bad" t_verify

# corrupt_blob REL: overwrite the cached object of REL with other bytes; prints its path
corrupt_blob() {
    local blob="$STATE/blobs/sha256/${SHA[$1]:0:2}/${SHA[$1]}"
    [[ -f "$blob" ]] || die "$1's blob is not at $blob"
    chmod u+w "$blob" 2>/dev/null || true
    printf 'CORRUPTED\n' >"$blob"
    printf '%s\n' "$blob"
}

t_verify_corrupt() {
    local blob
    read_ok corrupt.txt
    blob="$(corrupt_blob corrupt.txt)"
    run_capture upfs cache verify
    ((RC != 0)) || die "cache verify exited 0 with a corrupted blob: $OUT"
    assert_contains "$OUT" "1 bad" "cache verify output with one corrupted blob"
    [[ ! -e "$blob" ]] || die "cache verify left the corrupted blob in place"
    read_ok corrupt.txt
    nginx_expect_count 2 GET "$(rx corrupt.txt)"
    expect_ok upfs cache verify
    assert_contains "$OUT" "0 bad" "cache verify after the re-read"
}
check "cache verify reports and removes a corrupted blob; the file then reads its true bytes" t_verify_corrupt

t_verify_corrupt_json() {
    local blob
    read_ok corrupt.txt
    blob="$(corrupt_blob corrupt.txt)"
    run_capture upfs cache verify --json
    ((RC != 0)) || die "cache verify --json exited 0 with a corrupted blob: $OUT"
    "$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["bad"] == 1 else 1)' "$OUT" 2>/dev/null ||
        die "cache verify --json with one corrupted blob printed '$OUT' (want a JSON object with bad 1; status $RC; stderr: $ERR)"
    [[ ! -e "$blob" ]] || die "cache verify --json left the corrupted blob in place"
}
check "cache verify --json prints its report (bad 1) when it finds a corrupted blob" t_verify_corrupt_json

# ---- mount -t fuse.upstreamfs --------------------------------------------------------------
# mount(8) runs /sbin/mount.fuse3 with PATH removed from the environment, and mount.fuse3 runs
# "upstreamfs STATEDIR MNT -o OPTS" through /bin/sh, i.e. from the default PATH
# (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin). So a temp dir on PATH is not
# enough: unless `upstreamfs` there is this build, the mount runs in a private mount namespace
# (unshare -m) where a temp dir holding an `upstreamfs` symlink is bound over /usr/local/sbin.
t_mount_t() {
    local m2="$T/mnt2" inner
    if [[ ! -x /sbin/mount.fuse3 && ! -x /usr/sbin/mount.fuse3 ]]; then
        log "SKIP mount -t fuse.upstreamfs: /sbin/mount.fuse3 is missing (package fuse3)"
        return 0
    fi
    mkdir -p "$T/sbin" "$m2"
    ln -sf "$UPFS" "$T/sbin/upstreamfs"
    inner='set -euo pipefail
        trap "fusermount3 -uz \"\$M2\" 2>/dev/null || true" EXIT
        if [[ "$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v upstreamfs || true)" != /usr/local/sbin/upstreamfs ]] ||
           [[ "$(readlink -f /usr/local/sbin/upstreamfs)" != "$(readlink -f "$UPFS")" ]]; then
            mount --bind "$SBIN" /usr/local/sbin
        fi
        timeout 30 mount -t fuse.upstreamfs "$STATE" "$M2" -o quota=25M
        grep -E "^[^ ]+ $M2 fuse\.upstreamfs " /proc/self/mounts >&2 || { echo "not a fuse.upstreamfs mount" >&2; exit 3; }
        timeout 30 cat "$M2/gen/hello.txt" | openssl dgst -sha256 -r | cut -d" " -f1
        timeout 30 cat "$M2/gen/big/f1.bin" | openssl dgst -sha256 -r | cut -d" " -f1
        fusermount3 -u "$M2"'
    if ! unshare -m --propagation private true 2>/dev/null; then
        die "cannot create a private mount namespace (unshare -m) to put upstreamfs on mount(8)'s PATH"
    fi
    run_capture with_timeout 90 env UPFS="$UPFS" SBIN="$T/sbin" STATE="$STATE" M2="$m2" \
        unshare -m --propagation private bash -c "$inner"
    ((RC == 0)) || die "mount -t fuse.upstreamfs STATEDIR MNT2 (in a private mount namespace) failed, status $RC: $ERR"
    assert_eq "$(echo $OUT)" "${SHA[hello.txt]} ${SHA[big/f1.bin]}" "sha256 of hello.txt and f1.bin read through the mount -t mount"
    nginx_expect_count 1 GET "$(rx big/f1.bin)"
    wait_until 10 _upfs_no_daemon "$m2" || die "the mount -t daemon did not exit after fusermount3 -u"
}
upfs_register_mount "$T/mnt2"
check "mount -t fuse.upstreamfs STATEDIR MNT works through mount.fuse3" t_mount_t

# ---- prefetch ------------------------------------------------------------------------------
t_prefetch() {
    local f
    expect_ok with_timeout 120 upfs prefetch gen/tree
    assert_contains "$OUT" "prefetched 3 file(s)" "prefetch output"
    for f in tree/a.txt tree/sub/b.bin tree/sub/deeper/c.bin; do
        nginx_expect_count 1 GET "$(rx "$f")"
    done
}
check --setup "prefetch gen/tree fetches the whole tree (3 files, one GET each)" t_prefetch

nginx_stop
log "nginx stopped"

t_prefetched_offline() {
    local f
    for f in tree/a.txt tree/sub/b.bin tree/sub/deeper/c.bin; do
        read_ok "$f"
    done
    assert_eq "$(ls "$G/tree/sub" | tr '\n' ' ')" "b.bin deeper " "ls gen/tree/sub with nginx stopped"
    assert_eq "$(stat -c %s "$G/tree/sub/deeper/c.bin")" "$MIB" "size of c.bin with nginx stopped"
}
check "prefetched files read (and list) with nginx stopped" t_prefetched_offline

# ---- kill -9 -------------------------------------------------------------------------------
integrity() {
    "$PYTHON" - "$STATE/index.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
print("\n".join(r[0] for r in c.execute("PRAGMA integrity_check")))
EOF
}

t_kill9() {
    local pids pid f
    pids="$(upfs_daemon_pids "$MNT")"
    [[ -n "$pids" ]] || die "no daemon found for $MNT"
    assert_eq "$(wc -l <<<"$pids")" 1 "number of daemons serving $MNT ($pids)"
    pid="$pids"
    kill -9 "$pid"
    wait_until 10 _upfs_pid_dead "$pid" || die "daemon $pid survived kill -9"
    # The kernel answers ENOTCONN once the connection is gone; a request it was still
    # sending when the daemon died is answered ECONNABORTED. Either says "no daemon".
    run_capture stat "$MNT/gen"
    ((RC != 0)) || die "stat after kill -9 succeeded"
    [[ "$ERR" == *"Transport endpoint is not connected"* ||
        "$ERR" == *"Software caused connection abort"* ]] ||
        die "stat after kill -9: '$ERR', expected ENOTCONN or ECONNABORTED"
    [[ -f "$STATE/index.db" ]] || die "$STATE/index.db is missing"
    assert_eq "$(integrity)" ok "PRAGMA integrity_check after kill -9"
    # (options first: this check is about the stale mount, not about option order)
    expect_ok with_timeout 30 "$UPFS" --state "$STATE" mount -o quota=25M "$MNT"
    grep -qF " $MNT fuse" /proc/self/mounts || die "remount after kill -9 did not mount $MNT"
    expect_ok with_timeout 10 stat "$MNT/gen"
    for f in big/f1.bin hello.txt tree/a.txt tree/sub/b.bin tree/sub/deeper/c.bin; do
        read_ok "$f"
    done
    assert_eq "$(integrity)" ok "PRAGMA integrity_check after the remount"
    expect_ok upfs cache verify --json
    # the dead mount was detached, not buried under the new one
    assert_eq "$(grep -cF " $MNT fuse" /proc/self/mounts)" 1 "mounts on $MNT after the remount over the dead one ($(grep -F " $MNT " /proc/self/mounts | tr '\n' ';'))"
}
check "kill -9 the daemon, mount again on the same mount point, cached files read offline" t_kill9

finish
