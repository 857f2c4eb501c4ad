/*
 * upstream_i.h: one configured proxy at run time — its validated config,
 * its credentials, its driver, and its health. Private to src/engine: a
 * driver sees only include/upstreamfs/upstream.h.
 *
 * Health follows the one failure policy (include/upstreamfs/failure.h):
 * after 3 consecutive failures of the remote (failure_is_remote) the proxy
 * backs off for 1 s, doubling up to 30 s; any answer of the remote resets
 * it. While backing off, requests fail fast (or are served stale) instead of
 * stacking up on a dead remote. Every failure is logged as one warning per
 * proxy and cause, at most once a minute (UPSTREAM_LOG_INTERVAL_MS) with the
 * count of lines suppressed; the first success after a failure logs
 * "recovered".
 *
 * An upstream is reference counted: a config reload replaces the engine's
 * table while requests may still hold the old object.
 */
#ifndef UPSTREAMFS_ENGINE_UPSTREAM_I_H
#define UPSTREAMFS_ENGINE_UPSTREAM_I_H

#include "upstreamfs/config.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/health.h"
#include "upstreamfs/upstream.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define UPSTREAM_FAILS_BEFORE_OFFLINE 3
#define UPSTREAM_BACKOFF_START_MS     1000
#define UPSTREAM_BACKOFF_MAX_MS       30000
/* A stored document past its TTL is served this long after its revalidation began, at most. */
#define UPSTREAM_STALE_WAIT_MS        1500
#define UPSTREAM_HOLD_MAX_S           300
#define UPSTREAM_LOG_INTERVAL_MS      60000

struct engine;

/* One of the proxy's URLs (src/engine/origins.c); its state under the proxy's mu. */
struct upstream_origin {
    char *base;     /* the configured URL */
    char *roots[2]; /* what its request URLs start with: base (a registry: its repositories'
                       root), and a registry's API root (else NULL) */
    int backoff_ms;
    int64_t offline_until_ms;
    struct health_url h;
};

struct upstream {
    struct proxy cfg;
    char *secret;
    /* -errno when the proxy has a secret that could not be read (src/engine/reload.c): its
     * requests fail with cause auth rather than going out without credentials */
    int secret_err;
    struct fetch_endpoint ep;
    const struct driver_ops *drv;
    struct engine *eng;
    /* when its package policy (include/upstreamfs/policy.h) took its present form, 0: none
     * since the mount started; documents generated before are made again (reader.c) */
    int64_t policy_since;
    /* the driver's private state slot (include/upstreamfs/upstream.h), under state_mu */
    pthread_mutex_t state_mu;
    void *drv_state;
    void (*drv_state_free)(void *);

    pthread_mutex_t mu;
    int refs;
    int failures;
    int64_t offline_until_ms;
    int backoff_ms;
    /* health, under mu */
    struct health_snapshot health;
    bool failing;      /* the last outcome was a failure */
    bool stale_served; /* a stale copy was served since */
    int64_t log_at_ms[FAILURE_CAUSE_COUNT];
    unsigned log_suppressed[FAILURE_CAUSE_COUNT];
    pthread_mutex_t health_file_mu; /* health_file: the JSON last written */
    char *health_file;
    bool retired; /* under health_file_mu: a reload replaced it; it writes no more */
    struct upstream_origin *origins; /* url, then the mirrors; fixed after upstream_new */
    size_t norigins;
};

struct upstream *upstream_new(struct engine *eng, const struct proxy *cfg, const char *secret);
void upstream_ref(struct upstream *u);
void upstream_unref(struct upstream *u);

/* True while the back-off says: do not contact the remote now. */
bool upstream_backing_off(struct upstream *u);
/* The remote answered (any answer that is no failure): resets the back-off, logs a recovery. */
void upstream_note_success(struct upstream *u);
/*
 * A classified failure (url: what was asked, logged without credentials or
 * query): counted by cause, logged (rate-limited), and when it is a failure
 * of the remote (failure_is_remote) counted for the back-off. Also set as
 * this thread's failure note (failure.h).
 */
