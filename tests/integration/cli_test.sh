#!/bin/bash
# cli_test.sh BINARY -- drives the built upstreamfs binary the way a user does: proxy and registry
# create/list/show/update/delete, exit codes and exact error lines, concurrent invocations on one
# state dir, and a secret-leak hunt through every output, the database files and the process table.
#
# Every command's stdout and stderr are kept under $T/log, so the leak hunt covers them all.
set -euo pipefail
# One sequence of assertions, no named checks: --list lists none (docs/TESTING.md).
[[ "${1:-}" != --list ]] || exit 0

BIN="${1:?usage: cli_test.sh PATH_TO_UPSTREAMFS}"
[[ -x "$BIN" ]] || { echo "cli_test: $BIN is not executable" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)"
# shellcheck source=lib/common.sh
source "$LIB/common.sh"

T="$(test_tmpdir)"
STATE="$T/state"
LOGDIR="$T/log"
mkdir -p "$LOGDIR"
# Nothing from the caller's environment may choose another state dir or level.
unset UPSTREAMFS_STATE UPSTREAMFS_LOG
# A secret that cannot occur by chance, made at run time so no file of this test contains it.
SECRET="canary-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
SECRET2="canary2-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"

N=0
# run [ARGS...]: runs the binary on $STATE; sets RC, OUT and ERR; stdin comes from the caller.
run() {
    N=$((N + 1))
    RC=0
    "$BIN" --state "$STATE" "$@" >"$LOGDIR/$N.out" 2>"$LOGDIR/$N.err" || RC=$?
    OUT="$(cat "$LOGDIR/$N.out")"
    ERR="$(cat "$LOGDIR/$N.err")"
}

# ok ARGS...: the command must succeed with nothing on stderr.
ok() {
    run "$@" </dev/null
    [[ "$RC" == 0 ]] || die "'$*' failed with $RC: $ERR"
    [[ -z "$ERR" ]] || die "'$*' wrote to stderr: $ERR"
}

# fails CODE LINE ARGS...: the command must exit CODE with exactly LINE on stderr and no stdout.
fails() {
    local code="$1" line="$2"
    shift 2
    run "$@" </dev/null
    [[ "$RC" == "$code" ]] || die "'$*': expected exit $code, got $RC (stderr: $ERR)"
    [[ "$ERR" == "$line" ]] || die "'$*': expected stderr '$line', got '$ERR'"
    [[ -z "$OUT" ]] || die "'$*': expected no stdout, got '$OUT'"
}

# json EXPR: evaluates a Python expression over the JSON in $OUT (bound to d).
json() {
    printf '%s' "$OUT" | "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

rows() {
    "$PYTHON" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute(sys.argv[2]).fetchone()[0])' \
        "$STATE/index.db" "$1"
}

# ---- help and version --------------------------------------------------------------------------
log "help, version"
for args in "--help" "proxy --help" "proxy create --help" "proxy update --help" "proxy list --help" \
    "proxy show --help" "proxy delete --help" "registry --help" "registry create --help" \
    "registry set-upstreams --help" "registry list --help" "registry show --help" \
    "registry delete --help"; do
    # shellcheck disable=SC2086
    ok $args
    assert_contains "$OUT" "Usage: upstreamfs" "$args"
