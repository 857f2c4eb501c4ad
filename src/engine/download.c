/*
 * download: opening a file from its remote through a download shared in the
 * flight table (engine__open_download; reader.c decides when).
 *
 * The steps, each a function with one exit: the checksum the content must
 * match (the node's or the driver's); content named by a sha256 that this
 * proxy stored already is opened at once; else the request's headers (a
 * conditional request when a stale copy is kept, the driver's credentials),
 * the flight is started or joined, and its first answer decides: a body
 * streams, 304 keeps the stored copy, 404/410 is remembered as absence, any
 * other failure serves the stored copy marked stale or fails with its cause.
 * A credential the registry refused before its time gets one more attempt.
 * The callbacks (dl_*) record what the download brought, whoever waits.
 */
#include "engine_i.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Context a download carries to its completion callbacks. */
struct dl_ctx {
    struct engine *e;
    struct upstream *u;
    char *top;
    char *path;
    char *url;
    char *asked; /* the URL the download asks now: url's place on one of the proxy's URLs */
    int restarts; /* on another URL after a failure: each URL twice at most */
    char expect_sha256[65]; /* content named by digest, or "" */
    bool deferred; /* the open returned before the answer (its probe waits for the first read) */
    char *cond;    /* the conditional request header (revalidating a stored copy), or NULL */
    int64_t started;
};

/* After another process's download of the same key: is the object here now? */
static bool dl_recheck(void *arg, char hex[65])
{
    struct dl_ctx *c = arg;
    struct engine *e = c->e;
    if (c->expect_sha256[0]) {
        snprintf(hex, 65, "%s", c->expect_sha256);
        struct node sn = {.top = c->top, .url = c->url};
        return store_blob_size(&e->store, hex) >= 0 &&
               engine__scope_check(e, NULL, &sn, hex, NULL) == 1;
    }
    struct node n;
    bool ok = false;
    pthread_mutex_lock(&e->mu);
    if (index_find(e->ix, c->top, c->path, &n) == 0) {
        ok = n.digest[0] && n.checked >= c->started;
        if (ok)
            snprintf(hex, 65, "%s", n.digest);
        node_clear(&n);
    }
    pthread_mutex_unlock(&e->mu);
    return ok && store_blob_size(&e->store, hex) >= 0;
}

void engine__flight_key(const char *top, const char *path, const char *expect, char *buf,
                        size_t len)
{
    struct hash_expect ex;
    if (expect && hash_expect_parse(expect, &ex) == 0 && ex.algo == HASH_SHA256)
        snprintf(buf, len, "sha256:%s@%s", ex.hex, top); /* one proxy's copy: not shared */
    else
        snprintf(buf, len, "url:%s/%s", top, path);
}

static void dl_free(void *arg)
{
    struct dl_ctx *c = arg;
    upstream_unref(c->u);
    free(c->top);
    free(c->path);
    free(c->url);
    free(c->asked);
    free(c->cond);
    free(c);
}

/* The download of asked failed (flight.h): the same file on the proxy's next URL, or NULL. */
static char *dl_next_url(void *arg, const char *asked, int err, const struct fetch_response *resp)
{
    struct dl_ctx *c = arg;
    if (++c->restarts > 2 * (int)c->u->norigins)
        return NULL; /* URLs that keep failing in turn, each after the other's back-off */
    char *next = upstream_next_url(c->u, asked, err, resp);
    if (next) {
        free(c->asked);
        c->asked = strdup(next);
    }
    return next;
}

static void dl_done(void *arg, const char *hex, int64_t size, const struct fetch_response *resp)
{
    struct dl_ctx *c = arg;
    struct engine *e = c->e;
    struct node n;
    if (c->asked)
        upstream_note_url_success(c->u, c->asked);
    upstream_note_success(c->u);
    engine__path_failed(e, c->top, c->path, NULL);
    atomic_fetch_add(&e->upstream_bytes, size);
    engine__object_added(e, hex, size, false);
    char repo[4096];
    index_scope_repo(c->url, repo, sizeof(repo));
    pthread_mutex_lock(&e->mu);
    index_scope_add(e->ix, hex, c->top, repo); /* this proxy's upstream served it */
    if (index_find(e->ix, c->top, c->path, &n) == 0) {
        snprintf(n.digest, sizeof(n.digest), "%s", hex);
        n.size = size;
        n.checked = engine__now();
        n.stale = false;
        free(n.etag);
        n.etag = resp->etag ? strdup(resp->etag) : NULL;
        free(n.last_modified);
        n.last_modified = resp->last_modified ? strdup(resp->last_modified) : NULL;
        index_put(e->ix, &n);
        node_clear(&n);
    }
    pthread_mutex_unlock(&e->mu);
}

