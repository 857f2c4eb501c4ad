/*
 * fuzz_shim_htpasswd: shim_htpasswd_parse on an htpasswd file given to
 * `serve --htpasswd`. Checking passwords is left out: bcrypt costs tens of
 * milliseconds by design and would only slow the search down.
 *
 * Properties: a file is loaded whole or refused with a message that names
 * the line; nothing leaks either way.
 */
#include "fuzz.h"

#include "upstreamfs/shim_htpasswd.h"

#include <errno.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1); /* exactly the input: no terminator */
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    struct shim_htpasswd *h = NULL;
    char msg[256] = "";
    int rc = shim_htpasswd_parse((const char *)copy, size, &h, msg, sizeof(msg));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EIO || rc == -ENOMEM);
    FUZZ_CHECK((rc == 0) == (h != NULL));
    if (rc == -EINVAL)
        FUZZ_CHECK(strncmp(msg, "line ", 5) == 0 || strcmp(msg, "no users in the file") == 0);
    shim_htpasswd_free(h);
    free(copy);
    return 0;
}
