/*
 * reader: opening and reading files (see engine.h).
 *
 * An open decides between three sources: the store (content cached and
 * fresh, or the remote failing and a stale copy existing), a generated body
 * (drivers that rewrite documents), or a download shared through the flight
 * table. Mutable content past its TTL is revalidated here with a conditional
 * request; a 304 keeps the cached object, a 200 streams the new one, and a
 * failure serves the old one marked stale. Only 404 is remembered as
 * absence; 401, 403, 5xx, 429 and timeouts never are.
 */
#include "engine_i.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Context a download carries to its completion callbacks. */
struct dl_ctx {
    struct engine *e;
    struct upstream *u;
    char *top;
    char *path;
    char *url;
    char expect_sha256[65]; /* content named by digest, or "" */
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
    free(c);
}

static void dl_done(void *arg, const char *hex, int64_t size, const struct fetch_response *resp)
{
    struct dl_ctx *c = arg;
    struct engine *e = c->e;
    struct node n;
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
    /* 401/403: the reader retries with a fresh credential first, and records it if final. */
    else if (!upstream_outcome(c->u, err, resp, c->url, false) ||
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
static int download_failed(struct flight *fl, const char *proxy, const char *url)
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

struct engine_file *engine__file_new(struct engine *e)
{
    struct engine_file *f = calloc(1, sizeof(*f));
    if (f) {
        f->e = e;
        f->fd = -1;
        pthread_mutex_lock(&e->files_mu);
        f->next = e->files;
        if (e->files)
            e->files->prev = f;
        e->files = f;
        pthread_mutex_unlock(&e->files_mu);
    }
    return f;
}

void engine__close_all_files(struct engine *e)
{
    for (;;) {
        pthread_mutex_lock(&e->files_mu);
        struct engine_file *f = e->files;
        pthread_mutex_unlock(&e->files_mu);
        if (!f)
            break;
        engine_file_close(f);
    }
}

/* Opens a stored object as a complete file. */
static int open_blob(struct engine *e, const char *hex, struct engine_file **out)
{
    int fd = store_open_blob(&e->store, hex);
    if (fd < 0)
        return fd;
    struct engine_file *f = engine__file_new(e);
    if (!f) {
        close(fd);
        return -ENOMEM;
    }
    f->fd = fd;
    f->size = lseek(fd, 0, SEEK_END);
    snprintf(f->digest, sizeof(f->digest), "%s", hex);
    engine__obj_open(e, hex);
    pthread_mutex_lock(&e->mu);
    index_object_touch(e->ix, hex, engine__now());
    pthread_mutex_unlock(&e->mu);
    *out = f;
    return 0;
}

static void mark(struct engine *e, const struct node *n, bool stale, bool checked)
{
    struct node cur;
    pthread_mutex_lock(&e->mu);
    if (index_get(e->ix, n->ino, &cur) == 0) {
        cur.stale = stale;
        if (checked)
            cur.checked = engine__now();
        index_put(e->ix, &cur);
        node_clear(&cur);
    }
    pthread_mutex_unlock(&e->mu);
}

/* The remote failed: serve the last good copy marked stale, or fail. */
static int serve_stale(struct engine *e, const struct node *n, bool have, int err,
                       struct engine_file **out)
{
    if (have && open_blob(e, n->digest, out) == 0) {
        struct upstream *u = engine__upstream(e, n->top);
        if (u) /* the proxy's health says stale while it fails */
            upstream_note_stale(u);
        upstream_unref(u);
        atomic_fetch_add(&e->stale_serves, 1);
        mark(e, n, true, false);
        log_info("%s/%s: remote failed (%s); serving the cached copy as stale", n->top, n->path,
                 strerror(-err));
        return 0;
    }
    return err; /* the front door's errno comes from its cause: engine__failed */
}

static void remember_absent(struct engine *e, const struct node *n, int64_t neg_ttl)
{
    struct node cur;
    pthread_mutex_lock(&e->mu);
    if (index_get(e->ix, n->ino, &cur) == 0) {
        cur.kind = NODE_ABSENT;
        cur.neg_until = engine__now() + neg_ttl;
        cur.digest[0] = '\0';
        index_put(e->ix, &cur);
        node_clear(&cur);
    }
    pthread_mutex_unlock(&e->mu);
}

static int open_generated(struct engine *e, struct upstream *u, struct node *n, bool have,
                          struct engine_file **out, bool *changed)
{
    char *body = NULL;
    size_t len = 0;
    bool stale = false;
    char hex[65];
    int rc = u->drv->generate(u, n->path, &body, &len, &stale);
    if (rc == -ENOENT) {
        remember_absent(e, n, u->cfg.negative_ttl);
        return -ENOENT;
    }
    if (rc < 0)
        return serve_stale(e, n, have, rc, out);
    rc = store_put_bytes(&e->store, body, len, hex);
    free(body);
    if (rc < 0)
        return serve_stale(e, n, have, rc, out);
    engine__object_added(e, hex, (int64_t)len, false);
    *changed = strcmp(hex, n->digest) != 0;
    pthread_mutex_lock(&e->mu);
    struct node cur;
    if (index_get(e->ix, n->ino, &cur) == 0) {
        snprintf(cur.digest, sizeof(cur.digest), "%s", hex);
        cur.size = (int64_t)len;
        cur.checked = engine__now();
        cur.stale = stale;
        index_put(e->ix, &cur);
        node_clear(&cur);
    }
    pthread_mutex_unlock(&e->mu);
    if (stale)
        atomic_fetch_add(&e->stale_serves, 1);
    return open_blob(e, hex, out);
}

static int open_download(struct engine *e, struct upstream *u, struct node *n, bool have,
                         const struct engine_wait *w, struct engine_file **out, bool *changed)
{
    char *expect_s = n->expect ? strdup(n->expect) : NULL;
    struct hash_expect expect = {0};
    struct curl_slist *hdrs = NULL;
    struct flight *f = NULL;
    bool started = false;
    char key[4400], hb[600];
    int rc = 0;

    if (!expect_s && u->drv->expectation) {
        struct drv_entry de = {.kind = NODE_FILE, .size = n->size, .url = n->url};
        rc = u->drv->expectation(u, n->path, &de, &expect_s);
        if (rc == -EREMOTEIO || rc == -ETIMEDOUT) {
            rc = serve_stale(e, n, have, rc, out);
            goto out;
        }
        if (rc < 0 && rc != -ENOENT)
            goto out;
        rc = 0;
    }
    if (expect_s && hash_expect_parse(expect_s, &expect) < 0) {
        log_warn("%s/%s: unusable checksum \"%.80s\" from the remote", n->top, n->path, expect_s);
        rc = -EIO;
        goto out;
    }
    if (expect.algo == HASH_SHA256) {
        /* Content named by digest may already be here, fetched through another path of this
         * proxy from the same location; another proxy's copy is not this proxy's to serve. */
        int sc = store_blob_size(&e->store, expect.hex) >= 0
                     ? engine__scope_check(e, u, n, expect.hex, NULL)
                     : 0;
        if (sc < 0) {
            rc = sc;
            goto out;
        }
        if (sc == 1) {
            struct node cur;
            pthread_mutex_lock(&e->mu);
            if (index_get(e->ix, n->ino, &cur) == 0) {
                snprintf(cur.digest, sizeof(cur.digest), "%.64s", expect.hex);
                cur.checked = engine__now();
                index_put(e->ix, &cur);
                node_clear(&cur);
            }
            pthread_mutex_unlock(&e->mu);
            atomic_fetch_add(&e->hits, 1);
            rc = open_blob(e, expect.hex, out);
            goto out;
        }
    }
    engine__flight_key(n->top, n->path, expect_s, key, sizeof(key));
    bool retried = false;
retry:
    curl_slist_free_all(hdrs);
    hdrs = NULL;
    rc = 0;
    if (have && n->is_mutable && n->etag) {
        snprintf(hb, sizeof(hb), "If-None-Match: %s", n->etag);
        rc = fetch_header_add(&hdrs, hb);
    } else if (have && n->is_mutable && n->last_modified) {
        snprintf(hb, sizeof(hb), "If-Modified-Since: %s", n->last_modified);
        rc = fetch_header_add(&hdrs, hb);
    }
    if (rc < 0)
        goto out;
    if (u->drv->request_headers) {
        rc = u->drv->request_headers(u, n->url, &hdrs);
        if (rc < 0) {
            rc = serve_stale(e, n, have, rc == -ENOENT ? -EIO : rc, out);
            goto out;
        }
    }
    struct dl_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        rc = -ENOMEM;
        goto out;
    }
    ctx->e = e;
    ctx->u = u;
    upstream_ref(u);
    ctx->top = strdup(n->top);
    ctx->path = strdup(n->path);
    ctx->url = strdup(n->url);
    ctx->started = engine__now();
    if (expect.algo == HASH_SHA256)
        snprintf(ctx->expect_sha256, sizeof(ctx->expect_sha256), "%.64s", expect.hex);
    struct flight_source src = {.url = n->url,
                                .ep = &u->ep,
                                .headers = hdrs,
                                .expect = expect,
                                .expect_size = u->drv->sizes_exact &&
                                                       expect.algo == HASH_SHA256 && n->size >= 0
                                                   ? n->size
                                                   : -1,
                                .on_done = dl_done,
                                .on_fail = dl_fail,
                                .recheck = dl_recheck,
                                .on_start = dl_start,
                                .free_arg = dl_free,
                                .arg = ctx};
    rc = flight_join(e->flights, key, &src, &f, &started);
    if (rc < 0) {
        dl_free(ctx);
        rc = serve_stale(e, n, have, rc, out);
        goto out;
    }
    if (!started)
        dl_free(ctx); /* joined someone else's download; their context does the bookkeeping */
    else
        upstream_count_request(u, NULL, false);
    long status = 0;
    /*
     * Bounded waits: with a copy past its TTL, the remote has UPSTREAM_STALE_WAIT_MS to answer,
     * then the copy is served stale while the download goes on and stores what comes.
     */
    int st = flight_wait_response(f, have ? UPSTREAM_STALE_WAIT_MS : ENGINE_OPEN_TIMEOUT_MS,
                                  w ? w->cancelled : NULL, w ? w->arg : NULL, &status, NULL);
    switch (st) {
    case FLIGHT_STREAMING:
    case FLIGHT_DONE: {
        struct engine_file *fh = engine__file_new(e);
        if (!fh) {
            rc = -ENOMEM;
            break;
        }
        atomic_fetch_add(&e->misses, 1);
        fh->flight = f;
        snprintf(fh->proxy, sizeof(fh->proxy), "%.63s", u->cfg.key);
        f = NULL;
        int64_t have_b, total;
        flight_progress(fh->flight, &have_b, &total);
        fh->size = total >= 0 ? total : n->size;
        *changed = have;
        *out = fh;
        rc = 0;
        break;
    }
    case FLIGHT_NOT_MODIFIED:
        if (have) {
            mark(e, n, false, true);
            atomic_fetch_add(&e->hits, 1);
            rc = open_blob(e, n->digest, out);
        } else {
            rc = -EIO;
        }
        break;
    case FLIGHT_HTTP_ERROR:
        if (status == 404 || status == 410) {
            remember_absent(e, n, u->cfg.negative_ttl);
            rc = -ENOENT;
        } else if ((status == 401 || status == 403 || status == 400) && !retried &&
                   u->drv->auth_rejected && u->drv->auth_rejected(u, n->url, status, NULL)) {
            /* The credential was refused before its time: once more with a fresh one. */
            retried = true;
            flight_release(f);
            f = NULL;
            goto retry;
        } else {
            struct failure fl = {.cause = failure_of_status(status), .status = status};
            if (fl.cause == FAILURE_AUTH) /* final now: dl_fail left it to this reader */
                upstream_note_failure(u, &fl, n->url);
            else
                failure_note_set(u->cfg.key, &fl, n->url, true);
            rc = serve_stale(e, n, have, failure_status_errno(status), out);
        }
        break;
    case FLIGHT_FAILED:
        rc = serve_stale(e, n, have, download_failed(f, u->cfg.key, n->url), out);
        break;
    default: /* the wait itself ended: -ETIMEDOUT or -EINTR */
        rc = serve_stale(e, n, have, st, out);
        break;
    }
out:
    flight_release(f);
    curl_slist_free_all(hdrs);
    free(expect_s);
    return rc;
}

int engine_file_open(struct engine *e, int64_t ino, const struct engine_wait *w,
                     struct engine_file **out, bool *keep_cache, bool *changed)
{
    struct node n;
    struct upstream *u = NULL;
    int64_t reg_ino = 0; /* a registry entry being read through its upstream */
    char reg_digest[65] = "";
    int rc;
    *keep_cache = false;
    *changed = false;
    failure_note_clear();
    pthread_mutex_lock(&e->mu);
    rc = index_get(e->ix, ino, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc;
    if (n.kind != NODE_FILE || engine__node_hidden(e, &n)) {
        rc = n.kind == NODE_DIR ? -EISDIR : -ENOENT;
        goto out;
    }
    if (n.local) {
        *out = engine__local_open_read(e, &n, &rc);
        goto out;
    }
    if (n.via) {
        /* A registry entry reads through the upstream that provides it. */
        struct node un;
        reg_ino = n.ino;
        memcpy(reg_digest, n.digest, sizeof(reg_digest));
        char *via = strdup(n.via), *path = strdup(n.path);
        node_clear(&n);
        rc = via && path ? engine__resolve_node(e, via, path, &un) : -ENOMEM;
        free(via);
        free(path);
        if (rc < 0)
            return rc;
        n = un;
        if (n.kind != NODE_FILE) {
            rc = -ENOENT;
            goto out;
        }
    }
    u = engine__upstream(e, n.top);
    if (!u) {
        rc = -ENOENT;
        goto out;
    }
    bool have = n.digest[0] && store_blob_size(&e->store, n.digest) >= 0;
    bool fresh = have && (!n.is_mutable || engine__now() < n.checked + u->cfg.metadata_ttl);
    if (fresh || (have && u->cfg.offline)) {
        atomic_fetch_add(&e->hits, 1);
        rc = open_blob(e, n.digest, out);
        if (rc == 0) {
            *keep_cache = true;
            goto out;
        }
        have = false;
    }
    if (!n.url && u->drv->generate) {
        /* Built from documents the driver fetches through the cache, which knows offline and
         * back-off itself: a cached source document still makes the file when the remote can't. */
        rc = open_generated(e, u, &n, have, out, changed);
        goto generated;
    }
    if (u->cfg.offline) {
        rc = -ENETUNREACH;
        goto out;
    }
    if (upstream_backing_off(u)) {
        rc = serve_stale(e, &n, have, -EREMOTEIO, out);
        goto out;
    }
    if ((rc = upstream_credentials_check(u)) < 0)
        goto out;
    if (n.url)
        rc = open_download(e, u, &n, have, w, out, changed);
    else
        rc = -EIO;
generated:
    if (rc == 0 && !*changed && (*out)->fd >= 0)
        *keep_cache = true;
out:
    if (u)
        rc = engine__failed(e, u, ino, rc);
    if (rc == 0 && reg_ino) {
        /*
         * The registry inode shows whichever upstream provides the name now; its
         * pages may be kept only while that is the same content as last time.
         */
        const char *now_digest = (*out)->digest;
        if (strcmp(reg_digest, now_digest) != 0) {
            *keep_cache = false;
            struct node rn;
            pthread_mutex_lock(&e->mu);
            if (index_get(e->ix, reg_ino, &rn) == 0) {
                memcpy(rn.digest, now_digest, sizeof(rn.digest));
                index_put(e->ix, &rn);
                node_clear(&rn);
            }
            pthread_mutex_unlock(&e->mu);
        }
    }
    upstream_unref(u);
    node_clear(&n);
    return rc;
}

ssize_t engine_file_read(struct engine_file *f, void *buf, size_t len, off_t off,
                         const struct engine_wait *w)
{
    if (f->fd >= 0) {
        ssize_t r = pread(f->fd, buf, len, off);
        return r < 0 ? -errno : r;
    }
    if (!f->flight)
        return -EBADF;
    ssize_t r = flight_read(f->flight, buf, len, off, ENGINE_STALL_MS, w ? w->cancelled : NULL,
                            w ? w->arg : NULL);
    if (r == -EIO)
        download_failed(f->flight, f->proxy, NULL); /* the errno stays EIO */
    return r;
}

/* Switches a finished download over to the stored object, so eviction sees it open. */
static void settle(struct engine_file *f)
{
    if (f->fd >= 0 || !f->flight)
        return;
    if (flight_wait_done(f->flight, 0, NULL, NULL) != FLIGHT_DONE)
        return;
    int fd = store_open_blob(&f->e->store, flight_digest(f->flight));
    if (fd < 0)
        return;
    snprintf(f->digest, sizeof(f->digest), "%s", flight_digest(f->flight));
    engine__obj_open(f->e, f->digest);
    f->fd = fd;
    f->size = flight_size(f->flight);
    flight_release(f->flight);
    f->flight = NULL;
}

int engine_file_fd(struct engine_file *f)
{
    settle(f);
    return f->fd >= 0 ? f->fd : -EAGAIN;
}

int engine_file_blob(const struct engine_file *f, int64_t *size)
{
    if (f->fd < 0 || f->tmp_path) /* tmp_path: set once when a writer is made */
        return -EAGAIN;
    *size = f->size;
    return f->fd;
}

int64_t engine_file_size(struct engine_file *f)
{
    settle(f);
    return f->size;
}

int engine_file_wait(struct engine_file *f, const struct engine_wait *w)
{
    if (f->fd >= 0 || !f->flight)
        return 0;
    int st =
        flight_wait_done(f->flight, ENGINE_STALL_MS, w ? w->cancelled : NULL, w ? w->arg : NULL);
    if (st < 0)
        return st;
    if (st == FLIGHT_FAILED)
        download_failed(f->flight, f->proxy, NULL); /* the errno stays EIO */
    if (st != FLIGHT_DONE)
        return -EIO;
    settle(f);
    return 0;
}

int engine_file_close(struct engine_file *f)
{
    if (!f)
        return 0;
    int rc = 0;
    struct engine *e = f->e;
    pthread_mutex_lock(&e->files_mu);
    if (f->prev)
        f->prev->next = f->next;
    else
        e->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    pthread_mutex_unlock(&e->files_mu);
    if (f->writable)
        rc = engine__local_commit(f);
    if (f->digest[0])
        engine__obj_close(f->e, f->digest);
    if (f->fd >= 0)
        close(f->fd);
    flight_release(f->flight);
    free(f->tmp_path);
    free(f);
    return rc;
}

int engine_read_all(struct engine *e, int64_t ino, const struct engine_wait *w, size_t max,
                    char **out, size_t *len)
{
    struct engine_file *f = NULL;
    bool keep = false, changed = false;
    char *buf = NULL;
    int rc = engine_file_open(e, ino, w, &f, &keep, &changed);
    if (rc == 0)
        rc = engine_file_wait(f, w);
    int64_t size = rc == 0 ? engine_file_size(f) : -1;
    if (rc == 0 && (size < 0 || (uint64_t)size > max))
        rc = -EFBIG;
    if (rc == 0 && !(buf = malloc((size_t)size + 1)))
        rc = -ENOMEM;
    for (int64_t got = 0; rc == 0 && got < size;) {
        ssize_t n = engine_file_read(f, buf + got, (size_t)(size - got), (off_t)got, w);
        if (n <= 0)
            rc = n < 0 ? (int)n : -EIO;
        else
            got += n;
    }
    engine_file_close(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[size] = '\0';
    *out = buf;
    *len = (size_t)size;
    return 0;
}
