/*
 * cli_pending: placeholders for the commands whose engines are not built
 * yet. Each says so and fails; the file is replaced as they land.
 */
#include "upstreamfs/cli.h"

static int pending(const char *cmd)
{
    cli_errorf("%s: not available yet", cmd);
    return CLI_EXIT_FAIL;
}

int cli_serve_main(struct cli_globals *g, int argc, char **argv)
{
    return pending("serve");
}

