/*
 * cli: global options and the command table (README.md, "Using it").
 *
 * Global options end at the first word that is not an option ("+" in the
 * optstring), so a command's own options are never taken for global ones;
 * --state and --log-level after the command word are taken out of its words
 * (take_trailing_globals) before the command sees them.
 * That word names a command from the table; failing that, a word that looks
 * like a path (has a '/' or names a directory) selects the mount.fuse3 form,
 * "upstreamfs STATEDIR MOUNTPOINT -o OPTS". Command words win over paths: a
 * directory that happens to be called "proxy" in the working directory does
 * not change what "upstreamfs proxy" means.
 */
#include "cli_bundle.h"
#include "upstreamfs/cli.h"
#include "upstreamfs/state.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef UPSTREAMFS_VERSION
#define UPSTREAMFS_VERSION "unknown"
#endif

struct cli_command {
    const char *name;
    int (*main)(struct cli_globals *g, int argc, char **argv);
    const char *summary;
    /* The command's own table of subcommands, when it has one: --help lists them from it. */
    const struct cli_subcommand *subs;
    const size_t *nsubs;
};

static const struct cli_command commands[] = {
    {"proxy", cli_proxy_main, "upstream proxies", cli_proxy_subs, &cli_proxy_nsubs},
    {"registry", cli_registry_main, "registries of proxies", cli_registry_subs,
     &cli_registry_nsubs},
    {"mount", cli_mount_main, "mount the proxies and registries as a file system", NULL, NULL},
    {"serve", cli_serve_main, "serve the cache over HTTP in the registries' protocols", NULL, NULL},
    {"prefetch", cli_prefetch_main, "fetch paths, or what a lockfile names, into the cache",
     NULL, NULL},
    {"cache", cli_cache_main, "cache statistics, garbage collection, pins", cli_cache_subs,
     &cli_cache_nsubs},
    {"export", cli_export_main, "write a verified bundle of a proxy's files (docs/airgap.md)",
     NULL, NULL},
};

static void usage(FILE *f)
{
    fputs("Usage: upstreamfs [--state DIR] [--log-level LEVEL] COMMAND [ARGS...]\n"
          "       upstreamfs STATEDIR MOUNTPOINT [-o OPTIONS]   (the form mount.fuse3 runs)\n"
          "\n"
          "A read-through cache of artifact registries, as a file system and an HTTP shim.\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const struct cli_command *c = &commands[i];
        fprintf(f, "  %-10s ", c->name);
        for (size_t k = 0; c->subs && k < *c->nsubs; k++)
            fprintf(f, "%s%s", c->subs[k].name, k + 1 < *c->nsubs ? ", " : ": ");
        fprintf(f, "%s\n", c->summary);
    }
    fputs("\n"
          "Global options:\n"
          "  --state DIR          the state directory; default $UPSTREAMFS_STATE, else\n"
          "                       /var/lib/upstreamfs for root, else $XDG_DATA_HOME/upstreamfs\n"
          "                       (~/.local/share/upstreamfs)\n"
          "                       (--state and --log-level may also follow the command)\n"
          "  --log-level LEVEL    error, warn, info or debug; default $UPSTREAMFS_LOG, else info\n"
          "                       (proxy and registry commands log their changes at info only\n"
          "                       when a level is given)\n"
          "  -h, --help           show this help\n"
          "  -V, --version        show the version\n"
          "\n"
          "Run \"upstreamfs COMMAND --help\" for a command's options.\n"
          "Exit status: 0 success, 1 failure, 2 invalid usage or input.\n",
          f);
}

/*
 * Takes the global options out of the command's words (argv[from..]), so that
 * "proxy list --state DIR" means "--state DIR proxy list": "--state DIR",
 * "--state=DIR" and the same for --log-level, up to a "--". The rest is
 * compacted in place; *argc shrinks. A global option given twice, before and
 * after the command or both after, is an error (CLI_EXIT_USAGE), as any
 * single-valued option is. Returns 0.
 */
