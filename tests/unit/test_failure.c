/*
 * test_failure: the one failure policy (include/upstreamfs/failure.h) — the
 * causes' names, the classification of libcurl results and HTTP statuses,
 * the cause→errno map, the back-off rule, the shim's status, URL redaction —
 * and the health words and JSON (include/upstreamfs/health.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/failure.h"
#include "upstreamfs/health.h"
#include "upstreamfs/shim_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void t_names(void **s)
{
    (void)s;
    static const char *const words[] = {"none",    "dns",  "connect", "tls",       "timeout", "auth",
                                        "http",    "digest", "too-large", "policy", "offline"};
    for (int c = 0; c < FAILURE_CAUSE_COUNT; c++) {
        assert_string_equal(failure_cause_name((enum failure_cause)c), words[c]);
        assert_int_equal(failure_cause_parse(words[c]), c);
    }
    assert_int_equal(failure_cause_parse("bogus"), -1);
}

static void t_curl(void **s)
{
    (void)s;
    int err = 0;
    assert_int_equal(failure_of_curl(CURLE_COULDNT_RESOLVE_HOST, 0, false, &err), FAILURE_DNS);
    assert_int_equal(err, -EHOSTUNREACH);
    assert_int_equal(failure_of_curl(CURLE_COULDNT_RESOLVE_PROXY, 0, false, &err), FAILURE_DNS);
    assert_int_equal(failure_of_curl(CURLE_COULDNT_CONNECT, ECONNREFUSED, true, &err),
                     FAILURE_CONNECT);
    assert_int_equal(err, -ECONNREFUSED);
    assert_int_equal(failure_of_curl(CURLE_COULDNT_CONNECT, EHOSTUNREACH, true, &err),
                     FAILURE_CONNECT);
    assert_int_equal(err, -EHOSTUNREACH);
    assert_int_equal(failure_of_curl(CURLE_OPERATION_TIMEDOUT, 0, true, &err), FAILURE_TIMEOUT);
    assert_int_equal(err, -ETIMEDOUT);
    /* a time-out before the name resolved is the resolver's */
    assert_int_equal(failure_of_curl(CURLE_OPERATION_TIMEDOUT, 0, false, &err), FAILURE_DNS);
    assert_int_equal(failure_of_curl(CURLE_PEER_FAILED_VERIFICATION, 0, true, &err), FAILURE_TLS);
    assert_int_equal(err, -EIO);
    assert_int_equal(failure_of_curl(CURLE_SSL_CONNECT_ERROR, 0, true, &err), FAILURE_TLS);
    assert_int_equal(failure_of_curl(CURLE_FILESIZE_EXCEEDED, 0, true, &err), FAILURE_TOO_LARGE);
    assert_int_equal(err, -EFBIG);
    assert_int_equal(failure_of_curl(CURLE_TOO_MANY_REDIRECTS, 0, true, &err), FAILURE_HTTP);
    assert_int_equal(err, -ELOOP);
    assert_int_equal(failure_of_curl(CURLE_ABORTED_BY_CALLBACK, 0, true, &err), FAILURE_NONE);
    assert_int_equal(err, -ECANCELED);
    assert_int_equal(failure_of_curl(CURLE_PARTIAL_FILE, 0, true, &err), FAILURE_HTTP);
    assert_int_equal(err, -EIO);
}

static void t_status(void **s)
{
    (void)s;
    assert_int_equal(failure_of_status(200), FAILURE_NONE);
    assert_int_equal(failure_of_status(304), FAILURE_NONE);
    assert_int_equal(failure_of_status(404), FAILURE_NONE);
    assert_int_equal(failure_of_status(401), FAILURE_AUTH);
    assert_int_equal(failure_of_status(403), FAILURE_AUTH);
    assert_int_equal(failure_of_status(429), FAILURE_HTTP);
    assert_int_equal(failure_of_status(500), FAILURE_HTTP);
    assert_int_equal(failure_of_status(400), FAILURE_HTTP);
    /* the one status→errno map of the drivers */
    assert_int_equal(failure_status_errno(200), 0);
    assert_int_equal(failure_status_errno(206), 0);
    assert_int_equal(failure_status_errno(404), -ENOENT);
    assert_int_equal(failure_status_errno(410), -ENOENT);
    assert_int_equal(failure_status_errno(401), -EACCES);
    assert_int_equal(failure_status_errno(403), -EACCES);
    assert_int_equal(failure_status_errno(429), -EREMOTEIO);
    assert_int_equal(failure_status_errno(500), -EREMOTEIO);
    assert_int_equal(failure_status_errno(503), -EREMOTEIO);
    assert_int_equal(failure_status_errno(400), -EIO);
    assert_int_equal(failure_status_errno(418), -EIO);
}

static int err_of(enum failure_cause c, long status)
{
    struct failure f = {.cause = c, .status = status};
    return failure_errno(&f);
}

