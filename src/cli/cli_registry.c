/*
 * cli_registry: "upstreamfs registry create|set-upstreams|list|show|delete".
 *
 * A registry is a name, a type and an ordered list of upstream proxies; the
 * order given on the command line is the order stored and the order of
 * resolution (after the registry's own local content). Changes go through
 * config_crud as the API's do; configdb checks that every upstream exists
 * and fits the registry's type.
 */
#include "upstreamfs/cli.h"
#include "upstreamfs/config_crud.h"
#include "upstreamfs/index.h"
#include "upstreamfs/proxy_fields.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_TYPE = 256, OPT_UPSTREAM, OPT_JSON, OPT_FORCE, OPT_POLICY };

/* The package policy options (docs/policy.md): their JSON members, by OPT_POLICY + i. */
static const char *const policy_members[] = {"min_age", "min_age_unknown", "min_age_exempt",
                                             "allow", "deny"};
#define POLICY_OPTIONS                                                                             \
    "  --min-age DURATION          hide npm/PyPI versions published less long ago (7d, 0: off)\n" \
    "  --min-age-unknown allow|deny  a version without a publish time (default deny)\n"        \
    "  --min-age-exempt GLOB       names the cooldown does not hold back (repeatable)\n"       \
    "  --allow RULE, --deny RULE   package rules, NAME[@RANGE] in the type's syntax\n"         \
    "                              (repeatable; each replaces the list it names)\n"            \
    "These apply to what the upstreams serve, in addition to each upstream's own rules;\n"     \
    "not to the registry's local content.\n"

static const char usage_top[] =
    "Usage: upstreamfs registry create NAME --type TYPE [--upstream KEY]... [POLICY]\n"
    "       upstreamfs registry update NAME POLICY...\n"
    "       upstreamfs registry set-upstreams NAME [KEY]...\n"
    "       upstreamfs registry list [--json]\n"
    "       upstreamfs registry show NAME [--json]\n"
    "       upstreamfs registry delete NAME [--force]\n"
    "       upstreamfs registry import NAME DIR --as REPOSITORY[:TAG]|PATH\n"
    "\n"
    "A registry groups proxies in an order: a path in it resolves to the registry's\n"
    "local content first, then to each upstream proxy, top to bottom.\n"
    "\n"
    "TYPE is one of %s: docker takes docker and ecr\n"
    "proxies, the others proxies of their own type. NAME follows the proxy KEY rule\n"
    "and shares one name space with the proxies.\n";

static const char usage_create[] =
    "Usage: upstreamfs registry create NAME --type TYPE [--upstream KEY]... [POLICY]\n"
    "\n"
    "Creates a registry. Each --upstream names a proxy, in resolution order; a proxy\n"
    "may appear once.\n"
    "\n"
    "Options:\n"
    "  --type TYPE       %s\n"
    "  --upstream KEY    an upstream proxy (repeatable; order kept)\n"
    "  -h, --help        show this help\n"
    "POLICY (docs/policy.md):\n" POLICY_OPTIONS;

static const char usage_update[] = "Usage: upstreamfs registry update NAME POLICY...\n"
                                   "\n"
                                   "Changes the registry's package policy (docs/policy.md):\n"
                                   POLICY_OPTIONS;

/* The registry types, from the type table: those a registry of their own type accepts. */
static const char *registry_types(char *buf, size_t n)
{
    const char *names[PROXY_TYPE_COUNT];
    for (int t = 0; t < PROXY_TYPE_COUNT; t++)
        names[t] = config_registry_accepts((enum proxy_type)t, (enum proxy_type)t)
                       ? config_type_name((enum proxy_type)t)
                       : NULL;
    return proxy_field_enum_list(names, PROXY_TYPE_COUNT, ", ", buf, n);
}

/* Prints a usage text whose one %s is the list of registry types. */
static void print_usage(const char *usage, FILE *f)
{
    char types[128];
    fprintf(f, usage, registry_types(types, sizeof(types)));
}

static const char usage_set[] = "Usage: upstreamfs registry set-upstreams NAME [KEY]...\n"
                                "\n"
                                "Replaces the registry's upstream list with KEY..., in that\n"
                                "order. No KEY leaves the registry with local content only.\n";

static const char usage_list[] = "Usage: upstreamfs registry list [--json]\n"
                                 "\n"
                                 "Lists the registries: a table, or with --json an array of\n"
                                 "{name, type, upstreams} objects.\n";