/* Before a body is written: make room on the cache's disk for it (and a margin). */
static void dl_start(void *arg, int64_t length)
{
    struct dl_ctx *c = arg;
    engine__ensure_room(c->e, length);
}

static void dl_fail(void *arg, int err, const struct fetch_response *resp)
{
    struct dl_ctx *c = arg;
    if (err == -ENOSPC) {
        /* The disk filled up under the quota: make room so the next attempt can succeed. */
        struct engine_stats s;
        if (engine_stats(c->e, &s) == 0) {
            log_warn("no space left for a download; evicting half of the cache (%lld bytes)",
                     (long long)s.cache_bytes);
            engine_evict_to(c->e, s.cache_bytes / 2);
        }
        return;
    }
    struct fetch_response none = {0};
    if (!resp)
        resp = &none;
    struct failure f = {.cause = FAILURE_DIGEST, .status = resp->status};
    if (err == -EBADMSG) /* the answer came and did not verify: the remote is alive */
        upstream_note_failure(c->u, &f, c->url);
    else if (c->deferred && err == 0 && (resp->status == 404 || resp->status == 410)) {
        /* The open had returned: a file its listing names is gone, and the read fails (EIO)
         * with this cause, where an open would have said ENOENT. */
        f.cause = FAILURE_HTTP;
        log_info("%s/%s: the remote answered %ld for a listed file", c->top, c->path,
                 resp->status);
    }
    /* 401/403: the flight asked again with a fresh credential (dl_reauth) if the driver could
     * give one; an opener still waiting records the refusal (download_http_error), else (the
     * open had returned, or a later ranged request of a partial object was refused: err < 0)
     * it is final here. */
    else if (!upstream_outcome(c->u, err, resp, c->url, err < 0 || c->deferred) ||
             !failure_classify(err, resp->status, (enum failure_cause)resp->cause, &f))
        return;
    engine__path_failed(c->e, c->top, c->path, &f); /* a read may fail after its open */
}

/*
 * A download that failed, as this operation's front door tells it: its own
 * cause, never the proxy's last failure (another request may have changed
 * that meanwhile). A flight's -EBADMSG is a failed verification: the note
 * says digest (dl_fail recorded it), and engine__failed and the shim map it
 * to EIO. Returns the flight's error.
 */
int engine__download_failed(struct flight *fl, const char *proxy, const char *url)
{
    long status = 0;
    int err = -EIO;
    flight_wait_response(fl, 0, NULL, NULL, &status, &err); /* it ended: returns at once */
    if (err == -EBADMSG) {
        struct failure f = {.cause = FAILURE_DIGEST, .status = status};
        failure_note_set(proxy, &f, url, true);
    }
    return err < 0 ? err : -EIO;
}

/*
 * The checksum n's download must match: the node's, else the driver's (which may ask the
 * remote). *expect_s is its text (malloc'd, NULL when none), *expect its parsed form. Returns 0,
 * the driver's failure (-EREMOTEIO or -ETIMEDOUT: the remote's), or -EIO for a checksum that
 * does not parse.
 */
static int download_expectation(struct upstream *u, const struct node *n, char **expect_s,
                                struct hash_expect *expect)
{
    int rc = 0;
    *expect_s = n->expect ? strdup(n->expect) : NULL;
    if (n->expect && !*expect_s)
        return -ENOMEM;
    if (!*expect_s && u->drv->expectation) {
        struct drv_entry de = {.kind = NODE_FILE, .size = n->size, .url = n->url};
        rc = u->drv->expectation(u, n->path, &de, expect_s);
        if (rc == -ENOENT)
            rc = 0;
    }
    if (rc == 0 && *expect_s && hash_expect_parse(*expect_s, expect) < 0) {
        log_warn("%s/%s: unusable checksum \"%.80s\" from the remote", n->top, n->path, *expect_s);
        rc = -EIO;
    }
    return rc;
}

