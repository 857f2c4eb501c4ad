/*
 * cli_proxy: "upstreamfs proxy create|update|list|show|delete".
 *
 * create and update share one option table and one function that applies
 * the options to a struct proxy, so an option means the same in both; update
 * starts from the stored proxy, create from config_proxy_init. Options not
 * given keep their values; an empty value ("--ca-file ''") removes an
 * optional setting; --no-offline, --no-include and --no-exclude undo the
 * flags and lists.
 *
 * Order of work, so that invalid input writes nothing and costs nothing:
 * parse, apply, validate (config), then read the secret (which may wait on
 * stdin), then open the state and let configdb validate again under its
 * write lock. The secret lives in one heap buffer that is wiped before it
 * is freed; it is never printed, logged or put in argv.
 */
#include "cli_wizard.h"
#include "upstreamfs/cli.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/defaults.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

enum {
    OPT_TYPE = 256,
    OPT_SOURCE,
    OPT_URL,
    OPT_AUTH,
    OPT_ACCESS_KEY,
    OPT_SECRET_FILE,
    OPT_SECRET_STDIN,
    OPT_AWS_ENDPOINT,
    OPT_CA_FILE,
    OPT_CLIENT_CERT,
    OPT_CLIENT_KEY,
    OPT_HTTP_PROXY,
    OPT_META_TTL,
    OPT_NEG_TTL,
    OPT_OFFLINE,
    OPT_NO_OFFLINE,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_NO_INCLUDE,
    OPT_NO_EXCLUDE,
    OPT_ALLOW_HOST,
    OPT_NO_ALLOW_HOST,
    OPT_PASS_CREDENTIALS,
    OPT_NO_PASS_CREDENTIALS,
    OPT_MAX_SIZE,
    OPT_JSON,
};