done
ok --version
[[ "$OUT" =~ ^upstreamfs\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--version printed '$OUT'"

# ---- proxies: create, list, show ---------------------------------------------------------------
log "proxy create/list/show"
[[ ! -e "$STATE" ]] || die "state dir exists before the first command"
ok proxy create hub --type docker
assert_eq "$OUT" "created proxy hub (docker)" "create output"
assert_eq "$(stat -c %a "$STATE")" 700 "state dir mode"
assert_eq "$(stat -c %a "$STATE/secrets")" 700 "secrets dir mode"
for d in blobs/sha256 tmp local; do [[ -d "$STATE/$d" ]] || die "no $d in the state dir"; done

ok proxy create charts --type helm --url https://Charts.Example.COM:443/stable
ok proxy create central --type maven --url https://repo.example.com/maven2/ --metadata-ttl 60 \
    --negative-ttl 0 --include 'org/*' --include 'com/*' --exclude '*-SNAPSHOT*' --offline
ok proxy create pubecr --type ecr --url public.ecr.aws/docker/library/alpine
ok proxy create ghcr --type docker --source custom --url https://ghcr.io

ok proxy list --json
assert_eq "$(json '[p["key"] for p in d]')" "['central', 'charts', 'ghcr', 'hub', 'pubecr']" "list order"
ok proxy show charts --json
assert_eq "$(json 'd["url"]')" "https://charts.example.com/stable/" "url normalised as a directory"
assert_eq "$(json 'd["source"]')" "None" "helm has no source"
assert_eq "$(json 'sorted(d)')" "['access_key', 'allow', 'allow_host', 'auth', 'aws_endpoint', 'ca_file', 'ca_pem_set', 'client_cert', 'client_cert_pem_set', 'client_key', 'client_key_pem_set', 'connect_timeout', 'deny', 'exclude', 'health', 'http_proxy', 'include', 'key', 'max_size', 'metadata_timeout', 'metadata_ttl', 'min_age', 'min_age_exempt', 'min_age_unknown', 'mirrors', 'negative_ttl', 'offline', 'on_removed', 'pass_credentials', 'secret_set', 'source', 'type', 'url']" "proxy JSON fields"
assert_eq "$(json '(d["allow_host"], d["pass_credentials"], d["max_size"])')" "([], False, 10737418240)" \
    "egress defaults"
ok proxy update charts --allow-host Mirror.LAN --allow-host '*.corp' --pass-credentials --max-size 64M
ok proxy show charts --json
assert_eq "$(json '(d["allow_host"], d["pass_credentials"], d["max_size"])')" \
    "(['mirror.lan', '*.corp'], True, 67108864)" "egress fields set (lower-cased, M suffix)"
ok proxy update charts --no-allow-host --no-pass-credentials --max-size 10G
ok proxy show charts --json
assert_eq "$(json '(d["allow_host"], d["pass_credentials"], d["max_size"])')" "([], False, 10737418240)" \
    "egress fields cleared"
fails 2 'upstreamfs: max_size: must be a size in bytes from 1 to 1125899906842624, optionally with K, M, G or T (got "1X")' \
    proxy update charts --max-size 1X
fails 2 'upstreamfs: allow_host: "http://x" is not a host name, an IP address or *.suffix' \
    proxy update charts --allow-host http://x
ok proxy show central --json
assert_eq "$(json '(d["metadata_ttl"], d["negative_ttl"], d["offline"], d["include"], d["exclude"])')" \
    "(60, 0, True, ['org/*', 'com/*'], ['*-SNAPSHOT*'])" "maven fields"
ok proxy show hub --json
assert_eq "$(json '(d["source"], d["url"], d["auth"], d["secret_set"])')" \
    "('dockerhub', 'https://registry-1.docker.io/', 'anonymous', False)" "docker hub defaults"
ok proxy show pubecr --json
assert_eq "$(json '(d["url"], d["ecr"])')" \
    "('https://public.ecr.aws/', {'host': 'public.ecr.aws', 'region': None, 'account': None, 'alias': 'docker', 'repository': 'library/alpine', 'public': True})" \
    "ecr public object"
ok proxy show central
assert_contains "$OUT" $'metadata_ttl: 60\n' "show lines"
assert_contains "$OUT" $'include: org/*\ninclude: com/*\n' "show include lines"
assert_contains "$OUT" $'secret_set: false\n' "show secret_set"
ok proxy list
assert_contains "$(head -n1 <<<"$OUT")" "KEY" "list header"
assert_eq "$(wc -l <<<"$OUT")" 6 "list rows"

# ---- proxies: update ---------------------------------------------------------------------------
log "proxy update"
ok proxy update central --metadata-ttl 30 --no-offline --exclude '*.tmp'
assert_eq "$OUT" "updated proxy central (maven)" "update output"
ok proxy show central --json
assert_eq "$(json '(d["metadata_ttl"], d["negative_ttl"], d["offline"], d["include"], d["exclude"])')" \
    "(30, 0, False, ['org/*', 'com/*'], ['*.tmp'])" "update keeps what was not given"
ok proxy update central --no-include --no-exclude
ok proxy show central --json
assert_eq "$(json '(d["include"], d["exclude"], d["url"])')" "([], [], 'https://repo.example.com/maven2/')" "lists cleared"
printf -- '-----BEGIN CERTIFICATE-----\n' >"$T/ca.pem"
(cd "$T" && "$BIN" --state "$STATE" proxy update charts --ca-file ca.pem --http-proxy http://Proxy.Local:3128 \
    >"$LOGDIR/ca.out" 2>"$LOGDIR/ca.err") || die "update --ca-file failed: $(cat "$LOGDIR/ca.err")"
ok proxy show charts --json
assert_eq "$(json '(d["ca_file"], d["http_proxy"])')" "('$T/ca.pem', 'http://proxy.local:3128/')" "files stored absolute"
ok proxy update charts --ca-file '' --http-proxy ''
ok proxy show charts --json
assert_eq "$(json '(d["ca_file"], d["http_proxy"])')" "(None, None)" "an empty value removes a setting"
ok proxy update ghcr --source dockerhub
ok proxy show ghcr --json
assert_eq "$(json 'd["url"]')" "https://registry-1.docker.io/" "back to docker hub"

# ---- bad input: exit codes and exact lines -----------------------------------------------------
log "bad input"
fails 2 'upstreamfs: key: must start with a letter (got "1abc")' proxy create 1abc --type docker
fails 2 "upstreamfs: key: may contain only lowercase letters, digits, '_', '.' and '-' (got \"Hub\")" \
    proxy create Hub --type docker
fails 2 'upstreamfs: key: must be at most 64 characters (got 65)' \
    proxy create "a$(printf 'b%.0s' {1..64})" --type docker
fails 2 'upstreamfs: key: "metrics" is reserved (v2, api, metrics, healthz, ui, static are the shim'"'"'s own routes)' \
    proxy create metrics --type docker
fails 2 'upstreamfs: key: a proxy named "hub" already exists' proxy create hub --type docker
fails 2 'upstreamfs: url: npm proxies need --url' proxy create n --type npm
fails 2 'upstreamfs: url: pypi proxies need --url' proxy create p --type pypi
fails 2 'upstreamfs: type: must be one of docker, ecr, helm, maven, npm, pypi, generic (got "rpm")' proxy create r --type rpm
fails 2 'upstreamfs: url: scheme must be http or https (got "ftp://files.example.com/")' \
    proxy create f --type generic --url ftp://files.example.com/
fails 2 'upstreamfs: url: generic proxies need --url' proxy create f --type generic
fails 2 'upstreamfs: url: is not a valid URL: No host part in the URL (got "http://")' proxy create f --type generic --url http://
fails 2 'upstreamfs: source: only docker proxies take --source (this is helm)' \
    proxy create f --type helm --source custom --url https://h/
fails 2 'upstreamfs: url: not used with --source dockerhub; use --source custom for another registry (got "https://quay.io/")' \
    proxy create f --type docker --url https://quay.io/
fails 2 'upstreamfs: access_key: access-key auth needs --access-key' \
    proxy create f --type generic --url https://h/ --auth access-key
fails 2 'upstreamfs: access_key: anonymous auth takes no access key' \
    proxy create f --type generic --url https://h/ --access-key bob
fails 2 'upstreamfs: auth: aws-chain is for ecr proxies only' proxy create f --type generic --url https://h/ --auth aws-chain
fails 2 'upstreamfs: aws_endpoint: only ecr proxies take --aws-endpoint' \
    proxy create f --type generic --url https://h/ --aws-endpoint http://127.0.0.1:1
fails 2 'upstreamfs: auth: a private ECR registry needs credentials: --auth access-key or aws-chain' \
    proxy create f --type ecr --url 123456789012.dkr.ecr.us-east-1.amazonaws.com/app
fails 2 'upstreamfs: url: a public ECR console URL names the account, not the registry alias: use public.ecr.aws/<alias>/<repo>, or give credentials (--auth access-key or aws-chain)' \
    proxy create f --type ecr --url 'https://us-east-2.console.aws.amazon.com/ecr/repositories/public/463796021282/demo?region=us-east-2'
fails 2 'upstreamfs: metadata_ttl: must be a whole number of seconds from 0 to 2147483647 (got "10m")' \
    proxy create f --type generic --url https://h/ --metadata-ttl 10m
fails 2 'upstreamfs: include: must not be empty' proxy create f --type generic --url https://h/ --include ''
fails 2 'upstreamfs: client_key: --client-cert and --client-key go together' \
    proxy create f --type generic --url https://h/ --client-cert /etc/hostname
fails 2 "upstreamfs: ca_file: cannot read \"$T/nope.pem\": No such file or directory" \
    proxy create f --type generic --url https://h/ --ca-file "$T/nope.pem"
fails 2 'upstreamfs: type: cannot be changed by update (delete the proxy and create it again)' \
    proxy update hub --type helm
fails 2 'upstreamfs: proxy create: unknown or ambiguous option "--colour" (see upstreamfs proxy create --help)' \
    proxy create f --type generic --colour red
fails 1 'upstreamfs: key: no proxy named "nope"' proxy show nope
fails 1 'upstreamfs: key: no proxy named "nope"' proxy delete nope
fails 1 'upstreamfs: key: no proxy named "nope"' proxy update nope --offline
fails 2 'upstreamfs: command: unknown command "frobnicate" (see upstreamfs --help)' frobnicate
# None of that wrote anything.
ok proxy list --json
assert_eq "$(json 'len(d)')" 5 "no proxy from invalid input"
[[ -z "$(ls -A "$STATE/secrets")" ]] || die "a secret file appeared: $(ls -A "$STATE/secrets")"
# npm and pypi have no default remote; given one, they are created like any other type.
ok proxy create n --type npm --url http://127.0.0.1:9/npm
ok proxy show n --json
assert_eq "$(json '(d["type"], d["url"])')" "('npm', 'http://127.0.0.1:9/npm/')" "npm proxy"
ok proxy create p --type pypi --url http://127.0.0.1:9/
ok proxy show p --json
assert_eq "$(json '(d["type"], d["url"])')" "('pypi', 'http://127.0.0.1:9/')" "pypi proxy"
ok proxy delete n
ok proxy delete p

# ---- secrets -----------------------------------------------------------------------------------
log "secrets"
# A long-running reader keeps the WAL file alive, so it is there to be searched.
"$PYTHON" -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1]); c.execute("SELECT count(*) FROM proxies").fetchone()
sys.stdout.write("ready\n"); sys.stdout.flush(); time.sleep(600)' "$STATE/index.db" >"$T/holder.out" &
HOLDER=$!
on_exit "kill $HOLDER 2>/dev/null || true"
wait_until 10 grep -q ready "$T/holder.out" || die "the WAL holder did not start"

