/*
 * metrics: the shim's counters and the /metrics page (see shim_metrics.h).
 *
 * The page is built into a bounded buffer: its size depends only on how
 * many (route, status) pairs have been seen, at most 7 x 500 short lines.
 */
#include "upstreamfs/shim_metrics.h"
#include "upstreamfs/shim_buf.h"
#include "upstreamfs/health.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX (1024 * 1024)

static int family(struct shim_buf *b, const char *name, const char *type, const char *help);

void shim_metrics_init(struct shim_metrics *m)
{
    for (int r = 0; r < SHIM_ROUTE_COUNT; r++) {
        for (int s = 0; s <= SHIM_STATUS_MAX - SHIM_STATUS_MIN; s++)
            atomic_init(&m->requests[r][s], 0);
        atomic_init(&m->bytes[r], 0);
        for (int c = 0; c < SHIM_ANSWER_COUNT; c++)
            atomic_init(&m->answers[r][c], 0);
    }
    atomic_init(&m->hits, 0);
    atomic_init(&m->misses, 0);
    atomic_init(&m->active, 0);
}

void shim_metrics_request(struct shim_metrics *m, enum shim_route route, int status, uint64_t bytes,
                          enum shim_cache_result cache)
{
    if ((unsigned)route >= SHIM_ROUTE_COUNT)
        route = SHIM_ROUTE_OTHER;
    if (status < SHIM_STATUS_MIN || status > SHIM_STATUS_MAX)
        status = 500;
    atomic_fetch_add(&m->requests[route][status - SHIM_STATUS_MIN], 1);
    atomic_fetch_add(&m->bytes[route], bytes);
    if (cache == SHIM_CACHE_HIT)
        atomic_fetch_add(&m->hits, 1);
    else if (cache == SHIM_CACHE_MISS)
        atomic_fetch_add(&m->misses, 1);
    enum shim_answer_class c = status == 304              ? SHIM_ANSWER_NOT_MODIFIED
                               : status >= 300            ? SHIM_ANSWER_OTHER
                               : cache == SHIM_CACHE_HIT  ? SHIM_ANSWER_HIT
                               : cache == SHIM_CACHE_MISS ? SHIM_ANSWER_MISS
                                                          : SHIM_ANSWER_OTHER;
    atomic_fetch_add(&m->answers[route][c], 1);
}

/* The answers of each route by class (enum shim_answer_class); routes never used are left out. */
static int answers_part(struct shim_buf *b, const struct shim_metrics *m)
{
    static const char *const names[SHIM_ANSWER_COUNT] = {"hit", "miss", "not_modified", "other"};
    int rc = family(b, "http_answers_total", "counter",
                    "Requests answered by the shim, by route and class: content from the cache "
                    "(hit), content from the upstream (miss), 304 (not_modified), anything else.");
    for (int r = 0; rc == 0 && r < SHIM_ROUTE_COUNT; r++) {
        unsigned long long v[SHIM_ANSWER_COUNT], sum = 0;
        for (int c = 0; c < SHIM_ANSWER_COUNT; c++)
            sum += v[c] = atomic_load(&m->answers[r][c]);
        for (int c = 0; rc == 0 && sum && c < SHIM_ANSWER_COUNT; c++)
            rc = shim_buf_printf(b,
                                 "upstreamfs_http_answers_total{route=\"%s\",class=\"%s\"} %llu\n",
                                 shim_http_route_name(r), names[c], v[c]);
    }
    return rc;
}

/* "# HELP" and "# TYPE" lines of one metric family. */
static int family(struct shim_buf *b, const char *name, const char *type, const char *help)
{
    return shim_buf_printf(b, "# HELP upstreamfs_%s %s\n# TYPE upstreamfs_%s %s\n", name, help,
                           name, type);
}

static int single(struct shim_buf *b, const char *name, const char *type, const char *help,
                  int64_t v)
{
    int rc = family(b, name, type, help);
    return rc < 0 ? rc : shim_buf_printf(b, "upstreamfs_%s %" PRId64 "\n", name, v);
}