static const struct option edit_opts[] = {
    {"type", required_argument, NULL, OPT_TYPE},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"url", required_argument, NULL, OPT_URL},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"access-key", required_argument, NULL, OPT_ACCESS_KEY},
    {"secret-key-file", required_argument, NULL, OPT_SECRET_FILE},
    {"secret-key-stdin", no_argument, NULL, OPT_SECRET_STDIN},
    {"aws-endpoint", required_argument, NULL, OPT_AWS_ENDPOINT},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"client-cert", required_argument, NULL, OPT_CLIENT_CERT},
    {"client-key", required_argument, NULL, OPT_CLIENT_KEY},
    {"http-proxy", required_argument, NULL, OPT_HTTP_PROXY},
    {"metadata-ttl", required_argument, NULL, OPT_META_TTL},
    {"negative-ttl", required_argument, NULL, OPT_NEG_TTL},
    {"offline", no_argument, NULL, OPT_OFFLINE},
    {"no-offline", no_argument, NULL, OPT_NO_OFFLINE},
    {"include", required_argument, NULL, OPT_INCLUDE},
    {"exclude", required_argument, NULL, OPT_EXCLUDE},
    {"no-include", no_argument, NULL, OPT_NO_INCLUDE},
    {"no-exclude", no_argument, NULL, OPT_NO_EXCLUDE},
    {"allow-host", required_argument, NULL, OPT_ALLOW_HOST},
    {"no-allow-host", no_argument, NULL, OPT_NO_ALLOW_HOST},
    {"pass-credentials", no_argument, NULL, OPT_PASS_CREDENTIALS},
    {"no-pass-credentials", no_argument, NULL, OPT_NO_PASS_CREDENTIALS},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option view_opts[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char usage_top[] =
    "Usage: upstreamfs proxy create KEY --type TYPE [OPTIONS]\n"
    "       upstreamfs proxy update KEY [OPTIONS]\n"
    "       upstreamfs proxy list [--json]\n"
    "       upstreamfs proxy show KEY [--json]\n"
    "       upstreamfs proxy delete KEY\n"
    "\n"
    "A proxy is a named, cached view of one remote: a Docker/OCI registry, AWS ECR,\n"
    "a Helm repository, a Maven repository or a plain HTTP file tree. These commands\n"
    "only change the configuration; none of them contacts the remote.\n"
    "\n"
    "Run \"upstreamfs proxy create --help\" for the options.\n";

/* A printf format: the ECR host forms come from the defaults table. */
static const char usage_edit_options[] =
    "Options:\n"
    "  --type TYPE               docker, ecr, helm, maven, npm, pypi or generic; create\n"
    "                            only\n"
    "  --source dockerhub|custom docker only; default dockerhub (Docker Hub's URL is built\n"
    "                            in); custom needs --url\n"
    "  --url URL                 the remote, always treated as a directory; http or https;\n"
    "                            required except for docker with --source dockerhub.\n"
    "                            ecr takes %s[/REPO],\n"
    "                            %s/ALIAS[/REPO] or the AWS console URL\n"
    "                            https://{region}.%s/ecr/repositories/\n"
    "                            {private|public}/{account}/REPO?region={region};\n"
    "                            pypi takes the repository root (simple/ is appended)\n"
    "  --auth anonymous|access-key|aws-chain\n"
    "                            default anonymous; aws-chain (ecr only) reads the AWS\n"
    "                            credential chain; private ECR needs access-key or aws-chain\n"
    "  --access-key ID           user name, or the AWS access key id for ecr\n"
    "  --secret-key-file FILE    read the secret (password, AWS secret key) from FILE\n"
    "  --secret-key-stdin        read the secret from standard input\n"
    "                            (one trailing newline is dropped; never on the command line)\n"
    "  --aws-endpoint URL        ecr only: the ECR API endpoint\n"
    "  --ca-file FILE            CA bundle to trust for the remote\n"
    "  --client-cert FILE --client-key FILE   TLS client certificate and key\n"
    "  --http-proxy URL          HTTP proxy for requests to the remote\n"
    "  --metadata-ttl SECONDS    how long tags and indexes stay fresh (default 600)\n"
    "  --negative-ttl SECONDS    how long a \"not found\" is remembered (default 300)\n"
    "  --offline                 never contact the remote: serve what is cached\n"
    "  --no-offline              contact the remote again (update)\n"
    "  --include GLOB            serve only paths matching GLOB (repeatable)\n"
    "  --exclude GLOB            hide paths matching GLOB (repeatable)\n"
    "  --no-include, --no-exclude   clear the lists (update; before any new GLOBs)\n"
    "  --allow-host HOST         let URLs learned from the remote (index entries, redirects,\n"
    "                            token realms on another host) reach HOST although it is a\n"
    "                            loopback, private, link-local... address; *.SUFFIX matches\n"
    "                            every name under SUFFIX (repeatable; --no-allow-host clears)\n"
    "  --pass-credentials        also send the proxy's credentials to other origins an\n"
    "                            index names (default: only to the proxy's URL and the\n"
    "                            registry's token realm); --no-pass-credentials undoes it\n"
    "  --max-size BYTES          largest body of unknown length taken from the remote\n"
    "                            (K, M, G suffixes; default 10G)\n"
    "  -h, --help                show this help\n"
    "\n"
    "KEY: starts with a letter; lowercase letters, digits, '_', '.', '-'; at most 64\n"
    "characters; not used by another proxy or registry; not v2, api, metrics, healthz,\n"
    "ui or static. Files are stored as absolute paths and must be readable now.\n";

static const char usage_create[] =
    "Usage: upstreamfs proxy create KEY --type TYPE [OPTIONS]\n"
    "\n"
    "Creates a proxy. Nothing is contacted: an unreachable remote is accepted.\n"
    "Without arguments, on a terminal, asks for each setting in turn instead.\n"
    "\n";

static const char usage_update[] =
    "Usage: upstreamfs proxy update KEY [OPTIONS]\n"
    "\n"
    "Changes a proxy. Options not given keep their values; the result is checked as a\n"
    "whole. --type cannot be changed. An empty value (--ca-file '') removes an optional\n"
    "setting; a new --include or --exclude list replaces the old one. Switching --auth\n"
    "to anonymous or aws-chain removes the stored access key and secret.\n"
    "\n";

static const char usage_list[] = "Usage: upstreamfs proxy list [--json]\n"
                                 "\n"
                                 "Lists the proxies: a table, or with --json an array of the\n"
                                 "objects \"proxy show --json\" prints.\n";

static const char usage_show[] =
    "Usage: upstreamfs proxy show KEY [--json]\n"
    "\n"
    "Shows one proxy as \"field: value\" lines, or with --json as the API's object.\n"
    "A secret is never shown; secret_set says whether one is stored.\n";

static const char usage_delete[] = "Usage: upstreamfs proxy delete KEY\n"
                                   "\n"
                                   "Deletes a proxy and its secret. A proxy that is an upstream\n"
                                   "of a registry cannot be deleted until it is removed there.\n";

/* The create/update options as given, before they are applied to a proxy. */
struct edit_args {
    const char *type, *source, *url, *auth, *access_key, *secret_file;
    const char *aws_endpoint, *ca_file, *client_cert, *client_key, *http_proxy;
    const char *metadata_ttl, *negative_ttl;
    bool secret_stdin, offline, no_offline, no_include, no_exclude;
    char **include, **exclude;
    bool include_set, exclude_set;
    char **allow_host;
    bool allow_host_set, no_allow_host, pass_credentials, no_pass_credentials;
    const char *max_size;
};

static void edit_args_clear(struct edit_args *a)
{
    config_strv_free(a->include);
    config_strv_free(a->exclude);
    config_strv_free(a->allow_host);
}

/* ---- helpers --------------------------------------------------------------------------- */

static int parse_ttl(const char *field, const char *s, long *out, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    long v = 0;
    const char *p = s;
    if (!*p)
        goto bad;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (CONFIG_TTL_MAX - (*p - '0')) / 10)
            goto bad;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
bad:
    config_error_set(err, field, "must be a whole number of seconds from 0 to %ld (got %s)",
                     CONFIG_TTL_MAX, config_quote(q, sizeof(q), s));
    return -EINVAL;
}

