/*
 * fuzz_httptree_index: httptree_parse_index on an HTML index page (nginx and
 * Apache autoindex, Artifactory, hand-written pages).
 *
 * Properties: every entry is a direct child of the base URL, named by one
 * non-empty component that is neither "." nor ".." and holds no '/' or NUL;
 * names are unique; files carry the absolute URL they came from.
 */
#include "fuzz.h"

#include "upstreamfs/driver.h"
#include "upstreamfs/httptree.h"
#include "upstreamfs/index.h"

#include <errno.h>

static const char base_url[] = "http://mirror.example.org/pub/dir/";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct drv_listing l = {0};
    int rc = httptree_parse_index((const char *)data, size, base_url, &l);
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -EFBIG || rc == -ENOMEM);
    for (size_t i = 0; i < l.n; i++) {
        const struct drv_entry *e = &l.items[i];
        FUZZ_CHECK(e->name && e->name[0]);
        FUZZ_CHECK(fuzz_skip("httptree-slash") || !strchr(e->name, '/'));
        FUZZ_CHECK(strcmp(e->name, ".") != 0 && strcmp(e->name, "..") != 0);
        FUZZ_CHECK(e->kind == NODE_DIR || e->kind == NODE_FILE);
        if (e->kind == NODE_FILE) {
            FUZZ_CHECK(e->url && strncmp(e->url, base_url, sizeof(base_url) - 1) == 0);
            FUZZ_CHECK(e->size >= -1);
        }
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(l.items[j].name, e->name) != 0);
    }
    drv_listing_clear(&l);
    return 0;
}
