/*
 * upstream: per-proxy runtime state — credentials, health and back-off, and
 * the request helpers drivers use (upstream_perform, upstream_request). The
 * cached-document helper (upstream_doc_fetch) is src/engine/documents.c.
 */
#include "engine_i.h"
#include "upstreamfs/clock.h"
#include "upstreamfs/egress.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/log.h"
#include "upstreamfs/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct upstream *upstream_new(struct engine *eng, const struct proxy *cfg, const char *secret)
{
    struct upstream *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    if (config_proxy_copy(&u->cfg, cfg) < 0) {
        free(u);
        return NULL;
    }
    u->eng = eng;
    u->refs = 1;
    u->backoff_ms = UPSTREAM_BACKOFF_START_MS;
    u->health.ratelimit_remaining = u->health.ratelimit_limit = -1;
    u->health.since = (int64_t)time(NULL);
    pthread_mutex_init(&u->mu, NULL);
    pthread_mutex_init(&u->state_mu, NULL);
    pthread_mutex_init(&u->health_file_mu, NULL);
    u->drv = eng->driver_override ? eng->driver_override : driver_for_type(cfg->type);
    if (secret)
        u->secret = strdup(secret);
    /* TLS material given as PEM is a file in STATEDIR/tls/KEY/ (configdb.c): use that file. */
    u->ep.ca_file = u->cfg.ca_pem.path ? u->cfg.ca_pem.path : u->cfg.ca_file;
    u->ep.client_cert =
        u->cfg.client_cert_pem.path ? u->cfg.client_cert_pem.path : u->cfg.client_cert;
    u->ep.client_key = u->cfg.client_key_pem.path ? u->cfg.client_key_pem.path : u->cfg.client_key;
    u->ep.http_proxy = u->cfg.http_proxy;
    u->ep.max_size = u->cfg.max_size;
    /* The proxy's URL is its configured origin: credentials go there, and the address rule
     * is for the hosts its remote names (src/fetch/egress.c). */
    u->ep.egress = egress_policy_new(u->cfg.allow_host, u->cfg.pass_credentials);
    if (!u->ep.egress || (u->cfg.url && egress_policy_trust(u->ep.egress, u->cfg.url) < 0) ||
        upstream__origins_init(u) < 0) {
        upstream__origins_free(u);
        egress_policy_unref(u->ep.egress);
        config_proxy_clear(&u->cfg);
        free(u->secret);
        pthread_mutex_destroy(&u->state_mu);
        pthread_mutex_destroy(&u->health_file_mu);
        pthread_mutex_destroy(&u->mu);
        free(u);
        return NULL;
    }
    u->ep.connect_timeout_ms = u->cfg.connect_timeout;
    u->ep.metadata_timeout_ms = u->cfg.metadata_timeout;
    /* ECR keys sign AWS API calls; they must never be offered to a registry as Basic. */
    if (u->cfg.auth == AUTH_ACCESS_KEY && u->secret && u->cfg.type != PROXY_ECR) {
        u->ep.username = u->cfg.access_key;
        u->ep.password = u->secret;
    }
    struct health_snapshot h;
    upstream_health(u, &h); /* a daemon's file says ok from the start, not a former state */
    return u;
}

void upstream_ref(struct upstream *u)
{
    pthread_mutex_lock(&u->mu);
    u->refs++;
    pthread_mutex_unlock(&u->mu);
}

const struct proxy *upstream_config(const struct upstream *u)
{
    return &u->cfg;
}

const char *upstream_secret(const struct upstream *u)
{
    return u->secret;
}

const struct fetch_endpoint *upstream_endpoint(const struct upstream *u)
{
    return &u->ep;
}

const char *upstream_platform_filter(const struct upstream *u)
{
    return engine_platform_filter(u->eng);
}

const struct driver_ops *upstream_driver(const struct upstream *u)
{
    return u->drv;
}

void upstream_state_lock(struct upstream *u)
{
    pthread_mutex_lock(&u->state_mu);
}

void upstream_state_unlock(struct upstream *u)
{
    pthread_mutex_unlock(&u->state_mu);
}

void *upstream_state(struct upstream *u)
{
    return u->drv_state;
}