# Via stdin, with the command caught in the act of waiting for it.
mkfifo "$T/fifo"
N=$((N + 1))
SN=$N
"$BIN" --state "$STATE" proxy create viastdin --type generic --url https://private.example/ \
    --auth access-key --access-key robot --secret-key-stdin <"$T/fifo" >"$LOGDIR/$SN.out" 2>"$LOGDIR/$SN.err" &
CPID=$!
exec 3>"$T/fifo" # the redirection's open completes, the binary starts and waits in read(2)
# Waiting means: the process runs the binary (not the shell that opens the FIFO) and sleeps.
waiting_on_stdin() {
    [[ "$(readlink "/proc/$CPID/exe" 2>/dev/null)" == "$BIN" ]] &&
        [[ "$(awk '{print $3}' "/proc/$CPID/stat" 2>/dev/null)" == S ]]
}
wait_until 10 waiting_on_stdin || die "the create command never waited on stdin"
ps -eo args >"$LOGDIR/ps.txt"
grep -q -- "[-]-secret-key-stdin" "$LOGDIR/ps.txt" || die "ps capture does not show the command"
printf '%s\n' "$SECRET" >&3
exec 3>&-
wait "$CPID" || die "create --secret-key-stdin failed: $(cat "$LOGDIR/$SN.err")"
assert_eq "$(cat "$LOGDIR/$SN.out")" "created proxy viastdin (generic)" "stdin create"

