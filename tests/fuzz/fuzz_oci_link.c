/*
 * fuzz_oci_link: oci_link_next on a paginated answer's Link header
 * (tags/list, _catalog).
 *
 * Properties: a next link is an absolute URL (resolved against the page it
 * came from) with no spaces or control characters; otherwise nothing is
 * returned.
 */
#include "fuzz.h"

#include "upstreamfs/fetch.h"
#include "upstreamfs/oci.h"

#include <errno.h>

static const char base_url[] = "https://registry.example.com/v2/library/alpine/tags/list?n=100";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *link = fuzz_cstr(data, size);
    char *next = (char *)"unset";
    int rc = oci_link_next(link, base_url, &next);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(next != NULL);
        /* No control byte or space ever (it becomes a request line); no 8-bit byte either,
         * which the parser's own check means to exclude (link-8bit skips that part). */
        for (const unsigned char *c = (const unsigned char *)next; *c; c++)
            FUZZ_CHECK(*c > 0x20 && *c != 0x7f && (*c < 0x80 || fuzz_skip("link-8bit")));
        char *origin = fetch_url_origin(next);
        FUZZ_CHECK(origin != NULL);
        free(origin);
        free(next);
    } else {
        FUZZ_CHECK(next == NULL);
    }
    free(link);
    return 0;
}
