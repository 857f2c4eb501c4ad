/*
 * cli_proxy: "upstreamfs proxy create|update|list|show|delete".
 *
 * create and update take the options of the field table (proxy_fields.h),
 * turn them into the JSON object the API takes, and hand it to config_crud,
 * the path the API and the wizard take too: an option means what the API's
 * member means, and is refused with the same words. Options not
 * given keep their values; an empty value ("--ca-file ''") removes an
 * optional setting; --no-offline, --no-include and --no-exclude undo the
 * flags and lists.
 *
 * Order of work, so that invalid input writes nothing and costs nothing:
 * parse, prepare (apply and validate), then read the secret (which may wait
 * on stdin), then open the state and commit (configdb validates again under
 * its write lock). Update opens the state first, to read the stored proxy. The secret lives in one
 * heap buffer that is wiped before it is freed; it is never printed, logged or put in argv.
 */
#include "cli_wizard.h"
#include "upstreamfs/cli.h"
#include "upstreamfs/config_crud.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/health.h"
#include "upstreamfs/proxy_fields.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/*
 * The create/update options come from the field table (proxy_fields.h): row i
 * has the option values OPT_FIELD + 4 * i + one of these.
 */
enum { OPT_JSON = 256, OPT_FIELD = 512 };
enum { OPT_SET, OPT_UNSET, OPT_SECRET_FILE, OPT_SECRET_STDIN };

/* Room for every row's options (at most four each) and --help. */
#define EDIT_OPTS_MAX (4 * PROXY_FIELDS_MAX + 2)

static struct option edit_opts[EDIT_OPTS_MAX];
static char edit_names[EDIT_OPTS_MAX][48];

static void add_opt(size_t *n, const char *prefix, const char *name, const char *suffix,
                    int has_arg, int val)
{
    snprintf(edit_names[*n], sizeof(edit_names[*n]), "%s%s%s", prefix, name, suffix);
    edit_opts[*n] = (struct option){edit_names[*n], has_arg, NULL, val};
    (*n)++;
}

/* Builds edit_opts from the table (once; the CLI is one thread). */
static const struct option *edit_options(void)
{
    size_t n = 0;
    if (edit_opts[0].name)
        return edit_opts;
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        int val = OPT_FIELD + 4 * (int)i;
        if (!f->cli)
            continue;
        if (f->kind == FIELD_SECRET || f->kind == FIELD_PEM) {
            add_opt(&n, "", f->cli, "-file", required_argument, val + OPT_SECRET_FILE);
            if (f->flags & FIELD_SECRET_FILE)
                add_opt(&n, "", f->cli, "-stdin", no_argument, val + OPT_SECRET_STDIN);
            continue;
        }
        add_opt(&n, "", f->cli, "", f->kind == FIELD_BOOL ? no_argument : required_argument,
                val + OPT_SET);
        if (f->kind == FIELD_BOOL || f->kind == FIELD_LIST)
            add_opt(&n, "no-", f->cli, "", no_argument, val + OPT_UNSET);
    }
    add_opt(&n, "", "help", "", no_argument, 'h');
    return edit_opts;
}

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

static const char usage_edit_tail[] =
    "  -h, --help                show this help\n"
    "\n"
    "KEY: starts with a letter; lowercase letters, digits, '_', '.', '-'; at most 64\n"
    "characters; not used by another proxy or registry; not v2, api, metrics, healthz,\n"
    "ui or static. Files are stored as absolute paths and must be readable now.\n";

/* Prints one help entry: the option in a 25-column cell, text lines from column 28. */
static void help_entry(const char *left, const char *text)
{
    char line[512];
    size_t o = 0;
    bool first = true;
    if (strlen(left) > 25) {
        printf("  %s\n", left);
        first = false;
    }
    /* The ECR host forms come from the defaults table. */
    static const struct {
        const char *token;
        const char *const *value;
    } subst[] = {
        {"{ecr_private}", &upstream_defaults.ecr_private_host},
        {"{ecr_public}", &upstream_defaults.ecr_public_host},
        {"{ecr_console}", &upstream_defaults.ecr_console_host},
    };
    for (const char *p = text;; p++) {
        size_t k;
        for (k = 0; k < sizeof(subst) / sizeof(subst[0]); k++)
            if (!strncmp(p, subst[k].token, strlen(subst[k].token)))
                break;
        if (k < sizeof(subst) / sizeof(subst[0])) {
            o += (size_t)snprintf(line + o, sizeof(line) - o, "%s", *subst[k].value);
            p += strlen(subst[k].token) - 1;
            continue;
        }
        if (*p && *p != '\n' && o + 1 < sizeof(line)) {
            line[o++] = *p;
            continue;
        }
        line[o] = '\0';
        printf("  %-25s %s\n", first ? left : "", line);
        first = false;
        o = 0;
        if (!*p)
            break;
    }
}

