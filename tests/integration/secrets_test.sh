#!/bin/bash
# tests/integration/secrets_test.sh -- secrets stay secret, also at debug log level.
#
#     bash tests/integration/secrets_test.sh build/upstreamfs
#
# Distinctive secrets, made at run time (never in any file of the repository): SECRET1 is
# given to `proxy create priv --secret-key-stdin`, SECRET2 to POST /api/v1/proxies (secret_key)
# of `upstreamfs serve`, SECRET3 (a wrong password) to `proxy create wrongpw --secret-key-file`.
# The proxies point at fault/auth_upstream.py, which serves files only with the right HTTP
# Basic credentials, so the secrets are really used on the wire (asserted through its counts),
# and the wrong one drives the 401 error paths. Everything runs with --log-level debug and UPSTREAMFS_LOG=debug: the
# mount (-o listen=, the shim in the same process) and serve. The test itself never puts a
# secret on a command line (here-strings, files, grep -f), so the process table can be checked.
# Asserts:
#   * reads through the mount and both shims return the right bytes; the upstream saw
#     authenticated requests from both users and no wrong credentials; reads with the wrong
#     password fail;
#   * neither secret, nor its Basic header form (base64 of user:secret), appears in:
#     `ps -eo args` sampled every 50 ms during the whole test; the daemon's and serve's
#     /proc/PID/cmdline and environ; the daemon log (debug), serve's output (debug), the output
#     of every CLI command; `proxy show --json`, `proxy list --json`; /api/v1/proxies[/KEY] and
#     /metrics of both shims; every file under the state dir except secrets/<key>
#     (grep -a -r: index.db, its WAL and SHM, logs, blobs, locks);
#   * secrets/<key> hold exactly the secrets, mode 0600; the state dir and secrets/ are 0700;
#     show reports secret_set: true.
# Core files (reported, not asserted): with `ulimit -c unlimited` a foreground mount that has
# used SECRET1 is sent SIGABRT; the test reports whether a core was written (the daemon did not
# make itself non-dumpable) and whether the core holds the secret (it was not zeroed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

export UPSTREAMFS_LOG=debug
SECRET1="s3cr3t-one-$(openssl rand -hex 16)"
SECRET2="s3cr3t-two-$(openssl rand -hex 16)"
SECRET3="s3cr3t-bad-$(openssl rand -hex 16)" # a wrong password: exercises the 401 paths
PAT="$T/patterns"
{
    printf '%s\n' "$SECRET1" "$SECRET2" "$SECRET3"
    printf 'alice:%s' "$SECRET1" | base64 -w0; echo
    printf 'bob:%s' "$SECRET2" | base64 -w0; echo
    printf 'carol:%s' "$SECRET3" | base64 -w0; echo
} >"$PAT"
printf 'alice:%s\nbob:%s\n' "$SECRET1" "$SECRET2" >"$T/users"
chmod 600 "$PAT" "$T/users"

# has_secret FILE...: status 0 (and the names on stdout) when any FILE holds a pattern
has_secret() { grep -a -l -F -f "$PAT" -- "$@" 2>/dev/null; }

# ---- the process table, sampled all along -----------------------------------------------------
PS_LOG="$T/ps.log"
( while :; do ps -eo args; sleep 0.05; done ) >"$PS_LOG" 2>/dev/null &
PS_PID=$!
on_exit "kill $PS_PID 2>/dev/null || true"

# ---- the authenticating upstream --------------------------------------------------------------
W="$T/www"
mkdir -p "$W/files"
printf 'private content\n' >"$W/files/hello.txt"
fixture_bytes secrets-1m $MIB "$W/files/one.bin"
AUTH_DIR="$T/auth"
mkdir -p "$AUTH_DIR"
"${DIE_WITH_PARENT[@]}" "$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/fault/auth_upstream.py" --root "$W" \
    --users "$T/users" --port-file "$AUTH_DIR/port" --quiet </dev/null >"$AUTH_DIR/stdout" 2>"$AUTH_DIR/stderr" &
