/*
 * cli_wizard: the guided "upstreamfs proxy create" that runs when the
 * command has no arguments and standard input is a terminal (cli_proxy.c
 * decides; without a terminal it never prompts).
 */
#ifndef UPSTREAMFS_CLI_WIZARD_H
#define UPSTREAMFS_CLI_WIZARD_H

#include "upstreamfs/cli.h"

/*
 * Asks for type, key, source (docker), URL, authentication, access key and
 * secret (read without echo), in that order and nothing else, checking each
 * answer with the config functions the options go through and asking again
 * after a bad one; then creates the proxy and prints the equivalent command
 * (with --secret-key-stdin, never the secret). Prompts go to stderr, the
 * result to stdout. Returns an exit status: 0 created, 1 failure, 2 invalid
 * input or input ended before the last answer (nothing written).
 */
int cli_proxy_wizard(struct cli_globals *g);

#endif
