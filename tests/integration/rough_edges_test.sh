#!/bin/bash
# tests/integration/rough_edges_test.sh -- the rough edges a new user hits (issue 13, item 5)
# that need a mount:
#
#     bash tests/integration/rough_edges_test.sh build/upstreamfs
#
# Asserts:
#   * `mount` on a mount point that is already mounted is refused (exit 1, the message names the
#     mount point and says how to unmount it) and stacks no second daemon;
#   * a second mount of one state dir on another mount point works with the same platforms, and
#     one with a different -o platform is refused, naming the platform the running mount uses;
#   * --exclude/--include apply to names the index already knows (lookup, readdir, open), in the
#     mount and the shim, and a rule changed with `proxy update` takes effect in the running
#     mount, also for entries the kernel cached;
#   * `registry delete` of a registry with local content refuses without --force, naming the
#     files and bytes; with --force, `cache gc` then frees those bytes from the store.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"

jq_py() { "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
W="$T/www"
MNT="$T/mnt"
mkdir -p "$W/pkg" "$W/secret"
printf 'public bytes\n' >"$W/pkg/a.txt"
printf 'hidden bytes\n' >"$W/secret/s.txt"
printf 'top\n' >"$W/top.txt"
nginx_start "$W"
upfs proxy create gen --type generic --url "$NGINX_URL" >/dev/null
upfs_mount "$MNT"

# ---- a mount point already mounted ----------------------------------------------------------
t_mounted_twice() {
    local before after
    before="$(grep -c " $MNT fuse" /proc/self/mounts)"
    run_capture with_timeout 30 "$UPFS" --state "$STATE" mount "$MNT"
    assert_eq "$RC" 1 "second mount on $MNT: exit status"
    assert_eq "$ERR" "upstreamfs: mount: $MNT is already mounted (fuse.upstreamfs); unmount it first (fusermount3 -u $MNT)" \
        "second mount on $MNT: message"
    after="$(grep -c " $MNT fuse" /proc/self/mounts)"
    assert_eq "$after" "$before" "mounts stacked on $MNT"
    assert_eq "$(upfs_daemon_pids "$MNT" | wc -l)" 1 "daemons serving $MNT"
}
check "mount on a mounted mount point is refused" t_mounted_twice

# ---- two mounts of one state dir: same platforms only ----------------------------------------
M2="$T/mnt2"
M3="$T/mnt3"
t_platform_mismatch() {
    mkdir -p "$M3"
    run_capture with_timeout 30 "$UPFS" --state "$STATE" mount "$M3" -o platform=linux/arm64
    assert_eq "$RC" 1 "mount with another platform: exit status"
    assert_eq "$ERR" "upstreamfs: mount: platform: state dir \"$STATE\" is mounted with every platform already; a second mount of it must show the same platforms (give no platform=, or unmount the other)" \
        "mount with another platform: message"
    grep -qF " $M3 fuse" /proc/self/mounts && die "$M3 got mounted" || true
}
upfs_register_mount "$M3"
check "a second mount of the state dir with another platform is refused" t_platform_mismatch
t_same_platform() {
    upfs_mount "$M2"
    assert_eq "$(cat "$M2/gen/top.txt")" "top" "read through the second mount"
    upfs_unmount "$M2"
}
upfs_register_mount "$M2"
check "a second mount of the state dir with the same platforms works" t_same_platform
t_platform_named() {
    upfs_unmount "$MNT"
    upfs_mount "$MNT" -o platform=linux/amd64
    run_capture with_timeout 30 "$UPFS" --state "$STATE" mount "$M3"
    assert_eq "$RC" 1 "mount without the running mount's platform: exit status"
    assert_eq "$ERR" "upstreamfs: mount: platform: state dir \"$STATE\" is mounted with platform=linux/amd64 already; a second mount of it must show the same platforms (give -o platform=linux/amd64, or unmount the other)" \
        "mount without the running mount's platform: message"
    upfs_unmount "$MNT"
    upfs_mount "$MNT"
}
check "the refusal names the platform the running mount uses" t_platform_named
# ---- registry delete with local content ------------------------------------------------------
# store_bytes: the bytes of every object in the store
store_bytes() { find "$STATE/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
t_registry_delete() {
    local before after
    mkdir -p "$T/tree/sub"
    fixture_bytes local-a 300000 "$T/tree/a.bin"
    printf 'local b\n' >"$T/tree/sub/b.txt"
    upfs registry create files --type generic >/dev/null
    upfs registry import files "$T/tree" --as site/v1 >/dev/null
    upfs cache gc >/dev/null
    before="$(store_bytes)"
    run_capture upfs registry delete files
    assert_eq "$RC" 2 "registry delete without --force: exit status"
    assert_eq "$ERR" "upstreamfs: registry delete: registry files has local content: 2 file(s), 300008 bytes would go; give --force to delete them with it" \
        "registry delete without --force: message"
    upfs registry show files >/dev/null || die "the registry is gone after a refused delete"
    run_capture upfs registry delete files --force
    assert_eq "$RC" 0 "registry delete --force: exit status ($ERR)"
    assert_eq "$OUT" "deleted registry files
released its local content: 2 file(s), 300008 bytes (\"upstreamfs cache gc\" frees them)" "registry delete --force: output"
    assert_eq "$(store_bytes)" "$before" "store bytes before cache gc"
    upfs cache gc >/dev/null
    after="$(store_bytes)"
    assert_eq "$((before - after))" 300008 "bytes cache gc freed"
    # a registry without local content needs no --force
    upfs registry create empty --type generic >/dev/null
    assert_eq "$(upfs registry delete empty)" "deleted registry empty" "delete of an empty registry"
}
check "registry delete: local content needs --force, then cache gc frees it" t_registry_delete

# ---- cache stats prints the counters its help promises --------------------------------------
C="$T/mnt-counters"
_counters_are() { [[ "$(upfs cache stats --json | jq_py "$1")" == "$2" ]]; }
t_counters() {
    upfs_mount "$C"
    printf 'counted bytes\n' >"$W/counted.txt"
    assert_eq "$(cat "$C/gen/counted.txt")" "counted bytes" "first read"
    wait_until 5 _counters_are '[d["processes"], d["misses"], d["hits"], d["upstream_bytes"]]' '[2, 1, 0, 14]' ||
        die "cache stats --json after one read: $(upfs cache stats --json)"
    cat "$C/gen/counted.txt" >/dev/null
    wait_until 5 _counters_are '[d["misses"], d["hits"]]' '[1, 1]' ||
        die "cache stats --json after a second read: $(upfs cache stats --json)"
    # the upstream requests are the ones nginx saw (HEAD of the name, then the GET)
    assert_eq "$(upfs cache stats --json | jq_py 'd["upstream_requests"]')" 2 "upstream_requests"
    assert_contains "$(upfs cache stats)" \
        "counters of the 2 process(es) running on the state dir: 1 hits, 1 misses, 2 upstream requests (14 bytes downloaded), 0 evictions, 0 stale serves" \
        "cache stats (human)"
    assert_contains "$(upfs cache --help)" "upstream requests and bytes, evictions, stale serves" "cache --help"
    upfs_unmount "$C"
    assert_eq "$(upfs cache stats --json | jq_py '[d["processes"], d["hits"]]')" "[1, 0]" \
        "counters once the mount is gone (the first mount stays)"
}
upfs_register_mount "$C"
check "cache stats prints the hit and request counters of the running mount" t_counters

# ---- --exclude/--include apply to names already known, in a running mount and its shim --------
L="$T/mnt-rules"
code_of() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SHIM_PORT/$1"; }
_gone() { ! stat "$1" >/dev/null 2>&1; }
_present() { stat "$1" >/dev/null 2>&1; }
_listing_is() { [[ "$(ls "$1" | tr '\n' ' ')" == "$2" ]]; }
t_rules() {
    SHIM_PORT="$(free_port)"
    upfs_mount "$L" -o "listen=127.0.0.1:$SHIM_PORT"
    wait_for_port "$SHIM_PORT"
    # every name is read (so the index and the kernel know it) before a rule hides it
    assert_eq "$(cat "$L/gen/secret/s.txt")" "hidden bytes" "secret/s.txt before the rule"
    assert_eq "$(cat "$L/gen/top.txt")" "top" "top.txt before the rule"
    assert_eq "$(cat "$L/gen/pkg/a.txt")" "public bytes" "pkg/a.txt before the rule"
    stat "$L/gen/secret/s.txt" >/dev/null
    assert_eq "$(code_of gen/secret/s.txt)" 200 "shim GET of secret/s.txt before the rule"
    cd "$L/gen/secret" # a directory the kernel keeps (the working directory) while it gets hidden
    upfs proxy update gen --exclude secret >/dev/null
    # within the watcher's tick: the kernel's cached entry is dropped, the index's is refused
    wait_until 5 _gone "$L/gen/secret/s.txt" || die "stat of an excluded, cached file still succeeds"
    expect_fail_with "No such file" ls .
    cd "$T"
    expect_fail_with "No such file" cat "$L/gen/secret/s.txt"
    expect_fail_with "No such file" ls "$L/gen/secret"
    assert_eq "$(ls "$L/gen" | tr '\n' ' ')" "counted.txt pkg top.txt " "listing under --exclude secret"
    assert_eq "$(code_of gen/secret/s.txt)" 404 "shim GET of an excluded, cached file"
    assert_eq "$(code_of gen/top.txt)" 200 "shim GET of a file the rule lets through"
    upfs proxy update gen --include 'pkg/*' >/dev/null
    wait_until 5 _gone "$L/gen/top.txt" || die "stat of a cached file outside --include still succeeds"
    wait_until 5 _listing_is "$L/gen" "pkg " || die "listing under --include pkg/*: $(ls "$L/gen")"
    assert_eq "$(cat "$L/gen/pkg/a.txt")" "public bytes" "pkg/a.txt under --include pkg/*"
    assert_eq "$(code_of gen/top.txt)" 404 "shim GET of a cached file outside --include"
    # clearing the rules shows everything again
    upfs proxy update gen --no-include --no-exclude >/dev/null
    wait_until 5 _present "$L/gen/secret/s.txt" || die "the file stays hidden once the rules are cleared"
    assert_eq "$(cat "$L/gen/secret/s.txt")" "hidden bytes" "secret/s.txt once the rules are cleared"
    assert_eq "$(code_of gen/top.txt)" 200 "shim GET once the rules are cleared"
    upfs_unmount "$L"
}
upfs_register_mount "$L"
check "--exclude/--include hide names already known, in a running mount (kernel caches too) and its shim" t_rules

finish
