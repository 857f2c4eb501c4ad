#!/bin/bash
# tests/integration/wizard_test.sh -- the interactive `upstreamfs proxy create` (no arguments).
#
#     bash tests/integration/wizard_test.sh build/upstreamfs
#
# Asserts:
#   without a terminal the command never prompts: exit 2, one error line on stderr that
#     holds the usage line, nothing on stdout, no state dir made (stdin /dev/null and a pipe);
#   through a pseudo-terminal (wizard/wizard_pty.py, python3 stdlib pty/termios):
#     the questions come in the product's order (type, key, source, URL, auth, access key,
#     secret) and menus take value words and numbers; a bad key (typed ahead of its question)
#     is refused with config_key_validate's message and asked again, so are a taken key, a
#     bad URL, an auth the type does not take and anonymous auth on private ECR; every answer
#     typed before the first question is used (nothing flushed, the secret's included);
#     echo is off while the secret is typed and on again afterwards, also after Ctrl-C;
#     end of input cancels with exit 2 and creates nothing;
#   the proxies exist as answered (`proxy show --json`), the secret file holds exactly the
#     secret, and the secret never appears in the terminal output or in `proxy show`;
#   the printed equivalent command, run as printed with the secret on stdin, makes the same
#     proxy.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ $# -ge 1 && -x "$1" ]] || die "usage: $0 PATH/TO/upstreamfs (got '${1:-}')"
UPFS="$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"
DRIVER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/wizard/wizard_pty.py"
T="$(test_tmpdir)"
STATE="$T/state"
SECRET="wiz-S3cr3t-$RANDOM$RANDOM-must-not-echo"
SECRET2="typed-ahead-$RANDOM$RANDOM"
mkdir -p "$T/transcripts"

upfs() { "$UPFS" --state "$STATE" "$@"; }
field() { "$PYTHON" -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# ---- no terminal: never a prompt -----------------------------------------------------------
for how in devnull pipe; do
    rc=0
    if [[ $how == devnull ]]; then
        upfs proxy create </dev/null >"$T/out" 2>"$T/err" || rc=$?
    else
        printf 'docker\nhub\n' | upfs proxy create >"$T/out" 2>"$T/err" || rc=$?
    fi
    assert_eq "$rc" 2 "proxy create without arguments or terminal ($how): exit status"
    assert_eq "$(cat "$T/err")" "upstreamfs: proxy create: expects one KEY; usage: upstreamfs proxy create KEY --type TYPE [OPTIONS] (with no arguments it asks for each setting, on a terminal only)" \
        "stderr without a terminal ($how): the usage line, as one error line"
    assert_eq "$(cat "$T/out")" "" "stdout without a terminal ($how)"
    [[ ! -e "$STATE" ]] || die "the state dir was made without a terminal ($how)"
done
log "ok: without a terminal: exit 2 with the usage line, no prompt"

# ---- through a pseudo-terminal -------------------------------------------------------------
run() {
    local scenario="$1" secret="${2-}"
    timeout --kill-after=5 60 "$PYTHON" "$DRIVER" "$UPFS" "$STATE" "$T/transcripts" \
        "$scenario" ${secret:+"$secret"} ||
        { cat "$T/transcripts/$scenario.txt" >&2 2>/dev/null || true; die "wizard scenario $scenario failed"; }
    log "ok: wizard scenario $scenario"
}
run docker_custom_access "$SECRET"
run typeahead_all "$SECRET2"
run helm_reasks
run ecr_private
run duplicate_then_eof
run interrupt_at_secret "$SECRET"

# ---- what was created ------------------------------------------------------------------------
J="$(upfs proxy show wiz-docker --json)"
assert_eq "$(field 'j["type"], j["source"], j["url"], j["auth"], j["access_key"], j["secret_set"]' <<<"$J")" \
    "('docker', 'custom', 'http://127.0.0.1:1/', 'access-key', 'robot', True)" "wiz-docker as answered"
assert_eq "$(field 'j["metadata_ttl"], j["negative_ttl"], j["offline"]' <<<"$J")" "(600, 300, False)" \
    "wiz-docker keeps the defaults it was not asked about"
assert_eq "$(cat "$STATE/secrets/wiz-docker")" "$SECRET" "the stored secret of wiz-docker"
assert_eq "$(stat -c %a "$STATE/secrets/wiz-docker")" 600 "mode of the secret file"
assert_eq "$(upfs proxy show wiz-files --json | field 'j["type"], j["url"], j["access_key"], j["secret_set"]')" \
    "('generic', 'http://127.0.0.1:1/files/', 'user', True)" "wiz-files (all answers typed ahead)"
assert_eq "$(cat "$STATE/secrets/wiz-files")" "$SECRET2" "the typed-ahead secret of wiz-files"
assert_eq "$(upfs proxy show wiz-helm --json | field 'j["type"], j["url"], j["auth"], j["secret_set"]')" \
    "('helm', 'http://127.0.0.1:1/charts/', 'anonymous', False)" "wiz-helm"
assert_eq "$(upfs proxy show wiz-ecr --json | field 'j["auth"], j["ecr"]["account"], j["ecr"]["region"], j["ecr"]["repository"]')" \
    "('aws-chain', '123456789012', 'us-east-1', 'team/app')" "wiz-ecr"
rc=0
upfs proxy show wiz-int >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 1 "proxy show of the proxy whose wizard was interrupted"
assert_eq "$(upfs proxy list --json | field 'sorted(p["key"] for p in j)')" \
    "['wiz-docker', 'wiz-ecr', 'wiz-files', 'wiz-helm']" "the proxies the wizard created, and no others"
for f in "$T"/transcripts/*.txt; do
    ! grep -qF -- "$SECRET" "$f" || die "the secret appears in the terminal output $(basename "$f")"
done
! upfs proxy show wiz-docker | grep -qF -- "$SECRET" || die "proxy show prints the secret"
log "ok: the proxies are as answered; the secret is stored and never shown"

# ---- the equivalent command works as printed -----------------------------------------------
line="$(tr -d '\r' <"$T/transcripts/docker_custom_access.txt" | grep -E '^  upstreamfs .* proxy create wiz-docker ' | head -n 1)"
[[ -n "$line" ]] || die "no equivalent command in the transcript"
cmd="${line/ proxy create wiz-docker / proxy create wiz-docker2 }"
cmd="${cmd/#  upstreamfs/$(printf '%q' "$UPFS")}"
printf '%s\n' "$SECRET" | eval "$cmd" >/dev/null || die "the equivalent command failed: $cmd"
"$PYTHON" - "$(upfs proxy show wiz-docker --json)" "$(upfs proxy show wiz-docker2 --json)" <<'EOF' ||
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
a.pop("key"); b.pop("key")
sys.exit(0 if a == b else 1)
EOF
    die "the equivalent command made a different proxy"
assert_eq "$(cat "$STATE/secrets/wiz-docker2")" "$SECRET" "the secret given to the equivalent command"
log "ok: the printed equivalent command makes the same proxy"

log "PASS"