/* Applies what the user gave onto p (see the file comment for the meaning of each). */
static int apply_args(struct proxy *p, const struct edit_args *a, struct config_error *err)
{
    int rc;
    if (a->auth) {
        enum proxy_auth auth;
        if ((rc = config_auth_parse(a->auth, &auth, err)) < 0)
            return rc;
        config_proxy_set_auth(p, auth);
    }
    if (a->source) {
        enum proxy_source source;
        if ((rc = config_source_parse(a->source, &source, err)) < 0)
            return rc;
        config_proxy_set_source(p, source);
    }
    if (a->offline && a->no_offline) {
        config_error_set(err, "offline", "give --offline or --no-offline, not both");
        return -EINVAL;
    }
    if (a->secret_file && a->secret_stdin) {
        config_error_set(err, "secret_key",
                         "give --secret-key-file or --secret-key-stdin, not both");
        return -EINVAL;
    }
    if ((a->url && (rc = config_proxy_set_url(p, a->url)) < 0) ||
        (a->access_key && (rc = config_set_string(&p->access_key, a->access_key)) < 0) ||
        (a->aws_endpoint && (rc = config_set_string(&p->aws_endpoint, a->aws_endpoint)) < 0) ||
        (a->ca_file && (rc = config_set_string(&p->ca_file, a->ca_file)) < 0) ||
        (a->client_cert && (rc = config_set_string(&p->client_cert, a->client_cert)) < 0) ||
        (a->client_key && (rc = config_set_string(&p->client_key, a->client_key)) < 0) ||
        (a->http_proxy && (rc = config_set_string(&p->http_proxy, a->http_proxy)) < 0))
        return rc;
    if ((a->metadata_ttl &&
         (rc = parse_ttl("metadata_ttl", a->metadata_ttl, &p->metadata_ttl, err)) < 0) ||
        (a->negative_ttl &&
         (rc = parse_ttl("negative_ttl", a->negative_ttl, &p->negative_ttl, err)) < 0))
        return rc;
    if (a->offline || a->no_offline)
        p->offline = a->offline;
    if (a->no_include || a->include_set) {
        config_strv_free(p->include);
        if ((rc = config_strv_dup(&p->include, a->include)) < 0)
            return rc;
    }
    if (a->no_exclude || a->exclude_set) {
        config_strv_free(p->exclude);
        if ((rc = config_strv_dup(&p->exclude, a->exclude)) < 0)
            return rc;
    }
    if (a->no_allow_host || a->allow_host_set) {
        config_strv_free(p->allow_host);
        if ((rc = config_strv_dup(&p->allow_host, a->allow_host)) < 0)
            return rc;
    }
    if (a->pass_credentials && a->no_pass_credentials) {
        config_error_set(err, "pass_credentials",
                         "give --pass-credentials or --no-pass-credentials, not both");
        return -EINVAL;
    }
    if (a->pass_credentials || a->no_pass_credentials)
        p->pass_credentials = a->pass_credentials;
    if (a->max_size && (cli_parse_size(a->max_size, &p->max_size) < 0 || p->max_size < 1)) {
        char q[CONFIG_QUOTE_MAX];
        config_error_set(err, "max_size", "must be a number of bytes, with K, M or G (got %s)",
                         config_quote(q, sizeof(q), a->max_size));
        return -EINVAL;
    }
    return 0;
}