void upstream_note_failure(struct upstream *u, const struct failure *f, const char *url);
/*
 * 0, or -EACCES (noted as a failure with cause auth) when the proxy's secret
 * could not be read: no request may go out without its credentials.
 */
int upstream_credentials_check(struct upstream *u);
/*
 * The one outcome rule for a request to the remote: rc and resp as
 * fetch_perform left them. Classifies (failure_classify), notes the failure
 * or the success (a 401/403 only when final is true: the docker and ECR
 * flows answer a challenge with a token first), honours Retry-After and
 * keeps the remote's quota. Returns true when it was a failure.
 */
bool upstream_outcome(struct upstream *u, int rc, const struct fetch_response *resp,
                      const char *url, bool final);
/* A request is about to go to the remote (method NULL: GET). */
void upstream_count_request(struct upstream *u, const char *method, bool head);
/* A cached copy was served in place of the remote's answer. */
void upstream_note_stale(struct upstream *u);
/*
 * A copy of the health; in a mount or serve (engine_opts.publish_health)
 * writes STATEDIR/health/<key>.json when it changed.
 */
void upstream_health(struct upstream *u, struct health_snapshot *out);
/*
 * A reload dropped u from the engine's table (now: cur, n): unless u is still
 * in it, it writes no more health, and when its proxy is gone its file goes.
 */
void upstream_retire(struct upstream *u, struct upstream *const *cur, size_t n);
/* The last failure (cause, status) while the proxy is failing; false when it is not. */
bool upstream_last_failure(struct upstream *u, struct failure *out);
/*
 * The remote asked for a pause (429 or 503 with Retry-After): no request goes
 * to it for that long (capped at UPSTREAM_HOLD_MAX_S); cached answers are
 * served meanwhile.
 */
void upstream_hold(struct upstream *u, long seconds);
/* Applies a response's Retry-After when its status asks for one. */
void upstream_note_response(struct upstream *u, const struct fetch_response *r);

/* The rate-limited warning of a failure (one per proxy and cause a minute); mu held. */
void upstream__log_failure(struct upstream *u, const struct failure *f, const char *url);

/* ---- the proxy's URLs in order (src/engine/origins.c) ---- */
int upstream__origins_init(struct upstream *u);
void upstream__origins_free(struct upstream *u);
/* With mu held: the proxy has several URLs and each is backing off (*retry_at: the soonest). */
bool upstream__origins_all_off(const struct upstream *u, int64_t *retry_at);
/*
 * r to the first of the proxy's URLs that is not backing off, on to the next after a failure
 * of the remote (each URL's outcome recorded); counts the requests. rc and resp are the last
 * attempt's; *asked is false when no URL could be asked (every one backing off).
 */
int upstream__perform_in_order(struct upstream *u, struct fetch_request *r,
                               struct fetch_response *resp, bool *asked);
/* With mu held: each URL's health into h (with one URL, the proxy's own). */
void upstream__origins_health(struct upstream *u, struct health_snapshot *h);
/* url at the first of the proxy's URLs not backing off (malloc'd; url itself when it is). */
char *upstream_pick_url(struct upstream *u, const char *url);
/*
 * A download of url ended with rc/resp: when that is a failure of the remote and the proxy
 * has another URL not backing off, records it on url's URL and gives the same place on the
 * next one (malloc'd, its request counted); else NULL.
 */
char *upstream_next_url(struct upstream *u, const char *url, int rc,
                        const struct fetch_response *resp);
/* upstream_count_request, also counted for the proxy's URL that url is below. */
void upstream_count_request_at(struct upstream *u, const char *url, const char *method,
                               bool head);
/* A download from url succeeded: its URL answers. */
void upstream_note_url_success(struct upstream *u, const char *url);

#endif
