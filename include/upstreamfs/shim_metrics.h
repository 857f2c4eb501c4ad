/*
 * shim_metrics: the shim's counters and the /metrics page (Prometheus text
 * exposition format 0.0.4).
 *
 * The shim counts what only it sees (requests by route and status, body
 * bytes sent, cache hits and misses of the requests it served); the
 * engine's own counters and gauges (engine_stats) are read when the page is
 * built. Every metric name starts with "upstreamfs_"; label values come from
 * fixed sets (route names, status codes), never from a request, so the page
 * stays small and no user input or secret can appear in it.
 *
 * Counters are atomics: recording a request takes no lock.
 */
#ifndef UPSTREAMFS_SHIM_METRICS_H
#define UPSTREAMFS_SHIM_METRICS_H

#include "upstreamfs/engine.h"
#include "upstreamfs/shim_http.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHIM_STATUS_MIN 100
#define SHIM_STATUS_MAX 599

enum shim_cache_result { SHIM_CACHE_NONE, SHIM_CACHE_HIT, SHIM_CACHE_MISS };

/*
 * What a request was answered with, for a tier's counts (docs/SCALE-OUT.md): content from the
 * cache (hit), content streamed from the upstream (miss), 304 Not Modified, or anything else
 * (documents, listings, redirects, errors).
 */
enum shim_answer_class {
    SHIM_ANSWER_HIT,
    SHIM_ANSWER_MISS,
    SHIM_ANSWER_NOT_MODIFIED,
    SHIM_ANSWER_OTHER,
    SHIM_ANSWER_COUNT
};

struct shim_metrics {
    atomic_ullong requests[SHIM_ROUTE_COUNT][SHIM_STATUS_MAX - SHIM_STATUS_MIN + 1];
    atomic_ullong bytes[SHIM_ROUTE_COUNT];
    atomic_ullong hits, misses;
    atomic_ullong answers[SHIM_ROUTE_COUNT][SHIM_ANSWER_COUNT];
    atomic_llong active; /* requests being answered now */
};

void shim_metrics_init(struct shim_metrics *m);
/* Counts one finished request; a status outside 100..599 is counted as 500. */
void shim_metrics_request(struct shim_metrics *m, enum shim_route route, int status, uint64_t bytes,
                          enum shim_cache_result cache);

/*
 * Formats the page from m and the engine's stats (NULL when the engine did
 * not answer: its metrics are left out and upstreamfs_engine_up is 0).
 * *out is malloc'd and NUL-terminated. 0 or -ENOMEM.
 */
int shim_metrics_format(const struct shim_metrics *m, const struct engine_stats *st, char **out,
                        size_t *len);
/*
 * The same with each proxy's health (nh snapshots, engine_health): requests
 * by proxy and method, errors by proxy and cause, proxy_healthy and the
 * upstream's stated quota.
 */
struct health_snapshot;
int shim_metrics_format_proxies(const struct shim_metrics *m, const struct engine_stats *st,
                                const struct health_snapshot *h, size_t nh, char **out,
                                size_t *len);

#endif