# Via a file with CRLF: exactly one line ending is stripped.
printf '%s\r\n' "$SECRET2" >"$T/secret.txt"
ok proxy create viafile --type maven --url https://m.example/ --auth access-key --access-key robot \
    --secret-key-file "$T/secret.txt"
cmp -s <(printf '%s' "$SECRET") "$STATE/secrets/viastdin" || die "secrets/viastdin is not the secret"
cmp -s <(printf '%s' "$SECRET2") "$STATE/secrets/viafile" || die "secrets/viafile is not the secret"
assert_eq "$(stat -c %a "$STATE/secrets/viastdin")" 600 "secret file mode"
assert_eq "$(stat -c %a "$STATE/secrets/viafile")" 600 "secret file mode"

ok proxy show viastdin
assert_contains "$OUT" $'secret_set: true\n' "show secret_set"
assert_contains "$OUT" $'access_key: robot\n' "show access_key"
ok proxy show viafile --json
assert_eq "$(json '(d["auth"], d["access_key"], d["secret_set"])')" "('access-key', 'robot', True)" "json secret_set"
ok proxy list --json
ok proxy list
# With every log line on, too: the logs go into the hunt below.
for args in "proxy update viafile --metadata-ttl 5" "proxy show viafile" "proxy list --json"; do
    # shellcheck disable=SC2086
    run --log-level debug $args </dev/null
    [[ "$RC" == 0 ]] || die "'$args' failed: $ERR"