AUTH_PID=$!
on_exit "kill $AUTH_PID 2>/dev/null || true"
wait_until 10 test -s "$AUTH_DIR/port" || die "auth_upstream.py did not start: $(cat "$AUTH_DIR/stderr")"
AUTH_URL="http://127.0.0.1:$(cat "$AUTH_DIR/port")/"
auth_counts() { "${CURL[@]}" --max-time 10 "${AUTH_URL}_control/auth"; }
auth_ok() { auth_counts | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["ok"].get(sys.argv[1], 0))' "$1"; }
auth_wrong() { auth_counts | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["wrong"])'; }
log "auth upstream on $AUTH_URL"
[[ "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "${AUTH_URL}files/hello.txt")" == 401 ]] || die "the auth upstream serves without credentials"

OUTS="$T/outputs"
mkdir -p "$OUTS"
# cli NAME ARGS...: run upfs (debug) with output kept in $OUTS/NAME.{out,err}
cli() {
    local name="$1" rc=0
    shift
    upfs --log-level debug "$@" >"$OUTS/$name.out" 2>"$OUTS/$name.err" || rc=$?
    return "$rc"
}

# ---- secret 1: the CLI, from stdin ------------------------------------------------------------
cli create-priv proxy create priv --type generic --url "${AUTH_URL}files/" --auth access-key \
    --access-key alice --secret-key-stdin <<<"$SECRET1" || die "proxy create priv failed: $(cat "$OUTS/create-priv.err")"
printf '%s\n' "$SECRET3" >"$T/secret3"
cli create-wrong proxy create wrongpw --type generic --url "${AUTH_URL}files/" --auth access-key \
    --access-key carol --secret-key-file "$T/secret3" || die "proxy create wrongpw failed: $(cat "$OUTS/create-wrong.err")"
rm -f "$T/secret3"

MNT="$T/mnt"
MPORT="$(free_port)"
upfs_register_mount "$MNT"
mkdir -p "$MNT"
with_timeout 30 "$UPFS" --state "$STATE" --log-level debug mount "$MNT" -o "listen=127.0.0.1:$MPORT" \
    >"$OUTS/mount.out" 2>"$OUTS/mount.err" || die "mount failed: $(cat "$OUTS/mount.err")"
wait_for_port "$MPORT" 10 || die "the mount's shim is not listening"
DPID="$(daemon_pid "$MNT")"

# ---- secret 2: the API of serve ---------------------------------------------------------------
SPORT="$(free_port)"
"${DIE_WITH_PARENT[@]}" "$UPFS" --state "$STATE" --log-level debug serve --listen "127.0.0.1:$SPORT" \
    </dev/null >"$OUTS/serve.out" 2>"$OUTS/serve.err" &
SPID=$!
on_exit "kill -TERM $SPID 2>/dev/null || true"
wait_for_port "$SPORT" 10 || die "serve did not start: $(cat "$OUTS/serve.err")"
printf '{"key": "viaapi", "type": "generic", "url": "%sfiles/", "auth": "access-key", "access_key": "bob", "secret_key": "%s"}' \
    "$AUTH_URL" "$SECRET2" >"$T/post.json"
# the API needs the admin token (a header file: the token stays out of curl's arguments)
(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$STATE/admin-token")" >"$T/admin.hdr")
code="$("${CURL[@]}" --max-time 20 -o "$OUTS/api-post.out" -w '%{http_code}' -H 'Content-Type: application/json' -H @"$T/admin.hdr" \
    --data-binary @"$T/post.json" "http://127.0.0.1:$SPORT/api/v1/proxies")" || true
assert_eq "$code" 201 "POST /api/v1/proxies with secret_key ($(cat "$OUTS/api-post.out"))"
rm -f "$T/post.json"