/* Reads from fd into buf (size n) until EOF or a full buffer; the count, or -errno. */
static ssize_t read_up_to(int fd, char *buf, size_t n)
{
    size_t len = 0;
    while (len < n) {
        ssize_t r = read(fd, buf + len, n - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        len += (size_t)r;
    }
    return (ssize_t)len;
}

/* One line from a terminal with echo off, so the secret is not shown while typed. */
static ssize_t read_tty_line(int fd, char *buf, size_t n)
{
    struct termios old, quiet;
    size_t len = 0;
    bool restore = tcgetattr(fd, &old) == 0;
    fputs("secret key: ", stderr);
    fflush(stderr);
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    while (len < n) {
        ssize_t r = read(fd, buf + len, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || buf[len++] == '\n')
            break;
    }
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    return (ssize_t)len;
}

/*
 * Reads the secret named by the options into a malloc'd buffer (NULL when
 * none was asked for). The buffer holds CONFIG_SECRET_MAX plus a CRLF plus
 * one more byte, so "too long" is seen without reading without bound.
 */
static int read_secret(const struct edit_args *a, char **out, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    size_t cap = CONFIG_SECRET_MAX + 3;
    int fd = -1, rc;
    ssize_t n;
    char *buf;

    *out = NULL;
    if (!a->secret_file && !a->secret_stdin)
        return 0;
    if (!(buf = calloc(1, cap + 1)))
        return -ENOMEM;
    if (a->secret_file) {
        fd = open(a->secret_file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
            config_error_set(err, "secret_key_file", "cannot read %s: %s",
                             config_quote(q, sizeof(q), a->secret_file), strerror(errno));
            rc = -EINVAL;
            goto out;
        }
        /* O_NONBLOCK only guarded the open of a FIFO; reading waits as usual. */
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        n = read_up_to(fd, buf, cap);
        close(fd);
    } else if (isatty(STDIN_FILENO)) {
        n = read_tty_line(STDIN_FILENO, buf, cap);
    } else {
        n = read_up_to(STDIN_FILENO, buf, cap);
    }
    if (n < 0) {
        config_error_set(err, a->secret_file ? "secret_key_file" : "secret_key", "cannot read: %s",
                         strerror((int)-n));
        rc = -EINVAL;
        goto out;
    }
    size_t len = (size_t)n;
    if ((rc = config_secret_normalise(buf, &len, err)) < 0)
        goto out;
    *out = buf;
    buf = NULL;
out:
    if (buf) {
        explicit_bzero(buf, cap + 1);
        free(buf);
    }
    return rc;
}

static void secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/*
 * Parses the create/update options; positional words are left at
 * argv[optind..]. Returns 0, -1 after printing help (the caller exits 0), or
 * an exit status after printing an error.
 */
static int parse_edit_args(const char *cmd, const char *usage, int argc, char **argv,
                           struct edit_args *a)
{
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", edit_opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            printf(usage_edit_options, upstream_defaults.ecr_private_host,
                   upstream_defaults.ecr_public_host, upstream_defaults.ecr_console_host);
            return -1;
        case OPT_TYPE:
            a->type = optarg;
            break;
        case OPT_SOURCE:
            a->source = optarg;
            break;
        case OPT_URL:
            a->url = optarg;
            break;
        case OPT_AUTH:
            a->auth = optarg;
            break;
        case OPT_ACCESS_KEY:
            a->access_key = optarg;
            break;
        case OPT_SECRET_FILE:
            a->secret_file = optarg;
            break;
        case OPT_SECRET_STDIN:
            a->secret_stdin = true;
            break;
        case OPT_AWS_ENDPOINT:
            a->aws_endpoint = optarg;
            break;
        case OPT_CA_FILE:
            a->ca_file = optarg;
            break;
        case OPT_CLIENT_CERT:
            a->client_cert = optarg;
            break;
        case OPT_CLIENT_KEY:
            a->client_key = optarg;
            break;
        case OPT_HTTP_PROXY:
            a->http_proxy = optarg;
            break;
        case OPT_META_TTL:
            a->metadata_ttl = optarg;
            break;
        case OPT_NEG_TTL:
            a->negative_ttl = optarg;
            break;
        case OPT_OFFLINE:
            a->offline = true;
            break;
        case OPT_NO_OFFLINE:
            a->no_offline = true;
            break;
        case OPT_INCLUDE:
            a->include_set = true;
            rc = config_strv_push(&a->include, optarg);
            break;
        case OPT_EXCLUDE:
            a->exclude_set = true;
            rc = config_strv_push(&a->exclude, optarg);
            break;
        case OPT_NO_INCLUDE:
            a->no_include = true;
            break;
        case OPT_NO_EXCLUDE:
            a->no_exclude = true;
            break;
        case OPT_ALLOW_HOST:
            a->allow_host_set = true;
            rc = config_strv_push(&a->allow_host, optarg);
            break;
        case OPT_NO_ALLOW_HOST:
            a->no_allow_host = true;
            break;
        case OPT_PASS_CREDENTIALS:
            a->pass_credentials = true;
            break;
        case OPT_NO_PASS_CREDENTIALS:
            a->no_pass_credentials = true;
            break;
        case OPT_MAX_SIZE:
            a->max_size = optarg;
            break;
        default:
            return cli_bad_option(cmd, c, argv);
        }
        if (rc < 0) {
            cli_errorf("%s: %s", cmd, strerror(-rc));
            return CLI_EXIT_FAIL;
        }
    }
    return 0;
}