done
run --log-level debug proxy update viastdin --negative-ttl 7 </dev/null
assert_contains "$ERR" "config: proxy viastdin (generic) updated" "changes are logged at info"
# A new secret replaces the old one.
run proxy update viastdin --secret-key-stdin < <(printf '%s\n' "$SECRET2")
[[ "$RC" == 0 ]] || die "update --secret-key-stdin failed: $ERR"
cmp -s <(printf '%s' "$SECRET2") "$STATE/secrets/viastdin" || die "the secret was not replaced"
# Empty secrets are refused and write nothing.
run proxy create empty --type generic --url https://h/ --auth access-key --access-key u \
    --secret-key-stdin < <(printf '\n')
[[ "$RC" == 2 && "$ERR" == "upstreamfs: secret_key: must not be empty" ]] || die "empty secret: $RC $ERR"
: >"$T/empty.txt"
fails 2 'upstreamfs: secret_key: must not be empty' proxy create empty --type generic --url https://h/ \
    --auth access-key --access-key u --secret-key-file "$T/empty.txt"
fails 2 'upstreamfs: secret_key: anonymous auth takes no secret' proxy create empty --type generic \
    --url https://h/ --secret-key-file "$T/secret.txt"
fails 2 'upstreamfs: secret_key: access-key auth needs a secret (--secret-key-file or --secret-key-stdin)' \
    proxy create empty --type generic --url https://h/ --auth access-key --access-key u
[[ ! -e "$STATE/secrets/empty" ]] || die "a refused create left a secret file"
fails 1 'upstreamfs: key: no proxy named "empty"' proxy show empty

# A stored secret never silently follows a new destination (issue 12): a change of where the proxy
# connects needs the secret again or --auth anonymous; the same change elsewhere goes through.
RULE="changing where a proxy with a stored secret connects needs the secret again (--secret-key-file/-stdin) or --auth anonymous"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=cli-ca -keyout "$T/ca.key" \
    -out "$T/ca.pem" 2>/dev/null || die "openssl could not make a CA"
fails 2 "upstreamfs: url: $RULE" proxy update viafile --url https://other.example/
fails 2 "upstreamfs: http_proxy: $RULE" proxy update viafile --http-proxy http://127.0.0.1:3128
fails 2 "upstreamfs: ca_file: $RULE" proxy update viafile --ca-file "$T/ca.pem"
fails 2 "upstreamfs: ca_pem: $RULE" proxy update viafile --ca-pem-file "$T/ca.pem"
ok proxy show viafile --json
assert_eq "$(json '(d["url"], d["http_proxy"], d["ca_file"], d["ca_pem_set"])')" \
    "('https://m.example/', None, None, False)" "nothing changed by the refusals"
ok proxy update viafile --url https://m.example/ --metadata-ttl 6
ok proxy update viafile --url https://other.example/ --ca-pem-file "$T/ca.pem" --secret-key-file "$T/secret.txt"
ok proxy show viafile --json
assert_eq "$(json '(d["url"], d["ca_pem_set"], d["secret_set"])')" "('https://other.example/', True, True)" \
    "url and CA changed with the secret given again"
[[ "$OUT" != *BEGIN* ]] || die "proxy show --json printed the PEM"
cmp -s "$T/ca.pem" "$STATE/tls/viafile/ca_pem" || die "STATEDIR/tls/viafile/ca_pem is not the CA"
assert_eq "$(stat -c %a "$STATE/tls/viafile/ca_pem")" 600 "PEM file mode"
fails 2 "upstreamfs: ca_pem: $RULE" proxy update viafile --ca-pem-file ''
fails 2 'upstreamfs: ca_pem: give ca_file or ca_pem, not both' proxy update viafile --ca-file "$T/ca.pem" \
    --secret-key-file "$T/secret.txt"
fails 2 'upstreamfs: ca_pem: must be one or more X.509 certificates in PEM form' \
    proxy update viafile --ca-pem-file "$T/ca.key" --secret-key-file "$T/secret.txt"