/*
 * Content named by a sha256 may be stored already, fetched through another path of this proxy
 * from the same location (another proxy's copy is not this proxy's to serve: the scoping rule,
 * by_digest.c). Then it is opened as a hit and n records its digest. Returns 0 (opened), 1 (to be
 * downloaded) or the failure (-ENOENT: the upstream said 404).
 */
static int open_stored_digest(struct engine *e, struct upstream *u, const struct node *n,
                              const struct hash_expect *expect, struct engine_file **out)
{
    int sc = expect->algo == HASH_SHA256 && store_blob_size(&e->store, expect->hex) >= 0
                 ? engine__scope_check(e, u, n, expect->hex, NULL)
                 : 0;
    if (sc != 1)
        return sc < 0 ? sc : 1;
    struct node cur;
    pthread_mutex_lock(&e->mu);
    if (index_get(e->ix, n->ino, &cur) == 0) {
        snprintf(cur.digest, sizeof(cur.digest), "%.64s", expect->hex);
        cur.checked = engine__now();
        index_put(e->ix, &cur);
        node_clear(&cur);
    }
    pthread_mutex_unlock(&e->mu);
    atomic_fetch_add(&e->hits, 1);
    return engine__open_blob(e, expect->hex, out);
}

/*
 * A download's request headers: a conditional one when a mutable copy is stored (have), then
 * the driver's (credentials). *remote says whether a failure is the remote's, for which a stale
 * copy may stand in (the driver's; its -ENOENT becomes -EIO).
 */
/* The conditional header of a download revalidating a stored copy of n (malloc'd), or NULL. */
static char *download_cond(const struct node *n, bool have)
{
    char *h = NULL;
    int rc = 0;
    if (have && n->is_mutable && n->etag)
        rc = asprintf(&h, "If-None-Match: %s", n->etag);
    else if (have && n->is_mutable && n->last_modified)
        rc = asprintf(&h, "If-Modified-Since: %s", n->last_modified);
    return rc < 0 ? NULL : h;
}

/* The headers of a download of url: cond (may be NULL) and the driver's (its credential). */
static int download_headers(struct upstream *u, const char *url, const char *cond,
                            struct curl_slist **hdrs, bool *remote)
{
    int rc = 0;
    *remote = false;
    if (cond)
        rc = fetch_header_add(hdrs, cond);
    if (rc == 0 && u->drv->request_headers && (rc = u->drv->request_headers(u, url, hdrs)) < 0) {
        *remote = true;
        rc = rc == -ENOENT ? -EIO : rc;
    }
    return rc;
}

/*
 * The first answer, or a later ranged request of a partial object, refused the credential
 * (flight.h, reauth): when the driver puts it down to a credential refused before its time (it
 * forgets it), the headers with a fresh one, to ask once more. Here for every download, also
 * one whose open has returned already.
 */
static bool dl_reauth(void *arg, long status, struct curl_slist **headers)
{
    struct dl_ctx *c = arg;
    struct upstream *u = c->u;
    bool remote;
    if (!u->drv->auth_rejected || !u->drv->auth_rejected(u, c->url, status, NULL) ||
        download_headers(u, c->url, c->cond, headers, &remote) < 0)
        return false;
    upstream_count_request_at(u, c->asked, NULL, false);
    return true;
}

/* The context a download of n carries to its callbacks (dl_done, dl_fail, ...); NULL on ENOMEM. */
static struct dl_ctx *dl_ctx_new(struct engine *e, struct upstream *u, const struct node *n,
                                 const struct hash_expect *expect)
{
    struct dl_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx) {
        ctx->e = e;
        ctx->u = u;
        upstream_ref(u);
        ctx->top = strdup(n->top);
        ctx->path = strdup(n->path);
        ctx->url = strdup(n->url);
        ctx->asked = upstream_pick_url(u, n->url); /* the first of its URLs not backing off */
        ctx->started = engine__now();
        if (expect->algo == HASH_SHA256)
            snprintf(ctx->expect_sha256, sizeof(ctx->expect_sha256), "%.64s", expect->hex);
    }
    return ctx;
}