void upstream_set_state(struct upstream *u, void *st, void (*free_fn)(void *))
{
    if (u->drv_state && u->drv_state_free)
        u->drv_state_free(u->drv_state);
    u->drv_state = st;
    u->drv_state_free = free_fn;
}

void upstream_unref(struct upstream *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->mu);
    bool last = --u->refs == 0;
    pthread_mutex_unlock(&u->mu);
    if (!last)
        return;
    upstream_set_state(u, NULL, NULL);
    if (u->secret) {
        secret_wipe(u->secret, strlen(u->secret));
        free(u->secret);
    }
    upstream__origins_free(u);
    egress_policy_unref(u->ep.egress);
    config_proxy_clear(&u->cfg);
    free(u->health_file);
    pthread_mutex_destroy(&u->health_file_mu);
    pthread_mutex_destroy(&u->state_mu);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

bool upstream_backing_off(struct upstream *u)
{
    pthread_mutex_lock(&u->mu);
    bool off = u->offline_until_ms > clock_mono_ms() || upstream__origins_all_off(u, NULL);
    pthread_mutex_unlock(&u->mu);
    return off;
}

/* With mu held: the state the proxy is in now. */
static enum health_state state_of(struct upstream *u)
{
    if (u->cfg.offline)
        return HEALTH_OFFLINE;
    if (u->offline_until_ms > clock_mono_ms() || upstream__origins_all_off(u, NULL))
        return HEALTH_BACKING_OFF;
    if (u->failing)
        return u->stale_served ? HEALTH_STALE : HEALTH_FAILING;
    return HEALTH_OK;
}

/* With mu held: a new state starts its "since". */
static void set_state(struct upstream *u)
{
    enum health_state st = state_of(u);
    if (st != u->health.state || !u->health.since) {
        u->health.state = st;
        u->health.since = (int64_t)time(NULL);
    }
}

/* Rewrites STATEDIR/health/<key>.json (health_write skips an unchanged text). */
static void health_flush(struct upstream *u)
{
    struct health_snapshot h;
    upstream_health(u, &h);
}

void upstream_note_success(struct upstream *u)
{
    pthread_mutex_lock(&u->mu);
    int64_t now_s = (int64_t)time(NULL);
    /* The file changes with the state, and at most once a minute for last_success alone. */
    bool flush = u->failing || u->health.state != HEALTH_OK || u->health.last_success + 60 <= now_s;
    if (u->failing)
        log_warn("proxy %s: recovered: the remote answers again (after %d failures, last cause "
                 "%s)",
                 u->cfg.key, u->health.consecutive_failures,
                 failure_cause_name(u->health.cause));
    u->failing = false;
    u->stale_served = false;
    u->failures = 0;
    u->offline_until_ms = 0;
    u->backoff_ms = UPSTREAM_BACKOFF_START_MS;
    u->health.consecutive_failures = 0;
    u->health.retry_at = 0;
    u->health.last_success = now_s;
    set_state(u);
    pthread_mutex_unlock(&u->mu);
    if (flush)
        health_flush(u);
}

/* With mu held: one warning per proxy and cause a minute, with what was suppressed meanwhile. */
void upstream__log_failure(struct upstream *u, const struct failure *f, const char *url)
{
    int64_t now = clock_mono_ms();
    unsigned c = (unsigned)f->cause;
    if (u->log_at_ms[c] && now - u->log_at_ms[c] < UPSTREAM_LOG_INTERVAL_MS) {
        u->log_suppressed[c]++;
        return;
    }
    char sup[64] = "";
    if (u->log_suppressed[c])
        snprintf(sup, sizeof(sup), " (%u more since the last line)", u->log_suppressed[c]);
    char status[24] = "-";
    if (f->status > 0)
        snprintf(status, sizeof(status), "%ld", f->status);
    log_warn("proxy %s: %s failure, status %s%s%s: %s%s", u->cfg.key, failure_cause_name(f->cause),
             status, f->code[0] ? " " : "", f->code, url, sup);
    u->log_at_ms[c] = now;
    u->log_suppressed[c] = 0;
}

