/*
 * cli_proxy_edit: the options of "upstreamfs proxy create|update" (cli_proxy_edit.c), private
 * to src/cli.
 */
#ifndef UPSTREAMFS_CLI_PROXY_EDIT_H
#define UPSTREAMFS_CLI_PROXY_EDIT_H

#include "upstreamfs/cli.h"
#include "upstreamfs/proxy_fields.h"

#include <jansson.h>
#include <stdbool.h>

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

/*
 * Parses the create/update options into a (cmd names the command in messages; usage is printed
 * before the options with --help); positional words are left at argv[optind..]. Returns 0, -1
 * after printing help (the caller exits 0), or an exit status after printing an error. Clear a
 * with proxy_edit_clear whatever the result.
 */
int proxy_edit_parse(const char *cmd, const char *usage, int argc, char **argv,
                     struct edit_args *a);
void proxy_edit_clear(struct edit_args *a);

/*
 * Reads the secret the options name (--secret-key-file, or --secret-key-stdin: without echo on
 * a terminal) into a malloc'd buffer, *out NULL when none was asked for; normalised and bounded
 * by config_secret_normalise. Free it with crud_secret_free (which wipes it). 0, -EINVAL with
 * err, or -ENOMEM.
 */
int proxy_edit_read_secret(const struct edit_args *a, char **out, struct config_error *err);

#endif