fails 2 "upstreamfs: ca_pem: cannot read \"$T/nope.pem\": No such file or directory" \
    proxy update viafile --ca-pem-file "$T/nope.pem"

# The hunt: the secrets are in their files and nowhere else.
for s in "$SECRET" "$SECRET2"; do
    if hits="$(grep -rlF -- "$s" "$LOGDIR")"; then die "secret leaked into command output: $hits"; fi
    if hits="$(grep -rlaF -- "$s" "$STATE" | grep -v "^$STATE/secrets/")"; then
        die "secret leaked into the state dir: $hits"
    fi
done
[[ -e "$STATE/index.db-wal" ]] || die "no WAL file to search (the holder should keep it)"
for f in "$STATE/index.db" "$STATE/index.db-wal"; do
    if grep -qaF -- "$SECRET" "$f" || grep -qaF -- "$SECRET2" "$f"; then die "secret in $f"; fi
done
grep -qaF -- "robot" "$STATE/index.db-wal" "$STATE/index.db" || die "the leak hunt searched files without the access key"
kill "$HOLDER" 2>/dev/null || true
wait "$HOLDER" 2>/dev/null || true

# Auth back to anonymous: key and secret go.
ok proxy update viafile --auth anonymous
[[ ! -e "$STATE/secrets/viafile" ]] || die "anonymous auth kept the secret file"
ok proxy show viafile --json
assert_eq "$(json '(d["auth"], d["access_key"], d["secret_set"])')" "('anonymous', None, False)" "anonymous"
# Without a secret, TLS settings change freely; '' removes a PEM field; delete removes the rest.
ok proxy update viafile --ca-pem-file ''
[[ ! -e "$STATE/tls/viafile" ]] || die "STATEDIR/tls/viafile outlived its last PEM file"
ok proxy update viafile --ca-pem-file "$T/ca.pem"
ok proxy delete viafile
[[ ! -e "$STATE/tls/viafile" ]] || die "STATEDIR/tls/viafile outlived its proxy"

# ---- ecr ---------------------------------------------------------------------------------------
log "ecr"
printf 'AWSSECRETKEYEXAMPLE\n' >"$T/aws.txt"
ok proxy create team --type ecr --auth access-key --access-key AKIAEXAMPLE --secret-key-file "$T/aws.txt" \
    --url 'https://eu-west-1.console.aws.amazon.com/ecr/repositories/private/123456789012/team%2Fapp?region=eu-west-1' \
    --aws-endpoint http://127.0.0.1:4566
ok proxy show team --json
assert_eq "$(json '(d["url"], d["aws_endpoint"], d["ecr"]["region"], d["ecr"]["account"], d["ecr"]["repository"], d["ecr"]["public"])')" \
    "('https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/', 'http://127.0.0.1:4566/', 'eu-west-1', '123456789012', 'team/app', False)" \
    "ecr console form"
ok proxy update team --metadata-ttl 1
ok proxy show team --json
assert_eq "$(json 'd["ecr"]["repository"]')" "team/app" "update keeps the ecr scope"
ok proxy create chain --type ecr --auth aws-chain --url 123456789012.dkr.ecr.us-east-1.amazonaws.com
ok proxy create pubcon --type ecr --auth aws-chain \
    --url 'https://us-east-2.console.aws.amazon.com/ecr/repositories/public/463796021282/demo?region=us-east-2'

# ---- registries --------------------------------------------------------------------------------
log "registries"
ok registry create all --type docker --upstream pubecr --upstream hub --upstream team
assert_eq "$OUT" "created registry all (docker)" "registry create output"
ok registry show all --json
assert_eq "$(json 'd')" "{'name': 'all', 'type': 'docker', 'upstreams': ['pubecr', 'hub', 'team'], 'allow': [], 'deny': []}" \
    "registry object (with the package rules a docker registry takes, none set)"
ok registry create helmrepo --type helm --upstream charts
ok registry create empty-reg --type generic
ok registry list --json
assert_eq "$(json '[(r["name"], r["upstreams"]) for r in d]')" \
    "[('all', ['pubecr', 'hub', 'team']), ('empty-reg', []), ('helmrepo', ['charts'])]" "registry list"
ok registry set-upstreams all hub pubecr
ok registry show all
assert_eq "$OUT" $'name: all\ntype: docker\nupstreams: hub, pubecr' "registry show"
ok registry list
assert_eq "$(wc -l <<<"$OUT")" 4 "registry list rows"

