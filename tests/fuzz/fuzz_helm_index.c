/*
 * fuzz_helm_index: helm_rewrite_index on an upstream index.yaml, and
 * helm_rewrite_index_filtered leaving out every version whose version text has an odd length
 * (a package rule's cut, src/drivers/helm.c).
 *
 * Properties: a rewrite either fails cleanly or yields a NUL-terminated body
 * of the length it reports; that body is itself an index our own rewrite
 * accepts, and when the input loads as YAML documents (aliases resolved,
 * as helm's loader does), so does the body: the rewrite never turns a
 * loadable index into one a client cannot read. The filtered rewrite keeps those rules, and
 * its chart table lacks exactly the hidden versions (or none, when an anchor is among them).
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

static bool odd_version(void *arg, const char *name, const char *version)
{
    (void)arg, (void)name;
    return strlen(version) % 2 == 1;
}

/* The filtered rewrite of an input the plain rewrite accepted. */
static void check_filtered(const uint8_t *data, size_t size, bool input_loads)
{
    char *out = NULL;
    size_t out_len = 0;
    int rc = helm_rewrite_index_filtered((const char *)data, size, repo_url, odd_version, NULL,
                                         &out, &out_len);
    FUZZ_CHECK(rc == 0 || rc == -EFBIG || rc == -ENOMEM);
    if (rc != 0)
        return;
    FUZZ_CHECK(out[out_len] == '\0');
    struct helm_charts all, kept;
    FUZZ_CHECK(helm_index_charts((const char *)data, size, repo_url, &all) == 0);
    FUZZ_CHECK(helm_index_charts(out, out_len, repo_url, &kept) == 0);
    size_t hidden = 0;
    for (size_t i = 0; i < all.n; i++)
        hidden += all.charts[i].name && all.charts[i].version &&
                  odd_version(NULL, all.charts[i].name, all.charts[i].version);
    /* exactly the hidden versions are left out, or (an anchor among them) none */
    FUZZ_CHECK(kept.n == all.n || all.n - kept.n == hidden);
    helm_charts_clear(&all);
    helm_charts_clear(&kept);
    if (!fuzz_skip("helm-alias") && input_loads && !loads(out, out_len)) {
        fprintf(stderr, "the input loads as YAML but the filtered rewrite does not:\n%s\n", out);
        FUZZ_CHECK(!"filtered rewrite made a loadable index unloadable");
    }
    free(out);
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
        bool input_loads = loads((const char *)data, size);
        if (!fuzz_skip("helm-alias") && input_loads && !loads(out, out_len)) {
            fprintf(stderr, "the input loads as YAML but the rewrite does not:\n%s\n", out);
            FUZZ_CHECK(!"rewrite made a loadable index unloadable");
        }
        free(out);
        check_filtered(data, size, input_loads);
    }
    return 0;
}
