/*
 * fuzz_helm_index: helm_rewrite_index on an upstream index.yaml.
 *
 * Properties: a rewrite either fails cleanly or yields a NUL-terminated body
 * of the length it reports; that body is itself an index our own rewrite
 * accepts, and when the input loads as YAML documents (aliases resolved,
 * as helm's loader does), so does the body: the rewrite never turns a
 * loadable index into one a client cannot read.
 */
#include "fuzz.h"

#include "upstreamfs/helm.h"

#include <errno.h>
#include <yaml.h>

static const char repo_url[] = "https://charts.example.com/stable/";

/* Whether every document in buf composes (libyaml's loader: anchors and aliases resolved). */
static bool loads(const char *buf, size_t len)
{
    yaml_parser_t parser;
    bool ok = true;
    if (!yaml_parser_initialize(&parser))
        abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (int docs = 0; ok && docs < 16; docs++) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            ok = false;
            break;
        }
        bool empty = !yaml_document_get_root_node(&doc);
        yaml_document_delete(&doc);
        if (empty)
            break; /* the end of the stream */
    }
    yaml_parser_delete(&parser);
    return ok;
}

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
        if (!fuzz_skip("helm-alias") && loads((const char *)data, size) && !loads(out, out_len)) {
            fprintf(stderr, "the input loads as YAML but the rewrite does not:\n%s\n", out);
            FUZZ_CHECK(!"rewrite made a loadable index unloadable");
        }
        free(out);
    }
    return 0;
}