/* The option list of create and update, from the field table. */
static void print_edit_options(void)
{
    char left[300], text[600], names[256];
    puts("Options:");
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        const char *mv = f->kind == FIELD_ENUM
                             ? proxy_field_enum_list(f->names, f->nnames, "|", names, sizeof(names))
                             : proxy_field_metavar(f);
        char only[128] = "", def[64] = "", tnames[128];
        if (!f->cli)
            continue;
        if (f->types != FIELD_TYPES_ALL) {
            const char *tn[PROXY_TYPE_COUNT];
            for (int t = 0; t < PROXY_TYPE_COUNT; t++)
                tn[t] = f->types & FIELD_TYPE(t) ? config_type_name((enum proxy_type)t) : NULL;
            snprintf(only, sizeof(only), "; %s only",
                     proxy_field_enum_list(tn, PROXY_TYPE_COUNT, ", ", tnames, sizeof(tnames)));
        }
        if (f->kind == FIELD_SECONDS || f->kind == FIELD_SIZE)
            snprintf(def, sizeof(def), "; default %lld", f->def);
        else if (f->kind == FIELD_MILLIS)
            snprintf(def, sizeof(def), "; default %lldms", f->def);
        if (f->kind == FIELD_PEM) {
            snprintf(left, sizeof(left), "--%s-file FILE", f->cli);
            snprintf(text, sizeof(text), "%s;\nFILE is read now ('' removes it)%s", f->help, only);
            help_entry(left, text);
            continue;
        }
        if (f->kind == FIELD_SECRET) {
            snprintf(left, sizeof(left), "--%s-file FILE", f->cli);
            snprintf(text, sizeof(text), "read %s from FILE%s", f->help, only);
            help_entry(left, text);
            if (f->flags & FIELD_SECRET_FILE) {
                snprintf(left, sizeof(left), "--%s-stdin", f->cli);
                help_entry(left, "read it from standard input (one trailing newline\n"
                                 "is dropped; never on the command line)");
            }
            continue;
        }
        snprintf(left, sizeof(left), "--%s%s%s", f->cli, *mv ? " " : "", mv);
        snprintf(text, sizeof(text), "%s%s%s%s", f->help ? f->help : "", only, def,
                 f->kind == FIELD_LIST ? " (repeatable)" : "");
        help_entry(left, text);
        if (f->kind == FIELD_BOOL || f->kind == FIELD_LIST) {
            snprintf(left, sizeof(left), "--no-%s", f->cli);
            snprintf(text, sizeof(text), "%s (update%s)",
                     f->kind == FIELD_BOOL ? "turn it off" : "clear the list",
                     f->kind == FIELD_LIST ? "; before any new values" : "");
            help_entry(left, text);
        }
    }
    fputs(usage_edit_tail, stdout);
}

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
    "to anonymous or aws-chain removes the stored access key and secret. A change of\n"
    "where a proxy with a stored secret connects (--url, --source, --http-proxy,\n"
    "--aws-endpoint, the TLS options) needs the secret again or --auth anonymous.\n"
    "\n";

static const char usage_list[] = "Usage: upstreamfs proxy list [--json]\n"
                                 "\n"
                                 "Lists the proxies: a table, or with --json an array of the\n"
                                 "objects \"proxy show --json\" prints.\n";

static const char usage_show[] =
    "Usage: upstreamfs proxy show KEY [--json]\n"
    "\n"
    "Shows one proxy as \"field: value\" lines, or with --json as the API's object.\n"
    "A secret is never shown; secret_set says whether one is stored.\n"
    "\n"
    "health is what the running mount or serve on this state dir last saw of the\n"
    "remote (state ok, stale, failing, backing-off or offline, the cause and status of\n"
    "the last failure, the last success); \"unknown\" (null) when none is running.\n"
    "See docs/troubleshooting.md.\n";