void upstream_note_failure(struct upstream *u, const struct failure *f, const char *url)
{
    char clean[512];
    failure_url_redact(url, clean, sizeof(clean));
    pthread_mutex_lock(&u->mu);
    u->failing = true;
    u->stale_served = false;
    u->health.cause = f->cause;
    u->health.status = f->status;
    snprintf(u->health.code, sizeof(u->health.code), "%s", f->code);
    snprintf(u->health.url, sizeof(u->health.url), "%s", clean);
    u->health.last_failure = (int64_t)time(NULL);
    u->health.consecutive_failures++;
    if ((unsigned)f->cause < FAILURE_CAUSE_COUNT)
        u->health.errors[f->cause]++;
    upstream__log_failure(u, f, clean);
    if (failure_is_remote(f)) {
        u->failures++;
        if (u->failures >= UPSTREAM_FAILS_BEFORE_OFFLINE) {
            u->offline_until_ms = clock_mono_ms() + u->backoff_ms;
            u->health.retry_at = (int64_t)time(NULL) + (u->backoff_ms + 999) / 1000;
            log_info("proxy %s: %d consecutive failures; not contacting the remote for %d ms",
                     u->cfg.key, u->failures, u->backoff_ms);
            u->backoff_ms = u->backoff_ms * 2 > UPSTREAM_BACKOFF_MAX_MS ? UPSTREAM_BACKOFF_MAX_MS
                                                                        : u->backoff_ms * 2;
        }
    } else {
        /* The remote answered: it is alive, so the back-off starts over. */
        u->failures = 0;
        u->backoff_ms = UPSTREAM_BACKOFF_START_MS;
    }
    set_state(u);
    pthread_mutex_unlock(&u->mu);
    failure_note_set(u->cfg.key, f, url, true);
    health_flush(u);
}

bool upstream_outcome(struct upstream *u, int rc, const struct fetch_response *resp,
                      const char *url, bool final)
{
    struct failure f;
    long status = resp ? resp->status : 0;
    bool failed = failure_classify(rc, status, resp ? (enum failure_cause)resp->cause : 0, &f);
    if (resp && resp->status) {
        upstream_note_response(u, resp);
        if (resp->ratelimit_remaining >= 0) {
            pthread_mutex_lock(&u->mu);
            u->health.ratelimit_remaining = resp->ratelimit_remaining;
            u->health.ratelimit_limit = resp->ratelimit_limit;
            pthread_mutex_unlock(&u->mu);
        }
    }
    if (failed && f.cause == FAILURE_AUTH && !final) {
        /* A challenge the driver may yet answer: the caller decides (failure note only). */
        failure_note_set(u->cfg.key, &f, url, false);
        return true;
    }
    if (failed)
        upstream_note_failure(u, &f, url);
    else if (rc >= 0)
        upstream_note_success(u);
    /* else: ended by us (cancelled, disk full), which says nothing about the remote */
    return failed;
}

void upstream_count_request(struct upstream *u, const char *method, bool head)
{
    atomic_fetch_add(&u->eng->upstream_requests, 1);
    pthread_mutex_lock(&u->mu);
    if (head)
        u->health.requests_head++;
    else if (!method || strcmp(method, "GET") == 0)
        u->health.requests_get++;
    else
        u->health.requests_other++;
    pthread_mutex_unlock(&u->mu);
}

void upstream_note_stale(struct upstream *u)
{
    pthread_mutex_lock(&u->mu);
    if (u->failing && !u->stale_served) {
        u->stale_served = true;
        set_state(u);
    }
    pthread_mutex_unlock(&u->mu);
}

bool upstream_last_failure(struct upstream *u, struct failure *out)
{
    pthread_mutex_lock(&u->mu);
    bool failing = u->failing || u->offline_until_ms > clock_mono_ms();
    memset(out, 0, sizeof(*out));
    if (failing) {
        out->cause = u->health.cause;
        out->status = u->health.status;
        snprintf(out->code, sizeof(out->code), "%s", u->health.code);
    }
    pthread_mutex_unlock(&u->mu);
    return failing && out->cause != FAILURE_NONE;
}