/*
 * Starts the download of n under the single-flight key, or joins the one running: 0 with *f
 * (the caller releases it), or the failure; *remote says whether it is the remote's (a stale
 * copy may stand in).
 */
static int download_join(struct engine *e, struct upstream *u, const struct node *n, bool have,
                         const struct hash_expect *expect, const char *key,
                         const struct engine_wait *w, struct flight **f, bool *remote)
{
    struct curl_slist *hdrs = NULL;
    bool started = false;
    char *cond = download_cond(n, have);
    int rc = download_headers(u, n->url, cond, &hdrs, remote);
    struct dl_ctx *ctx = rc == 0 ? dl_ctx_new(e, u, n, expect) : NULL;
    int64_t first = w ? w->first_offset : 0;
    if (rc == 0 && (!ctx || !ctx->asked))
        rc = -ENOMEM;
    if (ctx) {
        ctx->deferred = first < 0;
        ctx->cond = cond;
        cond = NULL;
    }
    free(cond);
    if (rc == 0) {
        struct flight_source src = {
            .url = ctx->asked,
            .ep = &u->ep,
            .headers = hdrs, /* copied by the flight */
            .expect = *expect,
            .expect_size =
                u->drv->sizes_exact && expect->algo == HASH_SHA256 && n->size >= 0 ? n->size : -1,
            /* No stored copy: a large file becomes a partial object (src/fetch/lazy.c). */
            .size_hint = have ? -1 : n->size,
            /*
             * A FUSE open's (< 0: its first read tells) lets the flight wait for that read, so
             * the open returns before any answer; a credential refused before its time is
             * asked again by the flight itself (dl_reauth), so a docker blob's tail read is one
             * ranged GET too.
             */
            .first_offset = first,
            .first_len = w && first >= 0 ? w->first_len : 0,
            .fill = (enum flight_fill)e->fill,
            .streams = e->streams,
            .streams_min = e->streams_min,
            /*
             * A proxy with several URLs streams whole bodies: a download that fails starts
             * again on the next URL from its first byte, which a partial object's chunks from
             * two URLs could not (they would mix two servers' bytes; docs/SCALE-OUT.md).
             */
            .lazy_min = u->cfg.mirrors && u->cfg.mirrors[0] ? -1 : e->lazy_min,
            .on_done = dl_done,
            .on_fail = dl_fail,
            .next_url = dl_next_url,
            .recheck = dl_recheck,
            .reauth = u->drv->auth_rejected ? dl_reauth : NULL,
            .on_start = dl_start,
            .free_arg = dl_free,
            .arg = ctx};
        rc = flight_join(e->flights, key, &src, f, &started);
        *remote = rc < 0;
        if (started)
            upstream_count_request_at(u, ctx->asked, NULL, false);
        else /* failed, or joined someone else's download: their context does the bookkeeping */
            dl_free(ctx);
    } else if (ctx) {
        dl_free(ctx);
    }
    curl_slist_free_all(hdrs);
    return rc;
}

/* A download that answered with a body: the file streams from the flight (taken from *f). */
static int open_streaming(struct engine *e, struct upstream *u, const struct node *n, bool have,
                          struct flight **f, struct engine_file **out, bool *changed)
{
    struct engine_file *fh = engine__file_new(e);
    if (!fh)
        return -ENOMEM;
    atomic_fetch_add(&e->misses, 1);
    fh->flight = *f;
    *f = NULL;
    snprintf(fh->proxy, sizeof(fh->proxy), "%.63s", u->cfg.key);
    int64_t have_b, total;
    flight_progress(fh->flight, &have_b, &total);
    fh->size = total >= 0 ? total : n->size;
    *changed = have;
    *out = fh;
    return 0;
}

/*
 * An HTTP error status the download got, final: 404 and 410 are remembered as absence for the
 * negative TTL; any other is recorded with its cause and a stale copy stands in if there is one.
 */
