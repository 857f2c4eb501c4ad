/* secret: see include/upstreamfs/secret.h. */
#include "upstreamfs/secret.h"

#include <stdlib.h>
#include <string.h>

void secret_wipe(void *p, size_t len)
{
    if (p && len)
        explicit_bzero(p, len);
}

void secret_free(char *s)
{
    if (!s)
        return;
    secret_wipe(s, strlen(s));
    free(s);
}
