/*
 * upstream: per-proxy runtime state — credentials, health and back-off, and
 * the cached-document helper that drivers use for index pages and metadata.
 *
 * Documents are stored in the content-addressed store like any object and
 * recorded as hidden rows (kind NODE_FILE, parent 0, name "doc:<url>") so
 * they survive restarts and stay readable when the remote is down.
 */
#include "engine_i.h"
#include "upstreamfs/clock.h"
#include "upstreamfs/egress.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/log.h"

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
    u->drv = driver_for_type(cfg->type);
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
    if (!u->ep.egress || (u->cfg.url && egress_policy_trust(u->ep.egress, u->cfg.url) < 0)) {
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
        explicit_bzero(u->secret, strlen(u->secret));
        free(u->secret);
    }
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
    bool off = u->offline_until_ms > clock_mono_ms();
    pthread_mutex_unlock(&u->mu);
    return off;
}

/* With mu held: the state the proxy is in now. */
static enum health_state state_of(struct upstream *u)
{
    if (u->cfg.offline)
        return HEALTH_OFFLINE;
    if (u->offline_until_ms > clock_mono_ms())
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
static void log_failure(struct upstream *u, const struct failure *f, const char *url)
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
    log_failure(u, f, clean);
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
    pthread_mutex_lock(&u->mu);
    set_state(u);
    if (u->health.state != HEALTH_BACKING_OFF)
        u->health.retry_at = 0;
    *out = u->health;
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
    upstream_count_request(u, r.method, r.head);
    int rc = fetch_perform(&r, resp);
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

/* Reads a whole stored object into memory (documents are capped at UPSTREAM_DOC_MAX). */
static int read_object(struct engine *e, const char *hex, char **body, size_t *len)
{
    int fd = store_open_blob(&e->store, hex);
    if (fd < 0)
        return fd;
    off_t sz = lseek(fd, 0, SEEK_END);
    if (sz < 0 || sz > (off_t)UPSTREAM_DOC_MAX) {
        close(fd);
        return -EFBIG;
    }
    char *b = malloc((size_t)sz + 1);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    ssize_t r = pread(fd, b, (size_t)sz, 0);
    close(fd);
    if (r != sz) {
        free(b);
        return -EIO;
    }
    b[sz] = '\0';
    *body = b;
    *len = (size_t)sz;
    return 0;
}

void upstream_doc_clear(struct upstream_doc *d)
{
    free(d->body);
    free(d->content_type);
    free(d->www_authenticate);
    memset(d, 0, sizeof(*d));
}

/* Serves the stored copy of a document row. */
static int doc_from_store(struct engine *e, const struct node *n, struct upstream_doc *out)
{
    int rc = read_object(e, n->digest, &out->body, &out->len);
    if (rc == 0) {
        snprintf(out->sha256, sizeof(out->sha256), "%s", n->digest);
        out->content_type = n->ctype ? strdup(n->ctype) : NULL;
    }
    return rc;
}

/*
 * One document: the stored copy while it is fresh, else the remote.
 * leader: a fetch of the same document by another thread that ended while
 * this one waited, or NULL; when it succeeded its stored copy is taken
 * whatever its age (it is newer than this request), stale when it was.
 */
static int doc_fetch(struct upstream *u, const struct upstream_doc_req *dr, const char *name,
                     const struct doc_flight *leader, struct upstream_doc *out)
{
    struct engine *e = u->eng;
    struct node n = {0};
    int rc;
    bool have = false;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&e->mu);
    rc = index_child(e->ix, 0, name, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc == 0 && n.digest[0])
        have = true;
    else if (rc != 0)
        memset(&n, 0, sizeof(n));
    int64_t now = engine__now();
    bool joined = leader && leader->rc == 0;
    if (have &&
        (joined || dr->immutable || u->cfg.offline || now < n.checked + u->cfg.metadata_ttl)) {
        if (doc_from_store(e, &n, out) == 0) {
            out->stale = joined && leader->stale;
            atomic_fetch_add(out->stale ? &e->stale_serves : &e->hits, 1);
            node_clear(&n);
            return 0;
        }
        have = false;
    }
    if (u->cfg.offline) {
        node_clear(&n);
        return -ENETUNREACH;
    }
    struct curl_slist *hdrs = NULL;
    char hb[600];
    rc = 0;
    for (const struct curl_slist *h = dr->headers; h && rc == 0; h = h->next)
        rc = fetch_header_add(&hdrs, h->data);
    if (rc == 0 && have && n.etag) {
        snprintf(hb, sizeof(hb), "If-None-Match: %s", n.etag);
        rc = fetch_header_add(&hdrs, hb);
    } else if (rc == 0 && have && n.last_modified) {
        snprintf(hb, sizeof(hb), "If-Modified-Since: %s", n.last_modified);
        rc = fetch_header_add(&hdrs, hb);
    }
    if (rc < 0) {
        node_clear(&n);
        return rc;
    }
    struct fetch_response r;
    memset(&r, 0, sizeof(r));
    struct fetch_request req = {.url = dr->url,
                                .ep = &u->ep,
                                .headers = hdrs,
                                .timeout_ms = FETCH_META_TIMEOUT_MS,
                                .max_body = dr->max ? dr->max : UPSTREAM_DOC_MAX};
    if (upstream_backing_off(u)) {
        rc = -EREMOTEIO;
    } else if ((rc = upstream_credentials_check(u)) == 0) {
        struct failure f;
        upstream_count_request(u, NULL, false);
        atomic_fetch_add(&e->misses, 1);
        rc = fetch_perform(&req, &r);
        upstream_outcome(u, rc, &r, dr->url, false);
        if (failure_classify(rc, r.status, (enum failure_cause)r.cause, &f) &&
            failure_is_remote(&f) && rc != -ELOOP)
            rc = -EREMOTEIO;
    }
    curl_slist_free_all(hdrs);
    if (rc == 0 && r.status == 304 && have) {
        rc = doc_from_store(e, &n, out);
        if (rc == 0) {
            n.checked = now;
            n.stale = false;
            pthread_mutex_lock(&e->mu);
            index_put(e->ix, &n);
            pthread_mutex_unlock(&e->mu);
        }
    } else if (rc == 0 && r.status == 200) {
        char hex[65];
        struct hash_expect ex;
        hash_sha256_hex(r.body, r.body_len, hex);
        if (dr->expect && hash_expect_parse(dr->expect, &ex) == 0 && ex.algo == HASH_SHA256 &&
            strcmp(ex.hex, hex) != 0) {
            struct failure df = {.cause = FAILURE_DIGEST, .status = r.status};
            log_error("%s: content does not match %s; discarded", dr->url, dr->expect);
            upstream_note_failure(u, &df, dr->url);
            rc = -EIO;
        }
        if (rc == 0)
            rc = store_put_bytes(&e->store, r.body, r.body_len, hex);
        if (rc == 0) {
            engine__object_added(e, hex, (int64_t)r.body_len, false);
            free(n.name);
            n.name = strdup(name);
            free(n.top);
            n.top = strdup(u->cfg.key);
            free(n.path);
            n.path = strdup("");
            free(n.url);
            n.url = strdup(dr->url);
            n.parent = 0;
            n.kind = NODE_FILE;
            n.size = (int64_t)r.body_len;
            snprintf(n.digest, sizeof(n.digest), "%s", hex);
            char repo[4096];
            index_scope_repo(dr->url, repo, sizeof(repo));
            free(n.etag);
            n.etag = r.etag ? strdup(r.etag) : NULL;
            free(n.last_modified);
            n.last_modified = r.last_modified ? strdup(r.last_modified) : NULL;
            free(n.ctype);
            n.ctype = r.content_type ? strdup(r.content_type) : NULL;
            n.checked = now;
            n.is_mutable = !dr->immutable;
            n.stale = false;
            pthread_mutex_lock(&e->mu);
            index_put(e->ix, &n);
            index_scope_add(e->ix, hex, u->cfg.key, repo); /* the blob scoping rule */
            pthread_mutex_unlock(&e->mu);
            out->body = r.body;
            out->len = r.body_len;
            out->content_type = r.content_type ? strdup(r.content_type) : NULL;
            memcpy(out->sha256, hex, sizeof(hex));
            r.body = NULL;
        }
    } else if (rc == 0 && (r.status == 404 || r.status == 410)) {
        rc = -ENOENT;
    } else if (rc == 0) {
        if (r.status == 401 || r.status == 403)
            out->www_authenticate = r.www_authenticate ? strdup(r.www_authenticate) : NULL;
        rc = failure_status_errno(r.status);
    }
    if (rc == -EREMOTEIO && have && doc_from_store(e, &n, out) == 0) {
        /* stale-if-error: the last good copy beats no answer. */
        out->stale = true;
        atomic_fetch_add(&e->stale_serves, 1);
        upstream_note_stale(u);
        rc = 0;
    }
    fetch_response_clear(&r);
    node_clear(&n);
    return rc;
}