# ---- use both secrets on the wire -------------------------------------------------------------
_api_visible() { [[ -d "$MNT/viaapi" ]]; }
_mshim_get_viaapi() { http_get "http://127.0.0.1:$MPORT/viaapi/one.bin"; [[ "$HTTP_STATUS" == 200 ]]; }
t_use() {
    local want
    want="$(sha256_of "$W/files/one.bin")"
    with_timeout 30 cat "$MNT/priv/hello.txt" >"$T/r1" || die "cat through the mount (priv) failed"
    assert_eq "$(cat "$T/r1")" "private content" "priv/hello.txt through the mount"
    with_timeout 30 cat "$MNT/priv/one.bin" >"$T/r2" || die "cat priv/one.bin failed"
    assert_sha256 "$T/r2" "$want"
    http_get "http://127.0.0.1:$SPORT/viaapi/hello.txt"
    assert_eq "$HTTP_STATUS" 200 "GET /viaapi/hello.txt through serve"
    assert_eq "$BODY" "private content" "viaapi/hello.txt through serve"
    # a proxy made by another process reaches a running mount within 2 s (README.md)
    wait_until 5 _api_visible || die "the proxy created through the API is not in the mount after 5 s"
    wait_until 3 _mshim_get_viaapi || true
    assert_eq "$HTTP_STATUS" 200 "GET /viaapi/one.bin through the mount's shim (proxy made by the API), 3 s after it appeared in the mount"
    assert_sha256 "$T/body" "$want"
    with_timeout 30 cat "$MNT/viaapi/hello.txt" >"$T/r3" || die "cat through the mount (api) failed"
    assert_eq "$(cat "$T/r3")" "private content" "viaapi/hello.txt through the mount"
    (($(auth_ok alice) >= 1)) || die "the upstream saw no request authenticated as alice: $(auth_counts)"
    (($(auth_ok bob) >= 1)) || die "the upstream saw no request authenticated as bob: $(auth_counts)"
    assert_eq "$(auth_wrong)" 0 "requests with wrong credentials (before the wrongpw proxy is used)"
    log "upstream auth counts: $(auth_counts | tr -d ' \n')"
}
check --setup "both secrets are used on the wire: reads through mount, mount shim and serve succeed" t_use

t_wrong() {
    run_capture with_timeout 30 cat "$MNT/wrongpw/hello.txt"
    ((RC != 0)) || die "a read with a wrong password succeeded"
    log "read with a wrong password: $ERR"
    http_get "http://127.0.0.1:$MPORT/wrongpw/one.bin"
    [[ "$HTTP_STATUS" != 200 ]] || die "a shim GET with a wrong password answered 200"
    http_get "http://127.0.0.1:$SPORT/wrongpw/hello.txt"
    log "shim GETs with a wrong password: $HTTP_STATUS ($BODY)"
    (($(auth_wrong) >= 1)) || die "the wrong password never reached the upstream: $(auth_counts)"
}
check "a wrong password is refused by the upstream (its 401 paths are logged at debug)" t_wrong

