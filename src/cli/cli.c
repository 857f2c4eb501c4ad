/*
 * cli: global options and the command table (DESIGN 2.1).
 *
 * Global options end at the first word that is not an option ("+" in the
 * optstring), so a command's own options are never taken for global ones.
 * That word names a command from the table; failing that, a word that looks
 * like a path (has a '/' or names a directory) selects the mount.fuse3 form,
 * "upstreamfs STATEDIR MOUNTPOINT -o OPTS". Command words win over paths: a
 * directory that happens to be called "proxy" in the working directory does
 * not change what "upstreamfs proxy" means.
 */
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
};

static const struct cli_command commands[] = {
    {"proxy", cli_proxy_main, "create, update, list, show and delete upstream proxies"},
    {"registry", cli_registry_main, "create, list, show and delete registries of proxies"},
    {"mount", cli_mount_main, "mount the proxies and registries as a file system"},
    {"serve", cli_serve_main, "serve the cache over HTTP in the registries' protocols"},
    {"prefetch", cli_prefetch_main, "fetch paths into the cache ahead of use"},
    {"cache", cli_cache_main, "cache statistics, garbage collection, pins"},
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
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "Global options:\n"
          "  --state DIR          the state directory; default $UPSTREAMFS_STATE, else\n"
          "                       /var/lib/upstreamfs for root, else $XDG_DATA_HOME/upstreamfs\n"
          "                       (~/.local/share/upstreamfs)\n"
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

int cli_main(int argc, char **argv)
{
    enum { OPT_STATE = 256, OPT_LOG_LEVEL };
    static const struct option opts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cli_globals g = {.level = LOG_INFO};
    const char *state_opt = NULL, *level_opt = NULL;
    char *state_dir = NULL;
    int c, rc;

    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
        switch (c) {
        case OPT_STATE:
            state_opt = optarg;
            break;
        case OPT_LOG_LEVEL:
            level_opt = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        case 'V':
            printf("upstreamfs %s\n", UPSTREAMFS_VERSION);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("", c, argv);
        }
    }
    const char *env_level = getenv("UPSTREAMFS_LOG");
    if (level_opt) {
        if ((rc = parse_level("log_level", level_opt, &g.level)) != 0)
            return rc;
        g.level_explicit = true;
    } else if (env_level && *env_level) {
        if ((rc = parse_level("UPSTREAMFS_LOG", env_level, &g.level)) != 0)
            return rc;
        g.level_explicit = true;
    }
    log_set_level(g.level);

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

    const char *word = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    rc = -1;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(word, commands[i].name) == 0) {
            rc = commands[i].main(&g, sub_argc, sub_argv);
            break;
        }
    }
    if (rc < 0) {
        if (looks_like_path(word)) {
            rc = cli_mount_fstab_main(&g, sub_argc, sub_argv);
        } else {
            char q[CONFIG_QUOTE_MAX];
            cli_errorf("command: unknown command %s (see upstreamfs --help)",
                       config_quote(q, sizeof(q), word));
            rc = CLI_EXIT_USAGE;
        }
    }
    free(state_dir);
    return rc;
}