static const char usage_show[] = "Usage: upstreamfs registry show NAME [--json]\n"
                                 "\n"
                                 "Shows one registry as \"field: value\" lines, or with --json\n"
                                 "as {name, type, upstreams}.\n";

static const char usage_delete[] =
    "Usage: upstreamfs registry delete NAME [--force]\n"
    "\n"
    "Deletes a registry. Its upstream proxies stay. A registry with local content (files\n"
    "written or imported into it) is deleted only with --force; its content is then\n"
    "released, and \"upstreamfs cache gc\" frees the space.\n";

/*
 * Parses the options of one subcommand: --type and --upstream where types
 * is non-NULL, --json where json is non-NULL, --force where force is
 * non-NULL. Returns -1 after printing
 * help, an exit status on error, else 0 with positionals at argv[optind..].
 */
static int parse_args(const char *cmd, const char *usage, int argc, char **argv, const char **type,
                      char ***upstreams, bool *json, bool *force, json_t *policy)
{
    static const struct option opts[] = {
        {"min-age", required_argument, NULL, OPT_POLICY},
        {"min-age-unknown", required_argument, NULL, OPT_POLICY + 1},
        {"min-age-exempt", required_argument, NULL, OPT_POLICY + 2},
        {"allow", required_argument, NULL, OPT_POLICY + 3},
        {"deny", required_argument, NULL, OPT_POLICY + 4},
        {"type", required_argument, NULL, OPT_TYPE},
        {"upstream", required_argument, NULL, OPT_UPSTREAM},
        {"json", no_argument, NULL, OPT_JSON},
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            if (usage == usage_create)
                print_usage(usage, stdout);
            else
                fputs(usage, stdout);
            return -1;
        } else if (c == OPT_TYPE && type) {
            if (*type) {
                cli_errorf("type: given twice (--type takes one value)");
                return CLI_EXIT_USAGE;
            }
            *type = optarg;
        } else if (c == OPT_UPSTREAM && type) {
            if (config_strv_push(upstreams, optarg) < 0) {
                cli_errorf("%s: %s", cmd, strerror(ENOMEM));
                return CLI_EXIT_FAIL;
            }
        } else if (c == OPT_JSON && json) {
            *json = true;
        } else if (c == OPT_FORCE && force) {
            *force = true;
        } else if (c >= OPT_POLICY && c < OPT_POLICY + 5 && policy) {
            /* as the API's body: the field checks the value (config_registry_policy_apply) */
            const char *m = policy_members[c - OPT_POLICY];
            json_t *list = json_object_get(policy, m);
            int rc = c < OPT_POLICY + 2 ? json_object_set_new(policy, m, json_string(optarg))
                     : list             ? json_array_append_new(list, json_string(optarg))
                                        : json_object_set_new(policy, m, json_pack("[s]", optarg));
            if (rc < 0) {
                cli_errorf("%s: %s", cmd, strerror(ENOMEM));
                return CLI_EXIT_FAIL;
            }
        } else {
            return cli_bad_option(cmd, c, argv);
        }
    }
    return 0;
}

/* The NAME positional (argv[optind]), checked against the key rule; min/max positionals. */
static int name_arg(const char *cmd, int argc, char **argv, int max, const char **name)
{
    struct config_error err = {0};
    int n = argc - optind;
    if (n < 1 || (max >= 0 && n > max)) {
        cli_errorf("%s: expects %s (see upstreamfs %s --help)", cmd,
                   max == 1 ? "one NAME" : "NAME and then proxy KEYs", cmd);
        return CLI_EXIT_USAGE;
    }
    *name = argv[optind];
    if (config_key_validate("name", *name, &err) < 0)
        return cli_report(cmd, -EINVAL, &err);
    return 0;
}

