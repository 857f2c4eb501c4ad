/*
 * test_shim_metrics: the /metrics page in Prometheus text format: every
 * name prefixed upstreamfs_, HELP and TYPE once per family, counters by
 * route and status, the engine's stats, and nothing from a request in it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/shim_metrics.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *page(const struct shim_metrics *m, const struct engine_stats *st)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(shim_metrics_format(m, st, &out, &len), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    return out;
}

/* Every line is a comment about an upstreamfs_ family or a well-formed sample. */
static void check_syntax(const char *text)
{
    char *copy = strdup(text), *save = NULL;
    assert_non_null(copy);
    assert_true(text[strlen(text) - 1] == '\n');
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
            if (strncmp(line + 7, "upstreamfs_", 11) != 0)
                fail_msg("comment about a foreign name: %s", line);
            if (!strncmp(line, "# TYPE ", 7) && !strstr(line, " counter") &&
                !strstr(line, " gauge"))
                fail_msg("unknown type: %s", line);
            continue;
        }
        if (strncmp(line, "upstreamfs_", 11) != 0)
            fail_msg("sample without the prefix: %s", line);
        const char *p = line;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        if (*p == '{') {
            p = strchr(p, '}');
            if (!p)
                fail_msg("unclosed labels: %s", line);
            p++;
        }
        if (*p != ' ')
            fail_msg("no value: %s", line);
        char *end;
        strtod(p + 1, &end);
        if (end == p + 1 || *end)
            fail_msg("bad value: %s", line);
    }
    free(copy);
}

static void empty_and_engine(void **state)
{
    (void)state;
    struct shim_metrics *m = calloc(1, sizeof(*m));
    shim_metrics_init(m);
    struct engine_stats st = {.cache_bytes = 1234,
                              .cache_objects = 5,
                              .local_bytes = 7,
                              .local_objects = 1,
                              .quota_bytes = 1 << 30,
                              .hits = 11,
                              .misses = 3,
                              .upstream_requests = 4,
                              .upstream_bytes = 999,
                              .evictions = 2,
                              .stale_serves = 6,
                              .inflight = 1};
    char *p = page(m, &st);
    check_syntax(p);
    assert_non_null(strstr(p, "upstreamfs_engine_up 1\n"));
    assert_non_null(strstr(p, "upstreamfs_cache_bytes 1234\n"));
    assert_non_null(strstr(p, "upstreamfs_cache_objects 5\n"));
    assert_non_null(strstr(p, "upstreamfs_cache_hits_total 11\n"));
    assert_non_null(strstr(p, "upstreamfs_cache_misses_total 3\n"));
    assert_non_null(strstr(p, "upstreamfs_upstream_requests_total 4\n"));
    assert_non_null(strstr(p, "upstreamfs_upstream_bytes_total 999\n"));
    assert_non_null(strstr(p, "upstreamfs_inflight_fetches 1\n"));
    assert_non_null(strstr(p, "upstreamfs_evictions_total 2\n"));
    assert_non_null(strstr(p, "upstreamfs_stale_serves_total 6\n"));
    assert_non_null(strstr(p, "upstreamfs_cache_quota_bytes 1073741824\n"));
    /* No request yet: no request samples, but the family is announced. */
    assert_non_null(strstr(p, "# TYPE upstreamfs_http_requests_total counter\n"));
    assert_null(strstr(p, "upstreamfs_http_requests_total{"));
    free(p);

    /* Without the engine only the shim's part is there. */
    p = page(m, NULL);
    check_syntax(p);
    assert_non_null(strstr(p, "upstreamfs_engine_up 0\n"));
    assert_null(strstr(p, "upstreamfs_cache_bytes"));
    free(p);
    free(m);
}

static void requests_by_route_and_status(void **state)
{
    (void)state;
    struct shim_metrics *m = calloc(1, sizeof(*m));
    shim_metrics_init(m);
    shim_metrics_request(m, SHIM_ROUTE_PATH, 200, 100, SHIM_CACHE_HIT);
    shim_metrics_request(m, SHIM_ROUTE_PATH, 200, 50, SHIM_CACHE_MISS);
    shim_metrics_request(m, SHIM_ROUTE_PATH, 206, 10, SHIM_CACHE_HIT);
    shim_metrics_request(m, SHIM_ROUTE_API, 400, 70, SHIM_CACHE_NONE);
    shim_metrics_request(m, SHIM_ROUTE_OTHER, 400, 5, SHIM_CACHE_NONE);
    shim_metrics_request(m, SHIM_ROUTE_V2, 0, 0, SHIM_CACHE_NONE);      /* counted as 500 */
    shim_metrics_request(m, SHIM_ROUTE_COUNT, 999, 0, SHIM_CACHE_NONE); /* other, 500 */
    char *p = page(m, NULL);
    check_syntax(p);
    assert_non_null(strstr(p, "upstreamfs_http_requests_total{route=\"path\",code=\"200\"} 2\n"));
    assert_non_null(strstr(p, "upstreamfs_http_requests_total{route=\"path\",code=\"206\"} 1\n"));
    assert_non_null(strstr(p, "upstreamfs_http_requests_total{route=\"api\",code=\"400\"} 1\n"));
    assert_non_null(strstr(p, "upstreamfs_http_requests_total{route=\"other\",code=\"400\"} 1\n"));
    assert_non_null(strstr(p, "upstreamfs_http_requests_total{route=\"v2\",code=\"500\"} 1\n"));
    assert_non_null(strstr(p, "upstreamfs_http_requests_total{route=\"other\",code=\"500\"} 1\n"));
    assert_non_null(strstr(p, "upstreamfs_http_response_bytes_total{route=\"path\"} 160\n"));
    assert_non_null(strstr(p, "upstreamfs_http_cache_requests_total{result=\"hit\"} 2\n"));
    assert_non_null(strstr(p, "upstreamfs_http_cache_requests_total{result=\"miss\"} 1\n"));
    /* HELP and TYPE appear once per family. */
    const char *first = strstr(p, "# TYPE upstreamfs_http_requests_total");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE upstreamfs_http_requests_total"));
    free(p);
    free(m);
}