fails 2 'upstreamfs: upstreams: "charts" is a helm proxy; a docker registry takes docker and ecr proxies' \
    registry set-upstreams all hub charts
fails 2 'upstreamfs: upstreams: "hub" is listed twice' registry set-upstreams all hub pubecr hub
fails 2 'upstreamfs: upstreams: no proxy named "ghost"' registry create r2 --type docker --upstream ghost
fails 2 'upstreamfs: upstreams: "hub" is a docker proxy; a maven registry takes only its own type' \
    registry create r2 --type maven --upstream hub
fails 2 'upstreamfs: name: a proxy named "hub" already exists' registry create hub --type docker
fails 2 'upstreamfs: key: a registry named "all" already exists' proxy create all --type docker
ok registry create n --type npm
assert_eq "$OUT" "created registry n (npm)" "npm registry create output"
ok registry create p --type pypi
ok registry delete n
ok registry delete p
fails 2 'upstreamfs: type: there are no ecr registries; a docker registry takes ecr proxies' registry create n --type ecr
fails 2 'upstreamfs: key: proxy "hub" is an upstream of registry all; remove it there first' proxy delete hub
fails 1 'upstreamfs: name: no registry named "nope"' registry show nope
fails 1 'upstreamfs: name: no registry named "nope"' registry set-upstreams nope hub
ok registry show all --json
assert_eq "$(json 'd["upstreams"]')" "['hub', 'pubecr']" "failed changes kept the list"

ok registry set-upstreams all
ok registry show all --json
assert_eq "$(json 'd["upstreams"]')" "[]" "zero upstreams"
ok proxy delete hub
assert_eq "$OUT" "deleted proxy hub" "delete output"
ok registry delete all
ok registry delete empty-reg
fails 1 'upstreamfs: name: no registry named "all"' registry delete all
ok proxy delete viastdin
[[ ! -e "$STATE/secrets/viastdin" ]] || die "delete kept the secret file"

# ---- mount options that are refused before anything is mounted ---------------------------------
log "mount options"
mkdir -p "$T/mnt"
fails 2 'upstreamfs: mount: max_read: must be a byte count from 4096 to 1032192 (got "100")' \
    mount "$T/mnt" -o max_read=100
fails 2 'upstreamfs: mount: max_read: must be a byte count from 4096 to 1032192 (got "2097152")' \
    mount "$T/mnt" -o max_read=2097152
fails 2 'upstreamfs: mount: quota: must be a size in bytes, optionally with K, M or G (got "lots")' \
    mount "$T/mnt" -o quota=lots

# ---- no network --------------------------------------------------------------------------------
if command -v strace >/dev/null 2>&1 && strace -f -qq -o /dev/null true 2>/dev/null; then
    log "no network"
    # LeakSanitizer cannot run under ptrace; a sanitizer build still gets every other check.
    nolsan="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    ASAN_OPTIONS="$nolsan" strace -f -qq -e trace=socket,connect -o "$T/strace.txt" \
        "$BIN" --state "$STATE" proxy create offnet --type generic --url https://unreachable.invalid/ >/dev/null
    ASAN_OPTIONS="$nolsan" strace -f -qq -e trace=socket,connect -o "$T/strace2.txt" \
        "$BIN" --state "$STATE" registry create offreg --type generic --upstream offnet >/dev/null
    if grep -E 'AF_INET|AF_INET6' "$T/strace.txt" "$T/strace2.txt"; then die "a config command opened a network socket"; fi
else
    log "strace unavailable: skipping the no-network check"
fi

# ---- rough edges (issue 13, item 5) ----------------------------------------------------------
log "rough edges: single values, nothing to change, global options after the command, help lists"
# --url repeats (the mirrors, docs/SCALE-OUT.md); the same URL twice is refused
fails 2 'upstreamfs: mirrors: "https://a.example/" is listed twice' \
    proxy create twice --type generic --url https://a.example/ --url https://A.example:443
fails 2 'upstreamfs: metadata_ttl: given twice (--metadata-ttl takes one value)' \
    proxy update central --metadata-ttl 1 --metadata-ttl 2
