/*
 * match: the --exclude/--include path rules of a proxy (fnmatch(3) globs
 * over a path relative to the proxy's root, "a/b/c.tgz").
 */
#ifndef UPSTREAMFS_MATCH_H
#define UPSTREAMFS_MATCH_H

#include <stdbool.h>

/*
 * Whether path passes the rules: no exclude glob matches it, and when there
 * are include globs, one matches it or it is a directory on the way to one
 * (compared component by component; a "**" component matches the rest).
 * exclude and include are NULL-terminated lists, or NULL for none. The empty
 * path (the root) always passes.
 */
bool match_path_allowed(char *const *exclude, char *const *include, const char *path);

#endif