static int shim_part(struct shim_buf *b, const struct shim_metrics *m)
{
    int rc = family(b, "http_requests_total", "counter",
                    "HTTP requests answered by the shim, by route and status code.");
    for (int r = 0; rc == 0 && r < SHIM_ROUTE_COUNT; r++) {
        for (int s = 0; rc == 0 && s <= SHIM_STATUS_MAX - SHIM_STATUS_MIN; s++) {
            unsigned long long v = atomic_load(&m->requests[r][s]);
            if (v)
                rc = shim_buf_printf(b,
                                     "upstreamfs_http_requests_total{route=\"%s\",code=\"%d\"} "
                                     "%llu\n",
                                     shim_http_route_name(r), s + SHIM_STATUS_MIN, v);
        }
    }
    if (rc == 0)
        rc = family(b, "http_response_bytes_total", "counter",
                    "Response body bytes the shim handed to clients, by route.");
    for (int r = 0; rc == 0 && r < SHIM_ROUTE_COUNT; r++)
        rc = shim_buf_printf(b, "upstreamfs_http_response_bytes_total{route=\"%s\"} %llu\n",
                             shim_http_route_name(r), atomic_load(&m->bytes[r]));
    if (rc == 0)
        rc = family(b, "http_cache_requests_total", "counter",
                    "File requests the shim served from the cache (hit) or from the upstream "
                    "(miss).");
    if (rc == 0)
        rc = shim_buf_printf(b,
                             "upstreamfs_http_cache_requests_total{result=\"hit\"} %llu\n"
                             "upstreamfs_http_cache_requests_total{result=\"miss\"} %llu\n",
                             atomic_load(&m->hits), atomic_load(&m->misses));
    if (rc == 0)
        rc = answers_part(b, m);
    if (rc == 0)
        rc = single(b, "http_requests_in_progress", "gauge", "Requests the shim is answering now.",
                    (int64_t)atomic_load(&m->active));
    return rc;
}

static const char *const methods[] = {"GET", "HEAD", "other"};

/* Per-proxy lines of the upstream families (health snapshots of src/engine/upstream.c). */
static int proxy_requests(struct shim_buf *b, const struct health_snapshot *h, size_t nh)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nh; i++) {
        unsigned long long v[3] = {h[i].requests_get, h[i].requests_head, h[i].requests_other};
        for (int k = 0; rc == 0 && k < 3; k++)
            rc = shim_buf_printf(b,
                                 "upstreamfs_upstream_requests_total{proxy=\"%s\",method=\"%s\"} "
                                 "%llu\n",
                                 h[i].key, methods[k], v[k]);
    }
    return rc;
}

/* A URL as a label value: '"', '\\' and control bytes escaped (the exposition format's rule). */
static void label_value(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (; *in && o + 5 < n; in++) {
        if (*in == '"' || *in == '\\')
            out[o++] = '\\', out[o++] = *in;
        else if ((unsigned char)*in < 0x20)
            o += (size_t)snprintf(out + o, n - o, "%%%02X", (unsigned char)*in);
        else
            out[o++] = *in;
    }
    out[o] = '\0';
}

/*
 * Each of a proxy's URLs (url, then mirrors; src/engine/origins.c): its requests, its failures
 * and whether it answers. Families of their own: a url label on the per-proxy families would
 * count every request twice in a sum by proxy.
 */
static int url_part(struct shim_buf *b, const struct health_snapshot *h, size_t nh)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"upstream_url_requests_total", "counter", "Requests to each of a proxy's URLs."},
        {"upstream_url_failures_total", "counter",
         "Failed requests to each of a proxy's URLs (a failure of the remote sends the request "
         "to the next URL)."},
        {"upstream_url_healthy", "gauge",
         "1 when the URL's last request succeeded; 0 while it fails or backs off."},
    };
    int rc = 0;
    char url[3 * sizeof(h->urls[0].url)];
    for (size_t f = 0; rc == 0 && f < sizeof(fam) / sizeof(fam[0]); f++) {
        rc = family(b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; rc == 0 && i < nh; i++) {
            for (int k = 0; rc == 0 && k < h[i].n_urls && k < HEALTH_URLS_MAX; k++) {
                const struct health_url *x = &h[i].urls[k];
                unsigned long long v = f == 0   ? x->requests
                                       : f == 1 ? x->failures
                                                : (x->state == HEALTH_OK ? 1 : 0);
                label_value(x->url, url, sizeof(url));
                rc = shim_buf_printf(b, "upstreamfs_%s{proxy=\"%s\",url=\"%s\"} %llu\n",
                                     fam[f].name, h[i].key, url, v);
            }
        }
    }
    return rc;
}