fails 2 'upstreamfs: offline: given twice (--offline takes one value)' proxy update central --offline --offline
fails 2 'upstreamfs: offline: give --offline or --no-offline, not both' proxy update central --offline --no-offline
fails 2 'upstreamfs: type: given twice (--type takes one value)' registry create twice --type generic --type helm
fails 2 "upstreamfs: state: given twice (--state takes one value)" proxy list --state "$T/other"
# list options stay repeatable
ok proxy update central --include 'x/*' --include 'y/*' --exclude a --exclude b
ok proxy show central --json
assert_eq "$(json '(d["include"], d["exclude"])')" "(['x/*', 'y/*'], ['a', 'b'])" "repeatable lists"
fails 2 'upstreamfs: proxy update: nothing to change: give at least one option (see upstreamfs proxy update --help)' \
    proxy update central
fails 2 'upstreamfs: registry update: nothing to change: give at least one option (see upstreamfs registry update --help)' \
    registry update all
# --state and --log-level after the command mean what they mean before it
"$BIN" proxy list --json --state "$STATE" >"$LOGDIR/after.out" 2>"$LOGDIR/after.err" ||
    die "proxy list --state after the command failed: $(cat "$LOGDIR/after.err")"
ok proxy list --json
assert_eq "$(cat "$LOGDIR/after.out")" "$OUT" "proxy list --state DIR lists the same"
"$BIN" proxy delete central --state="$STATE" --log-level info >"$LOGDIR/after2.out" 2>"$LOGDIR/after2.err" ||
    die "proxy delete --state= after the command failed: $(cat "$LOGDIR/after2.err")"
assert_contains "$(cat "$LOGDIR/after2.err")" "config: proxy central (maven) deleted" "--log-level after the command"
ok registry create --help
for t in docker helm maven npm pypi generic; do assert_contains "$OUT" "$t" "registry create --help lists $t"; done
ok --help
for c in set-upstreams import; do assert_contains "$OUT" "$c" "--help lists $c"; done
assert_contains "$OUT" "cache      stats, gc, verify, pin, unpin, evict, purge: " "--help lists the cache's commands"
fails 2 'upstreamfs: cache: unknown command "nope" (stats, gc, verify, pin, unpin, evict, purge)' cache nope
# the README names every type and command those tables have (it cannot be generated from them)
"$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/readme_lists.py" "$BIN" \
    "$(dirname "${BASH_SOURCE[0]}")/../../README.md" >"$LOGDIR/readme.out" ||
    die "$(cat "$LOGDIR/readme.out")"

# a command that reads state refuses a state dir that does not exist (and creates none)
log "rough edges: a missing --state is refused by the readers"
NOSUCH="$T/no-such-state"
for args in "proxy list" "proxy show hub" "registry list" "registry show x" "cache stats" "prefetch hub/x"; do
    N=$((N + 1)); RC=0
    # shellcheck disable=SC2086
    "$BIN" --state "$NOSUCH" $args >"$LOGDIR/$N.out" 2>"$LOGDIR/$N.err" || RC=$?
    assert_eq "$RC" 1 "$args on a missing state dir: exit"
    assert_eq "$(cat "$LOGDIR/$N.err")" \
        "upstreamfs: state dir \"$NOSUCH\" does not exist; create a proxy first or check --state" \
        "$args on a missing state dir: message"
    [[ ! -e "$NOSUCH" ]] || die "$args created the state dir $NOSUCH"
done
# the commands that create still create it
"$BIN" --state "$NOSUCH" registry create made --type generic >"$LOGDIR/made.out" 2>&1 ||
    die "registry create on a new state dir failed: $(cat "$LOGDIR/made.out")"
[[ -d "$NOSUCH" ]] || die "registry create did not create the state dir"

# ---- concurrent invocations --------------------------------------------------------------------
log "concurrent invocations"
pids=()
for i in $(seq 1 12); do
    "$BIN" --state "$STATE" proxy create "conc$i" --type generic --url "https://h$i.example/" \
        >"$LOGDIR/conc$i.out" 2>"$LOGDIR/conc$i.err" &
    pids+=($!)
done
for i in $(seq 1 6); do
    "$BIN" --state "$STATE" proxy list --json >"$LOGDIR/concl$i.out" 2>"$LOGDIR/concl$i.err" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || die "a concurrent command failed: $(cat "$LOGDIR"/conc*.err)"; done
ok proxy list --json
assert_eq "$(json 'len([p for p in d if p["key"].startswith("conc")])')" 12 "all concurrent creates landed"
assert_eq "$(rows 'PRAGMA integrity_check')" ok "integrity_check"
assert_eq "$(rows 'PRAGMA journal_mode')" wal "journal mode"

log "PASS ($N commands)"