static void doc_flight_put(struct doc_flight *f)
{
    if (--f->refs > 0)
        return;
    free(f->name);
    free(f);
}

/* A flight of the document name, started now, held once (by its fetcher); NULL without memory. */
static struct doc_flight *doc_flight_new(const char *name)
{
    struct doc_flight *f = calloc(1, sizeof(*f));
    if (f && !(f->name = strdup(name))) {
        free(f);
        return NULL;
    }
    if (f) {
        f->refs = 1;
        f->started_ms = clock_mono_ms();
    }
    return f;
}

/* Ends flight f with its outcome and wakes its waiters. */
static void doc_flight_finish(struct engine *e, struct doc_flight *f, int rc, bool stale)
{
    pthread_mutex_lock(&e->docs_mu);
    for (struct doc_flight **p = &e->docs; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    f->done = true;
    f->rc = rc;
    f->stale = rc == 0 && stale;
    pthread_cond_broadcast(&e->docs_cv);
    doc_flight_put(f);
    pthread_mutex_unlock(&e->docs_mu);
}

/*
 * Whether the document has a stored copy that is past its TTL (so a caller
 * may be answered with it while the remote is asked: UPSTREAM_STALE_WAIT_MS).
 */
static bool doc_has_stale_copy(struct upstream *u, const struct upstream_doc_req *dr,
                               const char *name)
{
    struct engine *e = u->eng;
    struct node n;
    if (dr->immutable || u->cfg.offline)
        return false;
    pthread_mutex_lock(&e->mu);
    int rc = index_child(e->ix, 0, name, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return false;
    bool stale = n.digest[0] && engine__now() >= n.checked + u->cfg.metadata_ttl &&
                 store_blob_size(&e->store, n.digest) >= 0;
    node_clear(&n);
    return stale;
}

/* A revalidation that outlives the caller which started it (its own copy of the request). */
struct doc_bg {
    struct upstream *u;
    struct doc_flight *f;
    struct upstream_doc_req dr;
    char *url, *expect;
    struct curl_slist *headers;
};

static void doc_bg_free(struct doc_bg *b)
{
    curl_slist_free_all(b->headers);
    free(b->url);
    free(b->expect);
    free(b);
}

static void *doc_bg_main(void *arg)
{
    struct doc_bg *b = arg;
    struct engine *e = b->u->eng;
    struct upstream_doc d;
    int rc = doc_fetch(b->u, &b->dr, b->f->name, NULL, &d);
    bool stale = rc == 0 && d.stale;
    upstream_doc_clear(&d);
    int64_t key = -(int64_t)(intptr_t)b->f; /* a background job key no inode has */
    doc_flight_finish(e, b->f, rc, stale);
    upstream_unref(b->u);
    doc_bg_free(b);
    engine__bg_end(e, key);
    return NULL;
}

/* Runs flight f's fetch on its own thread (it holds a reference of f); false when it can't. */
static bool doc_bg_start(struct upstream *u, const struct upstream_doc_req *dr,
                         struct doc_flight *f)
{
    struct engine *e = u->eng;
    int64_t key = -(int64_t)(intptr_t)f;
    struct doc_bg *b = calloc(1, sizeof(*b));
    if (!b)
        return false;
    b->url = strdup(dr->url);
    b->expect = dr->expect ? strdup(dr->expect) : NULL;
    bool ok = b->url && (!dr->expect || b->expect);
    for (const struct curl_slist *h = dr->headers; ok && h; h = h->next) {
        struct curl_slist *nl = curl_slist_append(b->headers, h->data);
        ok = nl != NULL;
        if (nl)
            b->headers = nl;
    }
    b->dr = *dr;
    b->dr.url = b->url;
    b->dr.expect = b->expect;
    b->dr.headers = b->headers;
    b->u = u;
    b->f = f;
    pthread_t th;
    if (!ok || !engine__bg_begin(e, key)) {
        doc_bg_free(b);
        return false;
    }
    upstream_ref(u);
    if (pthread_create(&th, NULL, doc_bg_main, b) != 0) {
        upstream_unref(u);
        engine__bg_end(e, key);
        doc_bg_free(b);
        return false;
    }
    pthread_detach(th);
    return true;
}

/*
 * Single flight per document (its row name): the first caller fetches, the
 * others wait for it (at most the metadata deadline and a margin) and then
 * take what it stored. Its answer stands for theirs, except a refusal
 * (-EACCES: each caller's credentials and challenge are its own) or a
 * fetch that outlived the wait: those callers ask for themselves.
 *
 * Bounded waits (docs/troubleshooting.md, "Deadlines"): when a copy past its
 * TTL is stored, the fetch runs on a thread of its own and no caller waits
 * for it more than UPSTREAM_STALE_WAIT_MS: then the copy is served, marked
 * stale, and the revalidation goes on, updating the copy when it ends.
 */
int upstream_doc_fetch(struct upstream *u, const struct upstream_doc_req *dr,
                       struct upstream_doc *out)
{
    struct engine *e = u->eng;
    char name[4200];
    snprintf(name, sizeof(name), "doc:%s %s", u->cfg.key, dr->url);
    bool have_stale = doc_has_stale_copy(u, dr, name);
    pthread_mutex_lock(&e->docs_mu);
    struct doc_flight *f = e->docs;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (!f && have_stale) {
        /* Start the revalidation in the background, then wait for it as its first waiter. */
        f = doc_flight_new(name);
        if (f) {
            if (doc_bg_start(u, dr, f)) {
                f->next = e->docs;
                e->docs = f;
            } else {
                doc_flight_put(f);
                f = NULL;
            }
        }
        if (!f)
            have_stale = false; /* fetch here, the whole deadline */
    }
    if (f) {
        f->refs++;
        int64_t deadline = have_stale ? f->started_ms + UPSTREAM_STALE_WAIT_MS
                                      : clock_mono_ms() + (u->cfg.metadata_timeout > 0
                                                        ? u->cfg.metadata_timeout
                                                        : FETCH_META_TIMEOUT_MS) +
                                            5000;
        while (!f->done && clock_mono_ms() < deadline) {
            int64_t left = deadline - clock_mono_ms();
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            if (left > 1000)
                left = 1000;
            ts.tv_sec += (time_t)(left / 1000);
            ts.tv_nsec += (long)(left % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&e->docs_cv, &e->docs_mu, &ts);
        }
        struct doc_flight leader = {.done = f->done, .rc = f->rc, .stale = f->stale};
        doc_flight_put(f);
        pthread_mutex_unlock(&e->docs_mu);
        if (!leader.done && have_stale) {
            /* The remote is slow: the stored copy now, as a leader's stale answer would be. */
            struct doc_flight copy = {.done = true, .rc = 0, .stale = true};
            int rc = doc_fetch(u, dr, name, &copy, out);
            if (rc == 0)
                return 0;
        }
        if (!leader.done || leader.rc == -EACCES)
            return doc_fetch(u, dr, name, NULL, out);
        if (leader.rc != 0) {
            memset(out, 0, sizeof(*out));
            return leader.rc;
        }
        return doc_fetch(u, dr, name, &leader, out); /* (its copy gone: fetches again) */
    }
    f = doc_flight_new(name);
    if (f) {
        f->next = e->docs;
        e->docs = f;
    }
    pthread_mutex_unlock(&e->docs_mu);
    int rc = doc_fetch(u, dr, name, NULL, out);
    if (f)
        doc_flight_finish(e, f, rc, rc == 0 && out->stale);
    return rc;
}

int upstream_doc_get(struct upstream *u, const char *url, char **body, size_t *len, bool *stale)
{
    struct upstream_doc d;
    struct upstream_doc_req req = {.url = url};
    int rc = upstream_doc_fetch(u, &req, &d);
    if (rc == 0) {
        *body = d.body;
        *len = d.len;
        *stale = d.stale;
        d.body = NULL;
    }
    upstream_doc_clear(&d);
    return rc;
}
