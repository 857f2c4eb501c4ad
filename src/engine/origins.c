/*
 * origins: a proxy's URLs — its url, then its mirrors (include/upstreamfs/config.h) — tried
 * in order, each with its own health.
 *
 * Drivers build every URL from the first (upstream_url, or a docker registry's roots from
 * upstream_base_root); a request to one of them may go to the same place below another URL
 * of the proxy: the request URL's root (the base itself; for a registry also its
 * repositories' root /v2/<path>/ and its API root /v2/) is swapped for the same root of the
 * other URL. Requests go to the first URL that is not backing off. A failure that is the
 * remote's (failure_is_remote: connect, DNS, TLS, timeout, 5xx, 429; or a body cut short)
 * puts that URL in back-off
 * (1 s, doubling to 30 s, as the proxy's own, src/engine/upstream.c) and the request goes
 * to the next one; any answer (a 404 included: it is an answer, and asking the other URLs
 * for every miss would reach the origin listed last each time) ends it there. After its
 * back-off the URL is tried first again and used as soon as it answers. A download that
 * fails starts again from the first byte on the next URL (src/fetch/flight.c checks that
 * the bytes readers already have are the ones the next URL sends). With one URL nothing of
 * this applies: the proxy's health is the URL's.
 *
 * Lock: the origins' state is under u->mu, as the proxy's health.
 */
#include "engine_i.h"
#include "upstreamfs/clock.h"
#include "upstreamfs/egress.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(CONFIG_MIRRORS_MAX + 1 <= HEALTH_URLS_MAX, "a health snapshot holds every URL");

int upstream_base_root(const char *base, bool api, char *out, size_t len)
{
    char *origin = fetch_url_origin(base);
    if (!origin)
        return -EINVAL;
    /* the path of base itself (origin is normalised: its length is not base's) */
    const char *path = strstr(base, "://");
    path = path ? path + 3 : base;
    path += strcspn(path, "/?#");
    path += strspn(path, "/");
    size_t plen = strcspn(path, "?#");
    while (plen && path[plen - 1] == '/')
        plen--;
    int n = api || !plen ? snprintf(out, len, "%s/v2/", origin)
                         : snprintf(out, len, "%s/v2/%.*s/", origin, (int)plen, path);
    free(origin);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The roots of base's request URLs into o->roots (a registry's: repositories, then API). */
static int origin_init(struct upstream_origin *o, const char *base, bool registry)
{
    char buf[CONFIG_URL_MAX + 16];
    if (!(o->base = strdup(base)))
        return -ENOMEM;
    o->backoff_ms = UPSTREAM_BACKOFF_START_MS;
    o->h.since = (int64_t)time(NULL);
    failure_url_redact(base, o->h.url, sizeof(o->h.url));
    if (!registry)
        return (o->roots[0] = strdup(base)) ? 0 : -ENOMEM;
    for (int k = 0; k < 2; k++) {
        int rc = upstream_base_root(base, k == 1, buf, sizeof(buf));
        if (rc < 0)
            return rc;
        if (!(o->roots[k] = strdup(buf)))
            return -ENOMEM;
    }
    return 0;
}

