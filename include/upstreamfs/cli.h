/*
 * cli: the command line (README.md, "Using it").
 *
 * cli_main parses the global options, resolves the state dir and log level,
 * and hands the rest of argv to one command's main function through a
 * dispatch table. A command's main gets argv with argv[0] the command word
 * ("proxy", "mount", ...) and returns the process exit status, not an errno:
 * 0 success, 1 runtime failure (including "not found"), 2 bad usage or
 * invalid input. Errors go to stderr as one line, "upstreamfs: FIELD: RULE";
 * results go to stdout; log lines go to stderr at the chosen level.
 */
#ifndef UPSTREAMFS_CLI_H
#define UPSTREAMFS_CLI_H

#include "upstreamfs/config.h"
#include "upstreamfs/log.h"
#include "upstreamfs/state.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

struct cli_globals {
    const char *state_dir; /* --state, $UPSTREAMFS_STATE or the default; never NULL */
    enum log_level level;  /* --log-level, $UPSTREAMFS_LOG or info */
    bool level_explicit;   /* the level was asked for, not the default */
};

int cli_main(int argc, char **argv);

/* Commands (argv[0] is the command word). */
int cli_proxy_main(struct cli_globals *g, int argc, char **argv);
int cli_registry_main(struct cli_globals *g, int argc, char **argv);
/* "registry import NAME DIR --as TARGET" (cli_import.c); argv[0] is "import". */
int cli_registry_import(struct cli_globals *g, int argc, char **argv);
int cli_mount_main(struct cli_globals *g, int argc, char **argv);
int cli_serve_main(struct cli_globals *g, int argc, char **argv);
int cli_prefetch_main(struct cli_globals *g, int argc, char **argv);
int cli_cache_main(struct cli_globals *g, int argc, char **argv);
/*
 * The mount.fuse3 form "upstreamfs STATEDIR MOUNTPOINT -o OPTS": argv[0] is
 * STATEDIR (g->state_dir still holds the usual default; the handler decides).
 */
int cli_mount_fstab_main(struct cli_globals *g, int argc, char **argv);

/* ---- helpers shared by the command files (cli_util.c) ---------------------------------- */

struct cli_subcommand {
    const char *name;
    /* NULL where the command's main runs its subcommands itself ("cache"). */
    int (*fn)(struct cli_globals *g, int argc, char **argv);
};

/* The subcommand tables of "proxy", "registry" and "cache" (top-level --help lists them). */
extern const struct cli_subcommand cli_proxy_subs[];
extern const size_t cli_proxy_nsubs;
extern const struct cli_subcommand cli_registry_subs[];
extern const size_t cli_registry_nsubs;
extern const struct cli_subcommand cli_cache_subs[];
extern const size_t cli_cache_nsubs;

/*
 * Runs "CMD [--help] SUB ARGS...": help prints usage to stdout (0); a
 * missing SUB prints usage to stderr (2); an unknown one is an error (2).
 * SUB's function gets argv starting at SUB.
 */
int cli_dispatch(struct cli_globals *g, const char *cmd, const struct cli_subcommand *subs,
                 size_t n, const char *usage, int argc, char **argv);

/* Prints "upstreamfs: " and the formatted message as one line on stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An update given no option: says so and returns CLI_EXIT_USAGE. */
int cli_nothing_to_change(const char *cmd);

/*
 * Reports getopt_long's '?' or ':' for command cmd (e.g. "proxy create", or
 * "" for the global options); returns CLI_EXIT_USAGE. Call with opterr = 0 and an optstring
 * starting with ':' (after any '+').
 */
int cli_bad_option(const char *cmd, int c, char **argv);

/*
 * Turns a module's result into an exit status, printing err (when filled)
 * or cmd and the errno text. -EINVAL, -EEXIST and an -EBUSY that filled err
 * (a proxy in use) are invalid input (2); everything else, -ENOENT
 * included, is a runtime failure (1).
 */
int cli_report(const char *cmd, int rc, const struct config_error *err);

/*
 * Opens the state dir of a command that reads it: one that does not exist is
 * refused ("state dir DIR does not exist; ..."), never created empty. On
 * failure prints why and returns CLI_EXIT_FAIL, else 0.
 */
int cli_open_state(const struct cli_globals *g, struct state **out);
/* The same for a command that creates (proxy/registry create): a missing state dir is made. */
int cli_create_state(const struct cli_globals *g, struct state **out);
/* 0 when the state dir exists; else prints the error cli_open_state prints, CLI_EXIT_FAIL. */
int cli_state_exists(const struct cli_globals *g);

/* Prints j (reference stolen) indented, with a newline; CLI_EXIT_FAIL if it cannot. */
int cli_print_json(json_t *j);
/* Prints a JSON array of n items, item i being to_json(list, i) (a new reference). */
int cli_print_json_array(const void *list, size_t n,
                         json_t *(*to_json)(const void *list, size_t i));

/*
 * Commands that change configuration log each change at info; a user who
 * did not ask for a level sees only the command's own result line.
 */
void cli_quiet_logs(const struct cli_globals *g);

#endif
