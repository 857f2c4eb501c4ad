/*
 * main: the upstreamfs binary. Everything lives in the core library so that
 * tests link the same code; see cli.c for the command line.
 */
#include "upstreamfs/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