static int take_trailing_globals(int *argc, char **argv, int from, const char **state_opt,
                                 const char **level_opt)
{
    static const struct {
        const char *name;
        size_t len;
    } globals[] = {{"--state", 7}, {"--log-level", 11}};
    int out = from;
    for (int i = from; i < *argc; i++) {
        const char *a = argv[i];
        size_t k = 0;
        if (!strcmp(a, "--")) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        for (; k < 2; k++)
            if (!strncmp(a, globals[k].name, globals[k].len) &&
                (a[globals[k].len] == '\0' || a[globals[k].len] == '='))
                break;
        if (k == 2) {
            argv[out++] = argv[i];
            continue;
        }
        const char *value = a[globals[k].len] == '=' ? a + globals[k].len + 1 : NULL;
        if (!value && ++i >= *argc) {
            cli_errorf("option: option \"%s\" needs a value", globals[k].name);
            return CLI_EXIT_USAGE;
        }
        const char **dst = k == 0 ? state_opt : level_opt;
        if (*dst) {
            cli_errorf("%s: given twice (%s takes one value)", k == 0 ? "state" : "log_level",
                       globals[k].name);
            return CLI_EXIT_USAGE;
        }
        *dst = value ? value : argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

static bool looks_like_path(const char *word)
{
    struct stat sb;
    return strchr(word, '/') || (stat(word, &sb) == 0 && S_ISDIR(sb.st_mode));
}

static int parse_level(const char *what, const char *s, enum log_level *out)
{
    char q[CONFIG_QUOTE_MAX];
    if (log_level_parse(s, out) == 0)
        return 0;
    cli_errorf("%s: must be one of error, warn, info, debug (got %s)", what,
               config_quote(q, sizeof(q), s));
    return CLI_EXIT_USAGE;
}

/*
 * The global options before the command word (and those given after it, which
 * take_trailing_globals moves out of the command's way, changing *argc). -1 to go on with the
 * command at argv[optind], else the exit status after --help, --version or an error.
 */
static int parse_globals(int *argc, char **argv, const char **state_opt, const char **level_opt)
{
    enum { OPT_STATE = 256, OPT_LOG_LEVEL };
    static const struct option opts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c, rc = -1;
    opterr = 0;
    optind = 0;
    while (rc < 0 && (c = getopt_long(*argc, argv, "+:hV", opts, NULL)) != -1) {
        const char **dst = c == OPT_STATE ? state_opt : level_opt;
        if (c == 'h') {
            usage(stdout);
            rc = CLI_EXIT_OK;
        } else if (c == 'V') {
            printf("upstreamfs %s\n", UPSTREAMFS_VERSION);
            rc = CLI_EXIT_OK;
        } else if (c != OPT_STATE && c != OPT_LOG_LEVEL) {
            rc = cli_bad_option("", c, argv);
        } else if (*dst) {
            cli_errorf("%s: given twice (--%s takes one value)",
                       c == OPT_STATE ? "state" : "log_level",
                       c == OPT_STATE ? "state" : "log-level");
            rc = CLI_EXIT_USAGE;
        } else {
            *dst = optarg;
        }
    }
    if (rc < 0 && optind < *argc &&
        (c = take_trailing_globals(argc, argv, optind + 1, state_opt, level_opt)) != 0)
        rc = c;
    return rc;
}

/* The log level: --log-level, else UPSTREAMFS_LOG, else info. 0 or an exit status. */
static int set_log_level(struct cli_globals *g, const char *level_opt)
{
    const char *env_level = getenv("UPSTREAMFS_LOG");
    int rc = 0;
    if (level_opt)
        rc = parse_level("log_level", level_opt, &g->level);
    else if (env_level && *env_level)
        rc = parse_level("UPSTREAMFS_LOG", env_level, &g->level);
    g->level_explicit = rc == 0 && (level_opt || (env_level && *env_level));
    if (rc == 0)
        log_set_level(g->level);
    return rc;
}

/* Runs the command named by argv[0] (a path: the mount.fuse3 form); its exit status. */
static int run_command(struct cli_globals *g, int argc, char **argv)
{
    const char *word = argv[0];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(word, commands[i].name) == 0)
            return commands[i].main(g, argc, argv);
    }
    if (looks_like_path(word))
        return cli_mount_fstab_main(g, argc, argv);
    char q[CONFIG_QUOTE_MAX];
    cli_errorf("command: unknown command %s (see upstreamfs --help)",
               config_quote(q, sizeof(q), word));
    return CLI_EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
    struct cli_globals g = {.level = LOG_INFO};
    const char *state_opt = NULL, *level_opt = NULL;
    char *state_dir = NULL;
    int rc = parse_globals(&argc, argv, &state_opt, &level_opt);

    if (rc >= 0)
        return rc;
    if ((rc = set_log_level(&g, level_opt)) != 0)
        return rc;
    if (optind >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (state_opt && !*state_opt) {
        cli_errorf("state: must not be empty");
        return CLI_EXIT_USAGE;
    }
    if (!(state_dir = state_default_dir(state_opt))) {
        cli_errorf("state: cannot work out the state directory (give --state or set "
                   "UPSTREAMFS_STATE)");
        return CLI_EXIT_FAIL;
    }
    g.state_dir = state_dir;
    rc = run_command(&g, argc - optind, argv + optind);
    free(state_dir);
    return rc;
}
