/*
 * cli_proxy_edit: the options of "upstreamfs proxy create|update", made from
 * the field table (proxy_fields.h): one --NAME per row (with --no-NAME for
 * flags and lists, --NAME-file and --NAME-stdin for secrets and PEM text),
 * their --help, and their parsing into the JSON object the API takes, so the
 * CLI and the API apply and refuse them with the same words (config_crud).
 * The secret is read here too, into one heap buffer wiped before it is freed.
 */
#include "cli_proxy_edit.h"
#include "upstreamfs/config_crud.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/proxy_fields.h"
#include "upstreamfs/secret.h"

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
enum { OPT_FIELD = 512 };
enum { OPT_SET, OPT_UNSET, OPT_SECRET_FILE, OPT_SECRET_STDIN };

/* Room for every row's options (at most four each) and --help. */
#define EDIT_OPTS_MAX (4 * PROXY_FIELDS_MAX + 2)

static struct option edit_opts[EDIT_OPTS_MAX];
static char edit_names[EDIT_OPTS_MAX][48];

static const char usage_edit_tail[] =
    "  -h, --help                show this help\n"
    "\n"
    "KEY: starts with a letter; lowercase letters, digits, '_', '.', '-'; at most 64\n"
    "characters; not used by another proxy or registry; not v2, api, metrics, healthz,\n"
    "ui or static. Files are stored as absolute paths and must be readable now.\n";

enum { OPT_JSON = 256 }; /* the view options' values; the edit options' are in cli_proxy_edit.c */

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

void proxy_edit_clear(struct edit_args *a)
{
    json_decref(a->fields);
}

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

/*
 * --url repeats: the first is url, the others the mirrors list, in order. Giving --url sets the
 * proxy's whole list (one --url on update drops the mirrors).
 */
static int take_url(struct edit_args *a, size_t row, const char *arg)
{
    if (!a->given[row]++)
        return json_object_set_new(a->fields, proxy_fields[row].name, json_string(arg)) < 0 ||
                       json_object_set_new(a->fields, "mirrors", json_array()) < 0
                   ? -ENOMEM
                   : 0;
    return json_array_append_new(json_object_get(a->fields, "mirrors"), json_string(arg)) < 0
               ? -ENOMEM
               : 0;
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
    if (f->kind == FIELD_URL)
        return take_url(a, row, arg);
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
int proxy_edit_read_secret(const struct edit_args *a, char **out, struct config_error *err)
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
        secret_wipe(buf, cap + 1);
        free(buf);
    }
    return rc;
}

/*
 * Parses the create/update options; positional words are left at
 * argv[optind..]. Returns 0, -1 after printing help (the caller exits 0), or
 * an exit status after printing an error.
 */
int proxy_edit_parse(const char *cmd, const char *usage, int argc, char **argv, struct edit_args *a)
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