# ---- collect what could leak ------------------------------------------------------------------
t_outputs() {
    local p
    cli show-priv proxy show priv --json || die "proxy show priv --json failed"
    cli show-viaapi proxy show viaapi --json || die "proxy show viaapi --json failed"
    cli show-priv-text proxy show priv || die "proxy show priv failed"
    cli list proxy list --json || die "proxy list --json failed"
    cli stats cache stats --json || true
    for p in "$SPORT" "$MPORT"; do
        "${CURL[@]}" --max-time 10 -H @"$T/admin.hdr" "http://127.0.0.1:$p/api/v1/proxies" >"$OUTS/api-list-$p.out" || true
        "${CURL[@]}" --max-time 10 -H @"$T/admin.hdr" "http://127.0.0.1:$p/api/v1/proxies/priv" >"$OUTS/api-priv-$p.out" || true
        "${CURL[@]}" --max-time 10 -H @"$T/admin.hdr" "http://127.0.0.1:$p/api/v1/proxies/viaapi" >"$OUTS/api-api-$p.out" || true
        "${CURL[@]}" --max-time 10 "http://127.0.0.1:$p/metrics" >"$OUTS/metrics-$p.out" || true
    done
    for p in priv viaapi; do
        "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("secret_set") is True and "secret_key" not in d else 1)' \
            "$OUTS/show-$p.out" || die "proxy show $p --json: secret_set is not true (or secret_key is present): $(cat "$OUTS/show-$p.out")"
    done
    assert_contains "$(cat "$OUTS/show-priv-text.out")" "secret_set: true" "proxy show priv"
    grep -q . "$OUTS/api-list-$SPORT.out" || die "GET /api/v1/proxies answered nothing"
    cp /proc/"$DPID"/cmdline "$OUTS/daemon.cmdline" && cp /proc/"$DPID"/environ "$OUTS/daemon.environ" || die "cannot read the daemon's /proc entries"
    cp /proc/"$SPID"/cmdline "$OUTS/serve.cmdline" && cp /proc/"$SPID"/environ "$OUTS/serve.environ" || die "cannot read serve's /proc entries"
    log "debug lines logged: $(cat "$STATE/upstreamfs.log" "$OUTS"/*.err | grep -c 'Z debug ' || true) (the level is honoured: $(grep -l 'Z debug ' "$OUTS"/*.err | xargs -r -n1 basename | tr '\n' ' '))"
}
check --setup "show/list/API/metrics outputs collected; show reports secret_set: true" t_outputs

t_ps() {
    local hits
    sleep 0.2
    hits="$(grep -a -F -f "$PAT" "$PS_LOG" | sort -u | head -5 || true)"
    [[ -z "$hits" ]] || die "a secret appeared in the process table: $(sed "s/$SECRET1/<SECRET1>/g; s/$SECRET2/<SECRET2>/g" <<<"$hits")"
    (($(grep -c "upstreamfs" "$PS_LOG") > 0)) || die "the ps sampler saw no upstreamfs process (it did not run?)"
    log "process table: $(grep -c '' "$PS_LOG") lines sampled, no secret"
}
check "no secret in ps -eo args (sampled every 50 ms) or in the daemons' cmdline/environ" t_ps

t_no_leak() {
    local hits
    hits="$(has_secret "$OUTS"/* "$STATE/upstreamfs.log" || true)"
    [[ -z "$hits" ]] || die "a secret (or its Basic header form) is in: $(tr '\n' ' ' <<<"$hits")"
    # the admin token neither: mount and serve print it only to a terminal, never to a log
    hits="$(grep -rlF "$(cat "$STATE/admin-token")" "$OUTS" "$STATE/upstreamfs.log" || true)"
    [[ -z "$hits" ]] || die "the admin token is in: $(tr '\n' ' ' <<<"$hits")"
    log "checked $(ls "$OUTS" | wc -l) outputs and the daemon log ($(wc -l <"$STATE/upstreamfs.log") lines, $(grep -c ' debug ' "$STATE/upstreamfs.log" || true) at debug)"
}
check "no secret in the debug logs, CLI output, show/list --json, /api/v1/proxies, /metrics" t_no_leak

t_state_files() {
    local hits f n=0
    hits=""
    while IFS= read -r -d '' f; do
        n=$((n + 1))
        case "$f" in "$STATE/secrets/priv" | "$STATE/secrets/viaapi" | "$STATE/secrets/wrongpw") continue ;; esac
        if grep -a -q -F -f "$PAT" -- "$f"; then hits+="${f#"$STATE"/} "; fi
    done < <(find "$STATE" -type f -print0)
    [[ -z "$hits" ]] || die "a secret is in these state files: $hits"
    log "checked $n files under the state dir"
}
check "no secret in any state file but secrets/<key> (index.db, WAL, SHM, logs, blobs, locks)" t_state_files

