/*
 * fuzz_maven_metadata: maven_metadata_filter on an upstream maven-metadata.xml, leaving out
 * every version whose text has an odd length (a package rule's cut, src/drivers/maven.c).
 *
 * Properties: a filter either fails cleanly or yields a NUL-terminated body of the length it
 * reports; with nothing hidden the body is the input byte for byte (its checksums still
 * hold); the filtered body filters again with nothing left to hide.
 */
#include "fuzz.h"

#include "upstreamfs/maven_metadata.h"

#include <errno.h>

static bool odd_version(void *arg, const char *version)
{
    (void)arg;
    return strlen(version) % 2 == 1;
}

static bool none(void *arg, const char *version)
{
    (void)arg, (void)version;
    return false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = NULL;
    size_t out_len = 0, hidden = 0;
    int rc = maven_metadata_filter((const char *)data, size, none, NULL, &out, &out_len, &hidden);
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -EFBIG || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(hidden == 0 && out_len == size && memcmp(out, data, size) == 0);
        FUZZ_CHECK(out[out_len] == '\0');
    }
    free(out);
    out = NULL;
    rc = maven_metadata_filter((const char *)data, size, odd_version, NULL, &out, &out_len, &hidden);
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -EFBIG || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(out[out_len] == '\0');
        char *again = NULL;
        size_t again_len = 0, again_hidden = 0;
        int rc2 = maven_metadata_filter(out, out_len, odd_version, NULL, &again, &again_len,
                                        &again_hidden);
        FUZZ_CHECK(rc2 == 0 || rc2 == -ENOMEM);
        FUZZ_CHECK(rc2 != 0 || again_hidden == 0);
        free(again);
    }
    free(out);
    return 0;
}
