/*
 * fuzz_helm_index: helm_rewrite_index on an upstream index.yaml.
 *
 * Properties: a rewrite either fails cleanly or yields a NUL-terminated body
 * of the length it reports, and that body is itself an index our own
 * rewrite accepts (the emitter never writes YAML the parser refuses).
 */
#include "fuzz.h"

#include "upstreamfs/helm.h"

#include <errno.h>

static const char repo_url[] = "https://charts.example.com/stable/";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = NULL;
    size_t out_len = 0;
    int rc = helm_rewrite_index((const char *)data, size, repo_url, &out, &out_len);
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -EFBIG || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(out != NULL);
        FUZZ_CHECK(out[out_len] == '\0');
        char *again = NULL;
        size_t again_len = 0;
        int rc2 = helm_rewrite_index(out, out_len, repo_url, &again, &again_len);
        if (rc2 != 0)
            fprintf(stderr, "re-rewrite of our own output failed: %d\n--- output ---\n%s\n", rc2,
                    out);
        FUZZ_CHECK(rc2 == 0);
        free(again);
        free(out);
    }
    return 0;
}