t_modes() {
    assert_eq "$(stat -c %a "$STATE")" 700 "mode of the state dir"
    assert_eq "$(stat -c %a "$STATE/secrets")" 700 "mode of the secrets dir"
    assert_eq "$(stat -c %a "$STATE/secrets/priv")" 600 "mode of secrets/priv"
    assert_eq "$(stat -c %a "$STATE/secrets/viaapi")" 600 "mode of secrets/viaapi"
    cmp -s "$STATE/secrets/priv" <(printf '%s' "$SECRET1") || cmp -s "$STATE/secrets/priv" <(printf '%s\n' "$SECRET1") ||
        die "secrets/priv does not hold SECRET1 (one trailing LF is stripped on input)"
    cmp -s "$STATE/secrets/viaapi" <(printf '%s' "$SECRET2") || cmp -s "$STATE/secrets/viaapi" <(printf '%s\n' "$SECRET2") ||
        die "secrets/viaapi does not hold SECRET2"
}
check "state dir and secrets/ 0700, secrets/<key> 0600 holding exactly the secret" t_modes

# ---- core files (reported) --------------------------------------------------------------------
t_core() {
    local pattern cdir m2 fpid core n1
    pattern="$(cat /proc/sys/kernel/core_pattern)"
    if [[ "$pattern" == \|* ]]; then
        log "FINDING core: SKIPPED -- core_pattern pipes cores to '$pattern', outside this test's reach"
        return 0
    fi
    cdir="$T/core"
    m2="$T/mnt-core"
    mkdir -p "$cdir" "$m2"
    (
        ulimit -c unlimited
        cd "$cdir"
        exec "$UPFS" --state "$STATE" mount -f "$m2" >"$cdir/mount.log" 2>&1
    ) &
    fpid=$!
    wait_until 20 grep -qF " $m2 fuse" /proc/self/mounts || die "the foreground mount did not come up: $(cat "$cdir/mount.log")"
    with_timeout 30 cat "$m2/priv/hello.txt" >/dev/null 2>&1 || true
    with_timeout 30 cat "$m2/viaapi/one.bin" >/dev/null 2>&1 || true
    with_timeout 30 cat "$m2/wrongpw/one.bin" >/dev/null 2>&1 || true
    # the mount command itself may fork; find the process that serves m2
    kill -ABRT "$(daemon_pid "$m2")" 2>/dev/null || true
    wait "$fpid" 2>/dev/null || true
    core="$(find "$cdir" -maxdepth 1 -name 'core*' -type f | head -n 1)"
    if [[ -z "$core" ]]; then
        log "FINDING core: no core file after SIGABRT with ulimit -c unlimited (core_pattern '$pattern'): the daemon is non-dumpable (or cores are disabled)"
        return 0
    fi
    # occurrences of each form, counted by python (the secrets are read from the pattern file)
    n1="$("$PYTHON" - "$core" "$PAT" <<'EOF'
import sys
core = open(sys.argv[1], "rb").read()
pats = [l.rstrip("\n").encode() for l in open(sys.argv[2]) if l.strip()]
names = ["SECRET1", "SECRET2", "SECRET3", "Basic(alice:SECRET1)", "Basic(bob:SECRET2)", "Basic(carol:SECRET3)"]
print(", ".join("%s x%d" % (n, core.count(p)) for n, p in zip(names, pats)))
EOF
)"
    log "FINDING core: SIGABRT wrote $(basename "$core") ($(($(stat -c %s "$core") / MIB)) MiB) with ulimit -c unlimited: the daemon does not make itself non-dumpable (prctl PR_SET_DUMPABLE 0); occurrences in the core: $n1"
    rm -f "$core"
}
upfs_register_mount "$T/mnt-core"
check "core files: reported (see FINDING)" t_core

finish
