/*
 * cli_proxy: "upstreamfs proxy create|update|list|show|delete".
 *
 * create and update take the options of the field table (proxy_fields.h;
 * built, parsed and documented in cli_proxy_edit.c),
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
#include "cli_proxy_edit.h"
#include "cli_wizard.h"
#include "upstreamfs/cli.h"
#include "upstreamfs/config_crud.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/health.h"
#include "upstreamfs/proxy_fields.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_JSON = 256 }; /* the view options' values; the edit options' are in cli_proxy_edit.c */

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
    int rc = proxy_edit_parse(cmd, usage_create, argc, argv, &a);

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
        (rc = proxy_edit_read_secret(&a, &secret, &err)) < 0) {
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
    proxy_edit_clear(&a);
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
    int rc = proxy_edit_parse(cmd, usage_update, argc, argv, &a);

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
        rc = cli_nothing_to_change(cmd);
        goto out;
    }
    cli_quiet_logs(g);
    if ((rc = cli_open_state(g, &st)) != 0)
        goto out;
    if ((rc = crud_proxy_prepare(st, key, a.fields, a.secret_file || a.secret_stdin, &p, &secret,
                                 &err)) < 0 ||
        (rc = proxy_edit_read_secret(&a, &secret, &err)) < 0 ||
        (rc = crud_proxy_commit(st, false, &p, secret, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    printf("updated proxy %s (%s)\n", p.key, config_type_name(p.type));
    rc = CLI_EXIT_OK;
out:
    crud_secret_free(secret);
    config_proxy_clear(&p);
    proxy_edit_clear(&a);
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

/* A health object (the proxy's, or one of its urls) as "ok", "failing: http 500", ... */
static void health_word_of(json_t *h, char *buf, size_t n)
{
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

/* The health column: "ok", "failing: http 500", "backing-off: connect -", ..., "unknown". */
static void health_word(json_t *j, char *buf, size_t n)
{
    health_word_of(json_object_get(j, "health"), buf, n);
}

/* What "list" shows as the URL: for ecr the scope the proxy serves, as a user would write it. */
static void print_row(const struct proxy *p, json_t *j, int wkey)
{
    const char *url = p->url ? p->url : "-";
    char health[96];
    health_word(j, health, sizeof(health));
    printf("%-*s  %-8s  %-10s  %-7s  %-22s  %s", wkey, p->key, config_type_name(p->type),
           config_auth_name(p->auth), p->offline ? "yes" : "no", health, url);
    if (config_strv_len(p->mirrors)) /* the URLs tried after it (proxy show lists them) */
        printf(" (+%zu more)", config_strv_len(p->mirrors));
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
            {
                char word[96];
                /* an object (health.urls): "URL STATE[: CAUSE STATUS]" */
                if (json_is_object(item))
                    health_word_of(item, word, sizeof(word));
                printf("%s%s: %s%s%s\n", prefix, name,
                       json_is_object(item) ? json_string_value(json_object_get(item, "url"))
                                            : json_string_value(item),
                       json_is_object(item) ? " " : "", json_is_object(item) ? word : "");
            }
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