static int download_http_error(struct engine *e, struct upstream *u, const struct node *n,
                               bool have, long status, struct engine_file **out)
{
    int rc = -ENOENT;
    if (status == 404 || status == 410) {
        engine__remember_absent(e, n, u->cfg.negative_ttl);
    } else {
        struct failure fl = {.cause = failure_of_status(status), .status = status};
        if (fl.cause == FAILURE_AUTH) /* final now: dl_fail left it to this reader */
            upstream_note_failure(u, &fl, n->url);
        else
            failure_note_set(u->cfg.key, &fl, n->url, true);
        rc = engine__serve_stale(e, n, have, failure_status_errno(status), out);
    }
    return rc;
}

/* What a download's wait ended with (st, status: flight_wait_response's), as the open's result. */
static int download_outcome(struct engine *e, struct upstream *u, struct node *n, bool have, int st,
                            long status, struct flight **f, struct engine_file **out, bool *changed)
{
    int rc;
    switch (st) {
    case FLIGHT_CONNECTING: /* its first request waits for this opener's first read */
    case FLIGHT_STREAMING:
    case FLIGHT_DONE:
        rc = open_streaming(e, u, n, have, f, out, changed);
        break;
    case FLIGHT_NOT_MODIFIED:
        rc = have ? 0 : -EIO;
        if (have) {
            engine__mark_node(e, n, false, true);
            atomic_fetch_add(&e->hits, 1);
            rc = engine__open_blob(e, n->digest, out);
        }
        break;
    case FLIGHT_HTTP_ERROR:
        rc = download_http_error(e, u, n, have, status, out);
        break;
    case FLIGHT_PARTIAL: /* ended for want of readers as this one joined: not an answer */
        rc = engine__serve_stale(e, n, have, -EIO, out);
        break;
    case FLIGHT_FAILED:
        rc = engine__serve_stale(e, n, have, engine__download_failed(*f, u->cfg.key, n->url), out);
        break;
    default: /* the wait itself ended: -ETIMEDOUT or -EINTR */
        rc = engine__serve_stale(e, n, have, st, out);
        break;
    }
    return rc;
}

/* One download of n and its outcome (a refused credential is asked again: dl_reauth). */
static int download_attempt(struct engine *e, struct upstream *u, struct node *n, bool have,
                            const struct hash_expect *expect, const char *key,
                            const struct engine_wait *w, struct engine_file **out, bool *changed)
{
    struct flight *f = NULL;
    bool remote = false;
    long status = 0;
    int rc = download_join(e, u, n, have, expect, key, w, &f, &remote);
    if (rc < 0 && remote) {
        rc = engine__serve_stale(e, n, have, rc, out);
    } else if (rc == 0) {
        /*
         * Bounded waits: with a copy past its TTL, the remote has UPSTREAM_STALE_WAIT_MS to
         * answer, then the copy is served stale while the download goes on and stores what
         * comes.
         */
        int st = flight_wait_response(f, have ? UPSTREAM_STALE_WAIT_MS : ENGINE_OPEN_TIMEOUT_MS,
                                      w ? w->cancelled : NULL, w ? w->arg : NULL, &status, NULL);
        rc = download_outcome(e, u, n, have, st, status, &f, out, changed);
    }
    flight_release(f);
    return rc;
}

/*
 * Opens n of proxy u from its remote: content named by a digest this proxy stored already, else
 * a download shared through the flight table (its flight asks once more after a refused
 * credential: dl_reauth).
 * have: a stored copy past its TTL, revalidated with a conditional request and served stale if
 * the remote fails.
 */
int engine__open_download(struct engine *e, struct upstream *u, struct node *n, bool have,
                          const struct engine_wait *w, struct engine_file **out, bool *changed)
{
    char *expect_s = NULL;
    struct hash_expect expect = {0};
    char key[4400];
    int rc = download_expectation(u, n, &expect_s, &expect);
    if (rc == -EREMOTEIO || rc == -ETIMEDOUT)
        rc = engine__serve_stale(e, n, have, rc, out);
    else if (rc == 0 && (rc = open_stored_digest(e, u, n, &expect, out)) == 1) {
        engine__flight_key(n->top, n->path, expect_s, key, sizeof(key));
        rc = download_attempt(e, u, n, have, &expect, key, w, out, changed);
    }
    free(expect_s);
    return rc;
}
