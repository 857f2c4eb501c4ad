#!/bin/bash
# tests/integration/cache_partial_test.sh -- a pin or evict that only partly happened says so.
#
#     bash tests/integration/cache_partial_test.sh build/upstreamfs
#
# One mount with the shim in the same process (-o listen=), a generic proxy on nginx with two
# files in gen/d/, both read (cached). Asserts:
#   * POST /api/v1/cache/evict {"path":"gen/d"} while gen/d/a.txt is held open through the mount
#     answers {"objects": 1, "failed": 1}: b.txt is evicted, a.txt (in use) is not, and the
#     answer says so instead of a plain success;
#   * `cache pin gen/d` when the index refuses one of the two objects (a trigger in index.db
#     injects the failure) exits non-zero, prints "pin: 1 object(s), 1 failed" and on stderr
#     "1 object(s) could not be pinned"; --json reports {"objects": 1, "failed": 1};
#   * `cache evict gen/d` with one delete refused likewise exits non-zero ("1 failed");
#   * with the trigger gone, `cache pin gen/d` pins both and exits 0 ("pin: 2 object(s)").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"

W="$T/www"
MNT="$T/mnt"
mkdir -p "$W/d"
printf 'file a\n' >"$W/d/a.txt"
printf 'file b, a little longer\n' >"$W/d/b.txt"
SHA_A="$(sha256_of "$W/d/a.txt")"
SHA_B="$(sha256_of "$W/d/b.txt")"
nginx_start "$W"
upfs proxy create gen --type generic --url "$NGINX_URL" >/dev/null
PORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$PORT"
wait_for_port "$PORT" || die "the shim did not listen on $PORT"
G="$MNT/gen"
# the admin API's token, kept out of argv (as secrets_test.sh sends it)
(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$STATE/admin-token")" >"$T/admin.hdr")

read_both() {
    with_timeout 30 cat "$G/d/a.txt" >/dev/null || die "cat a.txt"
    with_timeout 30 cat "$G/d/b.txt" >/dev/null || die "cat b.txt"
    assert_eq "$(xattr cached "$G/d/a.txt")" complete "a.txt cached"
    assert_eq "$(xattr cached "$G/d/b.txt")" complete "b.txt cached"
}

# sql STATEMENT: run it on the state's index.db (Python's sqlite3; waits for the daemon's locks)
sql() {
    /usr/bin/python3 -c 'import sqlite3,sys
c = sqlite3.connect(sys.argv[1], timeout=30); c.executescript(sys.argv[2]); c.commit()' \
        "$STATE/index.db" "$1"
}

t_api_evict_in_use() {
    read_both
    local body
    exec 3<"$G/d/a.txt"
    body="$(curl -sS --noproxy '*' --max-time 30 -X POST -H @"$T/admin.hdr" \
        -H 'Content-Type: application/json' \
        --data '{"path":"gen/d"}' "http://127.0.0.1:$PORT/api/v1/cache/evict")"
    exec 3<&-
    log "evict answered: $body"
    assert_eq "$(/usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["objects"], j.get("failed"))' "$body")" \
        "1 1" "objects and failed of an evict with a.txt held open"
    [[ -e "$STATE/blobs/sha256/${SHA_A:0:2}/$SHA_A" ]] || die "a.txt's blob (in use) was removed"
}
check "API evict with one file open: {\"objects\": 1, \"failed\": 1}" t_api_evict_in_use

t_cli_pin_partial() {
    read_both
    sql "CREATE TRIGGER inject_pin BEFORE UPDATE OF pinned ON object WHEN NEW.digest = '$SHA_B'
         BEGIN SELECT RAISE(ABORT, 'injected'); END;"
    run_capture upfs cache pin gen/d
    sql "DROP TRIGGER inject_pin;"
    ((RC != 0)) || die "cache pin with one object refused exited 0 (stdout: $OUT)"
    assert_contains "$OUT" "pin: 1 object(s), 1 failed" "stdout of the partial pin"
    assert_contains "$ERR" "1 object(s) could not be pinned" "stderr of the partial pin"
}
check --setup "cache pin that fails for one of two objects exits non-zero and says 1 failed" t_cli_pin_partial

t_cli_pin_partial_json() {
    sql "CREATE TRIGGER inject_pin BEFORE UPDATE OF pinned ON object WHEN NEW.digest = '$SHA_B'
         BEGIN SELECT RAISE(ABORT, 'injected'); END;"
    run_capture upfs cache pin gen/d --json
    sql "DROP TRIGGER inject_pin;"
    ((RC != 0)) || die "cache pin --json with one object refused exited 0"
    assert_eq "$(/usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["objects"], j["failed"])' "$OUT")" \
        "1 1" "objects and failed of cache pin --json"
}
check "cache pin --json reports objects 1, failed 1" t_cli_pin_partial_json

t_cli_evict_partial() {
    upfs cache unpin gen/d >/dev/null
    read_both
    sql "CREATE TRIGGER inject_evict BEFORE DELETE ON object WHEN OLD.digest = '$SHA_B'
         BEGIN SELECT RAISE(ABORT, 'injected'); END;"
    run_capture upfs cache evict gen/d
    sql "DROP TRIGGER inject_evict;"
    ((RC != 0)) || die "cache evict with one object refused exited 0 (stdout: $OUT)"
    assert_contains "$OUT" "evict: 1 object(s), 1 failed" "stdout of the partial evict"
}
check "cache evict that fails for one of two objects exits non-zero and says 1 failed" t_cli_evict_partial

t_cli_pin_all() {
    read_both
    run_capture upfs cache pin gen/d
    ((RC == 0)) || die "cache pin gen/d failed: $ERR"
    assert_eq "$OUT" "pin: 2 object(s)" "stdout of a complete pin"
}
check "cache pin of two cached objects exits 0: pin: 2 object(s)" t_cli_pin_all

finish
