/*
 * test_doc_memo: the drivers' parsed-document memo (src/drivers/doc_memo.c,
 * drv_doc_memo_use) on a proxy without a remote: a document is parsed once
 * while its key and sha256 stay the same, parsed again when either changes
 * (the form before is freed), a parse error is returned without touching the
 * kept form, and the proxy frees the last form when it goes; callers that miss together
 * wait for one parse (single flight), and share its error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../src/engine/engine_i.h"
#include "upstreamfs/driver.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHA_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_B "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static atomic_int parses;
static int frees, fail_with;
static unsigned parse_ms; /* how long a parse takes */

static int parse(void *arg, void **parsed)
{
    atomic_fetch_add(&parses, 1);
    if (parse_ms)
        usleep(parse_ms * 1000);
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

/* An npm proxy on e (an engine with nothing open): the memo needs no more. */
static struct upstream *proxy_without_remote(struct engine *e)
{
    struct proxy p;
    assert_non_null(e);
    memset(&p, 0, sizeof(p));
    config_proxy_init(&p, "pkgs", PROXY_NPM);
    p.url = "http://127.0.0.1:1/";
    struct upstream *u = upstream_new(e, &p, NULL);
    assert_non_null(u);
    return u;
}

static void parses_once_per_document(void **state)
{
    (void)state;
    struct engine *e = calloc(1, sizeof(*e));
    struct upstream *u = proxy_without_remote(e);
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

struct caller {
    struct upstream *u;
    const char *sha;
    int value, rc;
};

static void *call_memo(void *arg)
{
    struct caller *c = arg;
    c->rc = drv_doc_memo_use(c->u, "big", c->sha, parse, &c->value, free, use, NULL);
    return NULL;
}

/* n callers at once on (big, sha): the number of parses they made. */
static int together(struct upstream *u, const char *sha, int n, int want_rc)
{
    pthread_t th[8];
    struct caller c[8];
    atomic_store(&parses, 0);
    for (int i = 0; i < n; i++) {
        c[i] = (struct caller){.u = u, .sha = sha, .value = 7};
        assert_int_equal(pthread_create(&th[i], NULL, call_memo, &c[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].rc, want_rc);
    }
    return atomic_load(&parses);
}

static void one_parse_for_callers_at_once(void **state)
{
    (void)state;
    struct engine *e = calloc(1, sizeof(*e));
    struct upstream *u = proxy_without_remote(e);
    parse_ms = 300; /* every other caller arrives while the first one parses */
    fail_with = -EIO;
    assert_int_equal(together(u, SHA_A, 8, -EIO), 1); /* the error of one parse, for all */
    fail_with = 0;
    assert_int_equal(together(u, SHA_A, 8, 7), 1);
    assert_int_equal(together(u, SHA_A, 8, 7), 0); /* kept */
    assert_int_equal(together(u, SHA_B, 8, 7), 1); /* changed: once again */
    parse_ms = 0;
    upstream_unref(u);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_once_per_document),
        cmocka_unit_test(one_parse_for_callers_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
