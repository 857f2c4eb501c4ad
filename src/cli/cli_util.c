/*
 * cli_util: what every command file shares: the one error-line format, the
 * mapping from module results to exit status, opening the state dir, and
 * JSON output. Keeping these in one place is what makes every command's
 * errors and exit codes look alike.
 */
#include "upstreamfs/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void cli_errorf(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* Callers quote user input with config_quote; this is the backstop for one line. */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "upstreamfs: %s\n", line);
}

int cli_nothing_to_change(const char *cmd)
{
    cli_errorf("%s: nothing to change: give at least one option (see upstreamfs %s --help)", cmd,
               cmd);
    return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    char q[CONFIG_QUOTE_MAX];
    char shortopt[3] = {'-', (char)optopt, '\0'};
    const char *what = optopt > 0 && optopt < 128 ? shortopt : argv[optind - 1];
    const char *label = *cmd ? cmd : "option";
    if (c == ':')
        cli_errorf("%s: option %s needs a value", label, config_quote(q, sizeof(q), what));
    else
        cli_errorf("%s: unknown or ambiguous option %s (see upstreamfs%s%s --help)", label,
                   config_quote(q, sizeof(q), what), *cmd ? " " : "", cmd);
    return CLI_EXIT_USAGE;
}

int cli_report(const char *cmd, int rc, const struct config_error *err)
{
    if (rc == 0)
        return CLI_EXIT_OK;
    if (err && err->field[0]) {
        cli_errorf("%s: %s", err->field, err->message);
        return rc == -EINVAL || rc == -EEXIST || rc == -EBUSY ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    cli_errorf("%s: %s", cmd, strerror(-rc));
    return rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
}

int cli_create_state(const struct cli_globals *g, struct state **out)
{
    int rc = state_open(g->state_dir, out);
    if (rc < 0) {
        char q[CONFIG_QUOTE_MAX];
        cli_errorf("state: cannot open %s: %s", config_quote(q, sizeof(q), g->state_dir),
                   strerror(-rc));
        return CLI_EXIT_FAIL;
    }
    return 0;
}

int cli_state_exists(const struct cli_globals *g)
{
    struct stat sb;
    if (stat(g->state_dir, &sb) == 0 && S_ISDIR(sb.st_mode))
        return 0;
    char q[CONFIG_QUOTE_MAX];
    cli_errorf("state dir %s does not exist; create a proxy first or check --state",
               config_quote(q, sizeof(q), g->state_dir));
    return CLI_EXIT_FAIL;
}

int cli_open_state(const struct cli_globals *g, struct state **out)
{
    int rc = cli_state_exists(g);
    return rc ? rc : cli_create_state(g, out);
}

int cli_print_json(json_t *j)
{
    int rc = CLI_EXIT_FAIL;
    if (j && json_dumpf(j, stdout, JSON_INDENT(2)) == 0 && fputc('\n', stdout) != EOF &&
        fflush(stdout) == 0)
        rc = CLI_EXIT_OK;
    else
        cli_errorf("json: cannot write the output");
    json_decref(j);
    return rc;
}

int cli_print_json_array(const void *list, size_t n, json_t *(*to_json)(const void *list, size_t i))
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, to_json(list, i)) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return cli_print_json(arr);
}

void cli_quiet_logs(const struct cli_globals *g)
{
    if (!g->level_explicit && g->level > LOG_WARN)
        log_set_level(LOG_WARN);
}

int cli_dispatch(struct cli_globals *g, const char *cmd, const struct cli_subcommand *subs,
                 size_t n, const char *usage, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    char q[CONFIG_QUOTE_MAX];
    int c;

    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        if (c != 'h')
            return cli_bad_option(cmd, c, argv);
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[optind], subs[i].name) == 0)
            return subs[i].fn(g, argc - optind, argv + optind);
    cli_errorf("%s: unknown command %s (see upstreamfs %s --help)", cmd,
               config_quote(q, sizeof(q), argv[optind]), cmd);
    return CLI_EXIT_USAGE;
}
