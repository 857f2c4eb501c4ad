/*
 * accept: an Accept header's media ranges, one at a time (include/upstreamfs/accept.h).
 */
#include "upstreamfs/accept.h"

#include <stdlib.h>
#include <string.h>

bool accept_next(const char **pp, struct accept_range *r)
{
    const char *p = *pp;
    if (!p || !*p)
        return false;
    p += strspn(p, " \t,");
    if (!*p)
        return false;
    const char *end = p + strcspn(p, ",");
    size_t mt = strcspn(p, ";,");
    while (mt > 0 && (p[mt - 1] == ' ' || p[mt - 1] == '\t'))
        mt--;
    r->type = p;
    r->len = mt;
    r->q = 1.0;
    for (const char *s = p + mt; s < end; s++) {
        if (*s != ';')
            continue;
        s += 1 + strspn(s + 1, " \t");
        if (s + 1 < end && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=')
            r->q = strtod(s + 2, NULL);
    }
    *pp = end;
    return true;
}