void upstream_health(struct upstream *u, struct health_snapshot *out)
{
    int64_t urls_retry_at;
    pthread_mutex_lock(&u->mu);
    set_state(u);
    if (u->health.state != HEALTH_BACKING_OFF)
        u->health.retry_at = 0;
    else if (upstream__origins_all_off(u, &urls_retry_at) && urls_retry_at > u->health.retry_at)
        u->health.retry_at = urls_retry_at;
    *out = u->health;
    upstream__origins_health(u, out);
    pthread_mutex_unlock(&u->mu);
    snprintf(out->key, sizeof(out->key), "%s", u->cfg.key);
    if (u->eng && u->eng->state_dir && u->eng->publish_health) {
        pthread_mutex_lock(&u->health_file_mu);
        if (!u->retired)
            health_write(u->eng->state_dir, out, &u->health_file);
        pthread_mutex_unlock(&u->health_file_mu);
    }
}

void upstream_retire(struct upstream *u, struct upstream *const *cur, size_t n)
{
    bool kept = false, same_key = false;
    for (size_t i = 0; i < n; i++) {
        kept = kept || cur[i] == u;
        same_key = same_key || strcmp(cur[i]->cfg.key, u->cfg.key) == 0;
    }
    if (kept)
        return;
    pthread_mutex_lock(&u->health_file_mu);
    u->retired = true;
    if (!same_key && u->eng && u->eng->state_dir && u->eng->publish_health)
        health_file_remove(u->eng->state_dir, u->cfg.key);
    pthread_mutex_unlock(&u->health_file_mu);
}

void upstream_hold(struct upstream *u, long seconds)
{
    if (seconds <= 0)
        return;
    if (seconds > UPSTREAM_HOLD_MAX_S)
        seconds = UPSTREAM_HOLD_MAX_S;
    int64_t until = clock_mono_ms() + seconds * 1000;
    pthread_mutex_lock(&u->mu);
    if (until > u->offline_until_ms) {
        u->offline_until_ms = until;
        u->health.retry_at = (int64_t)time(NULL) + seconds;
    }
    set_state(u);
    pthread_mutex_unlock(&u->mu);
    health_flush(u);
    log_info("proxy %s: the remote asks to wait %ld s (Retry-After); serving cached copies",
             u->cfg.key, seconds);
}

void upstream_note_response(struct upstream *u, const struct fetch_response *r)
{
    if (r && (r->status == 429 || r->status == 503) && r->retry_after > 0)
        upstream_hold(u, r->retry_after);
}

char *upstream_url(const struct upstream *u, const char *path)
{
    size_t cap = strlen(u->cfg.url) + strlen(path) * 3 + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    strcpy(out, u->cfg.url);
    char *w = out + strlen(out);
    /* Escape each segment but keep the separators: remote paths map 1:1 onto mount paths. */
    static const char keep[] = "-._~!$&'()*+,;=:@/";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr(keep, *p)) {
            *w++ = (char)*p;
        } else {
            w += sprintf(w, "%%%02X", *p);
        }
    }
    *w = '\0';
    return out;
}

int upstream_perform(struct upstream *u, const struct fetch_request *req,
                     struct fetch_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    if (u->cfg.offline)
        return -ENETUNREACH;
    if (upstream_backing_off(u))
        return -EREMOTEIO;
    int cred = upstream_credentials_check(u);
    if (cred < 0)
        return cred;
    struct fetch_request r = *req;
    if (!r.ep)
        r.ep = &u->ep;
    bool asked;
    int rc = upstream__perform_in_order(u, &r, resp, &asked);
    if (!asked)
        return rc;
    struct failure f;
    upstream_outcome(u, rc, resp, r.url, false);
    if (failure_classify(rc, resp->status, (enum failure_cause)resp->cause, &f) &&
        failure_is_remote(&f) && rc != -ELOOP)
        return -EREMOTEIO;
    return rc;
}

int upstream_credentials_check(struct upstream *u)
{
    if (!u->secret_err)
        return 0;
    struct failure f = {.cause = FAILURE_AUTH};
    upstream_note_failure(u, &f, u->cfg.url);
    failure_note_set(u->cfg.key, &f, u->cfg.url, true);
    return -EACCES;
}

int upstream_request(struct upstream *u, const char *url, bool head, size_t max_body,
                     struct fetch_response *resp)
{
    struct fetch_request req = {
        .url = url, .head = head, .timeout_ms = FETCH_META_TIMEOUT_MS, .max_body = max_body};
    /* (FETCH_META_TIMEOUT_MS: fetch_perform takes the proxy's --metadata-timeout from u->ep) */
    return upstream_perform(u, &req, resp);
}
