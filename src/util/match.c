/* match: see include/upstreamfs/match.h. */
#include "upstreamfs/match.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

/* Matches path against a glob component by component, so a directory on the way to an include
 * passes. "**" matches any number of components. */
static bool glob_prefix_match(const char *pattern, const char *path)
{
    char pat[4096], pth[4096];
    snprintf(pat, sizeof(pat), "%s", pattern);
    snprintf(pth, sizeof(pth), "%s", path);
    char *ps = NULL, *qs = NULL;
    char *pc = strtok_r(pat, "/", &ps);
    char *qc = strtok_r(pth, "/", &qs);
    while (pc && qc) {
        if (strcmp(pc, "**") == 0)
            return true;
        if (fnmatch(pc, qc, 0) != 0)
            return false;
        pc = strtok_r(NULL, "/", &ps);
        qc = strtok_r(NULL, "/", &qs);
    }
    return qc == NULL; /* path exhausted: it is the pattern or a directory leading to it */
}

bool match_path_allowed(char *const *exclude, char *const *include, const char *path)
{
    if (!path[0])
        return true;
    for (char *const *x = exclude; x && *x; x++)
        if (fnmatch(*x, path, 0) == 0)
            return false;
    if (!include || !include[0])
        return true;
    for (char *const *x = include; *x; x++)
        if (fnmatch(*x, path, 0) == 0 || glob_prefix_match(*x, path))
            return true;
    return false;
}