static void t_errno(void **s)
{
    (void)s;
    assert_int_equal(err_of(FAILURE_NONE, 0), 0);
    assert_int_equal(err_of(FAILURE_DNS, 0), -EHOSTUNREACH);
    assert_int_equal(err_of(FAILURE_CONNECT, 0), -ECONNREFUSED);
    assert_int_equal(err_of(FAILURE_TLS, 0), -EIO);
    assert_int_equal(err_of(FAILURE_TIMEOUT, 0), -ETIMEDOUT);
    assert_int_equal(err_of(FAILURE_AUTH, 401), -EACCES);
    assert_int_equal(err_of(FAILURE_HTTP, 500), -EREMOTEIO);
    assert_int_equal(err_of(FAILURE_HTTP, 429), -EREMOTEIO);
    assert_int_equal(err_of(FAILURE_HTTP, 400), -EIO);
    assert_int_equal(err_of(FAILURE_DIGEST, 200), -EIO);
    assert_int_equal(err_of(FAILURE_TOO_LARGE, 200), -EFBIG);
    assert_int_equal(err_of(FAILURE_POLICY, 0), -EACCES);
    assert_int_equal(err_of(FAILURE_OFFLINE, 0), -ENETUNREACH);
    /* and back, for errors that reach a front door without a note */
    assert_int_equal(failure_cause_of_errno(-ENOENT), FAILURE_NONE);
    assert_int_equal(failure_cause_of_errno(-ETIMEDOUT), FAILURE_TIMEOUT);
    assert_int_equal(failure_cause_of_errno(-ECONNREFUSED), FAILURE_CONNECT);
    assert_int_equal(failure_cause_of_errno(-EACCES), FAILURE_AUTH);
    assert_int_equal(failure_cause_of_errno(-ENETUNREACH), FAILURE_OFFLINE);
    assert_int_equal(failure_cause_of_errno(-EREMOTEIO), FAILURE_HTTP);
}

static bool remote(enum failure_cause c, long status)
{
    struct failure f = {.cause = c, .status = status};
    return failure_is_remote(&f);
}

static void t_backoff_rule(void **s)
{
    (void)s;
    assert_true(remote(FAILURE_DNS, 0));
    assert_true(remote(FAILURE_CONNECT, 0));
    assert_true(remote(FAILURE_TLS, 0));
    assert_true(remote(FAILURE_TIMEOUT, 0));
    assert_true(remote(FAILURE_HTTP, 500));
    assert_true(remote(FAILURE_HTTP, 429));
    assert_true(remote(FAILURE_HTTP, 0));
    /* an answer of a live remote */
    assert_false(remote(FAILURE_HTTP, 400));
    assert_false(remote(FAILURE_HTTP, 302)); /* a redirect loop: the remote answers */
    assert_false(remote(FAILURE_HTTP, 200)); /* a transfer cut after a 200 */
    assert_false(remote(FAILURE_AUTH, 401));
    assert_false(remote(FAILURE_DIGEST, 200));
    assert_false(remote(FAILURE_TOO_LARGE, 200));
    assert_false(remote(FAILURE_OFFLINE, 0));
    assert_false(remote(FAILURE_POLICY, 0));
}

static void t_classify(void **s)
{
    (void)s;
    struct failure f;
    assert_false(failure_classify(0, 200, FAILURE_NONE, &f));
    assert_false(failure_classify(0, 404, FAILURE_NONE, &f));
    assert_int_equal(f.status, 0);
    assert_true(failure_classify(0, 401, FAILURE_NONE, &f));
    assert_int_equal(f.cause, FAILURE_AUTH);
    assert_int_equal(f.status, 401);
    assert_true(failure_classify(0, 500, FAILURE_NONE, &f));
    assert_int_equal(f.cause, FAILURE_HTTP);
    assert_true(failure_classify(-ECONNREFUSED, 0, FAILURE_CONNECT, &f));
    assert_int_equal(f.cause, FAILURE_CONNECT);
    assert_true(failure_classify(-EFBIG, 200, FAILURE_NONE, &f));
    assert_int_equal(f.cause, FAILURE_TOO_LARGE);
    /* ended by us: no failure of the remote */
    assert_false(failure_classify(-ECANCELED, 0, FAILURE_NONE, &f));
    char buf[64];
    f = (struct failure){.cause = FAILURE_AUTH, .status = 401};
    failure_format(&f, buf, sizeof(buf));
    assert_string_equal(buf, "auth 401");
    f = (struct failure){.cause = FAILURE_DNS};
    failure_format(&f, buf, sizeof(buf));
    assert_string_equal(buf, "dns -");
}

static void t_redact(void **s)
{
    (void)s;
    char buf[256];
    failure_url_redact("https://user:secret@host.example:8443/v2/x/manifests/1?token=abc#f", buf,
                       sizeof(buf));
    assert_string_equal(buf, "https://host.example:8443/v2/x/manifests/1");
    failure_url_redact("http://127.0.0.1:9/a/b", buf, sizeof(buf));
    assert_string_equal(buf, "http://127.0.0.1:9/a/b");
    failure_url_redact("http://h/p?X-Amz-Signature=s", buf, sizeof(buf));
    assert_string_equal(buf, "http://h/p");
    failure_time_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
}

