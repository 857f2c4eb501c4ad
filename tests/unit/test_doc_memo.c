/*
 * test_doc_memo: the drivers' parsed-document memo (src/drivers/doc_memo.c,
 * drv_doc_memo_use) on a proxy without a remote: a document is parsed once
 * while its key and sha256 stay the same, parsed again when either changes
 * (the form before is freed), a parse error is returned without touching the
 * kept form, and the proxy frees the last form when it goes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../src/engine/engine_i.h"
#include "upstreamfs/driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SHA_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_B "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static int parses, frees, fail_with;

static int parse(void *arg, void **parsed)
{
    parses++;
    if (fail_with)
        return fail_with;
    int *v = malloc(sizeof(*v));
    if (!v)
        return -ENOMEM;
    *v = *(const int *)arg;
    *parsed = v;
    return 0;
}

static void free_fn(void *p)
{
    frees++;
    free(p);
}

/* Returns the parsed value, so the test sees which form use ran on. */
static int use(void *parsed, void *arg)
{
    (void)arg;
    return *(int *)parsed;
}

static void parses_once_per_document(void **state)
{
    (void)state;
    struct engine *e = calloc(1, sizeof(*e));
    struct proxy p;
    memset(&p, 0, sizeof(p));
    config_proxy_init(&p, "pkgs", PROXY_NPM);
    p.url = "http://127.0.0.1:1/";
    struct upstream *u = upstream_new(e, &p, NULL);
    assert_non_null(u);
    int one = 1, two = 2, three = 3;
    parses = frees = fail_with = 0;

    assert_int_equal(drv_doc_memo_use(u, "demo", SHA_A, parse, &one, free_fn, use, NULL), 1);
    assert_int_equal(parses, 1);
    /* the same document: the kept form, no parse */
    assert_int_equal(drv_doc_memo_use(u, "demo", SHA_A, parse, &two, free_fn, use, NULL), 1);
    assert_int_equal(parses, 1);
    /* the document changed: parsed again, the form before freed */
    assert_int_equal(drv_doc_memo_use(u, "demo", SHA_B, parse, &two, free_fn, use, NULL), 2);
    assert_int_equal(parses, 2);
    assert_int_equal(frees, 1);
    /* another document with the same bytes is another key */
    assert_int_equal(drv_doc_memo_use(u, "other", SHA_B, parse, &three, free_fn, use, NULL), 3);
    assert_int_equal(parses, 3);
    assert_int_equal(frees, 2);
    /* a parse error is returned; the kept form stays */
    fail_with = -EIO;
    assert_int_equal(drv_doc_memo_use(u, "demo", SHA_A, parse, &one, free_fn, use, NULL), -EIO);
    assert_int_equal(parses, 4);
    assert_int_equal(frees, 2);
    fail_with = 0;
    assert_int_equal(drv_doc_memo_use(u, "other", SHA_B, parse, &one, free_fn, use, NULL), 3);
    assert_int_equal(parses, 4);
    /* the proxy frees the last form */
    upstream_unref(u);
    assert_int_equal(frees, 3);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_once_per_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
