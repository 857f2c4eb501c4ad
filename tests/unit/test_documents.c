/*
 * test_documents: the parsers of upstream documents — Helm's index.yaml
 * rewrite (relative and absolute chart URLs, fields after urls, hostile
 * input) and HTML index pages of plain HTTP trees.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/helm.h"
#include "upstreamfs/httptree.h"
#include "upstreamfs/index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char index_yaml[] =
    "apiVersion: v1\n"
    "entries:\n"
    "  alpha:\n"
    "  - name: alpha\n"
    "    urls:\n"
    "    - charts/alpha-0.1.0.tgz\n"
    "    version: 0.1.0\n"
    "    digest: abc\n"
    "  beta:\n"
    "  - digest: def\n"
    "    name: beta\n"
    "    urls: [\"https://other.example/dl/beta-1.2.3.tgz\", \"https://mirror/beta.tgz\"]\n"
    "    version: 1.2.3\n"
    "    description: 'urls: not this one'\n"
    "generated: \"2024-01-01T00:00:00Z\"\n";

static void helm_rewrites_every_url(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(helm_rewrite_index(index_yaml, strlen(index_yaml), "http://repo/x/", &out,
                                        &len),
                     0);
    assert_non_null(strstr(out, "charts/alpha-0.1.0.tgz"));
    assert_non_null(strstr(out, "charts/beta-1.2.3.tgz"));
    assert_null(strstr(out, "https://"));
    assert_null(strstr(out, "mirror"));
    assert_non_null(strstr(out, "urls: not this one"));
    assert_non_null(strstr(out, "digest: def"));
    free(out);
}

static void helm_resolves_aliases_in_urls(void **state)
{
    (void)state;
    /* Found by fuzzing: an alias in a urls list must not point at a rewritten anchor. */
    const char idx[] = "apiVersion: v1\n"
                       "entries:\n"
                       "  a:\n"
                       "  - name: a\n"
                       "    version: \"1\"\n"
                       "    urls: [&u https://cdn.example/a-1.tgz]\n"
                       "  - name: a\n"
                       "    version: \"2\"\n"
                       "    urls: [*u]\n";
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(helm_rewrite_index(idx, strlen(idx), "http://r/", &out, &len), 0);
    assert_non_null(strstr(out, "charts/a-1.tgz"));
    assert_non_null(strstr(out, "charts/a-2.tgz"));
    assert_null(strstr(out, "https://"));
    free(out);
}

static void helm_refuses_garbage(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    const char *bad[] = {"entries: [unterminated", "\"", "a: b: c:", "\t- x\n  y: ["};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = helm_rewrite_index(bad[i], strlen(bad[i]), "http://r/", &out, &len);
        assert_int_equal(rc, -EIO);
    }
    /* Deep nesting stops at a limit instead of recursing. */
    char deep[400];
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    assert_int_equal(helm_rewrite_index(deep, strlen(deep), "http://r/", &out, &len), -EIO);
}

static void html_index_children(void **state)
{
    (void)state;
    const char html[] = "<html><body><pre><a href=\"../\">../</a>\n"
                        "<a href=\"sub/\">sub/</a>     27-Nov-2026 07:03     -\n"
                        "<a href=\"file%20one.txt\">file one.txt</a>  27-Nov-2026 07:03   1234\n"
                        "<a href=\"http://elsewhere/x\">x</a>\n"
                        "<a href=\"deep/er/y\">y</a>\n"
                        "<a href=\"?C=N;O=D\">Name</a>\n"
                        "<a href=\"big.bin\">big.bin</a> 27-Nov-2026 07:03 10M\n"
                        "</pre></body></html>";
    struct drv_listing l = {0};
    assert_int_equal(httptree_parse_index(html, strlen(html), "http://h/dir/", &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0].name, "sub");
    assert_int_equal(l.items[0].kind, NODE_DIR);
    assert_string_equal(l.items[1].name, "file one.txt");
    assert_int_equal(l.items[1].size, 1234);
    assert_string_equal(l.items[2].name, "big.bin");
    assert_int_equal(l.items[2].size, -1); /* "10M" is not an exact size */
    drv_listing_clear(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(helm_rewrites_every_url),
        cmocka_unit_test(helm_resolves_aliases_in_urls),
        cmocka_unit_test(helm_refuses_garbage),
        cmocka_unit_test(html_index_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