/* A proxy's URLs: requests, failures and health per URL, in families of their own. */
static void per_url(void **state)
{
    (void)state;
    struct shim_metrics *m = calloc(1, sizeof(*m));
    struct health_snapshot *h = calloc(1, sizeof(*h));
    assert_non_null(m);
    assert_non_null(h);
    shim_metrics_init(m);
    snprintf(h->key, sizeof(h->key), "files");
    h->requests_get = 7;
    h->n_urls = 2;
    snprintf(h->urls[0].url, sizeof(h->urls[0].url), "http://127.0.0.2:81/files/");
    h->urls[0].state = HEALTH_BACKING_OFF;
    h->urls[0].requests = 3;
    h->urls[0].failures = 2;
    snprintf(h->urls[1].url, sizeof(h->urls[1].url), "http://h/a\"b/");
    h->urls[1].requests = 4;
    struct engine_stats st = {.upstream_requests = 7};
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(shim_metrics_format_proxies(m, &st, h, 1, &out, &len), 0);
    check_syntax(out);
    static const char *const want[] = {
        "upstreamfs_upstream_requests_total{proxy=\"files\",method=\"GET\"} 7\n",
        "upstreamfs_upstream_url_requests_total{proxy=\"files\",url=\"http://127.0.0.2:81/files/\"} 3\n",
        "upstreamfs_upstream_url_requests_total{proxy=\"files\",url=\"http://h/a\\\"b/\"} 4\n",
        "upstreamfs_upstream_url_failures_total{proxy=\"files\",url=\"http://127.0.0.2:81/files/\"} 2\n",
        "upstreamfs_upstream_url_healthy{proxy=\"files\",url=\"http://127.0.0.2:81/files/\"} 0\n",
        "upstreamfs_upstream_url_healthy{proxy=\"files\",url=\"http://h/a\\\"b/\"} 1\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(out, want[i]))
            fail_msg("no line %s", want[i]);
    free(out);
    free(h);
    free(m);
}

/* A tier's counts: answers by route and class (hit, miss, 304, anything else). */
static void answers_by_route_and_class(void **state)
{
    (void)state;
    struct shim_metrics *m = calloc(1, sizeof(*m));
    shim_metrics_init(m);
    shim_metrics_request(m, SHIM_ROUTE_PATH, 200, 100, SHIM_CACHE_HIT);
    shim_metrics_request(m, SHIM_ROUTE_PATH, 206, 100, SHIM_CACHE_HIT);
    shim_metrics_request(m, SHIM_ROUTE_PATH, 200, 100, SHIM_CACHE_MISS);
    shim_metrics_request(m, SHIM_ROUTE_PATH, 304, 0, SHIM_CACHE_NONE);
    shim_metrics_request(m, SHIM_ROUTE_PATH, 304, 0, SHIM_CACHE_HIT);   /* 304 whatever the cache */
    shim_metrics_request(m, SHIM_ROUTE_PATH, 200, 10, SHIM_CACHE_NONE); /* a document */
    shim_metrics_request(m, SHIM_ROUTE_PATH, 502, 10, SHIM_CACHE_MISS); /* a failed download */
    shim_metrics_request(m, SHIM_ROUTE_V2, 304, 0, SHIM_CACHE_NONE);
    char *p = page(m, NULL);
    check_syntax(p);
    assert_non_null(strstr(p, "upstreamfs_http_answers_total{route=\"path\",class=\"hit\"} 2\n"));
    assert_non_null(strstr(p, "upstreamfs_http_answers_total{route=\"path\",class=\"miss\"} 1\n"));
    assert_non_null(
        strstr(p, "upstreamfs_http_answers_total{route=\"path\",class=\"not_modified\"} 2\n"));
    assert_non_null(strstr(p, "upstreamfs_http_answers_total{route=\"path\",class=\"other\"} 2\n"));
    assert_non_null(
        strstr(p, "upstreamfs_http_answers_total{route=\"v2\",class=\"not_modified\"} 1\n"));
    assert_non_null(strstr(p, "upstreamfs_http_answers_total{route=\"v2\",class=\"hit\"} 0\n"));
    assert_null(strstr(p, "upstreamfs_http_answers_total{route=\"api\""));
    free(p);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_and_engine),
        cmocka_unit_test(requests_by_route_and_status),
        cmocka_unit_test(per_url),
        cmocka_unit_test(answers_by_route_and_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