static const char usage_delete[] = "Usage: upstreamfs proxy delete KEY\n"
                                   "\n"
                                   "Deletes a proxy and its secret. A proxy that is an upstream\n"
                                   "of a registry cannot be deleted until it is removed there.\n";

/*
 * The create/update options as given: the fields as the JSON object the API
 * takes (so both front doors apply them with config_proxy_apply_json and
 * refuse them with the same words), --type, and where the secret comes from.
 */
struct edit_args {
    json_t *fields;
    const char *type, *secret_file;
    bool secret_stdin;
    unsigned char given[PROXY_FIELDS_MAX]; /* options seen per row (--NAME and --no-NAME) */
};

static void edit_args_clear(struct edit_args *a)
{
    json_decref(a->fields);
}

/* ---- helpers --------------------------------------------------------------------------- */

/* A number as a JSON integer when it is one (else the text, for the field to refuse). */
static json_t *number_or_text(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    const char *d = *s == '-' ? s + 1 : s;
    if (*d >= '0' && *d <= '9' && !*end && !errno)
        return json_integer((json_int_t)v);
    return json_string(s);
}

static ssize_t read_up_to(int fd, char *buf, size_t n);

/* A PEM field's option: the text of FILE as the JSON string the API takes ("" for ''). */
static json_t *pem_from_file(const struct proxy_field *f, const char *file,
                             struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    if (!*file)
        return json_string("");
    char *buf = malloc((size_t)f->max + 2);
    int fd = buf ? open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
    ssize_t n = fd >= 0 ? read_up_to(fd, buf, (size_t)f->max + 1) : -errno;
    json_t *v = NULL;
    if (fd >= 0)
        close(fd);
    if (n < 0)
        config_error_set(err, f->name, "cannot read %s: %s", config_quote(q, sizeof(q), file),
                         strerror((int)-n));
    else if (n > f->max)
        config_error_set(err, f->name, "%s is longer than %lld bytes",
                         config_quote(q, sizeof(q), file), f->max);
    else if (!(v = json_stringn(buf, (size_t)n)))
        config_error_set(err, f->name, "%s is not text", config_quote(q, sizeof(q), file));
    free(buf);
    return v;
}

