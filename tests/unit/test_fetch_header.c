/*
 * test_fetch_header: a header that cannot be added (curl_slist_append
 * failing, made to fail here with the linker's --wrap) is an error, never a
 * request without it: fetch_header_add returns -ENOMEM with the list freed,
 * and fetch_perform, whose copy of the request's headers for a hop fails at
 * the Authorization line, returns -ENOMEM and sends nothing (asserted by an
 * in-process HTTP server on 127.0.0.1 that counts requests).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/fetch.h"
#include "test_httpd.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct curl_slist *__real_curl_slist_append(struct curl_slist *l, const char *s);
struct curl_slist *__wrap_curl_slist_append(struct curl_slist *l, const char *s);

static int fail_at; /* the n-th append from now fails; 0: none fails */
static atomic_int requests;
static struct MHD_Daemon *httpd;
static char base[64];

struct curl_slist *__wrap_curl_slist_append(struct curl_slist *l, const char *s)
{
    if (fail_at > 0 && --fail_at == 0)
        return NULL;
    return __real_curl_slist_append(l, s);
}

static enum MHD_Result handler(struct MHD_Connection *c, const char *url, const char *method)
{
    (void)url, (void)method;
    atomic_fetch_add(&requests, 1);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static int setup(void **state)
{
    (void)state;
    if (fetch_global_init() < 0)
        return -1;
    httpd = test_httpd_start(handler, base, sizeof(base) - 2);
    if (!httpd)
        return -1;
    strcat(base, "/x");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(httpd);
    fetch_global_cleanup();
    return 0;
}

static void add_appends_and_failure_frees(void **state)
{
    (void)state;
    struct curl_slist *l = NULL;
    assert_int_equal(fetch_header_add(&l, "Accept: a"), 0);
    assert_int_equal(fetch_header_add(&l, "Authorization: Basic eDp5"), 0);
    assert_string_equal(l->next->data, "Authorization: Basic eDp5");
    fail_at = 1;
    assert_int_equal(fetch_header_add(&l, "X-Third: c"), -ENOMEM);
    assert_null(l); /* freed: nobody sends what is left */
    fail_at = 0;
}

static void lost_authorization_sends_nothing(void **state)
{
    (void)state;
    struct curl_slist *l = NULL;
    assert_int_equal(fetch_header_add(&l, "Accept: a"), 0);
    assert_int_equal(fetch_header_add(&l, "Authorization: Basic eDp5"), 0);
    struct fetch_request req = {.url = base, .headers = l, .timeout_ms = 5000, .max_body = 1024};
    struct fetch_response resp;
    atomic_store(&requests, 0);
    assert_int_equal(fetch_perform(&req, &resp), 0); /* the server answers with both headers */
    fetch_response_clear(&resp);
    assert_int_equal(atomic_load(&requests), 1);
    fail_at = 2; /* the hop's copy of the Authorization line */
    assert_int_equal(fetch_perform(&req, &resp), -ENOMEM);
    fetch_response_clear(&resp);
    fail_at = 0;
    assert_int_equal(atomic_load(&requests), 1);
    curl_slist_free_all(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_appends_and_failure_frees),
        cmocka_unit_test(lost_authorization_sends_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