static int proxy_part(struct shim_buf *b, const struct health_snapshot *h, size_t nh)
{
    int rc = family(b, "upstream_errors_total", "counter",
                    "Failed requests to upstreams, by proxy and cause (docs/troubleshooting.md).");
    for (size_t i = 0; rc == 0 && i < nh; i++)
        for (int c = 1; rc == 0 && c < FAILURE_CAUSE_COUNT; c++)
            rc = shim_buf_printf(b, "upstreamfs_upstream_errors_total{proxy=\"%s\",cause=\"%s\"} %llu\n",
                                 h[i].key, failure_cause_name((enum failure_cause)c),
                                 h[i].errors[c]);
    if (rc == 0)
        rc = family(b, "proxy_healthy", "gauge",
                    "1 when the proxy's last request to its upstream succeeded (health ok).");
    for (size_t i = 0; rc == 0 && i < nh; i++)
        rc = shim_buf_printf(b, "upstreamfs_proxy_healthy{proxy=\"%s\"} %d\n", h[i].key,
                             h[i].state == HEALTH_OK ? 1 : 0);
    if (rc == 0)
        rc = family(b, "upstream_ratelimit_remaining", "gauge",
                    "Requests the upstream still allows, as it states (ratelimit-remaining).");
    for (size_t i = 0; rc == 0 && i < nh; i++)
        if (h[i].ratelimit_remaining >= 0)
            rc = shim_buf_printf(b, "upstreamfs_upstream_ratelimit_remaining{proxy=\"%s\"} %ld\n",
                                 h[i].key, h[i].ratelimit_remaining);
    return rc == 0 ? url_part(b, h, nh) : rc;
}

static int engine_part(struct shim_buf *b, const struct engine_stats *st,
                       const struct health_snapshot *h, size_t nh)
{
    int rc = 0;
    if (rc == 0)
        rc = single(b, "cache_hits_total", "counter",
                    "Opens served from the cache (FUSE and HTTP).", st->hits);
    if (rc == 0)
        rc = single(b, "cache_misses_total", "counter",
                    "Opens that streamed from a download (FUSE and HTTP).", st->misses);
    if (rc == 0)
        rc = single(b, "upstream_requests_total", "counter",
                    "Requests to upstreams (a download is shared by all its readers); by proxy "
                    "and method where labelled.",
                    st->upstream_requests);
    if (rc == 0)
        rc = proxy_requests(b, h, nh);
    if (rc == 0)
        rc = single(b, "upstream_bytes_total", "counter",
                    "Bytes of downloads completed and stored.", st->upstream_bytes);
    if (rc == 0)
        rc = single(b, "inflight_fetches", "gauge", "Downloads running now.", st->inflight);
    if (rc == 0)
        rc =
            single(b, "cache_bytes", "gauge", "Bytes of cached upstream content.", st->cache_bytes);
    if (rc == 0)
        rc = single(b, "cache_objects", "gauge", "Objects of cached upstream content.",
                    st->cache_objects);
    if (rc == 0)
        rc = single(b, "cache_quota_bytes", "gauge", "The cache's size limit.", st->quota_bytes);
    if (rc == 0)
        rc = single(b, "local_bytes", "gauge",
                    "Bytes of registries' local content (never evicted).", st->local_bytes);
    if (rc == 0)
        rc = single(b, "local_objects", "gauge", "Objects of registries' local content.",
                    st->local_objects);
    if (rc == 0)
        rc = single(b, "evictions_total", "counter", "Objects evicted to keep to the quota.",
                    st->evictions);
    if (rc == 0)
        rc = single(b, "stale_serves_total", "counter",
                    "Cached copies served because the upstream failed.", st->stale_serves);
    if (rc == 0)
        rc = single(b, "removed_upstream", "gauge",
                    "Cached entries their upstream no longer lists (marked removed-upstream).",
                    st->removed_upstream);
    if (rc == 0)
        rc = single(b, "renders_total", "counter",
                    "Documents rendered for clients (each source, variant and base once).",
                    st->renders);
    if (rc == 0)
        rc = single(b, "document_reads_total", "counter",
                    "Stored documents (index pages, manifests, metadata) read whole from the "
                    "cache into memory.",
                    st->doc_reads);
    return rc;
}

int shim_metrics_format(const struct shim_metrics *m, const struct engine_stats *st, char **out,
                        size_t *len)
{
    return shim_metrics_format_proxies(m, st, NULL, 0, out, len);
}

int shim_metrics_format_proxies(const struct shim_metrics *m, const struct engine_stats *st,
                                const struct health_snapshot *h, size_t nh, char **out,
                                size_t *len)
{
    struct shim_buf b;
    shim_buf_init(&b, PAGE_MAX);
    int rc =
        single(&b, "engine_up", "gauge", "1 when the engine answered for this page.", st ? 1 : 0);
    if (rc == 0)
        rc = shim_part(&b, m);
    if (rc == 0 && st)
        rc = engine_part(&b, st, h, nh);
    if (rc == 0 && st)
        rc = proxy_part(&b, h, nh);
    if (rc == 0 && !(*out = shim_buf_steal(&b, len)))
        rc = -ENOMEM;
    shim_buf_free(&b);
    return rc == -EFBIG ? -ENOMEM : rc;
}