int upstream__origins_init(struct upstream *u)
{
    size_t n = u->cfg.url ? 1 + config_strv_len(u->cfg.mirrors) : 0;
    if (n > HEALTH_URLS_MAX)
        n = HEALTH_URLS_MAX;
    if (!n)
        return 0;
    if (!(u->origins = calloc(n, sizeof(*u->origins))))
        return -ENOMEM;
    u->norigins = n;
    for (size_t i = 0; i < n; i++) {
        const char *base = i ? u->cfg.mirrors[i - 1] : u->cfg.url;
        int rc = origin_init(&u->origins[i], base, u->cfg.type == PROXY_DOCKER);
        /* Each URL is a configured endpoint: the proxy's credentials go to it (egress.h). */
        if (rc == 0 && i)
            rc = egress_policy_trust(u->ep.egress, base);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void upstream__origins_free(struct upstream *u)
{
    for (size_t i = 0; i < u->norigins; i++) {
        free(u->origins[i].base);
        free(u->origins[i].roots[0]);
        free(u->origins[i].roots[1]);
    }
    free(u->origins);
    u->origins = NULL;
    u->norigins = 0;
}

/* The URL i of url's place whose root k prefixes url (the longest), or -1 (root in *k). */
static int origin_of(const struct upstream *u, const char *url, int *k)
{
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; url && i < u->norigins; i++) {
        for (int r = 0; r < 2; r++) {
            const char *root = u->origins[i].roots[r];
            size_t len = root ? strlen(root) : 0;
            if (len > best_len && strncmp(url, root, len) == 0) {
                best = (int)i;
                best_len = len;
                *k = r;
            }
        }
    }
    /* A registry URL without a path has one root for both: its API's own requests (the probe,
     * _catalog: no repository name starts with '_') go to the other URL's API root. */
    const struct upstream_origin *o = best >= 0 ? &u->origins[best] : NULL;
    if (o && *k == 0 && o->roots[1] && !strcmp(o->roots[0], o->roots[1]) &&
        (!url[best_len] || url[best_len] == '_'))
        *k = 1;
    return best;
}

/* url (below root k of URL i) as the same place below URL j; malloc'd. */
static char *rebase(const struct upstream *u, const char *url, int i, int k, int j)
{
    const char *from = u->origins[i].roots[k], *to = u->origins[j].roots[k];
    const char *rest = url + strlen(from);
    size_t n = strlen(to) + strlen(rest) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s", to, rest);
    return out;
}

/* With mu held: URL i is backing off now. */
static bool origin_off(const struct upstream_origin *o, int64_t now)
{
    return o->offline_until_ms > now;
}

bool upstream__origins_all_off(const struct upstream *u, int64_t *retry_at)
{
    int64_t now = clock_mono_ms(), until = INT64_MAX;
    if (u->norigins < 2)
        return false;
    for (size_t i = 0; i < u->norigins; i++) {
        if (!origin_off(&u->origins[i], now))
            return false;
        if (u->origins[i].h.retry_at < until)
            until = u->origins[i].h.retry_at;
    }
    if (retry_at)
        *retry_at = until;
    return true;
}

/*
 * Whether a request's outcome (rc, f: failure_classify's) sends it to the next URL: a failure of
 * the remote (failure_is_remote), or a transfer cut before its answer was whole (cause http
 * after a 2xx: the connection closed mid-body), but no redirect loop (the URL answers).
 */
static bool fails_over(int rc, const struct failure *f)
{
    return rc != -ELOOP && (failure_is_remote(f) || (rc < 0 && f->cause == FAILURE_HTTP));
}

/* With mu held: URL j answered (f NULL) or failed with f. True when what it shows changed. */
static bool origin_note(struct upstream *u, int j, int rc, const struct failure *f, const char *url)
{
    struct upstream_origin *o = &u->origins[j];
    int64_t now_s = (int64_t)time(NULL);
    enum health_state was = o->h.state;
    if (!f) {
        if (o->h.consecutive_failures)
            log_info("proxy %s: %s answers again", u->cfg.key, o->h.url);
        o->h.consecutive_failures = 0;
        o->h.last_success = now_s;
        o->h.retry_at = 0;
        o->offline_until_ms = 0;
        o->backoff_ms = UPSTREAM_BACKOFF_START_MS;
        o->h.state = HEALTH_OK;
    } else {
        o->h.failures++;
        o->h.consecutive_failures++;
        o->h.cause = f->cause;
        o->h.status = f->status;
        char clean[512];
        failure_url_redact(url, clean, sizeof(clean)); /* no query in the log */
        upstream__log_failure(u, f, clean);
        if (fails_over(rc, f)) {
            o->offline_until_ms = clock_mono_ms() + o->backoff_ms;
            o->h.retry_at = now_s + (o->backoff_ms + 999) / 1000;
            o->h.state = HEALTH_BACKING_OFF;
            log_info("proxy %s: %s backs off for %d ms; the next URL is asked", u->cfg.key,
                     o->h.url, o->backoff_ms);
            o->backoff_ms = o->backoff_ms * 2 > UPSTREAM_BACKOFF_MAX_MS ? UPSTREAM_BACKOFF_MAX_MS
                                                                        : o->backoff_ms * 2;
        } else {
            o->h.state = HEALTH_FAILING;
        }
    }
    if (o->h.state != was)
        o->h.since = now_s;
    return o->h.state != was || f; /* a failure has a new cause and retry_at to show */
}

/* origin_note under mu; a change of state is written out (STATEDIR/health, upstream_health). */
static void origin_noted(struct upstream *u, int j, int rc, const struct failure *f,
                         const char *url)
{
    pthread_mutex_lock(&u->mu);
    bool changed = origin_note(u, j, rc, f, url);
    pthread_mutex_unlock(&u->mu);
    if (changed) {
        struct health_snapshot h;
        upstream_health(u, &h);
    }
}

/* The URL j at or after from that is not backing off (in order), or -1. With mu held. */
static int origin_next(struct upstream *u, size_t from)
{
    int64_t now = clock_mono_ms();
    for (size_t j = from; j < u->norigins; j++)
        if (!origin_off(&u->origins[j], now))
            return (int)j;
    return -1;
}

void upstream_count_request_at(struct upstream *u, const char *url, const char *method, bool head)
{
    int k = 0, i = origin_of(u, url, &k);
    if (i >= 0) {
        pthread_mutex_lock(&u->mu);
        u->origins[i].h.requests++;
        pthread_mutex_unlock(&u->mu);
    }
    upstream_count_request(u, method, head);
}

int upstream__perform_in_order(struct upstream *u, struct fetch_request *r,
                               struct fetch_response *resp, bool *asked)
{
    int k = 0, i = origin_of(u, r->url, &k), rc = -EREMOTEIO;
    const char *url0 = r->url;
    *asked = true;
    if (u->norigins < 2 || i < 0) {
        upstream_count_request_at(u, r->url, r->method, r->head);
        return fetch_perform(r, resp);
    }
    *asked = false;
    for (size_t from = 0;;) {
        pthread_mutex_lock(&u->mu);
        int j = origin_next(u, from);
        pthread_mutex_unlock(&u->mu);
        if (j < 0)
            break; /* no URL left that is not backing off: the last answer stands */
        char *url = j == i ? NULL : rebase(u, url0, i, k, j);
        if (j != i && !url)
            return *asked ? rc : -ENOMEM;
        r->url = url ? url : url0;
        fetch_response_clear(resp);
        memset(resp, 0, sizeof(*resp));
        upstream_count_request_at(u, r->url, r->method, r->head);
        rc = fetch_perform(r, resp);
        *asked = true;
        struct failure f;
        bool failed = failure_classify(rc, resp->status, (enum failure_cause)resp->cause, &f);
        /* a 401/403 the driver may yet answer (a token) says the URL is alive */
        origin_noted(u, j, rc, failed && f.cause != FAILURE_AUTH ? &f : NULL, r->url);
        free(url);
        r->url = url0;
        if (!failed || !fails_over(rc, &f))
            break;
        from = (size_t)j + 1;
    }
    return rc;
}

char *upstream_pick_url(struct upstream *u, const char *url)
{
    int k = 0, i = u->norigins < 2 ? -1 : origin_of(u, url, &k), j = -1;
    if (i >= 0) {
        pthread_mutex_lock(&u->mu);
        j = origin_next(u, 0);
        pthread_mutex_unlock(&u->mu);
    }
    return j < 0 || j == i ? strdup(url) : rebase(u, url, i, k, j);
}

char *upstream_next_url(struct upstream *u, const char *url, int rc,
                        const struct fetch_response *resp)
{
    struct failure f;
    int k = 0, i = origin_of(u, url, &k), j = -1;
    if (u->norigins < 2 || i < 0 ||
        !failure_classify(rc, resp ? resp->status : 0,
                          resp ? (enum failure_cause)resp->cause : FAILURE_NONE, &f) ||
        !fails_over(rc, &f))
        return NULL;
    origin_noted(u, i, rc, &f, url);
    pthread_mutex_lock(&u->mu);
    /* the next in order after i; then, from the first, one whose back-off has ended */
    j = origin_next(u, (size_t)i + 1);
    if (j < 0)
        j = origin_next(u, 0);
    pthread_mutex_unlock(&u->mu);
    if (j < 0 || j == i)
        return NULL;
    char *next = rebase(u, url, i, k, j);
    if (next)
        upstream_count_request_at(u, next, NULL, false);
    return next;
}

void upstream_note_url_success(struct upstream *u, const char *url)
{
    int k = 0, i = origin_of(u, url, &k);
    if (i >= 0 && u->norigins > 1)
        origin_noted(u, i, 0, NULL, url);
}

void upstream__origins_health(struct upstream *u, struct health_snapshot *h)
{
    int64_t now = clock_mono_ms();
    h->n_urls = (int)u->norigins;
    for (size_t i = 0; i < u->norigins; i++) {
        struct upstream_origin *o = &u->origins[i];
        if (o->h.state == HEALTH_BACKING_OFF && !origin_off(o, now)) {
            o->h.state = HEALTH_FAILING; /* its back-off has ended: it is asked again */
            o->h.since = (int64_t)time(NULL);
            o->h.retry_at = 0;
        }
        h->urls[i] = o->h;
        if (u->norigins == 1) { /* one URL: the proxy's own health is the URL's */
            h->urls[i].state = h->state;
            h->urls[i].cause = h->cause;
            h->urls[i].status = h->status;
            h->urls[i].since = h->since;
            h->urls[i].last_success = h->last_success;
            h->urls[i].retry_at = h->retry_at;
            h->urls[i].consecutive_failures = h->consecutive_failures;
            h->urls[i].failures = 0;
            for (int c = 1; c < FAILURE_CAUSE_COUNT; c++)
                h->urls[i].failures += h->errors[c];
            h->urls[i].requests = h->requests_get + h->requests_head + h->requests_other;
        }
    }
}