static int cmd_create(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "registry create";
    struct config_error err = {0};
    struct registry r = {0};
    struct state *st = NULL;
    char **ups = NULL, types[128];
    const char *type = NULL, *name;
    bool has_ups;
    json_t *fields = NULL;
    json_t *policy = json_object();
    int rc = policy ? parse_args(cmd, usage_create, argc, argv, &type, &ups, NULL, NULL, policy)
                    : CLI_EXIT_FAIL;

    if (rc != 0 || (rc = name_arg(cmd, argc, argv, 1, &name)) != 0)
        goto out;
    if (!type) {
        config_error_set(&err, "type", "is required (%s)", registry_types(types, sizeof(types)));
        rc = cli_report(cmd, -EINVAL, &err);
        goto out;
    }
    /* The API's body, prepared before the state dir is created, then created by config_crud. */
    if (!(fields = json_pack("{s:s, s:s, s:o}", "name", name, "type", type, "upstreams",
                             config_strv_to_json(ups))) ||
        json_object_update(fields, policy) < 0) {
        rc = cli_report(cmd, -ENOMEM, NULL);
        goto out;
    }
    if ((rc = crud_registry_prepare(NULL, NULL, fields, &r, &has_ups, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    config_registry_clear(&r);
    cli_quiet_logs(g);
    if ((rc = cli_create_state(g, &st)) != 0)
        goto out;
    if ((rc = crud_registry_create(st, fields, &r, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    printf("created registry %s (%s)\n", r.name, config_type_name(r.type));
    rc = CLI_EXIT_OK;
out:
    json_decref(fields);
    json_decref(policy);
    config_strv_free(ups);
    config_registry_clear(&r);
    state_close(st);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

static int cmd_update(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "registry update";
    struct config_error err = {0};
    struct registry r = {0};
    struct state *st = NULL;
    const char *name;
    bool changed = false;
    json_t *policy = json_object();
    int rc = policy ? parse_args(cmd, usage_update, argc, argv, NULL, NULL, NULL, NULL, policy)
                    : CLI_EXIT_FAIL;
    if (rc != 0 || (rc = name_arg(cmd, argc, argv, 1, &name)) != 0)
        goto out;
    if (json_object_size(policy) == 0) {
        rc = cli_nothing_to_change(cmd);
        goto out;
    }
    cli_quiet_logs(g);
    if ((rc = cli_open_state(g, &st)) != 0)
        goto out;
    if ((rc = crud_registry_update(st, name, policy, &r, &changed, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    printf("updated registry %s (%s)\n", r.name, config_type_name(r.type));
    rc = CLI_EXIT_OK;
out:
    json_decref(policy);
    config_registry_clear(&r);
    state_close(st);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

static void print_upstreams(char *const *ups)
{
    if (!ups || !ups[0])
        fputs("-", stdout);
    for (size_t i = 0; ups && ups[i]; i++)
        printf("%s%s", i ? ", " : "", ups[i]);
    putchar('\n');
}

static int cmd_set_upstreams(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "registry set-upstreams";
    struct config_error err = {0};
    struct state *st = NULL;
    struct registry r = {0};
    json_t *fields = NULL;
    char **ups = NULL;
    const char *name;
    int rc = parse_args(cmd, usage_set, argc, argv, NULL, NULL, NULL, NULL, NULL);

    if (rc != 0 || (rc = name_arg(cmd, argc, argv, -1, &name)) != 0)
        goto out;
    for (int i = optind + 1; i < argc; i++) {
        if (config_strv_push(&ups, argv[i]) < 0) {
            rc = cli_report(cmd, -ENOMEM, NULL);
            goto out;
        }
    }
    cli_quiet_logs(g);
    if ((rc = cli_open_state(g, &st)) != 0)
        goto out;
    bool changed;
    if (!(fields =
              json_pack("{s:o}", "upstreams", ups ? config_strv_to_json(ups) : json_array()))) {
        rc = cli_report(cmd, -ENOMEM, NULL);
        goto out;
    }
    if ((rc = crud_registry_update(st, name, fields, &r, &changed, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
        goto out;
    }
    printf("registry %s upstreams: ", name);
    print_upstreams(ups);
    rc = CLI_EXIT_OK;
out:
    json_decref(fields);
    config_registry_clear(&r);
    config_strv_free(ups);
    state_close(st);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

static json_t *registry_json_at(const void *list, size_t i)
{
    return config_registry_to_json(&((const struct registry *)list)[i]);
}

static int cmd_list(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "registry list";
    struct state *st = NULL;
    struct registry *list = NULL;
    size_t n = 0;
    bool json = false;
    int rc = parse_args(cmd, usage_list, argc, argv, NULL, NULL, &json, NULL, NULL);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if (argc - optind != 0) {
        cli_errorf("%s: takes no arguments", cmd);
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_open_state(g, &st)) != 0)
        return rc;
    if ((rc = configdb_registry_list(st, &list, &n)) < 0) {
        rc = cli_report(cmd, rc, NULL);
        goto out;
    }
    if (json) {
        rc = cli_print_json_array(list, n, registry_json_at);
        goto out;
    }
    int w = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(list[i].name) > w)
            w = (int)strlen(list[i].name);
    printf("%-*s  %-8s  %s\n", w, "NAME", "TYPE", "UPSTREAMS");
    for (size_t i = 0; i < n; i++) {
        printf("%-*s  %-8s  ", w, list[i].name, config_type_name(list[i].type));
        print_upstreams(list[i].upstreams);
    }
    rc = CLI_EXIT_OK;
out:
    configdb_registry_list_free(list, n);
    state_close(st);
    return rc;
}

/* The registry's package policy as "member: value" lines (nothing when none is set). */
static void print_policy(const struct registry *r)
{
    json_t *o = config_registry_policy_json(r), *v;
    const char *m;
    json_object_foreach(o, m, v)
    {
        char *s = json_is_array(v) && json_array_size(v) == 0
                      ? NULL
                      : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("%s: %s\n", m, s ? s : "-");
        free(s);
    }
    json_decref(o);
}

static int cmd_show(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "registry show";
    struct config_error err = {0};
    struct state *st = NULL;
    struct registry r = {0};
    const char *name;
    bool json = false;
    int rc = parse_args(cmd, usage_show, argc, argv, NULL, NULL, &json, NULL, NULL);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = name_arg(cmd, argc, argv, 1, &name)) != 0)
        return rc;
    if ((rc = cli_open_state(g, &st)) != 0)
        return rc;
    if ((rc = configdb_registry_get(st, name, &r, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
    } else if (json) {
        rc = cli_print_json(config_registry_to_json(&r));
    } else {
        printf("name: %s\ntype: %s\nupstreams: ", r.name, config_type_name(r.type));
        print_upstreams(r.upstreams);
        print_policy(&r);
        rc = CLI_EXIT_OK;
    }
    config_registry_clear(&r);
    state_close(st);
    return rc;
}

static int cmd_delete(struct cli_globals *g, int argc, char **argv)
{
    const char *cmd = "registry delete";
    struct config_error err = {0};
    struct state *st = NULL;
    const char *name;
    bool force = false;
    int rc = parse_args(cmd, usage_delete, argc, argv, NULL, NULL, NULL, &force, NULL);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = name_arg(cmd, argc, argv, 1, &name)) != 0)
        return rc;
    cli_quiet_logs(g);
    if ((rc = cli_open_state(g, &st)) != 0)
        return rc;
    struct index *ix = NULL;
    int64_t bytes = 0, files = 0;
    if (index_open(st->db, &ix) < 0 || index_local_usage(ix, name, &bytes, &files) < 0) {
        cli_errorf("%s: cannot read the index of %s", cmd, g->state_dir);
        rc = CLI_EXIT_FAIL;
    } else if (files > 0 && !force) {
        cli_errorf("%s: registry %s has local content: %lld file(s), %lld bytes would go; give "
                   "--force to delete them with it",
                   cmd, name, (long long)files, (long long)bytes);
        rc = CLI_EXIT_USAGE;
    } else if ((rc = crud_registry_delete(st, name, &err)) < 0) {
        rc = cli_report(cmd, rc, &err);
    } else {
        /* Its tree leaves the index now, so cache gc finds the objects unreferenced. */
        index_remove_top(ix, name, false);
        printf("deleted registry %s\n", name);
        if (files > 0)
            printf("released its local content: %lld file(s), %lld bytes (\"upstreamfs cache gc\" "
                   "frees them)\n",
                   (long long)files, (long long)bytes);
        rc = CLI_EXIT_OK;
    }
    index_close(ix);
    state_close(st);
    return rc;
}

const struct cli_subcommand cli_registry_subs[] = {
    {"create", cmd_create}, {"update", cmd_update}, {"set-upstreams", cmd_set_upstreams},
    {"list", cmd_list},     {"show", cmd_show},
    {"delete", cmd_delete}, {"import", cli_registry_import},
};
const size_t cli_registry_nsubs = sizeof(cli_registry_subs) / sizeof(cli_registry_subs[0]);

int cli_registry_main(struct cli_globals *g, int argc, char **argv)
{
    char top[sizeof(usage_top) + 128], types[128];
    snprintf(top, sizeof(top), usage_top, registry_types(types, sizeof(types)));
    return cli_dispatch(g, "registry", cli_registry_subs, cli_registry_nsubs, top, argc, argv);
}