static void t_http_status(void **s)
{
    (void)s;
    assert_int_equal(failure_http_status(-ENOENT), 404);
    assert_int_equal(failure_http_status(-ETIMEDOUT), 504);
    assert_int_equal(failure_http_status(-EACCES), 502); /* never a 401 to the client */
    assert_int_equal(failure_http_status(-ECONNREFUSED), 502);
    assert_int_equal(failure_http_status(-EHOSTUNREACH), 502);
    assert_int_equal(failure_http_status(-EREMOTEIO), 502);
    assert_int_equal(failure_http_status(-ENETUNREACH), 502);
    assert_int_equal(failure_http_status(-EIO), 502);
    assert_int_equal(failure_http_status(-ENOSPC), 507);
    assert_int_equal(failure_http_status(-ENOMEM), 500);
}

static void t_note(void **s)
{
    (void)s;
    struct failure_note n;
    failure_note_clear();
    assert_false(failure_note_get(&n));
    struct failure f = {.cause = FAILURE_AUTH, .status = 403};
    failure_note_set("hub", &f, "https://u:p@r.example/v2/?q=1", false);
    assert_true(failure_note_get(&n));
    assert_string_equal(n.proxy, "hub");
    assert_string_equal(n.url, "https://r.example/v2/");
    assert_int_equal(n.f.status, 403);
    assert_false(n.recorded);
    failure_note_clear();
    assert_false(failure_note_get(NULL));
}

static void t_health(void **s)
{
    (void)s;
    struct health_snapshot h = {.key = "hub", .ratelimit_remaining = -1, .ratelimit_limit = -1};
    char buf[128];
    health_describe(&h, buf, sizeof(buf));
    assert_string_equal(buf, "ok");
    h.state = HEALTH_FAILING;
    h.cause = FAILURE_AUTH;
    h.status = 401;
    health_describe(&h, buf, sizeof(buf));
    assert_string_equal(buf, "failing: auth");
    h.state = HEALTH_BACKING_OFF;
    h.retry_at = 86400;
    health_describe(&h, buf, sizeof(buf));
    assert_string_equal(buf, "backing-off until 1970-01-02T00:00:00Z");
    h.state = HEALTH_OFFLINE;
    health_describe(&h, buf, sizeof(buf));
    assert_string_equal(buf, "offline");
    h.state = HEALTH_FAILING;
    h.errors[FAILURE_AUTH] = 3;
    h.consecutive_failures = 3;
    h.ratelimit_remaining = 76;
    char *j = health_json(&h);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"state\":\"failing\""));
    assert_non_null(strstr(j, "\"cause\":\"auth\""));
    assert_non_null(strstr(j, "\"status\":401"));
    assert_non_null(strstr(j, "\"consecutive_failures\":3"));
    assert_non_null(strstr(j, "\"last_success\":null"));
    assert_non_null(strstr(j, "\"ratelimit_remaining\":76"));
    free(j);
}

static void t_metrics(void **s)
{
    (void)s;
    struct shim_metrics m;
    struct engine_stats st = {.upstream_requests = 5};
    struct health_snapshot h[2] = {
        {.key = "good", .state = HEALTH_OK, .requests_get = 2, .requests_head = 3,
         .ratelimit_remaining = 99},
        {.key = "bad", .state = HEALTH_FAILING, .cause = FAILURE_CONNECT,
         .ratelimit_remaining = -1}};
    h[1].errors[FAILURE_CONNECT] = 4;
    shim_metrics_init(&m);
    char *p = NULL;
    size_t len = 0;
    assert_int_equal(shim_metrics_format_proxies(&m, &st, h, 2, &p, &len), 0);
    assert_non_null(strstr(p, "upstreamfs_upstream_requests_total 5\n"));
    assert_non_null(
        strstr(p, "upstreamfs_upstream_requests_total{proxy=\"good\",method=\"HEAD\"} 3\n"));
    assert_non_null(
        strstr(p, "upstreamfs_upstream_errors_total{proxy=\"bad\",cause=\"connect\"} 4\n"));
    assert_non_null(strstr(p, "upstreamfs_proxy_healthy{proxy=\"good\"} 1\n"));
    assert_non_null(strstr(p, "upstreamfs_proxy_healthy{proxy=\"bad\"} 0\n"));
    assert_non_null(strstr(p, "upstreamfs_upstream_ratelimit_remaining{proxy=\"good\"} 99\n"));
    assert_null(strstr(p, "upstreamfs_upstream_ratelimit_remaining{proxy=\"bad\"}"));
    /* one HELP per family */
    const char *first = strstr(p, "# HELP upstreamfs_upstream_requests_total");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# HELP upstreamfs_upstream_requests_total"));
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_names),       cmocka_unit_test(t_curl),
        cmocka_unit_test(t_status),      cmocka_unit_test(t_errno),
        cmocka_unit_test(t_backoff_rule), cmocka_unit_test(t_classify),
        cmocka_unit_test(t_redact),      cmocka_unit_test(t_http_status),
        cmocka_unit_test(t_note),        cmocka_unit_test(t_health),
        cmocka_unit_test(t_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
