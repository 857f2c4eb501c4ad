#!/bin/bash
# tests/integration/secret_unreadable_test.sh -- a proxy whose secret cannot be read fails
# with cause auth and says why; it never goes out without its credentials.
#
#     bash tests/integration/secret_unreadable_test.sh build/upstreamfs
#
# A generic proxy with access-key credentials points at fault/auth_upstream.py (which counts
# requests without credentials as "missing"). Its secret file, STATEDIR/secrets/<key>, is
# removed, then replaced by a symbolic link (refused: O_NOFOLLOW, src/config/configdb.c).
# Asserts, for `prefetch` (its own engine, src/engine/engine.c): the path fails with cause auth
# (--json), the log warns naming the proxy and the reason, the secret appears nowhere in the
# output, and the upstream saw no request without credentials; with the secret back, the
# same prefetch succeeds (the proxy's credentials are used). A helm proxy without its secret
# fetches no document (index.yaml) either.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

SECRET="s3cr3t-lost-$(openssl rand -hex 16)"
printf 'alice:%s\n' "$SECRET" >"$T/users"
chmod 600 "$T/users"
W="$T/www"
mkdir -p "$W/files"
printf 'private content\n' >"$W/files/hello.txt"
AUTH_DIR="$T/auth"
mkdir -p "$AUTH_DIR"
"${DIE_WITH_PARENT[@]}" "$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/fault/auth_upstream.py" --root "$W" \
    --users "$T/users" --port-file "$AUTH_DIR/port" --quiet </dev/null >"$AUTH_DIR/stdout" 2>"$AUTH_DIR/stderr" &
AUTH_PID=$!
on_exit "kill $AUTH_PID 2>/dev/null || true"
wait_until 10 test -s "$AUTH_DIR/port" || die "auth_upstream.py did not start: $(cat "$AUTH_DIR/stderr")"
AUTH_URL="http://127.0.0.1:$(cat "$AUTH_DIR/port")/"
auth_field() {
    "${CURL[@]}" --max-time 10 "${AUTH_URL}_control/auth" |
        "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["ok"].get("alice", 0) if sys.argv[1] == "alice" else d[sys.argv[1]])' "$1"
}

upfs proxy create lost --type generic --url "${AUTH_URL}files/" --auth access-key \
    --access-key alice --secret-key-stdin <<<"$SECRET" >/dev/null || die "proxy create lost failed"
SECRET_FILE="$STATE/secrets/lost"
[[ -f "$SECRET_FILE" ]] || die "no $SECRET_FILE"
cp -p "$SECRET_FILE" "$T/secret.saved"

# prefetch_lost NAME: prefetch lost/hello.txt --json; output in $T/NAME.{out,err}, status in RC
prefetch_lost() {
    RC=0
    upfs --log-level info prefetch --json lost/hello.txt >"$T/$1.out" 2>"$T/$1.err" || RC=$?
}
# json_cause FILE: the cause of the first path in prefetch --json output
json_cause() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["cause"])' "$1"; }

_fails_auth() { # $1: run name, $2: the reason the log must give
    prefetch_lost "$1"
    [[ $RC -ne 0 ]] || { echo "prefetch succeeded without the secret"; return 1; }
    assert_eq "$(json_cause "$T/$1.out")" auth "cause of the failed prefetch" || return 1
    grep -q "proxy lost: cannot read its secret (secrets/lost): $2" "$T/$1.err" ||
        { echo "no warning naming the proxy and '$2' in: $(cat "$T/$1.err")"; return 1; }
    ! grep -a -q -F "$SECRET" "$T/$1.out" "$T/$1.err" || { echo "the secret is in the output"; return 1; }
    assert_eq "$(auth_field missing)" 0 "requests without credentials at the upstream"
}
t_removed() { rm -f "$SECRET_FILE"; _fails_auth removed "No such file or directory"; }
check "removed secret: prefetch fails with cause auth, warns naming the proxy, nothing goes out anonymously" t_removed
t_symlink() { ln -s "$T/secret.saved" "$SECRET_FILE"; _fails_auth symlink "Too many levels of symbolic links"; }
check "secret file replaced by a symlink: cause auth, the reason logged, nothing anonymous" t_symlink
t_back() {
    rm -f "$SECRET_FILE"
    cp -p "$T/secret.saved" "$SECRET_FILE"
    prefetch_lost back
    [[ $RC -eq 0 ]] || { echo "prefetch with the secret back failed: $(cat "$T/back.err")"; return 1; }
    [[ "$(auth_field alice)" -ge 1 ]] || { echo "the upstream saw no request with alice's credentials"; return 1; }
    assert_eq "$(auth_field missing)" 0 "requests without credentials at the upstream"
}
check "secret back: the same prefetch succeeds with the proxy's credentials" t_back
t_documents() { # a helm proxy's index.yaml is a document (src/engine/upstream.c:doc_fetch)
    upfs proxy create charts --type helm --url "${AUTH_URL}charts/" --auth access-key \
        --access-key alice --secret-key-stdin <<<"$SECRET" >/dev/null || { echo "proxy create charts failed"; return 1; }
    rm -f "$STATE/secrets/charts"
    RC=0
    upfs --log-level info prefetch --json charts >"$T/charts.out" 2>"$T/charts.err" || RC=$?
    [[ $RC -ne 0 ]] || { echo "prefetch of the helm proxy succeeded without the secret"; return 1; }
    assert_eq "$(json_cause "$T/charts.out")" auth "cause of the helm prefetch"
    grep -q "proxy charts: cannot read its secret" "$T/charts.err" || { echo "no warning: $(cat "$T/charts.err")"; return 1; }
    assert_eq "$(auth_field missing)" 0 "requests without credentials at the upstream"
}
check "a document (helm index.yaml) of a proxy without its secret: cause auth, nothing anonymous" t_documents
finish