/* Records option (row f, what) with value arg in a; -EINVAL (err) for a repeated single value. */
static int take_option(struct edit_args *a, size_t row, int what, const char *arg,
                       struct config_error *err)
{
    const struct proxy_field *f = &proxy_fields[row];
    json_t *v = NULL;
    if (f->flags & FIELD_IDENTITY) {
        if (a->type) {
            config_error_set(err, f->name, "given twice (--%s takes one value)", f->cli);
            return -EINVAL;
        }
        a->type = arg;
        return 0;
    }
    if (f->kind != FIELD_LIST && a->given[row]++) {
        if (f->kind == FIELD_BOOL &&
            json_is_true(json_object_get(a->fields, f->name)) == (what == OPT_UNSET))
            config_error_set(err, f->name, "give --%s or --no-%s, not both", f->cli, f->cli);
        else if (f->kind == FIELD_SECRET && (a->secret_stdin != (what == OPT_SECRET_STDIN)))
            config_error_set(err, f->name, "give --%s-file or --%s-stdin, not both", f->cli,
                             f->cli);
        else
            config_error_set(err, f->name, "given twice (--%s%s takes one value)", f->cli,
                             what == OPT_SECRET_FILE ? "-file" : "");
        return -EINVAL;
    }
    switch (f->kind) {
    case FIELD_SECRET:
        if (what == OPT_SECRET_FILE)
            a->secret_file = arg;
        else
            a->secret_stdin = true;
        return 0;
    case FIELD_PEM:
        if (!(v = pem_from_file(f, arg, err)))
            return -EINVAL;
        break;
    case FIELD_BOOL:
        v = json_boolean(what == OPT_SET);
        break;
    case FIELD_SECONDS:
    case FIELD_MILLIS:
    case FIELD_SIZE:
        v = number_or_text(arg);
        break;
    case FIELD_LIST: {
        json_t *list = json_object_get(a->fields, f->name);
        if (!list && (json_object_set_new(a->fields, f->name, json_array()) < 0 ||
                      !(list = json_object_get(a->fields, f->name))))
            return -ENOMEM;
        return what == OPT_UNSET || json_array_append_new(list, json_string(arg)) == 0 ? 0
                                                                                       : -ENOMEM;
    }
    default:
        v = json_string(arg);
        break;
    }
    return json_object_set_new(a->fields, f->name, v) < 0 ? -ENOMEM : 0;
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

/*
 * Parses the create/update options; positional words are left at
 * argv[optind..]. Returns 0, -1 after printing help (the caller exits 0), or
 * an exit status after printing an error.
 */
static int parse_edit_args(const char *cmd, const char *usage, int argc, char **argv,
                           struct edit_args *a)
{
    const struct option *opts = edit_options();
    struct config_error err = {0};
    int c;
    if (!(a->fields = json_object())) {
        cli_errorf("%s: %s", cmd, strerror(ENOMEM));
        return CLI_EXIT_FAIL;
    }
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            print_edit_options();
            return -1;
        }
        if (c < OPT_FIELD)
            return cli_bad_option(cmd, c, argv);
        int rc = take_option(a, (size_t)(c - OPT_FIELD) / 4, (c - OPT_FIELD) % 4, optarg, &err);
        if (rc == -EINVAL)
            return cli_report(cmd, rc, &err);
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
        char types[128];
        const struct proxy_field *tf = proxy_field_find("type");
        config_error_set(&err, "type", "is required (%s)",
                         proxy_field_enum_list(tf->names, tf->nnames, ", ", types, sizeof(types)));
        rc = cli_report(cmd, -EINVAL, &err);
        goto out;
    }
    if (json_object_set_new(a.fields, "key", json_string(key)) < 0 ||
        json_object_set_new(a.fields, "type", json_string(a.type)) < 0) {
        rc = cli_report(cmd, -ENOMEM, NULL);
        goto out;
    }
    /* Checked before the secret is read and before the state dir is created. */
    if ((rc = crud_proxy_prepare(NULL, NULL, a.fields, a.secret_file || a.secret_stdin, &p, &secret,
                                 &err)) < 0 ||
        (rc = read_secret(&a, &secret, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    cli_quiet_logs(g);
    if ((rc = cli_create_state(g, &st)) != 0)
        goto out;
    if ((rc = crud_proxy_commit(st, true, &p, secret, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    printf("created proxy %s (%s)\n", p.key, config_type_name(p.type));
    rc = CLI_EXIT_OK;
out:
    crud_secret_free(secret);
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
    if (json_object_size(a.fields) == 0 && !a.secret_file && !a.secret_stdin) {
        cli_errorf("%s: nothing to change: give at least one option (see upstreamfs %s --help)",
                   cmd, cmd);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    cli_quiet_logs(g);
    if ((rc = cli_open_state(g, &st)) != 0)
        goto out;
    if ((rc = crud_proxy_prepare(st, key, a.fields, a.secret_file || a.secret_stdin, &p, &secret,
                                 &err)) < 0 ||
        (rc = read_secret(&a, &secret, &err)) < 0 ||
        (rc = crud_proxy_commit(st, false, &p, secret, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    printf("updated proxy %s (%s)\n", p.key, config_type_name(p.type));
    rc = CLI_EXIT_OK;
out:
    crud_secret_free(secret);
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

/*
 * The proxy's object with its health as the running daemon wrote it
 * (health_file_read), null when no daemon runs: a file left behind by one
 * that stopped is not shown as current.
 */
static json_t *proxy_with_health(const struct cli_globals *g, const struct proxy *p)
{
    json_t *j = config_proxy_to_json(p);
    json_t *h = health_file_read(g->state_dir, p->key);
    if (j)
        json_object_set_new(j, "health", h ? h : json_null());
    else
        json_decref(h);
    return j;
}

/* The health column: "ok", "failing: http 500", "backing-off: connect -", ..., "unknown". */
static void health_word(json_t *j, char *buf, size_t n)
{
    json_t *h = json_object_get(j, "health");
    const char *state = json_string_value(json_object_get(h, "state"));
    const char *cause = json_string_value(json_object_get(h, "cause"));
    json_t *status = json_object_get(h, "status");
    if (!state)
        snprintf(buf, n, "unknown");
    else if (!strcmp(state, "ok") || !strcmp(state, "offline") || !cause)
        snprintf(buf, n, "%s", state);
    else if (json_is_integer(status))
        snprintf(buf, n, "%s: %s %" JSON_INTEGER_FORMAT, state, cause, json_integer_value(status));
    else
        snprintf(buf, n, "%s: %s -", state, cause);
}

/* What "list" shows as the URL: for ecr the scope the proxy serves, as a user would write it. */
static void print_row(const struct proxy *p, json_t *j, int wkey)
{
    const char *url = p->url ? p->url : "-";
    char health[96];
    health_word(j, health, sizeof(health));
    printf("%-*s  %-8s  %-10s  %-7s  %-22s  %s", wkey, p->key, config_type_name(p->type),
           config_auth_name(p->auth), p->offline ? "yes" : "no", health, url);
    if (p->type == PROXY_ECR && (p->ecr.alias || p->ecr.repository))
        printf("%s%s%s", p->ecr.alias ? p->ecr.alias : "",
               p->ecr.alias && p->ecr.repository ? "/" : "",
               p->ecr.repository ? p->ecr.repository : "");
    putchar('\n');
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
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, proxy_with_health(g, &list[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    if (json || !arr) {
        rc = cli_print_json(arr);
        goto out;
    }
    int wkey = 3;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(list[i].key) > wkey)
            wkey = (int)strlen(list[i].key);
    printf("%-*s  %-8s  %-10s  %-7s  %-22s  %s\n", wkey, "KEY", "TYPE", "AUTH", "OFFLINE", "HEALTH",
           "URL");
    for (size_t i = 0; i < n; i++)
        print_row(&list[i], json_array_get(arr, i), wkey);
    json_decref(arr);
    rc = CLI_EXIT_OK;
out:
    configdb_proxy_list_free(list, n);
    state_close(st);
    return rc;
}

/* One "field: value" line per member of the API's object (a list: one per item; null: "-"). */
static void show_json(const char *prefix, json_t *obj)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        size_t i;
        json_t *item;
        if (json_is_object(v)) {
            char sub[64];
            snprintf(sub, sizeof(sub), "%s%s.", prefix, name);
            show_json(sub, v);
        } else if (json_is_array(v)) {
            if (!json_array_size(v))
                printf("%s%s: -\n", prefix, name);
            json_array_foreach(v, i, item)
                printf("%s%s: %s\n", prefix, name, json_string_value(item));
        } else if (json_is_string(v)) {
            printf("%s%s: %s\n", prefix, name, json_string_value(v));
        } else if (json_is_integer(v)) {
            printf("%s%s: %" JSON_INTEGER_FORMAT "\n", prefix, name, json_integer_value(v));
        } else {
            printf("%s%s: %s\n", prefix, name,
                   json_is_true(v)    ? "true"
                   : json_is_false(v) ? "false"
                                      : "-");
        }
    }
}

static int show_proxy(json_t *j)
{
    if (!j)
        return cli_report("proxy show", -ENOMEM, NULL);
    char health[96];
    health_word(j, health, sizeof(health));
    json_t *h = json_object_get(j, "health");
    json_incref(h);
    json_object_del(j, "health");
    show_json("", j);
    printf("health: %s\n", health); /* the summary, then its fields */
    if (json_is_object(h))
        show_json("health.", h);
    json_decref(h);
    json_decref(j);
    return CLI_EXIT_OK;
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
        rc = cli_print_json(proxy_with_health(g, &p));
    } else {
        rc = show_proxy(proxy_with_health(g, &p));
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
    if ((rc = crud_proxy_delete(st, key, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
    } else {
        health_file_remove(g->state_dir, key); /* a running daemon drops it on its reload */
        printf("deleted proxy %s\n", key);
        rc = CLI_EXIT_OK;
    }
    state_close(st);
    return rc;
}

const struct cli_subcommand cli_proxy_subs[] = {
    {"create", cmd_create}, {"update", cmd_update}, {"list", cmd_list},
    {"show", cmd_show},     {"delete", cmd_delete},
};
const size_t cli_proxy_nsubs = sizeof(cli_proxy_subs) / sizeof(cli_proxy_subs[0]);

int cli_proxy_main(struct cli_globals *g, int argc, char **argv)
{
    return cli_dispatch(g, "proxy", cli_proxy_subs, cli_proxy_nsubs, usage_top, argc, argv);
}