/* Exactly one positional KEY, checked against the key rule. */
static int one_key(const char *cmd, int argc, char **argv, const char **key)
{
    struct config_error err = {0};
    if (argc - optind != 1) {
        cli_errorf("%s: expects one KEY (see upstreamfs %s --help)", cmd, cmd);
        return CLI_EXIT_USAGE;
    }
    *key = argv[optind];
    if (config_key_validate("key", *key, &err) < 0)
        return cli_report(cmd, -EINVAL, &err);
    return 0;
}

/* ---- commands -------------------------------------------------------------------------- */

static int cmd_create(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "proxy create";
    struct edit_args a = {0};
    struct config_error err = {0};
    struct proxy p = {0};
    struct state *st = NULL;
    char *secret = NULL;
    const char *key;
    enum proxy_type type;
    /* No arguments: the guided questions on a terminal; never a prompt without one. */
    if (argc == 1) {
        if (isatty(STDIN_FILENO))
            return cli_proxy_wizard(g);
        cli_errorf("%s: expects one KEY; usage: upstreamfs proxy create KEY --type TYPE "
                   "[OPTIONS] (with no arguments it asks for each setting, on a terminal only)",
                   cmd);
        return CLI_EXIT_USAGE;
    }
    int rc = parse_edit_args(cmd, usage_create, argc, argv, &a);

    if (rc != 0)
        goto out;
    if ((rc = one_key(cmd, argc, argv, &key)) != 0)
        goto out;
    if (!a.type) {
        config_error_set(&err, "type", "is required (docker, ecr, helm, maven or generic)");
        rc = cli_report(cmd, -EINVAL, &err);
        goto out;
    }
    if ((rc = config_type_parse(a.type, &type, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    config_proxy_init(&p, key, type);
    /* Checked before the secret is read and before the state dir is created. */
    if ((rc = apply_args(&p, &a, &err)) < 0 ||
        (rc = config_proxy_validate(&p, a.secret_file || a.secret_stdin, &err)) < 0 ||
        (rc = read_secret(&a, &secret, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    cli_quiet_logs(g);
    if ((rc = cli_open_state(g, &st)) != 0)
        goto out;
    if ((rc = configdb_proxy_create(st, &p, secret, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    printf("created proxy %s (%s)\n", p.key, config_type_name(p.type));
    rc = CLI_EXIT_OK;
out:
    secret_free(secret);
    config_proxy_clear(&p);
    edit_args_clear(&a);
    state_close(st);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

static int cmd_update(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "proxy update";
    struct edit_args a = {0};
    struct config_error err = {0};
    struct proxy p = {0};
    struct state *st = NULL;
    char *secret = NULL;
    const char *key;
    int rc = parse_edit_args(cmd, usage_update, argc, argv, &a);

    if (rc != 0)
        goto out;
    if ((rc = one_key(cmd, argc, argv, &key)) != 0)
        goto out;
    if (a.type) {
        config_error_set(&err, "type",
                         "cannot be changed by update (delete the proxy and create it again)");
        rc = cli_report(cmd, -EINVAL, &err);
        goto out;
    }
    cli_quiet_logs(g);
    if ((rc = cli_open_state(g, &st)) != 0)
        goto out;
    if ((rc = configdb_proxy_get(st, key, &p, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    if ((rc = apply_args(&p, &a, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    /* The stored secret counts only while the auth still takes one (configdb drops it). */
    bool has_secret =
        a.secret_file || a.secret_stdin || (p.secret_set && p.auth == AUTH_ACCESS_KEY);
    if ((rc = config_proxy_validate(&p, has_secret, &err)) < 0 ||
        (rc = read_secret(&a, &secret, &err)) < 0 ||
        (rc = configdb_proxy_update(st, &p, secret, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    printf("updated proxy %s (%s)\n", p.key, config_type_name(p.type));
    rc = CLI_EXIT_OK;
out:
    secret_free(secret);
    config_proxy_clear(&p);
    edit_args_clear(&a);
    state_close(st);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

/* Parses [--json] [-h]; returns -1 after printing help, an exit status on error, else 0. */
static int parse_view_args(const char *cmd, const char *usage, int argc, char **argv, bool *json)
{
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", view_opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return -1;
        }
        if (c != OPT_JSON || !json)
            return cli_bad_option(cmd, c, argv);
        *json = true;
    }
    return 0;
}

/* What "list" shows as the URL: for ecr the scope the proxy serves, as a user would write it. */
static void print_row(const struct proxy *p, int wkey)
{
    const char *url = p->url ? p->url : "-";
    printf("%-*s  %-8s  %-10s  %-7s  %s", wkey, p->key, config_type_name(p->type),
           config_auth_name(p->auth), p->offline ? "yes" : "no", url);
    if (p->type == PROXY_ECR && (p->ecr.alias || p->ecr.repository))
        printf("%s%s%s", p->ecr.alias ? p->ecr.alias : "",
               p->ecr.alias && p->ecr.repository ? "/" : "",
               p->ecr.repository ? p->ecr.repository : "");
    putchar('\n');
}

static json_t *proxy_json_at(const void *list, size_t i)
{
    return config_proxy_to_json(&((const struct proxy *)list)[i]);
}

static int cmd_list(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "proxy list";
    struct state *st = NULL;
    struct proxy *list = NULL;
    size_t n = 0;
    bool json = false;
    int rc = parse_view_args(cmd, usage_list, argc, argv, &json);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if (argc - optind != 0) {
        cli_errorf("%s: takes no arguments", cmd);
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_open_state(g, &st)) != 0)
        return rc;
    if ((rc = configdb_proxy_list(st, &list, &n)) < 0) {
        rc = cli_report(cmd, rc, NULL);
        goto out;
    }
    if (json) {
        rc = cli_print_json_array(list, n, proxy_json_at);
        goto out;
    }
    int wkey = 3;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(list[i].key) > wkey)
            wkey = (int)strlen(list[i].key);
    printf("%-*s  %-8s  %-10s  %-7s  %s\n", wkey, "KEY", "TYPE", "AUTH", "OFFLINE", "URL");
    for (size_t i = 0; i < n; i++)
        print_row(&list[i], wkey);
    rc = CLI_EXIT_OK;
out:
    configdb_proxy_list_free(list, n);
    state_close(st);
    return rc;
}

static void show_line(const char *field, const char *value)
{
    printf("%s: %s\n", field, value ? value : "-");
}

static void show_list(const char *field, char *const *v)
{
    if (!v || !v[0])
        show_line(field, NULL);
    for (size_t i = 0; v && v[i]; i++)
        show_line(field, v[i]);
}

static void show_proxy(const struct proxy *p)
{
    show_line("key", p->key);
    show_line("type", config_type_name(p->type));
    show_line("source", p->type == PROXY_DOCKER ? config_source_name(p->source) : NULL);
    show_line("url", p->url);
    show_line("auth", config_auth_name(p->auth));
    show_line("access_key", p->access_key);
    show_line("secret_set", p->secret_set ? "true" : "false");
    show_line("aws_endpoint", p->aws_endpoint);
    show_line("ca_file", p->ca_file);
    show_line("client_cert", p->client_cert);
    show_line("client_key", p->client_key);
    show_line("http_proxy", p->http_proxy);
    printf("metadata_ttl: %ld\n", p->metadata_ttl);
    printf("negative_ttl: %ld\n", p->negative_ttl);
    show_line("offline", p->offline ? "true" : "false");
    show_list("include", p->include);
    show_list("exclude", p->exclude);
    show_list("allow_host", p->allow_host);
    show_line("pass_credentials", p->pass_credentials ? "true" : "false");
    printf("max_size: %lld\n", (long long)p->max_size);
    if (p->type == PROXY_ECR) {
        show_line("ecr.host", p->ecr.host);
        show_line("ecr.region", p->ecr.region);
        show_line("ecr.account", p->ecr.account);
        show_line("ecr.alias", p->ecr.alias);
        show_line("ecr.repository", p->ecr.repository);
        show_line("ecr.public", p->ecr.is_public ? "true" : "false");
    }
}

static int cmd_show(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "proxy show";
    struct config_error err = {0};
    struct state *st = NULL;
    struct proxy p = {0};
    const char *key;
    bool json = false;
    int rc = parse_view_args(cmd, usage_show, argc, argv, &json);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = one_key(cmd, argc, argv, &key)) != 0)
        return rc;
    if ((rc = cli_open_state(g, &st)) != 0)
        return rc;
    if ((rc = configdb_proxy_get(st, key, &p, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
    } else if (json) {
        rc = cli_print_json(config_proxy_to_json(&p));
    } else {
        show_proxy(&p);
        rc = CLI_EXIT_OK;
    }
    config_proxy_clear(&p);
    state_close(st);
    return rc;
}

static int cmd_delete(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "proxy delete";
    struct config_error err = {0};
    struct state *st = NULL;
    const char *key;
    int rc = parse_view_args(cmd, usage_delete, argc, argv, NULL);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = one_key(cmd, argc, argv, &key)) != 0)
        return rc;
    cli_quiet_logs(g);
    if ((rc = cli_open_state(g, &st)) != 0)
        return rc;
    if ((rc = configdb_proxy_delete(st, key, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
    } else {
        printf("deleted proxy %s\n", key);
        rc = CLI_EXIT_OK;
    }
    state_close(st);
    return rc;
}

int cli_proxy_main(struct cli_globals *g, int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"create", cmd_create}, {"update", cmd_update}, {"list", cmd_list},
        {"show", cmd_show},     {"delete", cmd_delete},
    };
    return cli_dispatch(g, "proxy", subs, sizeof(subs) / sizeof(subs[0]), usage_top, argc, argv);
}
